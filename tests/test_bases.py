"""The registered base policies, and :class:`BasePolicyWrapper`, which runs one behind the env.

Every registered name builds a controller that drives a fresh env with actions in the box.
The two bases behind the :class:`BasePolicy` interface honour their spec: ``scripted`` (5 Hz
chunks, jittered latency, seeded per-episode errors) is reproducible from the episode seed,
``scripted-expert`` (no errors, control rate) solves the task. While the env reports the base
stalled, every base holds its last action. The wrapper's action is a correction added to the
base's action: zeros reproduce the base-alone rollout bit for bit.
"""

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded

from residual_bench.policies.base import ActionChunk, BasePolicy, check_chunk
from residual_bench.policies.registry import base_names, get_base, make_controller
from residual_bench.policies.scripted_vla import NO_ERRORS, ScriptedVLABase
from residual_bench.policies.wrapper import BasePolicyWrapper

# Bases whose weights live outside the package (VLAs) are tested on tiny checkpoints elsewhere.
SELF_CONTAINED = [n for n in base_names() if get_base(n).self_contained]
MOVING = [n for n in SELF_CONTAINED if n != "zero"]  # `zero` stands still by definition

BASE_POLICIES = ("scripted", "scripted-expert")  # the registered bases with a `.policy`
SHORT = {"scene_overrides": {"task": {"episode_seconds": 6.0}}}
STALL_SUITE = {
    "name": "stall",
    "perturbations": [
        {"type": "latency", "trigger": {"time": [0.5, 0.5]}, "duration": [0.5, 0.5]},
    ],
}
ZERO = np.zeros(7)


def base_alone(env: gym.Env, name: str, seed: int, steps: int) -> tuple[np.ndarray, list[dict]]:
    """The rollout loop of ``run_episodes``: actions (steps, 7) and the step infos."""
    controller = make_controller(name, env)
    obs, info = env.reset(seed=seed)
    controller.reset(info)
    actions, infos = [], []
    for _ in range(steps):
        action, _ = controller.act(obs, info)
        actions.append(np.array(action, dtype=np.float64))
        obs, _, _, _, info = env.step(action)
        infos.append(info)
    return np.array(actions), infos


def wrapped(
    env: BasePolicyWrapper, seed: int, corrections: np.ndarray
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Reset ``env`` with ``seed`` and step it with each correction; reset info, step infos."""
    _, reset_info = env.reset(seed=seed)
    infos = []
    for correction in corrections:
        *_, info = env.step(correction)
        infos.append(info)
    return reset_info, infos


def record_chunks(controller: Any) -> list[ActionChunk]:
    """Make ``controller``'s policy record every chunk it answers with; returns the list."""
    policy, chunks = controller.policy, []
    act = policy.act

    def recording_act(obs: dict, instruction: str) -> ActionChunk:
        chunk = act(obs, instruction)
        chunks.append(chunk)
        return chunk

    policy.act = recording_act  # the executor calls policy.act, so this sees every chunk
    return chunks


# -- every registered base ---------------------------------------------------------------------


@pytest.mark.parametrize("name", MOVING)
def test_every_registered_base_drives_a_fresh_env_with_finite_actions_in_the_box(make_env, name):
    env = make_env(**SHORT, **get_base(name).env_kwargs)
    actions, infos = base_alone(env, name, seed=0, steps=12)
    assert actions.shape == (12, 7)
    assert np.all(np.isfinite(actions))
    assert np.all(np.abs(actions) <= 1.0)
    assert any(np.any(a[:6] != 0.0) for a in actions), f"{name} never moves"


def test_the_zero_base_is_no_base_at_all(make_env):
    actions, _ = base_alone(make_env(**SHORT), "zero", seed=0, steps=12)
    np.testing.assert_array_equal(actions, np.zeros((12, 7)))


def test_the_two_bases_behind_the_base_policy_interface_are_registered():
    assert set(BASE_POLICIES) <= set(base_names())


# -- the BasePolicy bases honour their spec -----------------------------------------------------


@pytest.mark.parametrize("name", BASE_POLICIES)
def test_a_base_policy_is_a_base_policy_and_every_chunk_matches_its_spec(make_env, name):
    env = make_env(**SHORT)
    controller = make_controller(name, env)
    policy = controller.policy
    assert isinstance(policy, BasePolicy)
    assert policy.spec.name == name
    chunks = record_chunks(controller)
    obs, info = env.reset(seed=3)
    controller.reset(info)
    for _ in range(40):
        action, _ = controller.act(obs, info)
        obs, _, _, _, info = env.step(action)
    # 2 s of a receding executor: at least one request per chunk's worth of time.
    assert len(chunks) >= 2.0 * policy.spec.control_hz / policy.spec.chunk_len
    for chunk in chunks:
        check_chunk(policy.spec, chunk)
        assert chunk.actions.shape == (policy.spec.chunk_len, 7)
        assert chunk.actions.dtype == np.float32


def test_scripted_is_a_slow_chunked_base_with_latency_jitter_and_errors(make_env):
    controller = make_controller("scripted", make_env())
    spec = controller.policy.spec
    assert spec.control_hz == 5.0 and spec.chunk_len == 4
    assert controller.executor.latency.jitter_s > 0
    assert controller.policy.error_model != NO_ERRORS


def test_scripted_expert_runs_at_the_control_rate_without_errors(make_env):
    env = make_env()
    controller = make_controller("scripted-expert", env)
    spec = controller.policy.spec
    assert spec.control_hz == env.unwrapped.control_hz and spec.chunk_len == 1
    assert controller.executor.latency is None
    assert controller.policy.error_model == NO_ERRORS


def test_scripted_gives_the_same_actions_for_the_same_seed_and_others_for_another(make_env):
    first, _ = base_alone(make_env(**SHORT), "scripted", seed=7, steps=40)
    again, _ = base_alone(make_env(**SHORT), "scripted", seed=7, steps=40)
    other, _ = base_alone(make_env(**SHORT), "scripted", seed=8, steps=40)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def episode_errors(env: gym.Env, policy: ScriptedVLABase, seed: int) -> np.ndarray:
    """The per-episode errors ``policy`` draws for ``seed``, as one flat vector."""
    _, info = env.reset(seed=seed)
    policy.reset(info["instruction"], info["seed"])
    e = policy.expert.errors
    return np.array(
        [*e.object_offset, *e.goal_offset, e.yaw_offset, e.grasp_height, e.grip_command]
    )


def test_scripted_draws_its_per_episode_errors_from_the_seed(make_env):
    env = make_env()
    policy = make_controller("scripted", env).policy
    e0, e0_again, e1 = (episode_errors(env, policy, seed) for seed in (0, 0, 1))
    np.testing.assert_array_equal(e0, e0_again)
    drawn = [0, 1, 3, 4, 6, 7, 8]  # all but the offsets' z, which stay 0 (horizontal errors)
    assert np.all(e0[drawn] != e1[drawn]), "every error should be drawn anew for another seed"
    assert np.all(e0[drawn] != 0.0) and np.all(e0[[2, 5]] == 0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_errors_gives_zero_offsets_and_a_firm_grip(make_env, seed):
    env = make_env()
    errors = episode_errors(env, ScriptedVLABase(env, NO_ERRORS), seed)
    np.testing.assert_array_equal(errors[:8], np.zeros(8))  # offsets, yaw, grasp height
    assert errors[8] == -1.0  # grip command: full force


@pytest.mark.parametrize("seed", [0, 1])
def test_scripted_expert_alone_solves_nominal_episodes(make_env, seed):
    env = BasePolicyWrapper(make_env(**SHORT), "scripted-expert")
    env.reset(seed=seed)
    done = False
    while not done:
        *_, terminated, truncated, info = env.step(ZERO)
        done = terminated or truncated
    assert info["success"], f"seed {seed}: not on the plate after {info['time']:.1f} s"


# -- stalls ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SELF_CONTAINED)
def test_every_base_holds_its_last_action_while_the_env_reports_it_stalled(make_env, name):
    env = BasePolicyWrapper(make_env(suite=STALL_SUITE, **SHORT, **get_base(name).env_kwargs), name)
    reset_info, infos = wrapped(env, seed=0, corrections=[ZERO] * 40)
    before = [reset_info, *infos[:-1]]  # what the base saw when it chose step k's action
    stalled = [k for k, info in enumerate(before) if info["base_stalled"]]
    assert len(stalled) >= 9, "the 0.5 s stall should cover about 10 steps at 20 Hz"
    assert stalled == list(range(stalled[0], stalled[-1] + 1))
    for k in stalled:
        assert infos[k]["base_held"], f"step {k}: the base acted during the stall"
        assert not infos[k]["base_fresh"]
        np.testing.assert_array_equal(infos[k]["base_action"], infos[k - 1]["base_action"])
    after = infos[stalled[-1] + 1 :]
    assert any(not info["base_held"] for info in after), "the base never came back"


# -- BasePolicyWrapper ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["scripted", "expert"])
def test_a_zero_correction_reproduces_the_base_alone_rollout_exactly(make_env, name):
    alone_env = make_env(**SHORT)
    actions, _ = base_alone(alone_env, name, seed=5, steps=60)
    env = BasePolicyWrapper(make_env(**SHORT), name)
    _, infos = wrapped(env, seed=5, corrections=[ZERO] * 60)
    np.testing.assert_array_equal([i["executed_action"] for i in infos], actions)
    np.testing.assert_array_equal([i["base_action"] for i in infos], actions)
    assert env.unwrapped.state_hash() == alone_env.unwrapped.state_hash()


def test_a_correction_shifts_the_executed_action_by_exactly_that_amount(make_env):
    rng = np.random.default_rng(0)
    corrections = rng.uniform(-0.2, 0.2, (30, 7))
    env = BasePolicyWrapper(make_env(**SHORT), "scripted")
    _, infos = wrapped(env, seed=2, corrections=corrections)
    for correction, info in zip(corrections, infos, strict=True):
        base, executed = info["base_action"], info["executed_action"]
        np.testing.assert_array_equal(executed, np.clip(base + correction, -1.0, 1.0))
        inside = np.abs(base + correction) <= 1.0
        np.testing.assert_allclose(executed[inside] - base[inside], correction[inside], atol=1e-12)
    # The first base action comes before any correction could act: it is the base's alone.
    _, zero_infos = wrapped(env, seed=2, corrections=[ZERO])
    np.testing.assert_array_equal(infos[0]["base_action"], zero_infos[0]["base_action"])
    # Later the corrected motion feeds back into what the base sees.
    assert not np.array_equal(infos[-1]["base_action"], infos[0]["base_action"])


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_the_executed_action_is_clipped_to_the_box(make_env, sign):
    env = BasePolicyWrapper(make_env(**SHORT), "scripted-expert")
    _, infos = wrapped(env, seed=0, corrections=[sign * np.ones(7)] * 5)
    for info in infos:
        executed = info["executed_action"]
        assert np.all(np.abs(executed) <= 1.0)
        np.testing.assert_array_equal(executed, np.clip(info["base_action"] + sign, -1.0, 1.0))
    # The base starts open (+1): opening further stays at +1, closing by 1 lands at 0.
    assert infos[0]["executed_action"][6] == (1.0 if sign > 0 else 0.0)


def test_a_correction_outside_the_box_counts_as_its_bound_like_an_env_action(make_env):
    env = BasePolicyWrapper(make_env(**SHORT), "scripted-expert")
    _, big = wrapped(env, seed=0, corrections=[np.full(7, -3.0)] * 3)
    _, bound = wrapped(env, seed=0, corrections=[np.full(7, -1.0)] * 3)
    for a, b in zip(big, bound, strict=True):
        np.testing.assert_array_equal(a["executed_action"], b["executed_action"])


@pytest.mark.parametrize(
    "correction, problem",
    [
        (np.zeros(6), r"correction must have shape \(7,\)"),
        (np.zeros((1, 7)), r"correction must have shape \(7,\)"),
        ([0.0] * 8, r"correction must have shape \(7,\)"),
        (np.array([0, 0, 0, np.nan, 0, 0, 0]), r"correction contains NaN or inf at index \[3\]"),
        (np.array([np.inf, 0, 0, 0, 0, 0, 0]), r"correction contains NaN or inf at index \[0\]"),
        (np.array(["0"] * 7), r"correction must be a real numeric array"),
        (None, r"correction must be a real numeric array"),
    ],
)
def test_a_bad_correction_is_refused_with_its_problem_and_the_env_is_not_stepped(
    make_env, correction, problem
):
    env = BasePolicyWrapper(make_env(**SHORT), "scripted")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=problem):
        env.step(correction)
    assert env.unwrapped.time == 0.0
    *_, info = env.step(ZERO)  # and the wrapper still works
    assert info["time"] == pytest.approx(env.unwrapped.dt)


def test_the_step_info_adds_the_base_and_executed_actions_to_the_env_info(make_env):
    env = BasePolicyWrapper(make_env(**SHORT), "scripted")
    reset_info, (info,) = wrapped(env, seed=0, corrections=[ZERO])
    assert "base_action" not in reset_info
    for key in ("base_action", "executed_action"):
        assert info[key].shape == (7,) and info[key].dtype == np.float64
    for key in ("base_fresh", "base_held", "base_action_age_s", "base_calls", "base_clipped"):
        assert key in info, key
    for key in ("success", "time", "instruction", "phase", "base_stalled", "new_events"):
        assert key in info, key
    # Before the first answer arrives (100-200 ms latency) the base holds still and open.
    assert info["base_held"]
    np.testing.assert_array_equal(info["base_action"], [0, 0, 0, 0, 0, 0, 1])


def test_the_action_space_is_the_env_box(make_env):
    inner = make_env()
    env = BasePolicyWrapper(inner, "expert")
    assert env.action_space == inner.action_space
    assert env.action_space.contains(np.zeros(7, dtype=np.float32))
    assert env.observation_space == inner.observation_space


def test_a_controller_object_works_like_its_name(make_env):
    by_name = BasePolicyWrapper(make_env(**SHORT), "scripted")
    inner = make_env(**SHORT)
    by_object = BasePolicyWrapper(inner, make_controller("scripted", inner))
    assert by_object.base_name == by_name.base_name == "scripted"
    _, a = wrapped(by_name, seed=4, corrections=[ZERO] * 20)
    _, b = wrapped(by_object, seed=4, corrections=[ZERO] * 20)
    np.testing.assert_array_equal(
        [i["executed_action"] for i in a], [i["executed_action"] for i in b]
    )


def test_reset_restarts_the_base_so_an_episode_replays_exactly(make_env):
    env = BasePolicyWrapper(make_env(**SHORT), "scripted")
    _, first = wrapped(env, seed=9, corrections=[ZERO] * 30)
    wrapped(env, seed=10, corrections=[ZERO] * 30)
    _, again = wrapped(env, seed=9, corrections=[ZERO] * 30)
    np.testing.assert_array_equal(
        [i["executed_action"] for i in first], [i["executed_action"] for i in again]
    )
    assert [i["base_calls"] for i in first] == [i["base_calls"] for i in again]


def test_an_unknown_base_name_lists_the_valid_ones(make_env):
    with pytest.raises(ValueError, match="unknown base policy 'nope'.*scripted-expert"):
        BasePolicyWrapper(make_env(), "nope")


def test_a_base_that_is_neither_a_name_nor_a_controller_is_refused(make_env):
    with pytest.raises(TypeError, match="base"):
        BasePolicyWrapper(make_env(), 42)


def test_stepping_before_reset_is_refused(make_env):
    env = BasePolicyWrapper(make_env(), "scripted")
    with pytest.raises(ResetNeeded, match="reset"):
        env.step(ZERO)
