"""The residuals shipped with the package: ``bench run`` evaluates them without training.

Each one says what it was trained on (base, features, alpha, seed), loads through the public
loader, and corrects its base within alpha; ``bench run`` picks them up instead of training.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from residual_bench.eval.episode_tasks import make_tasks
from residual_bench.eval.runner import run_task
from residual_bench.protocol import Protocol, resolve_residuals
from residual_bench.residual import make_residual_env
from residual_bench.residual.checkpoint import (
    SHIPPED_PREFIX,
    load_residual,
    residual_location,
    shipped_name,
    shipped_residual,
    trained_env_id,
)
from residual_bench.residual.config import load_config

SEEDS = (0, 1, 2)


def shipped_dirs() -> list[Path]:
    root = residual_location(f"{SHIPPED_PREFIX}any").parent
    return sorted(p for p in root.iterdir() if (p / "residual.json").is_file())


@pytest.mark.parametrize("base", ["scripted", "bc"])
def test_the_sac_residual_is_shipped_for_three_training_seeds(base):
    for seed in SEEDS:
        assert shipped_residual(base, "sac", seed) is not None, f"{base} seed {seed} missing"
    assert shipped_residual(base, "sac", 99) is None


@pytest.mark.parametrize("path", shipped_dirs(), ids=lambda p: p.name)
def test_a_shipped_residual_says_what_it_was_trained_on(path):
    residual = load_residual(path)
    algo = residual.metadata["algo"]
    task = trained_env_id(residual.metadata)
    assert path.name == shipped_name(residual.base, algo, residual.train_seed, task)
    config = load_config(algo)
    assert residual.features == config.features == "objects"
    assert residual.alpha == config.alpha, "shipped residual and shipped config disagree"
    shipped_config = json.loads(json.dumps(config.to_dict()))  # as residual.json holds it
    assert residual.metadata["config"] == shipped_config, f"{path.name} is not {algo}.yaml's"
    assert residual.metadata["train_steps"] <= 300_000
    assert (path / "policy.safetensors").stat().st_size < 1_000_000


def test_a_shipped_residual_corrects_its_base_within_alpha():
    residual = load_residual(shipped_residual("scripted", "sac", 0))
    env = make_residual_env("scripted", residual.features, residual.alpha, suite="mixed")
    obs, _ = env.reset(seed=4)
    applied = []
    for _ in range(40):
        obs, _, _, _, info = env.step(residual.act(obs))
        applied.append(info["residual_action"])
    env.close()
    applied = np.array(applied)
    assert np.all(np.abs(applied) <= np.array(residual.alpha)[[0, 0, 0, 1, 1, 1, 2]] + 1e-6)
    assert np.any(applied != 0.0), "the shipped residual never corrects anything"


def test_bench_run_uses_the_shipped_residuals_instead_of_training(tmp_path):
    paths = resolve_residuals("scripted", "sac", Protocol(seeds=list(SEEDS)), tmp_path)
    assert paths == [shipped_residual("scripted", "sac", s) for s in SEEDS]
    assert not (tmp_path / "train").exists(), "it trained although residuals are shipped"


def test_records_name_a_shipped_residual_the_same_on_every_machine():
    ref = shipped_residual("scripted", "sac", 0)
    assert ref == "shipped:scripted-sac-seed0"
    (task,) = make_tasks("scripted", [ref], ["nominal"], ["heldout"], episodes=1)
    record = run_task(task)
    assert record["extra"]["residual_path"] == ref
    assert record["residual"] == load_residual(ref).name


def test_a_residual_of_another_task_is_shipped_under_the_task_s_scene_name():
    assert shipped_name("scripted", "sac", 0, "ResidualPickPlace-v0") == "scripted-sac-seed0"
    assert shipped_name("scripted", "sac", 0, "ResidualPickPlace-v1") == "scripted-sac-seed0"
    assert shipped_name("scripted", "sac", 1, "ResidualStack-v0") == "stack-scripted-sac-seed1"
    assert shipped_name("bc", "tqc", 2, "ResidualPush-v0") == "push-bc-tqc-seed2"


@pytest.mark.parametrize("ref", ["shipped:", "shipped:../bc_base.pt", "shipped:a/b"])
def test_a_malformed_shipped_reference_is_refused(ref):
    with pytest.raises(ValueError, match=re.escape("shipped:[<scene>-]<base>-<algo>-seed<S>")):
        residual_location(ref)
