"""The report as a researcher reads it: where the numbers come from, intervals only where they
mean something, recovery within 150 ms / 500 ms / 1 s in numbers, recovery curves per suite on
paired episodes, and a filmstrip that spans the moment that decided the episode."""

from test_report import make, write

from residual_bench.eval import plots, report
from residual_bench.eval.filmstrip import LEAD_S, PANELS, filmstrip_times


def records_with_a_shipped_residual():
    extra = {
        "residual_path": "shipped:scripted-sac-seed0",
        "train_seed": 0,
        "master_seed": 0,
        "git_commit": "abc123",
        "versions": {"residual-bench": "0.1.0"},
    }
    base = [
        make(
            s % 2 == 0,
            s,
            suite="poke",
            base="scripted",
            recoveries=[None],
            master_seed=0,
            git_commit="abc123",
        )
        for s in range(4)
    ]
    residual = [
        make(
            True,
            s,
            suite="poke",
            base="scripted",
            residual="sac",
            recoveries=[0.1 * (s + 1)],
            **extra,
        )
        for s in range(4)
    ]
    return base + residual


def test_the_report_says_which_residual_how_long_it_trained_and_which_code_ran(tmp_path):
    results = write(tmp_path / "results", records_with_a_shipped_residual())
    text = report.build_report([results], tmp_path / "report").read_text()
    assert "Provenance" in text and "shipped:scripted-sac-seed0" in text
    assert "150,000" in text or "300,000" in text  # the residual's training steps
    assert "[0.3, 0.1, 0.3]" in text  # its alpha
    assert "abc123" in text and "residual-bench 0.1.0" in text


def test_one_training_seed_is_said_in_words_not_as_a_zero_width_interval(tmp_path):
    results = write(tmp_path / "results", records_with_a_shipped_residual())
    text = report.build_report([results], tmp_path / "report").read_text()
    section = text.split("Across training seeds")[1].split("##")[0]
    assert "(one seed)" in section
    assert "[100%, 100%]" not in section


def test_recovery_within_150_ms_500_ms_and_1_s_is_reported_in_numbers():
    table = report.recovery_table(records_with_a_shipped_residual())
    residual = table[table.method == "scripted+sac"].iloc[0]
    assert residual.events == 4
    assert residual.at_150ms == 0.25 and residual.at_500ms == 1.0 and residual.at_1s == 1.0
    base = table[table.method == "scripted"].iloc[0]
    assert base.eventual == 0.0


def test_recovery_curves_compare_methods_on_the_episodes_both_ran():
    records = records_with_a_shipped_residual()
    extra_base_episode = make(False, 99, suite="poke", base="scripted", recoveries=[0.3])
    by_method = report._group([*records, extra_base_episode], report.method_name)
    panels = plots.paired_by_suite(by_method)
    assert set(panels) == {"poke"}
    assert {len(recs) for recs in panels["poke"].values()} == {4}  # seed 99 is unpaired


def test_the_filmstrip_never_starts_before_the_episode_and_ends_at_the_decisive_moment():
    times = filmstrip_times(event_time=0.1, decisive_time=7.3)
    assert len(times) == PANELS and times[0] == 0.0 and times[-1] == 7.3
    assert times == sorted(times)
    late = filmstrip_times(event_time=2.0, decisive_time=9.0)
    assert late[0] == 2.0 - LEAD_S and late[-1] == 9.0
