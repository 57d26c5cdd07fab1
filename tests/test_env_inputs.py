"""Input checking: bad actions, constructor arguments and reset options are refused with
an error that names the problem, out-of-range actions are clipped, and a refused input
leaves the env usable."""

import gymnasium as gym
import numpy as np
import pytest

ENV_ID = "ResidualPickPlace-v1"
SHORT = {"task": {"episode_seconds": 1.0}}
VALID_KWARGS = (
    "obs_mode",
    "control_hz",
    "objects",
    "instructions",
    "image_size",
    "render_mode",
    "reward_mode",
    "scene_spec",
    "scene_overrides",
    "terminate_on_success",
    "terminate_out_of_reach",
    "suite",
)


def with_value(index: int, value: float) -> np.ndarray:
    action = np.zeros(7)
    action[index] = value
    return action


# -- actions -------------------------------------------------------------------------------

BAD_ACTIONS = {
    "six entries": (np.zeros(6, dtype=np.float32), r"shape.*\(6,\)"),
    "column vector": (np.zeros((7, 1), dtype=np.float32), r"shape.*\(7, 1\)"),
    "scalar": (np.float32(0.5), r"shape"),
    "strings": (np.array(["0.1"] * 7), r"dtype"),
    "list of strings": (["a", "b", "c", "d", "e", "f", "g"], r"dtype"),
    "NaN": (with_value(2, np.nan), r"(?i)nan.*index \[2\]"),
    "inf": (with_value(4, np.inf), r"(?i)inf.*index \[4\]"),
    "-inf": (with_value(0, -np.inf), r"(?i)inf.*index \[0\]"),
}


@pytest.mark.parametrize("action, message", BAD_ACTIONS.values(), ids=BAD_ACTIONS.keys())
def test_bad_action_is_refused_with_a_message_naming_the_problem(env, action, message):
    env.reset(seed=0)
    with pytest.raises((ValueError, TypeError), match=message):
        env.step(action)


@pytest.mark.parametrize("action, message", BAD_ACTIONS.values(), ids=BAD_ACTIONS.keys())
def test_env_is_still_usable_after_a_refused_action_and_the_clock_did_not_move(
    env, action, message
):
    env.reset(seed=0)
    before = env.unwrapped.state_hash()
    with pytest.raises((ValueError, TypeError)):
        env.step(action)
    assert env.unwrapped.state_hash() == before
    obs, reward, terminated, truncated, info = env.step(np.zeros(7, dtype=np.float32))
    assert env.observation_space.contains(obs)
    assert info["time"] == pytest.approx(1 / 20)
    assert not terminated and not truncated


def test_a_refused_action_does_not_change_the_episode(make_env, actions):
    """An episode with a refused action in the middle equals the same episode without it."""
    clean, interrupted = make_env(), make_env()
    clean.reset(seed=5)
    interrupted.reset(seed=5)
    for k, action in enumerate(actions(5, 8)):
        if k == 4:
            with pytest.raises(ValueError):
                interrupted.step(with_value(1, np.nan))
        clean.step(action)
        interrupted.step(action)
    assert clean.unwrapped.state_hash() == interrupted.unwrapped.state_hash()


def test_action_may_be_a_list_or_an_integer_or_float64_array(make_env):
    hashes = set()
    for action in (
        [0, 0, 1, 0, 0, 0, -1],
        np.array([0, 0, 1, 0, 0, 0, -1]),
        np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0], dtype=np.float64),
        np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0], dtype=np.float32),
    ):
        env = make_env()
        env.reset(seed=0)
        env.step(action)
        hashes.add(env.unwrapped.state_hash())
    assert len(hashes) == 1


def test_out_of_range_actions_act_like_the_clipped_action(make_env):
    too_big = np.array([5.0, -5.0, 5.0, 3.0, -7.0, 9.0, -9.0], dtype=np.float32)
    clipped = np.clip(too_big, -1.0, 1.0)
    results = {}
    for name, action in {"too_big": too_big, "clipped": clipped, "half": clipped / 2}.items():
        env = make_env()
        env.reset(seed=7)
        obs, *_ = env.step(action)
        results[name] = (env.unwrapped.state_hash(), obs["proprio"].tobytes())
    assert results["too_big"] == results["clipped"]
    assert results["half"] != results["clipped"]  # one step is enough to tell them apart


# -- constructor arguments ------------------------------------------------------------------


def test_unknown_make_kwarg_is_refused_with_the_list_of_valid_ones():
    with pytest.raises(TypeError) as excinfo:
        gym.make(ENV_ID, obs_modes="rgb")
    message = str(excinfo.value)
    assert "obs_modes" in message
    for name in VALID_KWARGS:
        assert name in message, f"{name} missing from {message!r}"


def test_a_typo_on_the_residual_env_lists_its_own_arguments_and_no_internal_ones():
    with pytest.raises(TypeError) as excinfo:
        gym.make(ENV_ID, base="scripted", featurs="objects")
    message = str(excinfo.value)
    valid = message.split("valid ones are: ")[1].split(" was raised")[0]
    for name in (*VALID_KWARGS, "base", "features", "alpha", "residual_options"):
        assert name in valid, f"{name} missing from {message!r}"
    assert "'obs_mode'" not in message and "'image_size'" not in message  # never passed


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"obs_mode": "depth"}, "obs_mode"),
        ({"obs_mode": "RGB"}, "obs_mode"),
        ({"objects": "test"}, "objects"),
        ({"objects": "held-out"}, "objects"),
        ({"reward_mode": "shaped"}, "reward_mode"),
        ({"image_size": 16}, "image_size"),
        ({"image_size": 512}, "image_size"),
        ({"image_size": 64.0}, "image_size"),
    ],
)
def test_invalid_choice_is_refused_with_the_argument_name_and_valid_values(kwargs, field):
    with pytest.raises(ValueError, match=field) as excinfo:
        gym.make(ENV_ID, **kwargs)
    assert repr(next(iter(kwargs.values()))) in str(excinfo.value)


@pytest.mark.parametrize("control_hz", [7, 0, -20, 25, 480, 20.5])
def test_control_hz_that_does_not_divide_240_is_refused(control_hz):
    with pytest.raises(ValueError, match=r"control_hz.*240"):
        gym.make(ENV_ID, control_hz=control_hz)


@pytest.mark.parametrize("control_hz", [1, 15, 60, 240])
def test_every_divisor_of_240_is_a_valid_control_hz(make_env, control_hz):
    env = make_env(control_hz=control_hz, scene_overrides={"task": {"episode_seconds": 1.0}})
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(7, dtype=np.float32))
    assert info["time"] == pytest.approx(1.0 / control_hz)


def test_numpy_integer_control_hz_is_accepted(make_env):
    env = make_env(control_hz=np.int64(20))
    assert env.unwrapped.control_hz == 20


# -- reset options --------------------------------------------------------------------------


def test_reset_options_are_refused_by_name_and_the_env_stays_usable(env):
    with pytest.raises(ValueError, match=r"options.*difficulty"):
        env.reset(seed=0, options={"difficulty": 2})
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert info["seed"] == 0
