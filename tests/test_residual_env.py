"""The residual env: ``ResidualPickPlace-v1`` with a frozen base behind it, whose action is the
residual ``r`` and whose robot executes ``clip(a_base + scale * alpha * r, -1, 1)``.

A zero residual is the base alone, bit for bit; the observation is proprioception, the base's
current action and the feature vector of the chosen mode; the ``objects`` features, computed
from the camera's depth and segmentation only, agree with the simulator's state; bad inputs are
refused with errors that say what is wrong.
"""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from residual_bench.policies.wrapper import BasePolicyWrapper
from residual_bench.residual import (
    DEFAULT_ALPHA,
    ResidualEnv,
    alpha_vector,
    make_residual_env,
)
from residual_bench.residual.features import (
    POSITION_UNIT_M,
    ObjectFeatureNoise,
    global_image,
    object_features,
    privileged_features,
)
from residual_bench.sim.camera import CameraPose, pixel_rays, project_to_image
from residual_bench.task_env import ResidualTaskEnv

ENV_ID = "ResidualPickPlace-v1"
PROPRIO, BASE = slice(0, 20), slice(20, 27)
# The 15-D ``objects`` layout.
TO_TARGET, EXTENT, FRACTION, SEEN = slice(0, 3), slice(3, 6), 6, 7
TO_PLATE, PLATE_SEEN, TARGET_MINUS_PLATE = slice(8, 11), 11, slice(12, 15)
# The 12-D ``privileged`` layout.
P_TO_TARGET, P_TO_PLATE, P_TARGET_MINUS_PLATE = slice(0, 3), slice(6, 9), slice(9, 12)
ZERO = np.zeros(7)


@pytest.fixture
def residual_env():
    """``residual_env(base, features, **kwargs)``: a residual env, closed when the test ends."""
    envs = []

    def _make(base="scripted", features="privileged", **kwargs):
        env = make_residual_env(base, features, **kwargs)
        envs.append(env)
        return env

    yield _make
    for env in envs:
        env.close()


def residuals(seed: int, n: int) -> np.ndarray:
    """``n`` seeded residual actions in [-1, 1]^7."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (n, 7))


def step_all(env: gym.Env, seed: int, actions: np.ndarray) -> tuple[list, list[float], list]:
    """Reset ``env`` with ``seed``, step it with every action: observations, rewards, infos."""
    obs, _ = env.reset(seed=seed)
    observations, rewards, infos = [obs], [], []
    for action in actions:
        obs, reward, _, _, info = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
    return observations, rewards, infos


# -- a zero residual is the base alone -------------------------------------------------------


@pytest.mark.parametrize("base", ["scripted", "scripted-expert"])
@pytest.mark.parametrize("features", ["privileged", "proprio"])
def test_a_zero_residual_reproduces_the_base_alone_bit_for_bit(make_env, base, features):
    residual = ResidualEnv(make_env(), base, features=features)
    alone = BasePolicyWrapper(make_env(), base)
    residual.reset(seed=4)
    alone.reset(seed=4)
    for step in range(60):
        *_, residual_info = residual.step(ZERO)
        *_, alone_info = alone.step(ZERO)
        np.testing.assert_array_equal(
            residual_info["executed_action"], alone_info["executed_action"], err_msg=f"{step}"
        )
        np.testing.assert_array_equal(residual_info["base_action"], alone_info["base_action"])
    assert residual.unwrapped.state_hash() == alone.unwrapped.state_hash()


def test_a_zero_residual_executes_exactly_the_base_action(residual_env):
    _, _, infos = step_all(residual_env(alpha=1.0), 2, np.zeros((30, 7)))
    for info in infos:
        np.testing.assert_array_equal(info["executed_action"], info["base_action"])
    assert any(np.any(info["base_action"][:6] != 0.0) for info in infos), "the base never moved"


# -- executed = clip(base + scale * alpha * r) -------------------------------------------------


@pytest.mark.parametrize(
    "alpha",
    [0.3, (0.2, 0.5), (0.1, 0.25, 0.4), 2.0],
    ids=["one number", "arm and gripper", "translation rotation gripper", "large, clipped"],
)
def test_executed_action_is_the_clipped_sum_of_base_and_alpha_times_residual(residual_env, alpha):
    rs = residuals(11, 25)
    _, _, infos = step_all(residual_env(alpha=alpha), 3, rs)
    expected_alpha = alpha_vector(alpha)
    for r, info in zip(rs, infos, strict=True):
        expected = np.clip(info["base_action"] + expected_alpha * r, -1.0, 1.0)
        np.testing.assert_allclose(info["executed_action"], expected, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(info["residual_output"], r)
        np.testing.assert_array_equal(info["alpha"], expected_alpha)
        assert np.all(np.abs(info["executed_action"]) <= 1.0)


def test_step_info_carries_base_residual_alpha_and_executed_actions(residual_env):
    env = residual_env()
    env.reset(seed=0)
    *_, info = env.step(residuals(0, 1)[0])
    for key in ("base_action", "residual_action", "alpha", "executed_action"):
        assert info[key].shape == (7,), key
        assert np.all(np.isfinite(info[key])), key


def test_the_observation_carries_the_base_action_the_next_step_executes(residual_env):
    env = residual_env()
    obs, _ = env.reset(seed=5)
    for r in residuals(5, 15):
        base_in_obs = obs[BASE].astype(np.float64)
        obs, _, _, _, info = env.step(r)
        np.testing.assert_allclose(info["base_action"], base_in_obs, atol=1e-6)


def test_the_observation_starts_with_the_robot_proprioception(residual_env):
    env = residual_env()
    obs, _ = env.reset(seed=1)
    for r in residuals(1, 5):
        robot = env.unwrapped.robot
        np.testing.assert_allclose(obs[PROPRIO][:9], robot.joint_positions()[:9], atol=1e-6)
        np.testing.assert_allclose(obs[PROPRIO][9:12], robot.tcp_state()[0], atol=1e-6)
        obs, *_ = env.step(r)


def test_a_residual_outside_the_box_is_clipped_to_it_first(residual_env):
    big = np.array([5.0, -3.0, 1.5, -1.5, 2.0, -9.0, 4.0])
    _, _, clipped = step_all(residual_env(alpha=0.2), 6, [np.clip(big, -1, 1)] * 5)
    _, _, raw = step_all(residual_env(alpha=0.2), 6, [big] * 5)
    for a, b in zip(clipped, raw, strict=True):
        np.testing.assert_array_equal(a["executed_action"], b["executed_action"])
        np.testing.assert_array_equal(b["residual_output"], np.clip(big, -1, 1))


def test_scale_multiplies_alpha(residual_env):
    env = residual_env(alpha=(0.2, 0.4, 0.6))
    env.scale = 0.5
    rs = residuals(8, 10)
    _, _, infos = step_all(env, 8, rs)
    for r, info in zip(rs, infos, strict=True):
        np.testing.assert_allclose(info["alpha"], 0.5 * alpha_vector((0.2, 0.4, 0.6)))
        expected = np.clip(info["base_action"] + 0.5 * alpha_vector((0.2, 0.4, 0.6)) * r, -1, 1)
        np.testing.assert_allclose(info["executed_action"], expected, rtol=0, atol=1e-12)


def test_scale_zero_runs_the_base_alone_whatever_the_residual(residual_env):
    env = residual_env(alpha=0.5)
    env.scale = 0.0
    _, _, infos = step_all(env, 9, residuals(9, 10))
    for info in infos:
        np.testing.assert_array_equal(info["executed_action"], info["base_action"])


def test_by_default_the_scale_is_one_and_alpha_is_default_alpha(residual_env):
    env = residual_env()
    assert env.scale == 1.0
    np.testing.assert_array_equal(env.alpha, np.full(7, DEFAULT_ALPHA))


# -- alpha_vector -------------------------------------------------------------------------------


def test_one_alpha_applies_to_every_dimension():
    np.testing.assert_array_equal(alpha_vector(0.3), np.full(7, 0.3))
    np.testing.assert_array_equal(alpha_vector([0.3]), np.full(7, 0.3))


def test_two_alphas_are_arm_then_gripper():
    np.testing.assert_array_equal(alpha_vector((0.1, 0.7)), [0.1] * 6 + [0.7])


def test_three_alphas_are_translation_rotation_then_gripper():
    np.testing.assert_array_equal(alpha_vector((0.1, 0.2, 0.3)), [0.1] * 3 + [0.2] * 3 + [0.3])


def test_a_base_that_holds_the_hands_orientation_gets_no_rotation_residual(residual_env):
    # The shipped bc network predicts translation and gripper only; rotation noise added to it
    # would build up into a tilted hand that nothing turns back.
    env = residual_env("bc", "proprio", alpha=(0.3, 0.1, 0.3), suite="nominal")
    np.testing.assert_array_equal(env.alpha, [0.3] * 3 + [0.0] * 3 + [0.3])
    env.reset(seed=0)
    r = np.array([0.5, -0.5, 0.5, 1.0, -1.0, 1.0, 0.5], np.float32)
    _, _, _, _, info = env.step(r)
    executed, base = info["executed_action"], info["base_action"]
    np.testing.assert_array_equal(executed[3:6], base[3:6])
    assert not np.allclose(executed[:3], base[:3])
    # a base that turns the hand itself keeps its rotation alpha
    assert residual_env("scripted", "proprio", alpha=(0.3, 0.1, 0.3)).alpha[3] == 0.1


BAD_ALPHAS = {
    "negative": -0.1,
    "negative in a pair": (0.1, -0.2),
    "NaN": float("nan"),
    "inf": float("inf"),
    "four numbers": (0.1, 0.1, 0.1, 0.1),
    "empty": (),
    "nested": [[0.1, 0.2]],
    "None": None,
    "a word": pytest.param(
        "big",
    ),
    "a mapping": pytest.param(
        {"arm": 0.1},
    ),
}


@pytest.mark.parametrize("alpha", BAD_ALPHAS.values(), ids=BAD_ALPHAS.keys())
def test_a_bad_alpha_is_refused_with_an_error_naming_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        alpha_vector(alpha)


def test_the_residual_env_refuses_a_bad_alpha(make_env):
    with pytest.raises(ValueError, match="alpha"):
        ResidualEnv(make_env(), "scripted", features="privileged", alpha=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        make_residual_env("scripted", "privileged", alpha=(0.1, 0.2, 0.3, 0.4))


# -- bad inputs ------------------------------------------------------------------------------

BAD_RESIDUALS = {
    "six entries": (np.zeros(6), r"shape.*\(6,\)"),
    "a column": (np.zeros((7, 1)), r"shape"),
    "NaN": (np.array([0.0, 0.0, np.nan, 0.0, 0.0, 0.0, 0.0]), r"(?i)nan.*index \[2\]"),
    "inf": (np.array([0.0, 0.0, 0.0, 0.0, np.inf, 0.0, 0.0]), r"(?i)inf.*index \[4\]"),
    "strings": (np.array(["0.1"] * 7), r"dtype"),
    "list of strings": (list("abcdefg"), r"dtype"),
}


@pytest.mark.parametrize("residual, message", BAD_RESIDUALS.values(), ids=BAD_RESIDUALS.keys())
def test_a_bad_residual_is_refused_with_an_error_naming_the_correction(
    residual_env, residual, message
):
    env = residual_env()
    env.reset(seed=0)
    before = env.unwrapped.state_hash()
    with pytest.raises(ValueError, match=message) as err:
        env.step(residual)
    assert "correction" in str(err.value)
    assert env.unwrapped.state_hash() == before, "a refused residual moved the robot"
    env.step(ZERO)  # still usable


def test_step_before_reset_raises_reset_needed(residual_env):
    with pytest.raises(ResetNeeded):
        residual_env().step(ZERO)


@pytest.mark.parametrize("make", ["wrapper", "helper", "registered id"])
def test_unknown_features_are_refused_with_the_valid_choices(make_env, make):
    with pytest.raises(ValueError, match="objects, privileged, global, proprio"):
        if make == "wrapper":
            ResidualEnv(make_env(), "scripted", features="pixels")
        elif make == "helper":
            make_residual_env("scripted", "pixels")
        else:
            make_env(base="scripted", features="pixels")


@pytest.mark.parametrize("obs_mode", ["state", "rgb", "rgbd"])
def test_objects_features_need_depth_and_segmentation_and_say_which_obs_mode(make_env, obs_mode):
    with pytest.raises(ValueError, match=r"obs_mode='rgbd\+seg'"):
        ResidualEnv(make_env(obs_mode=obs_mode), "scripted", features="objects")


def test_global_features_need_the_camera_image_and_say_which_obs_mode(make_env):
    with pytest.raises(ValueError, match="obs_mode='rgb'"):
        ResidualEnv(make_env(), "scripted", features="global")


# -- observation spaces ------------------------------------------------------------------------


@pytest.mark.parametrize("features, size", [("objects", 42), ("privileged", 39), ("proprio", 27)])
def test_the_observation_is_a_flat_box_of_proprio_base_action_and_features(
    residual_env, features, size
):
    env = residual_env(features=features)
    assert isinstance(env.observation_space, spaces.Box)
    assert env.observation_space.shape == (size,)
    assert env.observation_space.dtype == np.float32
    assert env.action_space == spaces.Box(-1.0, 1.0, (7,), np.float32)
    observations, _, _ = step_all(env, 2, residuals(2, 4))
    for obs in observations:
        assert obs.shape == (size,)
        assert env.observation_space.contains(obs)


def test_global_features_observe_a_dict_of_the_image_and_the_vector(residual_env):
    env = residual_env(features="global")
    space = env.observation_space
    assert isinstance(space, spaces.Dict)
    assert set(space.spaces) == {"image", "vector"}
    assert space["image"].shape == (42, 42, 3) and space["image"].dtype == np.uint8
    assert space["vector"].shape == (27,)
    observations, _, _ = step_all(env, 2, residuals(2, 3))
    for obs in observations:
        assert space.contains(obs)
        assert obs["image"].std() > 0, "the image is blank"


def test_the_global_image_is_the_camera_image_averaged_over_pixel_blocks():
    rgb = np.random.default_rng(0).integers(0, 256, (84, 84, 3), dtype=np.uint8)
    small = global_image(rgb)
    assert small.shape == (42, 42, 3) and small.dtype == np.uint8
    block = rgb[10:12, 20:22].astype(float).mean(axis=(0, 1))
    np.testing.assert_allclose(small[5, 10], block, atol=0.5)
    # A side that is no multiple of 42 takes the nearest pixels.
    odd = np.random.default_rng(1).integers(0, 256, (100, 100, 3), dtype=np.uint8)
    assert (
        global_image(odd).shape == (42, 42, 3)
        and global_image(odd)[0, 0].tolist() == odd[0, 0].tolist()
    )
    with pytest.raises(ValueError, match="square image of at least 42 px"):
        global_image(rgb[:32, :32])


# -- the registered id ------------------------------------------------------------------------


def test_the_registered_id_with_a_base_is_the_residual_env(make_env):
    env = make_env(base="scripted", features="privileged", alpha=0.2, suite="mixed")
    assert env.observation_space.shape == (39,)
    assert env.action_space.shape == (7,)
    assert isinstance(env.unwrapped, ResidualTaskEnv)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (39,)
    r = residuals(0, 1)[0]
    *_, info = env.step(r)
    np.testing.assert_array_equal(info["residual_output"], r)
    np.testing.assert_array_equal(info["alpha"], np.full(7, 0.2))


def test_the_registered_id_with_objects_features_renders_the_camera(make_env):
    env = make_env(base="scripted", suite="mixed", features="objects")
    assert env.unwrapped.obs_mode == "rgbd+seg"
    obs, _ = env.reset(seed=0)
    assert obs.shape == (42,)


def test_the_registered_id_without_a_base_is_the_raw_env(make_env):
    env = make_env(base=None)
    assert isinstance(env.observation_space, spaces.Dict)
    assert "proprio" in env.observation_space.spaces
    obs, _ = env.reset(seed=0)
    assert isinstance(obs, dict)


def test_a_conflicting_obs_mode_is_refused(make_env):
    with pytest.raises(ValueError, match="obs_mode"):
        make_env(base="scripted", features="objects", obs_mode="rgb")
    with pytest.raises(ValueError, match="obs_mode"):
        make_env(base="scripted", features="global", obs_mode="state")


def test_the_obs_mode_the_features_need_may_be_given_explicitly(make_env):
    env = make_env(base="scripted", features="objects", obs_mode="rgbd+seg")
    assert env.observation_space.shape == (42,)


def test_objects_features_work_at_another_camera_resolution(make_env):
    env = make_env(base="scripted", features="objects", image_size=64)
    assert env.unwrapped.camera.width == 64
    obs, _ = env.reset(seed=0)
    assert obs.shape == (42,)


def test_privileged_features_are_the_simulator_state_in_feature_units(residual_env):
    # Units of 5 cm and 0.5 m/s keep the networks' inputs of order one.
    env = residual_env(features="privileged", suite="poke")
    obs, _ = env.reset(seed=2)
    for _ in range(15):
        obs, *_ = env.step(ZERO)
    sim = env.unwrapped
    target, tcp, goal = sim.object_states[0], sim.robot.tcp_state()[0], sim.task.goal
    f = obs[27:]
    np.testing.assert_allclose(f[P_TO_TARGET] * 0.05, target.center - tcp, atol=1e-6)
    np.testing.assert_allclose(f[3:6] * 0.5, target.linear_velocity, atol=1e-6)
    np.testing.assert_allclose(f[P_TO_PLATE] * 0.05, goal - tcp, atol=1e-6)
    np.testing.assert_allclose(f[P_TARGET_MINUS_PLATE] * 0.05, target.center - goal, atol=1e-6)


# -- objects features ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_objects_features_agree_with_the_simulator_state(residual_env, seed):
    # The mask centroid is the visible surface, not the object's centre: allow 2 cm.
    env = residual_env(features="objects", suite="nominal")
    obs, _ = env.reset(seed=seed)
    for _ in range(2):
        f, p = obs[27:], privileged_features(env.unwrapped)
        assert f[SEEN] == 1.0 and f[PLATE_SEEN] == 1.0
        assert f[FRACTION] > 0.0
        assert np.all(f[EXTENT] > 0.0)
        atol = 0.02 / POSITION_UNIT_M
        np.testing.assert_allclose(f[TO_TARGET], p[P_TO_TARGET], atol=atol)
        np.testing.assert_allclose(f[TO_PLATE], p[P_TO_PLATE], atol=atol)
        np.testing.assert_allclose(f[TARGET_MINUS_PLATE], p[P_TARGET_MINUS_PLATE], atol=atol)
        for _ in range(10):
            obs, *_ = env.step(ZERO)


@pytest.fixture(scope="module")
def camera_frame():
    """An rgbd+seg observation and the camera pose it was rendered from."""
    env = gym.make(ENV_ID, obs_mode="rgbd+seg", suite="nominal")
    obs, _ = env.reset(seed=1)
    pose = env.unwrapped.camera.pose
    env.close()
    return obs, pose


def test_without_a_noise_model_objects_features_are_clean(camera_frame):
    obs, pose = camera_frame
    clean = object_features(obs, pose)
    np.testing.assert_array_equal(object_features(obs, pose, None, np.random.default_rng(0)), clean)
    zero = ObjectFeatureNoise(position_std_m=0.0, dropout=0.0)
    np.testing.assert_array_equal(object_features(obs, pose, zero, np.random.default_rng(0)), clean)


def test_position_noise_moves_the_centroids_but_not_extent_or_visibility(camera_frame):
    obs, pose = camera_frame
    clean = object_features(obs, pose)
    noise = ObjectFeatureNoise(position_std_m=0.01, dropout=0.0)
    noisy = object_features(obs, pose, noise, np.random.default_rng(3))
    assert not np.allclose(noisy[TO_TARGET], clean[TO_TARGET])
    assert not np.allclose(noisy[TO_PLATE], clean[TO_PLATE])
    assert np.all(np.abs(noisy[TO_TARGET] - clean[TO_TARGET]) * POSITION_UNIT_M < 0.06)  # 6 sigma
    np.testing.assert_array_equal(noisy[EXTENT], clean[EXTENT])
    assert noisy[SEEN] == clean[SEEN] == 1.0
    assert noisy[FRACTION] == clean[FRACTION]


def test_noise_is_reproducible_from_the_generator_seed(camera_frame):
    obs, pose = camera_frame
    noise = ObjectFeatureNoise(position_std_m=0.01, dropout=0.3)
    a = object_features(obs, pose, noise, np.random.default_rng(5))
    b = object_features(obs, pose, noise, np.random.default_rng(5))
    c = object_features(obs, pose, noise, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dropout_hides_the_target_but_keeps_the_plate(camera_frame):
    obs, pose = camera_frame
    clean = object_features(obs, pose)
    dropped = object_features(
        obs, pose, ObjectFeatureNoise(position_std_m=0.0, dropout=1.0), np.random.default_rng(0)
    )
    np.testing.assert_array_equal(dropped[TO_TARGET], 0.0)
    np.testing.assert_array_equal(dropped[EXTENT], 0.0)
    assert dropped[FRACTION] == 0.0 and dropped[SEEN] == 0.0
    np.testing.assert_array_equal(dropped[TARGET_MINUS_PLATE], 0.0)
    np.testing.assert_array_equal(dropped[TO_PLATE], clean[TO_PLATE])
    assert dropped[PLATE_SEEN] == 1.0


def test_feature_noise_in_the_env_changes_only_the_features(residual_env):
    noise = ObjectFeatureNoise(position_std_m=0.01, dropout=0.0)
    clean_env = residual_env(features="objects", suite="nominal")
    noisy_env = residual_env(
        features="objects", suite="nominal", residual_options={"feature_noise": noise, "seed": 0}
    )
    clean, _, _ = step_all(clean_env, 3, np.zeros((3, 7)))
    noisy, _, _ = step_all(noisy_env, 3, np.zeros((3, 7)))
    for a, b in zip(clean, noisy, strict=True):
        np.testing.assert_array_equal(a[:27], b[:27])
        assert not np.array_equal(a[27:], b[27:])


def test_a_target_hidden_from_the_camera_is_unseen_with_zero_features(residual_env):
    env = residual_env(features="objects", suite="nominal")
    env.reset(seed=0)
    sim = env.unwrapped
    # Teleport the target behind the camera, well out of its view.
    eye = np.asarray(sim.camera.pose.eye)
    sim.world.set_pose(sim.task.target.body_name, eye + [1.0, 0.0, 0.5], [0.0, 0.0, 0.0, 1.0])
    obs, *_ = env.step(ZERO)
    f = obs[27:]
    assert f[SEEN] == 0.0 and f[FRACTION] == 0.0
    np.testing.assert_array_equal(f[TO_TARGET], 0.0)
    np.testing.assert_array_equal(f[EXTENT], 0.0)
    np.testing.assert_array_equal(f[TARGET_MINUS_PLATE], 0.0)
    assert f[PLATE_SEEN] == 1.0
    assert np.linalg.norm(f[TO_PLATE]) > 0.0


# -- the camera model ------------------------------------------------------------------------

POSES = [
    CameraPose((0.86, 0.0, 0.62), (0.46, 0.0, 0.0), 48.0),
    CameraPose((0.3, -0.7, 0.5), (0.5, 0.1, 0.05), 60.0),
]


def distance_to_ray(point: np.ndarray, eye: np.ndarray, ray: np.ndarray) -> float:
    return float(np.linalg.norm(np.cross(point - eye, ray)) / np.linalg.norm(ray))


@pytest.mark.parametrize("pose", POSES)
def test_the_ray_through_a_projected_point_passes_within_a_millimetre_of_it(pose):
    width, height = 1200, 900  # fine enough that half a pixel is under 1 mm at 1 m
    rays = pixel_rays(pose, width, height)
    eye = np.asarray(pose.eye)
    points = np.random.default_rng(0).uniform([0.35, -0.25, 0.0], [0.65, 0.25, 0.3], (20, 3))
    for point in points:
        x, y = project_to_image(pose, width, height, point)
        assert -1.0 < x < 1.0 and -1.0 < y < 1.0, "test point outside the image"
        col = int((x + 1) / 2 * width)
        row = int((y + 1) / 2 * height)
        assert distance_to_ray(point, eye, rays[row, col]) < 1e-3


@pytest.mark.parametrize("pose", POSES)
def test_a_point_on_a_pixel_ray_projects_to_that_pixel_centre(pose):
    width, height = 64, 48
    rays = pixel_rays(pose, width, height)
    eye = np.asarray(pose.eye)
    for row, col, depth in [(0, 0, 0.5), (10, 50, 0.9), (47, 63, 1.2), (24, 32, 0.7)]:
        point = eye + depth * rays[row, col]
        x, y = project_to_image(pose, width, height, point)
        np.testing.assert_allclose(
            [x, y], [(col + 0.5) / width * 2 - 1, (row + 0.5) / height * 2 - 1], atol=1e-9
        )


def test_depth_is_the_distance_along_the_optical_axis(camera_frame):
    _, pose = camera_frame
    rays = pixel_rays(pose, 40, 30)
    forward = np.subtract(pose.target, pose.eye)
    forward /= np.linalg.norm(forward)
    np.testing.assert_allclose(rays @ forward, 1.0, atol=1e-12)


# -- reward penalties ------------------------------------------------------------------------


def test_magnitude_penalty_lowers_the_reward_by_exactly_penalty_times_mean_r_squared(
    residual_env,
):
    rs = residuals(4, 20)
    _, plain, _ = step_all(residual_env(), 7, rs)
    _, penalised, _ = step_all(residual_env(residual_options={"magnitude_penalty": 0.3}), 7, rs)
    for r, a, b in zip(rs, plain, penalised, strict=True):
        assert a - b == pytest.approx(0.3 * np.mean(r**2), rel=1e-9, abs=1e-12)


def test_rate_penalty_lowers_the_reward_by_the_executed_action_change(residual_env):
    rs = residuals(4, 20)
    _, plain, infos = step_all(residual_env(), 7, rs)
    _, penalised, _ = step_all(residual_env(residual_options={"rate_penalty": 0.5}), 7, rs)
    assert penalised[0] == plain[0], "no previous action on the first step"
    for k in range(1, len(rs)):
        change = infos[k]["executed_action"] - infos[k - 1]["executed_action"]
        expected = 0.5 * np.mean(change**2)
        assert plain[k] - penalised[k] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_the_rate_penalty_forgets_the_last_action_on_reset(residual_env):
    rs = residuals(4, 5)
    env = residual_env(residual_options={"rate_penalty": 0.5})
    step_all(env, 7, rs)
    _, after_reset, _ = step_all(env, 7, rs[:1])
    _, plain, _ = step_all(residual_env(), 7, rs[:1])
    assert after_reset[0] == plain[0]


# -- success bonus and time penalty ----------------------------------------------------------


def zero_residual_episode(env: gym.Env, seed: int = 0, n: int = 200) -> tuple[list, list]:
    """Rewards and success flags of ``n`` zero-residual steps from ``reset(seed)`` (the
    scripted base first succeeds near step 150 of seed 0's nominal episode)."""
    env.reset(seed=seed)
    rewards, successes = [], []
    for _ in range(n):
        _, reward, _, _, info = env.step(ZERO)
        rewards.append(reward)
        successes.append(bool(info["success"]))
    return rewards, successes


def test_zero_success_terms_leave_the_env_reward_exactly_as_it_is(residual_env):
    shaped = residual_env(residual_options={"success_bonus": 0.0, "time_penalty": 0.0})
    rewards, successes = zero_residual_episode(shaped)
    assert any(successes), "the episode must reach success for the terms to matter"
    plain = BasePolicyWrapper(gym.make(ENV_ID), "scripted")
    try:
        expected, _ = zero_residual_episode(plain)
    finally:
        plain.close()
    assert rewards == expected


def test_the_success_bonus_is_paid_once_at_the_first_successful_step(residual_env):
    plain, successes = zero_residual_episode(residual_env())
    bonus, _ = zero_residual_episode(residual_env(residual_options={"success_bonus": 5.0}))
    first = successes.index(True)
    assert sum(successes[first:]) > 1, "success holds on after its first step"
    extra = [b - p for b, p in zip(bonus, plain, strict=True)]
    assert extra[first] == pytest.approx(5.0, abs=1e-12)
    assert extra[:first] == [0.0] * first and extra[first + 1 :] == [0.0] * (len(extra) - first - 1)


def test_the_time_penalty_is_paid_every_step_before_the_first_success_and_never_after(
    residual_env,
):
    plain, successes = zero_residual_episode(residual_env())
    penalised, _ = zero_residual_episode(residual_env(residual_options={"time_penalty": 0.01}))
    first = successes.index(True)
    cost = [p - q for p, q in zip(plain, penalised, strict=True)]
    assert cost[:first] == pytest.approx([0.01] * first, abs=1e-12)
    assert cost[first:] == [0.0] * (len(cost) - first)


def test_a_new_episode_pays_the_bonus_and_the_penalty_again(residual_env):
    env = residual_env(residual_options={"success_bonus": 5.0, "time_penalty": 0.01})
    first_episode = zero_residual_episode(env)
    assert zero_residual_episode(env) == first_episode


def test_set_scale_reaches_the_residual_env_through_gymnasium_wrappers(residual_env):
    env = residual_env()
    wrapped = gym.wrappers.RecordEpisodeStatistics(env)
    wrapped.get_wrapper_attr("set_scale")(0.25)  # how a vector env's env_method calls it
    assert env.scale == 0.25 and wrapped.get_wrapper_attr("scale") == 0.25
    wrapped.scale = 0.5  # an attribute set on a wrapper stays on the wrapper
    assert env.scale == 0.25
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scale"):
            env.set_scale(bad)
