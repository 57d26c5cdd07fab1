"""Seeding: an episode is a pure function of its seed and the actions taken.

An episode's fingerprint hashes every observation, reward, flag, the simulated time and
``env.unwrapped.state_hash()`` at every step. The same seed must give the same fingerprint
in one process, in other processes, and whatever episodes ran before it in the same env.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from residual_bench.policies.expert import ScriptedExpert

ENV_ID = "ResidualPickPlace-v1"
SHORT_STATE = {"obs_mode": "state", "scene_overrides": {"task": {"episode_seconds": 1.5}}}
SHORT_SEG = {
    "obs_mode": "rgb+seg",
    "image_size": 48,
    "scene_overrides": {"task": {"episode_seconds": 0.5}},
}


def _update(h, obs: dict, *extra) -> None:
    for key in sorted(obs):
        h.update(key.encode())
        h.update(np.ascontiguousarray(obs[key]).tobytes())
    h.update(repr(extra).encode())


def play_episode(env, seed: int | None, action_seed: int | None = None) -> tuple[str, int]:
    """Play one whole episode of seeded random actions.

    Returns the hash of everything it showed, and ``info["seed"]`` from its reset. With
    ``seed=None`` the env draws the seed and the actions are seeded by the reported seed,
    so the episode can be replayed from that one number.
    """
    sim = env.unwrapped
    h = hashlib.sha256()
    obs, info = env.reset(seed=seed)
    reported = info["seed"]
    rng = np.random.default_rng(reported if action_seed is None else action_seed)
    _update(h, obs, sim.state_hash(), info["instruction"], info["objects"], info["time"])
    while True:
        action = rng.uniform(-1.0, 1.0, 7).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        _update(h, obs, sim.state_hash(), reward, terminated, truncated, info["time"])
        if terminated or truncated:
            return h.hexdigest(), reported


def episode_fingerprint(env, seed: int, action_seed: int | None = None) -> str:
    """The hash of a whole episode of seeded random actions (see :func:`play_episode`)."""
    return play_episode(env, seed, action_seed)[0]


def expert_fingerprint(env, seed: int) -> tuple[str, bool]:
    """An episode driven by the expert plus seeded noise: grasps, contacts, a placement."""
    sim, expert = env.unwrapped, ScriptedExpert()
    h = hashlib.sha256()
    obs, info = env.reset(seed=seed)
    expert.reset()
    rng = np.random.default_rng(seed)
    while True:
        action = expert.act(env) + rng.normal(0.0, 0.2, 7).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        _update(h, obs, sim.state_hash(), reward, info["is_grasped"], info["success"])
        if terminated or truncated:
            return h.hexdigest(), info["success"]


def fingerprint_in_subprocess(make_kwargs: dict, seed: int, hash_seed: str) -> str:
    """Run :func:`episode_fingerprint` in a fresh Python with its own ``PYTHONHASHSEED``."""
    code = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import gymnasium as gym\n"
        "import residual_bench\n"
        "from test_determinism import episode_fingerprint\n"
        f"env = gym.make('{ENV_ID}', **json.loads({json.dumps(make_kwargs)!r}))\n"
        f"print('RESULT', episode_fingerprint(env, {seed}))\n"
        "env.close()\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, result.stdout
    return lines[-1].removeprefix("RESULT ")


@pytest.mark.parametrize("kwargs", [SHORT_STATE, SHORT_SEG], ids=["state", "rgb+seg"])
def test_same_seed_gives_identical_trajectory_twice_in_one_process(make_env, kwargs):
    env = make_env(**kwargs)
    first = episode_fingerprint(env, seed=11)
    again_same_env = episode_fingerprint(env, seed=11)
    other_env = episode_fingerprint(make_env(**kwargs), seed=11)
    assert first == again_same_env == other_env


@pytest.mark.parametrize("kwargs", [SHORT_STATE, SHORT_SEG], ids=["state", "rgb+seg"])
def test_same_seed_gives_identical_trajectory_in_another_process(make_env, kwargs):
    here = episode_fingerprint(make_env(**kwargs), seed=4)
    there = fingerprint_in_subprocess(kwargs, 4, hash_seed="1")
    elsewhere = fingerprint_in_subprocess(kwargs, 4, hash_seed="2")
    assert here == there == elsewhere


@pytest.mark.parametrize("kwargs", [SHORT_STATE, SHORT_SEG], ids=["state", "rgb+seg"])
def test_episode_does_not_depend_on_the_episodes_played_before_it(make_env, kwargs):
    env = make_env(**kwargs)
    in_order = {seed: episode_fingerprint(env, seed) for seed in (1, 2, 3)}
    shuffled = {seed: episode_fingerprint(env, seed) for seed in (3, 1, 2)}
    assert in_order == shuffled
    assert len(set(in_order.values())) == 3


def test_expert_episode_with_contacts_replays_exactly_after_other_episodes(make_env):
    """Grasping and placing exercise contacts, where solver history would show up."""
    kwargs = {"scene_overrides": {"task": {"episode_seconds": 5.0}}}
    fresh = {seed: expert_fingerprint(make_env(**kwargs), seed) for seed in (0, 1)}
    reused = make_env(**kwargs)
    replayed = {seed: expert_fingerprint(reused, seed) for seed in (1, 0, 1)}
    assert replayed == fresh
    assert any(success for _, success in fresh.values()), "no episode reached a placement"


@pytest.mark.parametrize("kwargs", [SHORT_STATE, SHORT_SEG], ids=["state", "rgb+seg"])
def test_different_seeds_give_different_episodes(make_env, kwargs):
    env = make_env(**kwargs)
    fingerprints = {episode_fingerprint(env, seed, action_seed=0) for seed in (1, 2, 3)}
    assert len(fingerprints) == 3


def test_different_seeds_give_different_scenes(env):
    scenes = set()
    for seed in range(5):
        obs, info = env.reset(seed=seed)
        scenes.add((tuple(info["objects"]), obs["goal"].tobytes(), info["instruction"]))
    assert len(scenes) == 5


def test_reset_without_a_seed_reports_a_seed_that_replays_the_episode(make_env):
    env = make_env(**SHORT_STATE)
    fingerprint, drawn = play_episode(env, seed=None)
    assert isinstance(drawn, int)
    assert play_episode(env, seed=drawn) == (fingerprint, drawn)
    assert play_episode(make_env(**SHORT_STATE), seed=drawn) == (fingerprint, drawn)


def test_unseeded_resets_draw_a_new_seed_each_episode(env):
    seeds = [env.reset()[1]["seed"] for _ in range(4)]
    assert len(set(seeds)) == 4


def test_unseeded_resets_after_a_seeded_one_are_reproducible(make_env):
    drawn = []
    for _ in range(2):
        env = make_env()
        env.reset(seed=21)
        drawn.append([env.reset()[1]["seed"] for _ in range(3)])
    assert drawn[0] == drawn[1]


def test_reset_info_seed_is_the_seed_that_was_given(env):
    for seed in (0, 7, 2**40 + 3):
        _, info = env.reset(seed=seed)
        assert info["seed"] == seed


def test_physics_does_not_depend_on_the_observation_mode(make_env, actions):
    trajectories = {}
    for obs_mode in ("state", "rgb", "rgb+seg"):
        env = make_env(obs_mode=obs_mode, image_size=48)
        env.reset(seed=9)
        hashes = [env.unwrapped.state_hash()]
        for action in actions(9, 15):
            env.step(action)
            hashes.append(env.unwrapped.state_hash())
        trajectories[obs_mode] = hashes
    assert trajectories["state"] == trajectories["rgb"] == trajectories["rgb+seg"]


def test_gym_make_id_and_direct_construction_give_the_same_episode(make_env):
    from residual_bench.task_env import ResidualTaskEnv

    direct = ResidualTaskEnv("ResidualPickPlace-v1", **SHORT_STATE)
    try:
        assert episode_fingerprint(direct, 5) == episode_fingerprint(make_env(**SHORT_STATE), 5)
    finally:
        direct.close()


def test_fingerprint_helper_is_sensitive_to_the_actions(make_env):
    """Guards the other tests: a fingerprint that ignored the actions would prove nothing."""
    env = make_env(**SHORT_STATE)
    assert episode_fingerprint(env, 1, action_seed=1) != episode_fingerprint(env, 1, action_seed=2)


def test_two_envs_stepped_in_lockstep_do_not_disturb_each_other(make_env, actions):
    def run(envs_and_seeds):
        hashes = {}
        for env, seed in envs_and_seeds:
            env.reset(seed=seed)
        for action in actions(0, 10):
            for env, seed in envs_and_seeds:
                env.step(action)
                hashes.setdefault(seed, []).append(env.unwrapped.state_hash())
        return hashes

    alone = run([(make_env(), 3)])
    together = run([(make_env(), 3), (make_env(), 4)])
    assert together[3] == alone[3]
    assert together[4] != together[3]
