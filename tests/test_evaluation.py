"""Evaluation at scale: the task grid, its seeds, executors, records and resumable results.

An evaluation is a list of ``EpisodeTask`` s, one per (method, suite, object split, episode
index); episode ``i`` of suite ``s`` on split ``o`` is seeded with
``episode_seed(master_seed, s, o, i)`` whatever the method, so methods are compared on the
same episodes. Every executor runs the same pure work unit and gives the same records; every
record carries what is needed to re-run it; ``evaluate(..., resume=True)`` finishes an
interrupted evaluation without losing or repeating an episode.

The residuals here are tiny untrained SAC models on the ``privileged`` features (state
observations), so every episode stays cheap.
"""

import json
import re
import warnings
from importlib import metadata
from itertools import product
from pathlib import Path

import pytest
from stable_baselines3 import SAC

from residual_bench.episodes.records import EpisodeRecord, read_jsonl
from residual_bench.eval.episode_tasks import make_tasks, record_key, task_key, task_of
from residual_bench.eval.runner import evaluate, execute, run_task
from residual_bench.perturb import suite_names
from residual_bench.policies.registry import base_names
from residual_bench.protocol import parse_seeds
from residual_bench.residual.checkpoint import FORMAT, VERSION, save_residual
from residual_bench.residual.factory import make_residual_env
from residual_bench.seeding import episode_seed

BASE = "scripted-expert"
PROVENANCE = ("versions", "git_commit")  # added by `evaluate`, not by the work unit


def residual_metadata(base: str, train_seed: int) -> dict:
    return {
        "algo": "sac",
        "name": "tiny",
        "base": base,
        "features": "privileged",
        "alpha": [0.1],
        "train_seed": train_seed,
    }


def fake_residual(path: Path, base: str) -> Path:
    """A residual directory whose metadata is valid but whose weights are an empty file."""
    path.mkdir(parents=True)
    meta = {"format": FORMAT, "version": VERSION, "policy": {}, **residual_metadata(base, 0)}
    (path / "residual.json").write_text(json.dumps(meta))
    (path / "policy.safetensors").write_bytes(b"")
    return path


def key_of(task) -> tuple:
    return task_key(task.base, task.residual, task.suite_name, task.objects, task.seed)


def plain(data: dict) -> dict:
    """A record dict as JSON gives it back, without the provenance ``evaluate`` adds."""
    data = json.loads(json.dumps(data))
    data["extra"] = {k: v for k, v in data["extra"].items() if k not in PROVENANCE}
    return data


def by_cell_and_seed(records: list[dict]) -> list[dict]:
    return sorted(records, key=lambda r: (r["suite"], r["objects"], r["seed"]))


@pytest.fixture(scope="module")
def residuals(tmp_path_factory) -> list[str]:
    """Two residuals for ``BASE`` with the same name and weights, training seeds 3 and 4."""
    root = tmp_path_factory.mktemp("residuals")
    env = make_residual_env(BASE, "privileged", 0.1)
    try:
        model = SAC(
            "MlpPolicy",
            env,
            policy_kwargs={"net_arch": [8]},
            buffer_size=10,
            seed=3,
            device="cpu",
        )
        return [
            str(save_residual(model, root / f"seed{s}", residual_metadata(BASE, s))) for s in (3, 4)
        ]
    finally:
        env.close()


@pytest.fixture(scope="module")
def grid(tmp_path_factory, residuals):
    """Base alone and both residuals on nominal and drop, train objects, 2 episodes each."""
    out = tmp_path_factory.mktemp("grid")
    tasks = make_tasks(BASE, [None, *residuals], ["nominal", "drop"], ["train"], 2)
    summary = evaluate(tasks, out, executor="serial", progress=False)
    return out, tasks, summary, read_jsonl(out / "episodes.jsonl")


# -- the task grid -----------------------------------------------------------------------------


def test_make_tasks_lists_every_method_suite_split_and_episode_exactly_once(residuals):
    methods = [None, residuals[0]]
    tasks = make_tasks(BASE, methods, ["nominal", "drop"], ["train", "heldout"], 3)
    cells = [(t.residual, t.suite, t.objects, t.index) for t in tasks]
    expected = product(methods, ["nominal", "drop"], ["train", "heldout"], range(3))
    assert len(cells) == 2 * 2 * 2 * 3
    assert sorted(cells, key=str) == sorted(expected, key=str)
    assert all(t.base == BASE and t.master_seed == 0 for t in tasks)


def test_episode_seeds_depend_only_on_master_seed_suite_split_and_index(residuals):
    suites, splits = ["nominal", "drop"], ["train", "heldout"]
    tasks = make_tasks(BASE, [None, residuals[0]], suites, splits, 3, master_seed=7)
    other_base = make_tasks("scripted", [None], suites, splits, 3, master_seed=7)
    seeds: dict[tuple, set] = {}
    for t in tasks + other_base:
        assert t.seed == episode_seed(7, t.suite_name, t.objects, t.index)
        seeds.setdefault((t.suite_name, t.objects, t.index), set()).add(t.seed)
    # Paired: base alone, base + residual and another base share each episode's seed ...
    assert all(len(s) == 1 for s in seeds.values())
    # ... and no two episodes of the grid share one.
    one_per_episode = [seed for (seed,) in seeds.values()]
    assert len(set(one_per_episode)) == len(seeds) == 2 * 2 * 3
    other_master = make_tasks(BASE, [None], suites, splits, 3, master_seed=8)
    assert not {t.seed for t in other_master} & {t.seed for t in tasks}


def test_a_suite_yaml_path_is_seeded_by_the_name_of_the_suite_it_holds(tmp_path):
    path = tmp_path / "my_drop.yaml"
    path.write_text("name: drop\nperturbations:\n  - type: drop\n    trigger: {phase: transport}\n")
    by_path = make_tasks(BASE, [None], [str(path)], ["train"], 2)
    by_name = make_tasks(BASE, [None], ["drop"], ["train"], 2)
    assert [(t.suite, t.suite_name) for t in by_path] == [(str(path), "drop")] * 2
    assert [t.seed for t in by_path] == [t.seed for t in by_name]


def test_make_tasks_rejects_an_unknown_base_naming_the_valid_choices():
    with pytest.raises(ValueError, match="valid choices") as err:
        make_tasks("no-such-base", [None], ["nominal"], ["train"], 1)
    assert "no-such-base" in str(err.value)
    assert all(name in str(err.value) for name in base_names())


def test_make_tasks_rejects_an_unknown_suite_naming_the_shipped_ones():
    with pytest.raises(ValueError, match="no-such-suite") as err:
        make_tasks(BASE, [None], ["nominal", "no-such-suite"], ["train"], 1)
    assert all(name in str(err.value) for name in suite_names())


@pytest.mark.parametrize("episodes", [0, -1])
def test_make_tasks_rejects_fewer_than_one_episode(episodes):
    with pytest.raises(ValueError, match="episodes"):
        make_tasks(BASE, [None], ["nominal"], ["train"], episodes)


def test_make_tasks_refuses_a_residual_trained_on_another_base(tmp_path):
    other = fake_residual(tmp_path / "other", base="scripted")
    with pytest.raises(ValueError, match="trained on base") as err:
        make_tasks(BASE, [None, str(other)], ["nominal"], ["train"], 1)
    assert "'scripted'" in str(err.value) and repr(BASE) in str(err.value)


def test_make_tasks_rejects_a_residual_path_that_does_not_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        make_tasks(BASE, [str(tmp_path / "missing")], ["nominal"], ["train"], 1)


def test_make_tasks_never_lists_the_same_episode_twice():
    try:
        tasks = make_tasks(BASE, [None, None], ["nominal"], ["train"], 2)
    except ValueError:
        return  # refusing a repeated method is as good as listing it once
    keys = [key_of(t) for t in tasks]
    assert len(keys) == len(set(keys))


# -- executors ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def executor_tasks():
    """The VLA-like scripted base (seeded errors and latency) on two suites and splits."""
    return make_tasks("scripted", [None], ["nominal", "drop"], ["train", "heldout"], 1)


@pytest.fixture(scope="module")
def serial_records(executor_tasks):
    return by_cell_and_seed(list(execute(executor_tasks, "serial")))


def test_serial_and_local_executors_give_identical_records(executor_tasks, serial_records):
    local = by_cell_and_seed(list(execute(executor_tasks, "local", workers=2)))
    assert len(serial_records) == len(executor_tasks)
    assert local == serial_records


def test_ray_executor_gives_the_same_records_as_serial(executor_tasks, serial_records, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a local instance, never a cluster
    tasks = [t for t in executor_tasks if t.objects == "train"]  # one episode of each suite
    try:
        records = by_cell_and_seed(list(execute(tasks, "ray", workers=2)))
    finally:
        ray.shutdown()
    expected = [r for r in serial_records if r["objects"] == "train"]
    assert len(records) == 2
    assert records == expected


def test_execute_rejects_an_unknown_executor_and_fewer_than_one_worker(executor_tasks):
    with pytest.raises(ValueError, match="valid choices: local, serial, ray"):
        execute(executor_tasks, "threads")
    with pytest.raises(ValueError, match="workers"):
        execute(executor_tasks, "local", workers=0)


# -- records -----------------------------------------------------------------------------------


def test_every_record_carries_its_master_seed_index_versions_and_commit(grid):
    _, tasks, _, records = grid
    assert len(records) == len(tasks) == 12
    for r in records:
        extra = r.extra
        assert extra["master_seed"] == 0
        assert r.seed == episode_seed(0, r.suite, r.objects, extra["episode_index"])
        versions = extra["versions"]
        for package in ("residual-bench", "gymnasium", "pybullet", "numpy", "torch"):
            assert versions[package] == metadata.version(package)
        commit = extra["git_commit"]
        assert commit is None or re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", commit)
        assert isinstance(r.env_spec_hash, str) and r.env_spec_hash


def test_records_of_one_suite_share_an_env_spec_hash_that_other_suites_do_not(grid):
    _, _, _, records = grid
    hashes: dict[str, set] = {}
    for r in records:
        hashes.setdefault(r.suite, set()).add(r.env_spec_hash)
    assert hashes.keys() == {"nominal", "drop"}
    assert len(hashes["nominal"]) == len(hashes["drop"]) == 1
    assert hashes["nominal"] != hashes["drop"]


def test_every_method_is_evaluated_on_the_same_episode_seeds(grid):
    _, _, _, records = grid
    seeds: dict[tuple, list] = {}
    for r in records:
        method = (r.residual, r.extra.get("train_seed"))
        seeds.setdefault(method, []).append((r.suite, r.objects, r.seed))
    assert len(seeds) == 3
    first, *others = (sorted(s) for s in seeds.values())
    assert all(other == first for other in others)


def test_residual_records_name_their_checkpoint_and_training_seed(grid, residuals):
    _, _, _, records = grid
    for r in records:
        if r.residual is None:
            assert "residual_path" not in r.extra and "train_seed" not in r.extra
            assert r.mean_abs_residual_ratio is None
        else:
            assert r.residual == "tiny"
            seed = r.extra["train_seed"]
            assert r.extra["residual_path"] == residuals[[3, 4].index(seed)]
    assert sum(r.residual is not None for r in records) == 8


def test_rerunning_a_record_from_its_task_reproduces_the_episode(grid):
    _, _, _, records = grid
    # Second episodes, in reverse: each one ran after another episode of its cell, and now
    # runs after an episode of another cell (a freshly built env).
    chosen = [r for r in records if r.extra["episode_index"] == 1][::-1]
    assert len(chosen) == 6
    for record in chosen:
        again = run_task(task_of(record))
        assert again["final_state_hash"] == record.final_state_hash
        assert again["success"] == record.success
        assert plain(again) == plain(record.to_dict())


def test_task_of_refuses_a_record_not_written_by_evaluate(grid):
    _, _, _, records = grid
    data = records[0].to_dict()
    del data["extra"]["episode_index"]
    with pytest.raises(ValueError, match="episode_index"):
        task_of(EpisodeRecord.from_dict(data))


def test_residual_records_report_a_mean_residual_ratio_between_0_and_1(grid):
    _, _, _, records = grid
    ratios = [r.mean_abs_residual_ratio for r in records if r.residual is not None]
    assert ratios and all(ratio is not None and 0.0 <= ratio <= 1.0 for ratio in ratios)


# -- summary -----------------------------------------------------------------------------------


def test_summary_has_one_cell_per_method_training_seed_suite_and_split(grid):
    _, _, summary, records = grid
    cells = {
        (c["base"], c["residual"], c["train_seed"], c["suite"], c["objects"]): c
        for c in summary["cells"]
    }
    expected = {
        (BASE, residual, seed, suite, "train")
        for residual, seed in [(None, None), ("tiny", 3), ("tiny", 4)]
        for suite in ("nominal", "drop")
    }
    assert len(summary["cells"]) == len(cells) == 6
    assert cells.keys() == expected
    for key, cell in cells.items():
        mine = [
            r
            for r in records
            if (r.base, r.residual, r.extra.get("train_seed"), r.suite, r.objects) == key
        ]
        k = sum(r.success for r in mine)
        assert cell["n_episodes"] == 2
        rate = cell["success_rate"]
        assert (rate["k"], rate["n"]) == (k, 2)
        assert rate["rate"] == pytest.approx(k / 2)
        assert rate["ci"][0] <= rate["rate"] <= rate["ci"][1]


def test_summary_on_disk_is_the_returned_summary_and_counts_every_episode(grid):
    out, tasks, summary, _ = grid
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(summary))
    assert summary["run"]["episodes"] == len(tasks)
    assert summary["run"]["executor"] == "serial"


# -- resuming ----------------------------------------------------------------------------------


@pytest.fixture
def small_tasks():
    return make_tasks(BASE, [None], ["nominal"], ["train"], 3)


def keys_on_disk(path: Path) -> list[tuple]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every line must be complete
        return [record_key(r) for r in read_jsonl(path)]


def test_resume_runs_only_the_missing_episodes_and_repeats_none(tmp_path, small_tasks):
    evaluate(small_tasks[:1], tmp_path, executor="serial", progress=False)
    first_line = (tmp_path / "episodes.jsonl").read_text().splitlines()[0]
    summary = evaluate(small_tasks, tmp_path, executor="serial", resume=True, progress=False)
    lines = (tmp_path / "episodes.jsonl").read_text().splitlines()
    keys = keys_on_disk(tmp_path / "episodes.jsonl")
    assert len(keys) == len(set(keys)) == 3
    assert set(keys) == {key_of(t) for t in small_tasks}
    assert lines[0] == first_line  # the finished episode was kept, not re-run
    assert summary["run"]["episodes"] == 3
    assert summary["cells"][0]["n_episodes"] == 3


def test_resume_on_a_finished_evaluation_adds_nothing_and_keeps_its_summary(
    tmp_path, small_tasks, monkeypatch
):
    first = evaluate(small_tasks, tmp_path, executor="serial", progress=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    # A later commit re-running it must not restamp the summary of episodes it did not run.
    monkeypatch.setattr(
        "residual_bench.eval.runner.run_provenance", lambda: {"git_commit": "a later commit"}
    )
    again = evaluate(small_tasks, tmp_path, executor="serial", resume=True, progress=False)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert again == first


def test_evaluating_into_a_directory_with_results_without_resume_is_refused(tmp_path, small_tasks):
    evaluate(small_tasks[:1], tmp_path, executor="serial", progress=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(FileExistsError, match="--resume"):
        evaluate(small_tasks, tmp_path, executor="serial", progress=False)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_truncated_last_line_is_dropped_and_its_episode_rerun_on_resume(tmp_path, small_tasks):
    path = tmp_path / "episodes.jsonl"
    evaluate(small_tasks[:2], tmp_path, executor="serial", progress=False)
    first, second = path.read_text().splitlines()
    path.write_text(first + "\n" + second[: len(second) // 2])  # a writer killed mid-line
    with pytest.warns(UserWarning, match="truncated"):
        evaluate(small_tasks, tmp_path, executor="serial", resume=True, progress=False)
    keys = keys_on_disk(path)
    assert len(keys) == len(set(keys)) == 3
    assert set(keys) == {key_of(t) for t in small_tasks}
    lines = path.read_text().splitlines()
    assert lines[0] == first
    rerun = [json.loads(line) for line in lines if json.loads(line)["seed"] == small_tasks[1].seed]
    assert len(rerun) == 1
    assert plain(rerun[0]) == plain(json.loads(second))


# -- training seeds on the command line --------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "seeds"),
    [
        (["0", "1", "2"], [0, 1, 2]),
        (["0-2"], [0, 1, 2]),
        (["3"], [3]),
        (["0-1", "5"], [0, 1, 5]),
        (["2-2"], [2]),
    ],
)
def test_parse_seeds_reads_lists_and_ranges(values, seeds):
    assert parse_seeds(values) == seeds


@pytest.mark.parametrize(
    "values", [["a"], ["1", "x"], ["1-x"], ["0-1-2"], ["-1"], ["2-0"], [], ["1.5"]]
)
def test_parse_seeds_rejects_garbage_naming_the_option(values):
    with pytest.raises(ValueError, match="--seeds"):
        parse_seeds(values)
