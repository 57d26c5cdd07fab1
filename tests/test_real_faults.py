"""Every fault the twin can inject gives the documented behaviour in PandaReal-v0."""

import gymnasium as gym
import numpy as np
import pytest

from residual_bench.real import FaultNotAcknowledged

STILL = np.zeros(7)


@pytest.fixture
def env():
    env = gym.make("PandaReal-v0", driver="twin", obs_mode="rgb", image_size=32)
    env.reset(seed=0)
    yield env
    env.close()


def twin(env):
    return env.unwrapped.driver


@pytest.mark.parametrize("kind", ["reflex", "user_stop", "disconnect"])
def test_a_stop_fault_ends_the_episode_and_needs_an_acknowledgement(env, kind):
    twin(env).inject(kind, at=twin(env).clock() + 0.12)
    results = [env.step(STILL) for _ in range(3)]
    assert [r[2] for r in results] == [False, False, True]
    info = results[-1][4]
    assert info["termination_reason"] == kind and info["safety_mode"] in ("track", "stop")
    assert info["time"] > results[-2][4]["time"]  # time still advances: records stay valid
    with pytest.raises(FaultNotAcknowledged, match=kind):
        env.reset(seed=1)
    env.unwrapped.acknowledge_fault("tester")
    env.reset(seed=1)
    assert env.step(STILL)[4]["termination_reason"] is None
    kinds = [i.kind for i in env.unwrapped.safety.log]
    assert "fault_latched" in kinds and kinds[-1] == "fault_acknowledged"


def test_a_short_stale_state_holds_then_tracks_again(env):
    twin(env).inject("stale_state", duration=0.3)
    modes = [env.step(STILL)[4]["safety_mode"] for _ in range(10)]
    assert "hold" in modes and modes[-1] == "track"
    assert not any(env.step(STILL)[2] for _ in range(2))


def test_a_long_stale_state_holds_then_stops(env):
    twin(env).inject("stale_state", duration=5.0)
    modes = []
    for _ in range(30):
        _, _, terminated, _, info = env.step(STILL)
        modes.append(info["safety_mode"])
        if terminated:
            break
    assert terminated and info["termination_reason"] == "watchdog"
    assert modes[0] == "track" and "hold" in modes and modes[-1] == "stop"
    with pytest.raises(FaultNotAcknowledged):
        env.reset()


def test_a_late_base_action_holds_then_stops(env):
    env.step(STILL)
    modes = []
    for _ in range(5):
        twin(env).sleep(0.4)  # the base took 0.4 s to answer
        _, _, terminated, _, info = env.step(np.array([1.0, 0, 0, 0, 0, 0, 1]))
        modes.append(info["safety_mode"])
        if terminated:
            break
    assert modes[0] == "hold" and modes[-1] == "stop"
    assert info["termination_reason"] == "watchdog"


def test_late_frames_are_marked(env):
    assert not env.step(STILL)[4]["frame_late"]
    twin(env).inject("late_frames", duration=0.5)
    infos = [env.step(STILL)[4] for _ in range(14)]
    late = [i["frame_late"] for i in infos]
    assert any(late) and not late[-1]
    assert max(i["frame_age"] for i in infos) > 0.1


def test_an_unknown_fault_is_refused(env):
    with pytest.raises(ValueError, match="unknown fault 'fire'"):
        twin(env).inject("fire")
