"""``bench sweep``: a grid of training runs and evaluations, on a local Ray instance.

Stand-in runs: a residual config of a few hundred steps on proprioception (no camera), one
evaluation episode per cell.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from residual_bench.cli import main
from residual_bench.env_spec import SpecError
from residual_bench.episodes.records import read_jsonl
from residual_bench.sweep.cell import cell_dir, finished
from residual_bench.sweep.collect import collect, training_runs
from residual_bench.sweep.schedule import run_cells
from residual_bench.sweep.spec import load_sweep

ray = pytest.importorskip("ray")

TINY = """\
algo: sac
description: a stand-in run of a few hundred steps
features: proprio
hyperparams: {{learning_starts: 50, buffer_size: 2000, batch_size: 16,
              policy_kwargs: {{net_arch: [8]}}}}
train: {{steps: {steps}, suite: nominal, eval_every: 60, eval_episodes: 1,
        checkpoint_every: 60}}
"""
SWEEP = """\
name: tiny
grid:
  bases: [scripted]
  methods: {methods}
  seeds: [0]
eval: {{suites: [nominal], objects: [heldout], episodes: 1}}
"""


@pytest.fixture
def sweep_file(tmp_path):
    """A sweep of the base alone, a stand-in residual and a residual that fails to start
    (made for another base)."""
    (tmp_path / "tiny.yaml").write_text(TINY.format(steps=120))
    (tmp_path / "broken.yaml").write_text(TINY.format(steps=120) + "base: bc\n")
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP.format(methods="[tiny.yaml, broken.yaml]"))
    return path


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def without_wall_clock(rows):
    return [{k: v for k, v in row.items() if not k.endswith("wall_s")} for row in rows]


def test_the_dry_run_prints_every_cell_and_runs_nothing(sweep_file, tmp_path, capsys):
    assert main(["sweep", str(sweep_file), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert (
        "3 cell(s)" in printed and "[to run] ResidualPickPlace-v1__scripted__tiny__seed0" in printed
    )
    assert not (tmp_path / "out").exists()


def test_every_shipped_sweep_loads_and_names_its_cells():
    names = {name: len(load_sweep(name).cells) for name in ("residual-comparison",
             "finetune-comparison", "feature-ablation")}  # fmt: skip
    assert names == {"residual-comparison": 8, "finetune-comparison": 23, "feature-ablation": 8}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("bases: [no-such-base]", "grid.bases: unknown base policy 'no-such-base'; valid"),
        ("colours: [red]", "unknown axis ['colours']"),
        ("methods: [nope]", "grid.methods: no config 'nope'"),
        ("env_ids: [Nope-v0]", "unknown task 'Nope-v0'; registered: ResidualPickPlace-v1"),
        ("seeds: [0, 0]", "grid.seeds lists a value twice"),
        ("seeds: [-1]", "grid.seeds: -1 is not a seed"),
        ("features: [pixels]", "grid.features"),
    ],
)
def test_a_wrong_sweep_file_is_refused_naming_the_field(sweep_file, change, message):
    key = change.split(":")[0]
    text = sweep_file.read_text()
    lines = [line for line in text.splitlines() if not line.strip().startswith(f"{key}:")]
    at = lines.index("grid:") + 1
    sweep_file.write_text("\n".join([*lines[:at], f"  {change}", *lines[at:]]) + "\n")
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_sweep(sweep_file)


def test_a_grid_too_large_is_refused_before_anything_runs(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(
        SWEEP.format(methods="[sac]").replace("seeds: [0]", f"seeds: {list(range(1001))}")
    )
    with pytest.raises(SpecError, match="more than 1000 cells"):
        load_sweep(path)


def test_on_ray_the_grid_runs_a_failing_cell_is_reported_and_the_table_equals_the_serial_one(
    sweep_file, tmp_path, local_ray
):
    spec = load_sweep(sweep_file)
    on_ray = run_cells(spec, tmp_path / "ray", "ray")
    serial = run_cells(spec, tmp_path / "serial", "serial")
    for outcome, out in ((on_ray, tmp_path / "ray"), (serial, tmp_path / "serial")):
        assert len(outcome.done) == 2 and list(outcome.failed) == [spec.cells[2].name]
        error = outcome.failed[spec.cells[2].name]
        assert "made for the 'bc' base" in error and "log.txt" in error
        assert "made for the 'bc' base" in (cell_dir(out, spec.cells[2]) / "log.txt").read_text()
        collect(spec, out, report=False)
    tables = [json.loads((tmp_path / d / "table.json").read_text()) for d in ("ray", "serial")]
    assert without_wall_clock(tables[0]) == without_wall_clock(tables[1])
    assert [row["method"] for row in tables[0]] == [
        "base alone",
        str(sweep_file.parent / "tiny.yaml"),
    ]
    hashes = [
        [
            r.final_state_hash
            for r in read_jsonl(cell_dir(tmp_path / d, spec.cells[1]) / "episodes.jsonl")
        ]
        for d in ("ray", "serial")
    ]
    assert hashes[0] == hashes[1]
    # A second run skips the finished cells and reports the failing one again.
    again = run_cells(spec, tmp_path / "ray", "ray")
    assert sorted(again.skipped) == sorted(c.name for c in spec.cells[:2]) and again.failed
    assert set(training_runs(tmp_path / "ray")) == {"tiny-seed0"}  # broken never trained


def test_a_sweep_killed_mid_run_resumes_each_cell_from_its_own_checkpoint(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY.format(steps=900))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP.format(methods="[tiny.yaml]"))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "residual_bench.cli", "sweep", str(sweep), "--out",
               str(out), "--workers", "1", "--no-report"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    spec = load_sweep(sweep)
    run = cell_dir(out, spec.cells[1]) / "train" / "seed0"
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # Generous: a busy machine can take minutes to start Ray and reach the checkpoint.
        deadline = time.monotonic() + 600
        started = lambda: (run / "checkpoint").is_dir() and (run / "progress.csv").is_file()  # noqa: E731
        while not started() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started() and first.poll() is None, "the sweep ended before it could be killed"
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert finished(out, spec.cells[1]) is None  # killed before it finished
    rows_before = (run / "progress.csv").read_text().splitlines()[1:]
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert finished(out, spec.cells[1])["train_steps"] == 900
    rows = (run / "progress.csv").read_text().splitlines()[1:]
    steps = [int(row.split(",")[0]) for row in rows]
    assert rows[: len(rows_before)] == rows_before  # continued, not restarted
    assert steps == sorted(set(steps)) and steps[-1] == 900
    assert (cell_dir(out, spec.cells[1]) / "log.txt").read_text().count("== ") >= 3
