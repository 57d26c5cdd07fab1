"""PandaReal-v0 on the twin: the gymnasium API, sim-compatible spaces and clear errors."""

import importlib.util

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from residual_bench.real import DriverUnavailableError, PandaRealEnv
from residual_bench.residual.env import ResidualEnv


@pytest.fixture
def real():
    envs = []

    def make(**kwargs):
        env = gym.make("PandaReal-v0", driver="twin", **kwargs)
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_check_env_passes_with_the_twin(real):
    check_env(real().unwrapped)


@pytest.mark.parametrize("obs_mode", ["rgb", "rgbd+seg"])
def test_observation_space_equals_the_sim_envs(real, make_env, obs_mode):
    sim = make_env(obs_mode=obs_mode, image_size=64)
    assert real(obs_mode=obs_mode, image_size=64).observation_space == sim.observation_space
    assert real(obs_mode=obs_mode).action_space == sim.action_space


class Constant:
    """A base that only reads observations."""

    name = "constant"

    def reset(self, info):
        self.reset_info = info

    def act(self, obs, info):
        return np.array([0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]), {"base_fresh": True}


@pytest.mark.parametrize("features", ["proprio", "objects"])
def test_a_sim_residual_env_wraps_the_real_env_unchanged(real, features):
    env = ResidualEnv(real(episode_seconds=0.5), Constant(), features=features, alpha=0.1)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    start = info["time"]
    for _ in range(3):
        obs, _, terminated, truncated, info = env.step(np.ones(7, dtype=np.float32))
        assert env.observation_space.contains(obs)
    np.testing.assert_allclose(info["executed_action"], [0.6, 0.1, 0.1, 0.1, 0.1, 0.1, 1.0])
    assert info["time"] > start and info["termination_reason"] is None


def test_info_has_what_the_recorder_needs_and_success_is_unknown(real):
    env = real()
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(7))
    assert info["success"] is False and info["is_grasped"] is False
    assert info["tcp_to_object_xy"] == np.inf and info["real"] is True
    assert abs(info["time"] - 0.05) < 1e-9


def test_episode_truncates_at_the_time_limit(real):
    env = real(episode_seconds=0.2)
    env.reset(seed=0)
    flags = [env.step(np.zeros(7))[3] for _ in range(4)]
    assert flags == [False, False, False, True]


def test_a_state_obs_mode_and_an_unknown_driver_are_clear_errors():
    with pytest.raises(ValueError, match="no privileged"):
        PandaRealEnv(obs_mode="state")
    with pytest.raises(ValueError, match="unknown driver 'ur5'"):
        PandaRealEnv(driver="ur5")


@pytest.mark.parametrize(("driver", "module"), [("franky", "franky"), ("panda-py", "panda_py")])
def test_a_missing_driver_library_is_a_clear_error(driver, module):
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here")
    with pytest.raises(DriverUnavailableError, match=f"needs the '{module}' module"):
        PandaRealEnv(driver=driver)


def test_a_missing_realsense_library_is_a_clear_error():
    if importlib.util.find_spec("pyrealsense2") is not None:
        pytest.skip("pyrealsense2 is installed here")
    from residual_bench.real.cameras import RealSenseCamera

    with pytest.raises(DriverUnavailableError, match="pyrealsense2"):
        RealSenseCamera()


def test_an_unreachable_robot_is_a_clear_error(monkeypatch):
    import sys
    import types

    fake = types.ModuleType("franky")

    class NetworkException(Exception):
        pass

    def robot(host):
        raise NetworkException(f"Connection timeout to {host}")

    fake.Robot, fake.NetworkException, fake.Exception = robot, NetworkException, Exception
    monkeypatch.setitem(sys.modules, "franky", fake)
    from residual_bench.real.franky_driver import FrankyDriver

    with pytest.raises(DriverUnavailableError, match="cannot reach the robot at '10.0.0.9'"):
        FrankyDriver(host="10.0.0.9").connect()


def test_replay_camera_feeds_the_env(tmp_path, real):
    from residual_bench.real.cameras import ReplayCamera

    rgb = np.random.default_rng(0).integers(0, 255, (3, 48, 64, 3), dtype=np.uint8)
    np.savez(tmp_path / "frames.npz", rgb=rgb, depth=np.ones((3, 48, 64, 1), np.float32))
    env = real(obs_mode="rgbd", image_size=32, camera=None)
    env.unwrapped.camera = ReplayCamera(tmp_path / "frames.npz", clock=env.unwrapped.driver.clock)
    obs, _ = env.reset(seed=0)
    assert obs["rgb"].shape == (32, 32, 3) and env.observation_space.contains(obs)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ReplayCamera(tmp_path / "missing.npz")
