"""The base's plan: what a chunked base has already decided for the next steps, observed.

Specified here: the executor's ``planned_actions`` are the actions it then outputs when no new
answer arrives, in every mode, and asking for them changes nothing; controllers that decide
every step plan their current action; with ``base_plan_steps`` N the residual env's vector
ends with the next N planned actions and the age of the base's action, and is otherwise the
observation without it; bad N are refused by the env, the config and the loader of a trained
residual; a residual trained with a plan records it and acts with it.

The fake base encodes where each action came from: x = 0.1 * call index + 0.01 * row, and its
gripper is relative (-0.1 a row), so a chunk's conversion depends on the gripper command
being executed when it starts, as in a deployment.
"""

import json
import re

import numpy as np
import pytest
import yaml
from test_residual_training import tiny_config, train

from residual_bench.env_spec import SpecError
from residual_bench.policies.base import ActionChunk, PolicySpec
from residual_bench.policies.controller import ZeroController
from residual_bench.policies.executor import BaseUnavailableError, ChunkExecutor, LatencyModel
from residual_bench.policies.registry import make_controller
from residual_bench.residual import make_residual_env, observation_layout
from residual_bench.residual.checkpoint import load_residual, read_metadata
from residual_bench.residual.config import load_config
from residual_bench.sim.panda import POSITION_SCALE, ROTATION_SCALE

ENV_DT = 0.05  # 20 Hz
STILL_OPEN = [0, 0, 0, 0, 0, 0, 1.0]
PLAN = 8


class FailingPolicy:
    """A 5 Hz base with chunks of 4 that answers ``answers`` calls, then is down for good."""

    def __init__(self, answers: int) -> None:
        fraction = ENV_DT * 5.0  # undo the converter's time rescaling
        self.spec = PolicySpec(
            name="failing",
            control_hz=5.0,
            chunk_len=4,
            action_dim=7,
            action_repr="delta_ee_euler",
            gripper="relative",
            position_unit_m=POSITION_SCALE / fraction,
            rotation_unit_rad=ROTATION_SCALE / fraction,
            cameras={},
            needs_instruction=False,
            needs_state=True,
            normalization_key=None,
        )
        self.answers = answers

    def reset(self, instruction: str, seed: int | None) -> None:
        self.calls = 0
        self.rng = np.random.default_rng(seed)

    def act(self, obs: dict, instruction: str) -> ActionChunk:
        if self.calls >= self.answers:
            raise BaseUnavailableError("down")
        a = np.zeros((4, 7), dtype=np.float32)
        a[:, 0] = 0.1 * self.calls + 0.01 * np.arange(4)
        a[:, 1] = self.rng.uniform(-0.5, 0.5, 4)
        a[:, 6] = -0.1
        self.calls += 1
        return ActionChunk(a, {})


EXECUTORS = {
    "receding": dict(mode="receding", latency=LatencyModel(0.1, 0.1)),
    "ensemble": dict(mode="ensemble", latency=LatencyModel(0.1, 0.1)),
    "hold": dict(mode="hold", replan_every=1, latency=LatencyModel(0.1, 0.1)),
}


def executor(mode: str, answers: int = 4) -> ChunkExecutor:
    return ChunkExecutor(FailingPolicy(answers), ENV_DT, **EXECUTORS[mode])


def step(ex: ChunkExecutor, n: int) -> tuple[np.ndarray, dict]:
    t = n * ENV_DT
    return ex.step({"t": np.float32(t)}, t)


# -- the executor's plan -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", sorted(EXECUTORS))
def test_the_plan_is_what_the_executor_then_outputs_when_nothing_new_arrives(mode):
    ex = executor(mode)
    ex.reset("pick", seed=1)
    n, info = 0, {"base_errors": 0}
    while info["base_errors"] == 0:  # the base goes down only once its last answer is in
        _, info = step(ex, n)
        n += 1
    plan = ex.planned_actions(30)
    played = np.array([step(ex, n + j)[0] for j in range(30)])
    np.testing.assert_array_equal(plan, played)
    assert len({tuple(a) for a in played}) > 1  # rows of the chunks, not one held action
    np.testing.assert_array_equal(played[-1], played[-2])  # past the chunks: held


def test_in_hold_the_chunk_waiting_starts_in_the_plan_when_the_current_one_ends():
    ex = executor("hold")
    ex.reset("pick", seed=1)
    for n in range(9):  # the first chunk plays; the second has arrived and waits
        action, _ = step(ex, n)
    first_call = round(action[0] * 100) // 10
    calls = [round(a[0] * 100) // 10 for a in ex.planned_actions(16)]
    assert calls[0] == first_call and calls[-1] > first_call


@pytest.mark.parametrize("mode", sorted(EXECUTORS))
def test_asking_for_the_plan_changes_nothing(mode):
    plain, asked = executor(mode, answers=6), executor(mode, answers=6)
    plain.reset("pick", seed=2)
    asked.reset("pick", seed=2)
    for n in range(60):
        asked.planned_actions(16)
        expected, expected_info = step(plain, n)
        action, info = step(asked, n)
        np.testing.assert_array_equal(action, expected)
        assert info == expected_info


@pytest.mark.parametrize("mode", sorted(EXECUTORS))
def test_before_any_chunk_the_plan_is_the_held_action(mode):
    ex = executor(mode)
    ex.reset("pick", seed=0)
    np.testing.assert_array_equal(ex.planned_actions(3), [STILL_OPEN] * 3)
    step(ex, 0)  # asked, not answered yet: 100-200 ms of latency
    np.testing.assert_array_equal(ex.planned_actions(3), [STILL_OPEN] * 3)
    assert ex.planned_actions(0).shape == (0, 7)


@pytest.mark.parametrize("n_steps", [-1, 2.5, True])
def test_a_plan_of_a_bad_length_is_refused(n_steps):
    with pytest.raises(ValueError, match="n_steps"):
        executor("receding").planned_actions(n_steps)


def test_controllers_that_decide_every_step_plan_their_current_action(make_env):
    env = make_env()
    obs, info = env.reset(seed=0)
    expert = make_controller("expert", env)
    expert.reset(info)
    np.testing.assert_array_equal(expert.planned_actions(2), np.zeros((2, 7)))  # nothing yet
    action, _ = expert.act(obs, info)
    np.testing.assert_array_equal(expert.planned_actions(3), [action] * 3)
    np.testing.assert_array_equal(ZeroController().planned_actions(2), np.zeros((2, 7)))


# -- the residual env's observation ------------------------------------------------------------


@pytest.fixture
def planned_env():
    env = make_residual_env(
        "scripted", "privileged", 0.1, {"base_plan_steps": PLAN}, suite="nominal"
    )
    yield env
    env.close()


def test_the_plan_follows_the_features_and_holds_seven_numbers_a_step_and_the_age(planned_env):
    layout = observation_layout("privileged", PLAN)
    assert list(layout) == [*observation_layout("privileged"), "base_plan"]
    assert layout["base_plan"] == slice(20 + 7 + 12, 20 + 7 + 12 + 7 * PLAN + 1)
    assert planned_env.observation_space.shape == (20 + 7 + 12 + 57,)
    obs, _ = planned_env.reset(seed=0)
    assert obs.shape == (96,) and obs.dtype == np.float32
    assert observation_layout("privileged", 0) == observation_layout("privileged")


def test_the_plan_is_the_base_s_next_actions_and_the_age_that_of_its_current_one(planned_env):
    layout = observation_layout("privileged", PLAN)
    obs, _ = planned_env.reset(seed=0)
    previous_plan, checked = None, 0
    for _ in range(60):
        plan = obs[layout["base_plan"]]
        planned = planned_env.planned_base_actions(PLAN)
        np.testing.assert_array_equal(plan[:-1], planned.ravel().astype(np.float32))
        shown = obs[layout["base_action"]]
        obs, _, _, _, info = planned_env.step(np.zeros(7))
        # The step executed the base action the observation showed, and its info says how
        # old that action's observation was.
        np.testing.assert_array_equal(info["base_action"].astype(np.float32), shown)
        assert plan[-1] == np.float32(info["base_action_age_s"])
        # Unless a chunk arrived in time for it, that action was the first of the plan before.
        if previous_plan is not None and not info["base_fresh"]:
            np.testing.assert_array_equal(shown, previous_plan[:7])
            checked += 1
        previous_plan = plan
    assert checked > 30


def test_the_plan_is_appended_everything_before_it_is_the_observation_without_it(planned_env):
    plain = make_residual_env("scripted", "privileged", 0.1, suite="nominal")
    try:
        planned, _ = planned_env.reset(seed=3)
        expected, _ = plain.reset(seed=3)
        for _ in range(30):
            np.testing.assert_array_equal(planned[: expected.size], expected)
            planned, *_ = planned_env.step(np.full(7, 0.5))
            expected, *_ = plain.step(np.full(7, 0.5))
    finally:
        plain.close()


@pytest.mark.parametrize("value", [-1, 17, 2.5, "8"])
def test_a_bad_plan_length_is_refused_by_the_env_and_the_config(tmp_path, value):
    with pytest.raises(ValueError, match="base_plan_steps must be an integer from 0 to 16"):
        make_residual_env("scripted", "proprio", 0.1, {"base_plan_steps": value})
    path = tmp_path / "planned.yaml"
    path.write_text(yaml.safe_dump({"algo": "sac", "base_plan_steps": value}))
    with pytest.raises(SpecError, match=re.escape(f"{path}: base_plan_steps must be an integer")):
        load_config(path)


def test_configs_observe_no_plan_unless_they_say_so(tmp_path):
    assert load_config("sac").base_plan_steps == 0
    path = tmp_path / "planned.yaml"
    path.write_text(yaml.safe_dump({"algo": "sac", "base_plan_steps": 8}))
    assert load_config(path).base_plan_steps == 8
    assert list(load_config(path).to_dict())[-1] == "base_plan_steps"


# -- trained residuals -------------------------------------------------------------------------


def test_a_residual_whose_recorded_plan_does_not_fit_its_network_is_refused(tmp_path):
    source = read_metadata("shipped:scripted-sac-seed0")
    assert load_residual("shipped:scripted-sac-seed0").base_plan_steps == 0  # trained before
    target = tmp_path / "residual"
    target.mkdir()
    weights = load_residual("shipped:scripted-sac-seed0").path / "policy.safetensors"
    (target / "policy.safetensors").write_bytes(weights.read_bytes())
    (target / "residual.json").write_text(json.dumps({**source, "base_plan_steps": 8}))
    with pytest.raises(ValueError, match="base_plan_steps 8 give"):
        load_residual(target)
    (target / "residual.json").write_text(json.dumps({**source, "base_plan_steps": 17}))
    with pytest.raises(ValueError, match="base_plan_steps must be an integer"):
        load_residual(target)


def test_a_residual_trained_with_a_plan_records_it_and_acts_with_it(tmp_path):
    config = tiny_config("sac")
    config.base_plan_steps = 4
    train(config, tmp_path, steps=60, eval_every=0)
    meta = read_metadata(tmp_path / "residual")
    assert meta["base_plan_steps"] == 4 and meta["config"]["base_plan_steps"] == 4
    agent = load_residual(tmp_path / "residual")
    assert agent.base_plan_steps == 4
    env = make_residual_env(
        agent.base,
        agent.features,
        tuple(agent.alpha),
        agent.residual_options(),
        suite="nominal",
        **agent.env_kwargs(),
    )
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (20 + 7 + 12 + 7 * 4 + 1,)
        for _ in range(3):
            action = agent.act(obs)
            assert action.shape == (7,)
            obs, *_ = env.step(action)
    finally:
        env.close()
