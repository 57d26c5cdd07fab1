"""The inline stylesheet and script of ``leaderboards/index.html``.

Inline, not fetched from a CDN: the page must work offline and from a plain file, and a
third-party script could change what a committed page shows. The script sorts a table when a
header is clicked (numbers by their ``data-value``, empty values last when descending) and
hides the rows that do not match the text filter or the selected suite (the all-task
summary's rows have no suite: only the text filter applies to them).
"""

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; width: 100%; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 4px 6px; text-align: left; font-size: 13px; }
th { background: #f0f0f0; cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
.badge-verified { color: #05620b; font-weight: bold; }
.badge-failed { color: #a00; font-weight: bold; }
.controls { display: flex; gap: 1em; align-items: center; }
svg.plot text { font-size: 11px; }
rect.bar-verified { fill: #4c9a55; } rect { fill: #8fa9c9; }
line.ci { stroke: #222; stroke-width: 2; } line.axis { stroke: #888; }
rect.gain { fill: #c9a24c; } circle.seed { fill: #222; }
"""

JS = """
function sortTable(th) {
  const table = th.closest("table"), body = table.tBodies[0];
  const col = Array.from(th.parentNode.children).indexOf(th);
  const asc = th.getAttribute("aria-sort") !== "ascending";
  table.querySelectorAll("th").forEach(h => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", asc ? "ascending" : "descending");
  const numeric = th.dataset.type === "num";
  const value = row => {
    const v = row.children[col].dataset.value;
    if (!numeric) return v;
    return v === "" ? -Infinity : parseFloat(v);
  };
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = value(a), y = value(b);
    const c = numeric ? x - y : String(x).localeCompare(String(y));
    return asc ? c : -c;
  });
  rows.forEach(r => body.appendChild(r));
}
function applyFilters() {
  const text = document.getElementById("filter").value.toLowerCase();
  const suite = document.getElementById("suite-filter").value;
  document.querySelectorAll("table.leaderboard tbody tr, table.summary tbody tr").forEach(row => {
    const inSuite = !suite || row.dataset.suite === undefined || row.dataset.suite === suite;
    const ok = inSuite &&
      row.textContent.toLowerCase().includes(text);
    row.hidden = !ok;
  });
}
document.querySelectorAll("table.leaderboard th, table.summary th").forEach(th =>
  th.addEventListener("click", () => sortTable(th)));
document.getElementById("filter").addEventListener("input", applyFilters);
document.getElementById("suite-filter").addEventListener("change", applyFilters);
"""
