"""DAgger round by round (benchmarks/dagger_rounds.py): which rounds are scored, and the table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "dagger_rounds.py"


@pytest.fixture(scope="module")
def dagger_rounds():
    spec = importlib.util.spec_from_file_location("dagger_rounds", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # Its dataclasses look their module up while the class is made.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_folder(path: Path, networks: list[int], logged: dict[int, int]) -> Path:
    """A finetune-dagger run folder with empty networks and ``rounds.csv`` rows (round: steps)."""
    path.mkdir()
    for k in networks:
        (path / f"round-{k}.pt").write_bytes(b"")
        (path / f"round-{k}.pt.train.pt").write_bytes(b"")  # the optimiser state beside it
    if logged:
        rows = [f"{k},{steps},0.1" for k, steps in logged.items()]
        (path / "rounds.csv").write_text("\n".join(["round,env_steps,train_loss", *rows]) + "\n")
    return path


def test_a_round_counts_once_its_row_is_in_rounds_csv_and_a_network_without_one_is_left_out(
    dagger_rounds, tmp_path
):
    run = run_folder(tmp_path / "run", [0, 1, 2], {0: 10323, 1: 20794})
    rounds, still_training = dagger_rounds.finished_rounds(run)
    assert [(r.index, r.env_steps, r.checkpoint.name) for r in rounds] == [
        (0, 10323, "round-0.pt"),
        (1, 20794, "round-1.pt"),
    ]
    assert still_training == [2]


@pytest.mark.parametrize(
    ("networks", "logged", "message"),
    [
        (None, {}, "no such run folder"),
        ([], {0: 100}, "no round-*.pt"),
        ([0], {}, "no finished round yet"),
    ],
)
def test_a_folder_that_is_not_a_finished_run_is_refused_by_name(
    dagger_rounds, tmp_path, networks, logged, message
):
    run = tmp_path / "run" if networks is None else run_folder(tmp_path / "run", networks, logged)
    with pytest.raises(ValueError, match=f"^{run}: {message}".replace("*", r"\*")):
        dagger_rounds.finished_rounds(run)


def test_asking_for_a_round_the_run_has_not_finished_names_the_finished_ones(
    dagger_rounds, tmp_path
):
    run = run_folder(tmp_path / "run", [0, 1], {0: 100, 1: 200})
    rounds, _ = dagger_rounds.finished_rounds(run)
    assert [r.index for r in dagger_rounds.selected_rounds(rounds, [1], run)] == [1]
    with pytest.raises(ValueError, match=r"no finished round 4 \(finished: 0, 1\)"):
        dagger_rounds.selected_rounds(rounds, [1, 4], run)


def episodes(*successes: int, first_seed: int = 0) -> list[SimpleNamespace]:
    return [SimpleNamespace(seed=first_seed + i, success=bool(s)) for i, s in enumerate(successes)]


def test_each_seed_is_paired_with_the_base_and_the_pooled_line_adds_up_the_seeds(dagger_rounds):
    mixed = dagger_rounds.Condition("mixed", "heldout")
    base = {mixed.key: episodes(0, 0, 1, 0)}
    evaluations = [
        {"seed": 1, "round": 0, "env_steps": 300, "records": {mixed.key: episodes(1, 1, 1, 1)}},
        {"seed": 0, "round": 0, "env_steps": 100, "records": {mixed.key: episodes(1, 0, 0, 0)}},
    ]
    rows = dagger_rounds.round_rows(base, evaluations, [mixed])
    assert [(r["seed"], r["round"], r["env_steps"]) for r in rows] == [
        (None, None, 0),
        (0, 0, 100),
        (1, 0, 300),
        ("pooled", 0, 200.0),
    ]
    seed0, seed1, pooled = (r["cells"][mixed.key] for r in rows[1:])
    assert (seed0["k"], seed0["change_pp"], seed0["p_value"]) == (1, 0.0, 1.0)  # 1 won, 1 lost
    assert (seed1["k"], seed1["change_pp"]) == (4, 75.0)
    assert (pooled["k"], pooled["n"], pooled["change_pp"], pooled["p_value"]) == (5, 8, 37.5, None)
    lines = dagger_rounds.table_markdown(rows, [mixed]).splitlines()
    assert lines[0] == "| seed | round | env steps | mixed, held-out objects |"
    assert lines[2] == "| - | base alone | 0 | 25% [5%, 70%] |"
    assert lines[4] == "| 1 | 0 | 300 | 100% [51%, 100%], +75 pp (p=0.250) |"
    assert lines[5] == "| pooled (2 seeds) | 0 | 200 | 62% [31%, 86%], +38 pp |"


def test_a_network_scored_on_other_episodes_than_the_base_is_refused(dagger_rounds):
    mixed = dagger_rounds.Condition("mixed", "heldout")
    records = {mixed.key: episodes(1, 0, first_seed=1)}
    shifted = {"seed": 0, "round": 0, "env_steps": 100, "records": records}
    with pytest.raises(ValueError, match="different episodes"):
        dagger_rounds.round_rows({mixed.key: episodes(1, 0)}, [shifted], [mixed])
