"""Behaviour of the results report: method table, paired comparisons, seed aggregates, files.

Records are built by hand with chosen outcomes, written with ``append_jsonl`` into temporary
results directories and read back, so every expected number can be computed on paper.
"""

import math
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest

from residual_bench.episodes.metrics import wilson_interval
from residual_bench.episodes.records import EpisodeRecord, PerturbationEvent, append_jsonl
from residual_bench.eval import plots, report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make(success, seed, suite="nominal", base="bc", residual=None, objects="train", **kw):
    """One record; ``time`` is its first success time, ``recoveries`` one event per entry."""
    time = kw.pop("time", 3.0 if success else None)
    events = [
        PerturbationEvent("poke", "time", 1.0, 0.5, "mug", 0.0, {}, rt)
        for rt in kw.pop("recoveries", ())
    ]
    return EpisodeRecord(
        env_id="ResidualPickPlace-v0",
        env_spec_hash="abc",
        seed=seed,
        suite=suite,
        objects=objects,
        base=base,
        residual=residual,
        instruction="put the mug on the plate",
        target_object="mug",
        success=success,
        first_success_time=time,
        episode_time=10.0,
        n_steps=200,
        events=events,
        mean_abs_residual_ratio=kw.pop("ratio", None),
        action_jerk=kw.pop("jerk", None),
        extra=kw,
    )


def write(directory, records):
    directory.mkdir(parents=True, exist_ok=True)
    for r in records:
        append_jsonl(directory / "episodes.jsonl", r)
    return directory


def only_residual_succeeds(n=6, residual="sac"):
    """Base alone fails every seed, the residual solves every seed: McNemar p = 2 / 2**n."""
    return [make(False, s) for s in range(n)] + [
        make(True, s, residual=residual, time=2.0 + 0.1 * s) for s in range(n)
    ]


def is_png(path):
    return path.is_file() and path.read_bytes()[:8] == PNG_SIGNATURE


def test_method_name():
    assert report.method_name(make(True, 0)) == "bc"
    assert report.method_name(make(True, 0, residual="sac")) == "bc+sac"


def test_method_table_matches_hand_computed_values():
    records = [
        make(True, 0, time=2.0, ratio=0.2, jerk=1.0),
        make(True, 1, time=3.0, ratio=None, jerk=3.0),
        make(True, 2, time=4.0, ratio=0.4, jerk=5.0),
        make(False, 3, time=1.0),  # succeeded once, failed at the end: no completion time
        make(True, 0, suite="poke", recoveries=[0.3]),
        make(True, 1, suite="poke", recoveries=[0.2, None]),
        make(False, 2, suite="poke", recoveries=[None]),
        make(False, 3, suite="poke"),  # unperturbed: not part of the recovery rate
    ]
    table = report.method_table(records).set_index("suite")
    nominal, poke = table.loc["nominal"], table.loc["poke"]

    assert nominal["episodes"] == 4
    assert nominal["success"] == 0.75
    assert (nominal["success_lo"], nominal["success_hi"]) == wilson_interval(3, 4)
    assert math.isnan(nominal["recovery"]) and math.isnan(nominal["recovery_lo"])
    assert nominal["completion_time"] == pytest.approx(3.0)
    assert 2.0 <= nominal["completion_lo"] < 3.0 < nominal["completion_hi"] <= 4.0
    assert nominal["residual_ratio"] == pytest.approx(0.3)
    assert nominal["action_jerk"] == pytest.approx(3.0)
    assert poke["success"] == 0.5
    assert poke["recovery"] == pytest.approx(2 / 3)
    assert (poke["recovery_lo"], poke["recovery_hi"]) == wilson_interval(2, 3)
    assert math.isnan(poke["residual_ratio"])


def test_single_completion_has_no_interval():
    row = report.method_table([make(True, 0, time=2.5), make(False, 1)]).iloc[0]
    assert row["completion_time"] == 2.5
    assert math.isnan(row["completion_lo"]) and math.isnan(row["completion_hi"])


def test_method_table_order():
    suites = ["zeta", "mixed", "nominal", "alpha", "drop", "poke", "latency", "slide"]
    records = [
        make(True, 0, suite=s, objects=o, residual=res)
        for o in ("train", "heldout")
        for s in suites
        for res in ("sac", None)
    ]
    table = report.method_table(records)
    standard = ["nominal", "poke", "slide", "drop", "latency", "mixed", "alpha", "zeta"]
    expected = [(o, s, m) for o in ("heldout", "train") for s in standard for m in ("bc", "bc+sac")]
    assert list(zip(table["objects"], table["suite"], table["method"], strict=True)) == expected


def test_pairs_only_seeds_present_for_both():
    records = [make(s % 2 == 0, s) for s in range(5)]  # seed 4 has no residual episode
    records += [make(True, s, residual="sac") for s in range(4)]
    records += [make(True, 9, residual="sac")]  # seed 9 has no base episode
    row = report.paired_comparisons(records).iloc[0]
    assert row["pairs"] == 4
    assert (row["base"], row["method"]) == ("bc", "bc+sac")
    assert row["base_success"] == 0.5  # seeds 0 and 2 of 0..3
    assert row["method_success"] == 1.0
    assert row["difference"] == 0.5
    assert row["p_value"] == pytest.approx(0.5)  # two discordant pairs, both one way


def test_paired_table_has_the_harm_rate_of_base_successes_the_residual_broke():
    base = [True, True, True, False, False]
    residual = [False, True, True, True, False]
    records = [make(b, s) for s, b in enumerate(base)]
    records += [make(r, s, residual="sac") for s, r in enumerate(residual)]
    row = report.paired_comparisons(records).iloc[0]
    assert (row["harm"], row["help"]) == (0.2, 0.2)
    assert (row["harm_lo"], row["harm_hi"]) == pytest.approx(wilson_interval(1, 5))


def test_mcnemar_p_value_when_only_the_residual_succeeds():
    row = report.paired_comparisons(only_residual_succeeds(6)).iloc[0]
    assert row["pairs"] == 6
    assert row["p_value"] == pytest.approx(0.03125)
    assert row["difference"] == 1.0
    # Completion time needs pairs in which both succeeded.
    assert math.isnan(row["completion_time_difference"])


def test_paired_completion_time_difference():
    base_times, residual_times = [3.0, 4.0, 5.0], [2.0, 3.0, 3.5]
    records = [make(True, s, time=t) for s, t in enumerate(base_times)]
    records += [make(True, s, residual="sac", time=t) for s, t in enumerate(residual_times)]
    records += [make(False, 3), make(True, 3, residual="sac", time=1.0)]  # only one succeeds
    row = report.paired_comparisons(records).iloc[0]
    assert row["pairs"] == 4
    expected = np.mean(residual_times) - np.mean(base_times)
    assert row["completion_time_difference"] == pytest.approx(expected)
    assert row["completion_difference_lo"] <= expected <= row["completion_difference_hi"]
    assert row["completion_difference_hi"] < 0.0


def test_completion_time_difference_needs_two_pairs_where_both_succeed():
    records = [make(True, 0, time=3.0), make(True, 1, time=3.0), make(False, 2)]
    records += [make(True, 0, residual="sac", time=2.0), make(False, 1, residual="sac")]
    records += [make(True, 2, residual="sac", time=2.0)]
    row = report.paired_comparisons(records).iloc[0]
    assert row["pairs"] == 3
    assert math.isnan(row["completion_time_difference"])
    assert math.isnan(row["completion_difference_lo"])


@pytest.mark.parametrize("residual", ["sac", None])
def test_duplicated_seed_is_an_error_naming_it(residual):
    records = [make(True, s) for s in range(3)] + [make(True, s, residual="sac") for s in range(3)]
    records.append(make(False, 2, residual=residual))
    name = "bc+sac" if residual else "bc"
    with pytest.raises(ValueError, match=rf"seed 2 .*'{re.escape(name)}'"):
        report.paired_comparisons(records)


def test_training_seeds_are_paired_separately():
    records = [make(False, s) for s in range(3)]
    records += [make(True, s, residual="sac", train_seed=t) for t in (0, 1) for s in range(3)]
    table = report.paired_comparisons(records)
    assert list(table["train_seed"]) == [0, 1]
    assert list(table["pairs"]) == [3, 3]


def test_base_from_another_split_or_base_is_not_paired():
    records = [make(True, s, objects="heldout") for s in range(3)]
    records += [make(True, s, base="vla") for s in range(3)]
    records += [make(True, s, residual="sac") for s in range(3)]
    assert report.paired_comparisons(records).empty


def test_seed_aggregates_iqm_and_probability_of_improvement():
    # Per-suite success of each training seed (2 episodes each): nominal, poke.
    successes = {0: ([1, 1], [1, 0]), 1: ([1, 0], [0, 1]), 2: ([1, 1], [1, 1])}
    records = []
    for seed, per_suite in successes.items():
        for suite, outcomes in zip(("nominal", "poke"), per_suite, strict=True):
            records += [
                make(bool(x), i, suite=suite, residual="sac", train_seed=seed)
                for i, x in enumerate(outcomes)
            ]
    records += [make(i == 0, i, suite=s) for s in ("nominal", "poke") for i in range(2)]
    records += [make(True, 0, residual="other")]  # no train_seed: not aggregated
    table = report.seed_aggregates(records)
    assert list(table["method"]) == ["bc+sac"]
    row = table.iloc[0]
    assert (row["train_seeds"], row["suites"]) == (3, 2)
    # Scores [1, .5, .5, .5, 1, 1]: the IQM drops one value from each end -> mean(.5,.5,1,1).
    assert row["iqm"] == pytest.approx(0.75)
    assert row["iqm_lo"] <= 0.75 <= row["iqm_hi"]
    assert row["base_iqm"] == pytest.approx(0.5)
    # Against the base's 0.5: nominal (1 + .5 + 1) / 3, poke (.5 + .5 + 1) / 3, averaged.
    assert row["improvement_probability"] == pytest.approx((5 / 6 + 2 / 3) / 2)


def test_build_report_writes_tables_and_plots(tmp_path):
    records = [make(s < 3, s, time=3.0 + 0.1 * s) for s in range(4)]
    records += only_residual_succeeds(6)[6:]
    results = write(tmp_path / "results", records)
    path = report.build_report([results], tmp_path / "out", title="Bench")

    assert path == tmp_path / "out" / "report.md"
    md = path.read_text()
    assert md.startswith("# Bench\n")
    assert str(results) in md
    assert "| train | nominal | bc | 4 | 75% [30%, 95%] | – | 3.10 s [3.00, 3.20] |" in md
    assert "| train | nominal | bc+sac | 6 | 100% [61%, 100%] |" in md
    assert "p=0.031" not in md  # only seeds 0..3 are paired: 3 concordant, 1 discordant
    assert "| train | nominal | bc+sac | 4 | 75% | 100% | +25 pp | p=1.000 | 0% [0%, 49%] |" in md
    for name in ("success", "recovery", "completion"):
        assert f"(plots/{name}.png)" in md
        assert is_png(tmp_path / "out" / "plots" / f"{name}.png")
    assert not (tmp_path / "out" / "plots" / "learning.png").exists()
    assert "learning" not in md.lower()

    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("<table>") == 2
    assert "<td>75% [30%, 95%]</td>" in page
    assert '<img src="plots/success.png"' in page


def test_report_formats_p_values(tmp_path):
    results = write(tmp_path / "r", only_residual_succeeds(6))
    md = report.build_report(results, tmp_path / "out").read_text()
    assert "| +100 pp | p=0.031 |" in md


def test_two_runs_of_the_same_episodes_are_paired_by_seed_whatever_their_order():
    before = [make(False, s) for s in range(6)]
    after = [make(True, s, residual="sac") for s in reversed(range(6))]
    test = report.mcnemar_by_seed(before, after)
    assert (test["n01"], test["n10"], test["difference"]) == (6, 0, 1.0)
    assert test["p_value"] == pytest.approx(2 / 2**6)
    with pytest.raises(ValueError, match="different episodes"):
        report.mcnemar_by_seed(before, after[1:])
    with pytest.raises(ValueError, match="seed 0 appears more than once"):
        report.mcnemar_by_seed(before + [make(True, 0)], after)


def test_html_escapes_method_names(tmp_path):
    evil = "<script>alert(1)</script>"
    results = write(tmp_path / "r", only_residual_succeeds(3, residual=evil))
    report.build_report(results, tmp_path / "out", title="a <b> & c")
    page = (tmp_path / "out" / "report.html").read_text()
    assert "<script" not in page
    assert "bc+&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<title>a &lt;b&gt; &amp; c</title>" in page
    assert "<script" not in (tmp_path / "out" / "report.md").read_text()


def test_learning_curves_and_filmstrip_when_present(tmp_path):
    first = write(tmp_path / "a", [make(True, 0)])
    second = write(tmp_path / "b", [make(True, 0, residual="sac")])
    for seed, steps in ((0, [0, 100, 200]), (1, [0, 150, 300])):
        (second / "train" / f"seed{seed}").mkdir(parents=True)
        curve = pd.DataFrame({"timesteps": steps, "success_rate": [0.0, 0.4, 0.8]})
        curve.to_csv(second / "train" / f"seed{seed}" / "progress.csv", index=False)
    film = plots.plot_success(report.method_table([make(True, 0)]), second / "filmstrip.png")

    md = report.build_report([first, second], tmp_path / "out").read_text()
    assert "(plots/learning.png)" in md
    assert is_png(tmp_path / "out" / "plots" / "learning.png")
    assert "(filmstrip.png)" in md
    assert (tmp_path / "out" / "filmstrip.png").read_bytes() == film.read_bytes()


def test_plots_note_missing_data_and_skip_methods_without_events(tmp_path):
    by_method = {"bc": [make(True, 0, recoveries=[0.2, None])], "bc+sac": [make(True, 0)]}
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # keep text searchable in the SVG
        curves = plots.plot_recovery_curves(by_method, tmp_path / "rec.svg").read_text()
        empty = plots.plot_recovery_curves({"bc": [make(True, 0)]}, tmp_path / "e.svg")
        learning = plots.plot_learning_curves(
            {"bc+sac": [pd.DataFrame({"timesteps": [0, 10], "success_rate": [0.0, 1.0]})] * 2},
            tmp_path / "learning.svg",
            target=("80% of the residual", 0.4),
        )
    assert "bc (2 events)" in curves and "bc+sac" not in curves
    assert "no perturbation events" in empty.read_text()
    assert "bc+sac (2 seeds)" in learning.read_text()
    assert "80% of the residual" in learning.read_text()
    assert plots.plot_completion_times(by_method, tmp_path / "c.png") == tmp_path / "c.png"
    assert is_png(tmp_path / "c.png")


def test_learning_curves_draw_the_named_methods_dashed(tmp_path):
    curve = [pd.DataFrame({"timesteps": [0, 10], "success_rate": [0.0, 0.5]})]
    solid = plots.plot_learning_curves({"sac": curve}, tmp_path / "solid.svg").read_text()
    dashed = plots.plot_learning_curves(
        {"sac": curve, "global (training)": curve}, tmp_path / "dashed.svg",
        dashed={"global (training)"},
    ).read_text()  # fmt: skip
    assert "stroke-dasharray" not in solid
    assert "stroke-dasharray" in dashed


def test_missing_results_name_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        report.load_results([missing])
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "empty_dir"))):
        report.build_report([tmp_path / "empty_dir"], tmp_path / "out")


def test_corrupt_results_file_is_reported(tmp_path):
    results = write(tmp_path / "r", [make(True, 0)])
    with open(results / "episodes.jsonl", "a") as f:
        f.write("{not json\n")
    with pytest.raises(ValueError, match=r"episodes\.jsonl:2: malformed JSON"):
        report.load_results(results)


def test_no_episodes_is_an_error(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "episodes.jsonl").write_text("")
    with pytest.raises(ValueError, match="no episodes in"):
        report.build_report(tmp_path / "r", tmp_path / "out")


def test_recovery_table_reports_reaction_within_150_ms_over_events_with_a_rule(tmp_path):
    def reacted(kind, rt, rule="towards_displacement"):
        return PerturbationEvent(kind, "time", 1.0, 0.5, "mug", 0.0, {}, 0.3, False, rt, rule)

    events = [reacted("poke", 0.05), reacted("poke", 0.2), reacted("poke", None)]
    events.append(reacted("latency", None, None))  # no reaction rule: left out
    records = [make(True, 0, residual="sac"), make(False, 1)]
    records[0].events, records[1].events = events, [reacted("latency", None, None)]
    table = report.recovery_table(records).set_index("method")
    assert table.loc["bc+sac", "reaction_events"] == 3
    assert table.loc["bc+sac", "react_150ms"] == pytest.approx(1 / 3)
    assert math.isnan(table.loc["bc", "react_150ms"])  # only a latency event
    md = report.build_report(write(tmp_path / "r", records), tmp_path / "out").read_text()
    assert "reacts within 150 ms" in md
    assert f"| {report_render_rate(1, 3)} |" in md


def report_render_rate(k, n):
    lo, hi = wilson_interval(k, n)
    return f"{100 * k / n:.0f}% [{100 * lo:.0f}%, {100 * hi:.0f}%]"
