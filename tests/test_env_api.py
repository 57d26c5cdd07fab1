"""The gymnasium interface of ``ResidualPickPlace-v1``.

Registration, the env checkers of gymnasium and Stable-Baselines3, the documented
observation layout, segmentation, the language instruction, rendering, and how simulated
time advances per step and ends an episode.
"""

import itertools
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from residual_bench.language import instruction_features
from residual_bench.sim.objects import objects_in_split
from residual_bench.task_env import ResidualTaskEnv
from residual_bench.tasks.pick_place import TEMPLATES
from residual_bench.tasks.scene_objects import COLORS, TABLE_COLOR

ENV_ID = "ResidualPickPlace-v1"
OBS_MODES = ("state", "rgb", "rgbd", "rgb+seg")
SHORT = {"task": {"episode_seconds": 1.0}}
F32, U8 = np.dtype(np.float32), np.dtype(np.uint8)


def documented_layout(obs_mode: str, size: int = 84) -> dict:
    """Observation key -> (shape, dtype), as the env's docstring documents it."""
    layout = {"proprio": ((20,), F32), "instruction": ((32,), F32)}
    if obs_mode == "state":
        layout.update(objects=((3, 13), F32), object_mask=((3,), F32), goal=((3,), F32))
        return layout
    layout["rgb"] = ((size, size, 3), U8)
    if obs_mode == "rgbd":
        layout["depth"] = ((size, size, 1), F32)
    if obs_mode == "rgb+seg":
        layout["segmentation"] = ((size, size, 1), U8)
    return layout


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def result_line(stdout: str) -> str:
    """The line a subprocess printed after ``RESULT`` (pybullet prints banners too)."""
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no RESULT line in {stdout!r}"
    return lines[-1].removeprefix("RESULT ")


# -- registration --------------------------------------------------------------------------


def test_make_works_after_only_importing_the_package_in_a_fresh_process():
    result = run_python(
        "import gymnasium as gym\n"
        "import residual_bench\n"
        "env = gym.make('ResidualPickPlace-v1')\n"
        "obs, info = env.reset(seed=0)\n"
        "assert env.observation_space.contains(obs)\n"
        "print('RESULT', type(env.unwrapped).__name__)\n"
        "env.close()\n"
    )
    assert result.returncode == 0, result.stderr
    assert result_line(result.stdout) == "ResidualTaskEnv"


def test_package_qualified_id_works_in_a_process_that_never_imports_the_package():
    result = run_python(
        "import sys\n"
        "import gymnasium as gym\n"
        "assert 'residual_bench' not in sys.modules\n"
        "env = gym.make('residual_bench:ResidualPickPlace-v1')\n"
        "obs, info = env.reset(seed=0)\n"
        "obs, *_ = env.step(env.action_space.sample())\n"
        "assert env.observation_space.contains(obs)\n"
        "print('RESULT', type(env.unwrapped).__name__)\n"
        "env.close()\n"
    )
    assert result.returncode == 0, result.stderr
    assert result_line(result.stdout) == "ResidualTaskEnv"


def test_registered_id_builds_the_pick_place_env(env):
    assert isinstance(env.unwrapped, ResidualTaskEnv)


# -- env checkers --------------------------------------------------------------------------


@pytest.mark.parametrize("obs_mode", OBS_MODES)
def test_gymnasium_env_checker_passes(make_env, obs_mode):
    env = make_env(obs_mode=obs_mode, scene_overrides=SHORT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warnings (e.g. infinite Box bounds) are fine
        gymnasium_check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("obs_mode", OBS_MODES)
def test_stable_baselines3_env_checker_passes(make_env, obs_mode):
    env = make_env(obs_mode=obs_mode, scene_overrides=SHORT)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "depth is an image but not uint8"
        sb3_check_env(env.unwrapped, warn=True)


# -- spaces and observations ---------------------------------------------------------------


def test_action_space_is_the_unit_box_in_seven_dimensions(env):
    space = env.action_space
    assert isinstance(space, spaces.Box)
    assert space.shape == (7,)
    assert space.dtype == F32
    np.testing.assert_array_equal(space.low, -1.0)
    np.testing.assert_array_equal(space.high, 1.0)


@pytest.mark.parametrize("obs_mode", OBS_MODES)
def test_observation_keys_shapes_and_dtypes_are_as_documented(make_env, obs_mode):
    env = make_env(obs_mode=obs_mode, scene_overrides=SHORT)
    layout = documented_layout(obs_mode)
    space = env.observation_space
    assert isinstance(space, spaces.Dict)
    assert set(space.spaces) == set(layout)
    for key, (shape, dtype) in layout.items():
        assert space[key].shape == shape, key
        assert space[key].dtype == dtype, key
    obs, _ = env.reset(seed=0)
    obs_after_step, *_ = env.step(np.zeros(7, dtype=np.float32))
    for observation in (obs, obs_after_step):
        assert set(observation) == set(layout)
        for key, (shape, dtype) in layout.items():
            assert observation[key].shape == shape, key
            assert observation[key].dtype == dtype, key


@pytest.mark.parametrize("obs_mode", OBS_MODES)
def test_observations_lie_in_the_observation_space_throughout_an_episode(
    make_env, actions, obs_mode
):
    env = make_env(obs_mode=obs_mode, scene_overrides={"task": {"episode_seconds": 0.5}})
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    for action in actions(3, 10):
        obs, *_ = env.step(action)
        assert env.observation_space.contains(obs)


@pytest.mark.parametrize("obs_mode", ["rgbd", "rgb+seg"])
@pytest.mark.parametrize("size", [32, 100])
def test_image_size_sets_the_resolution_of_every_image(make_env, obs_mode, size):
    env = make_env(obs_mode=obs_mode, image_size=size, scene_overrides=SHORT)
    layout = documented_layout(obs_mode, size)
    obs, _ = env.reset(seed=0)
    for key in ("rgb", "depth", "segmentation"):
        if key in layout:
            assert env.observation_space[key].shape == layout[key][0]
            assert obs[key].shape == layout[key][0]


def test_depth_is_in_metres_between_the_camera_planes(make_env):
    env = make_env(obs_mode="rgbd")
    obs, _ = env.reset(seed=0)
    depth = obs["depth"]
    assert np.all(depth > 0.05)  # the near plane
    assert np.all(depth <= 3.0 + 1e-4)  # the far plane
    # The camera is about a metre from the table it looks at.
    assert 0.4 < float(np.median(depth)) < 2.0


def test_segmentation_ids_are_documented_classes_of_things_in_the_scene(make_env, actions):
    env = make_env(obs_mode="rgb+seg", scene_overrides=SHORT)
    names = env.unwrapped.segmentation_names
    assert names[4] == "target"
    assert env.observation_space["segmentation"].high.max() == max(names)
    for seed in range(4):
        obs, info = env.reset(seed=seed)
        n_objects = len(info["objects"])
        allowed = {0, 1, 2, 3} | {4 + i for i in range(n_objects)}
        for action in actions(seed, 3):
            ids = set(np.unique(obs["segmentation"]).tolist())
            assert ids <= set(names), f"undocumented ids {ids - set(names)}"
            assert ids <= allowed, f"ids of absent objects {ids - allowed} (seed {seed})"
            obs, *_ = env.step(action)


@pytest.mark.parametrize("seed", range(5))
def test_target_robot_and_plate_are_visible_in_the_segmentation_at_reset(make_env, seed):
    env = make_env(obs_mode="rgb+seg", image_size=84)
    obs, _ = env.reset(seed=seed)
    seg = obs["segmentation"][..., 0]
    names = env.unwrapped.segmentation_names
    for cls in ("target", "robot", "plate"):
        cls_id = next(i for i, name in names.items() if name == cls)
        assert np.count_nonzero(seg == cls_id) > 0, f"{cls} not visible for seed {seed}"


def test_table_fills_most_of_the_view_and_is_labelled_table(make_env):
    # The table must be drawn and labelled whatever collision helpers the scene adds.
    env = make_env(obs_mode="rgb+seg")
    table_id = next(i for i, n in env.unwrapped.segmentation_names.items() if n == "table")
    fractions = {}
    for seed in range(8):
        obs, _ = env.reset(seed=seed)
        fractions[seed] = round(float(np.mean(obs["segmentation"] == table_id)), 3)
    assert all(f > 0.6 for f in fractions.values()), fractions


def test_table_looks_like_the_table_in_the_rgb_image(make_env):
    env = make_env(obs_mode="rgb")
    table_rgb = np.array(TABLE_COLOR[:3]) * 255
    medians = {}
    for seed in range(8):
        obs, _ = env.reset(seed=seed)
        medians[seed] = np.median(obs["rgb"].reshape(-1, 3), axis=0)
    far = {s: m.tolist() for s, m in medians.items() if np.abs(m - table_rgb).max() > 40}
    assert not far, f"median colour far from the table's {table_rgb.tolist()}: {far}"


def test_state_observation_lists_objects_target_first_and_zero_pads_absent_ones(env):
    sim = env.unwrapped
    counts = set()
    for seed in range(8):
        obs, info = env.reset(seed=seed)
        n = len(info["objects"])
        counts.add(n)
        assert info["objects"][0] == sim.task.target.model.name
        np.testing.assert_array_equal(obs["object_mask"], [1.0] * n + [0.0] * (3 - n))
        np.testing.assert_array_equal(obs["objects"][n:], 0.0)
        tcp = obs["proprio"][9:12]
        for row, state in zip(obs["objects"][:n], sim.object_states, strict=True):
            np.testing.assert_allclose(row[0:3], state.center, atol=1e-6)
            np.testing.assert_allclose(row[3:7], state.orientation, atol=1e-6)
            np.testing.assert_allclose(np.linalg.norm(row[3:7]), 1.0, atol=1e-5)
            np.testing.assert_allclose(row[7:10], state.linear_velocity, atol=1e-6)
            np.testing.assert_allclose(row[10:13], state.center - tcp, atol=1e-5)
    assert len(counts) > 1, "the default spec should vary the number of objects"


def test_goal_observation_is_the_centre_of_the_plate_top(env):
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        lo, hi = env.unwrapped.world.aabb("plate")
        np.testing.assert_allclose(obs["goal"][:2], (lo[:2] + hi[:2]) / 2, atol=1e-4)
        np.testing.assert_allclose(obs["goal"][2], hi[2], atol=1e-4)


def test_proprio_holds_joints_grasp_point_and_gripper_width(env):
    obs, _ = env.reset(seed=0)
    robot = env.unwrapped.robot
    proprio = obs["proprio"]
    np.testing.assert_allclose(proprio[:9], robot.joint_positions(), atol=1e-6)
    position, orientation = robot.tcp_pose()
    np.testing.assert_allclose(proprio[9:12], position, atol=1e-6)
    np.testing.assert_allclose(np.abs(proprio[12:16] @ orientation), 1.0, atol=1e-5)
    np.testing.assert_allclose(proprio[16:19], 0.0, atol=1e-3)  # the arm is at rest
    np.testing.assert_allclose(proprio[19], proprio[7] + proprio[8], atol=1e-6)
    np.testing.assert_allclose(proprio[19], 0.08, atol=2e-3)  # opens to 8 cm at reset


@pytest.mark.parametrize("obs_mode", ["state", "rgb+seg"])
def test_observations_already_returned_are_not_changed_by_later_steps(make_env, actions, obs_mode):
    env = make_env(obs_mode=obs_mode, scene_overrides=SHORT)
    obs, _ = env.reset(seed=1)
    kept = {key: value.copy() for key, value in obs.items()}
    for action in actions(1, 3):
        env.step(action)
    for key, value in obs.items():
        np.testing.assert_array_equal(value, kept[key], err_msg=key)


# -- rendering -----------------------------------------------------------------------------


def test_render_returns_a_256_pixel_rgb_frame_in_rgb_array_mode(make_env):
    env = make_env(render_mode="rgb_array", scene_overrides=SHORT)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (256, 256, 3)
    assert frame.dtype == U8
    assert frame.std() > 0  # not a blank image


def test_render_returns_nothing_without_a_render_mode(env):
    env.reset(seed=0)
    assert env.render() is None


def test_render_fps_matches_the_control_rate(make_env):
    env = make_env(control_hz=40, render_mode="rgb_array")
    assert env.metadata["render_fps"] == 40


def test_closing_twice_is_harmless(make_env):
    env = make_env()
    env.reset(seed=0)
    env.close()
    env.close()  # must not raise
    assert env.unwrapped.world is None


# -- the language instruction -------------------------------------------------------------


def test_instruction_is_the_same_in_info_and_on_the_env_and_names_colour_noun_and_plate(env):
    sim = env.unwrapped
    for seed in range(6):
        _, info = env.reset(seed=seed)
        _, *_, step_info = env.step(np.zeros(7, dtype=np.float32))
        for i in (info, step_info):
            assert i["instruction"] == sim.instruction
            assert i["target_object"] == info["target_object"]
        colour, noun = info["target_object"].split(" ", 1)
        assert colour in COLORS
        assert colour == sim.task.target.color_name
        assert noun == sim.task.target.model.noun
        words = info["instruction"].split()
        assert colour in words
        assert noun in words
        assert "plate" in words
        assert f"{colour} {noun}" in info["instruction"]


def test_objects_in_one_scene_have_distinct_colours_so_the_instruction_is_unambiguous(make_env):
    env = make_env(scene_overrides={"task": {"n_objects": [3, 3]}})
    for seed in range(8):
        env.reset(seed=seed)
        colours = [obj.color_name for obj in env.unwrapped.task.objects]
        assert len(set(colours)) == 3, colours


def test_instruction_observation_is_the_features_of_the_instruction_for_the_whole_episode(
    env, actions
):
    obs, info = env.reset(seed=2)
    expected = instruction_features(info["instruction"])
    np.testing.assert_array_equal(obs["instruction"], expected)
    for action in actions(2, 5):
        obs, *_ = env.step(action)
        np.testing.assert_array_equal(obs["instruction"], expected)


def test_instruction_observation_changes_when_the_instruction_changes(env):
    vectors: dict[str, np.ndarray] = {}
    for seed in range(12):
        obs, info = env.reset(seed=seed)
        instruction = info["instruction"]
        if instruction in vectors:
            np.testing.assert_array_equal(obs["instruction"], vectors[instruction])
        vectors[instruction] = obs["instruction"].copy()
    assert len(vectors) >= 3
    for (a, va), (b, vb) in itertools.combinations(vectors.items(), 2):
        assert not np.array_equal(va, vb), f"{a!r} and {b!r} have the same features"


def test_every_possible_instruction_has_its_own_feature_vector():
    nouns = {m.noun for split in ("train", "heldout") for m in objects_in_split(split)}
    seen: dict[bytes, str] = {}
    for template, colour, noun in itertools.product(TEMPLATES, COLORS, sorted(nouns)):
        text = template.format(object=f"{colour} {noun}")
        key = instruction_features(text).tobytes()
        assert key not in seen, f"{text!r} and {seen[key]!r} have the same features"
        seen[key] = text


# -- time ----------------------------------------------------------------------------------


@pytest.mark.parametrize("control_hz", [10, 20, 40])
def test_info_time_advances_by_one_control_period_per_step(make_env, control_hz):
    env = make_env(control_hz=control_hz, scene_overrides=SHORT)
    _, info = env.reset(seed=0)
    assert info["time"] == 0.0
    previous = 0.0
    for k in range(1, control_hz + 1):
        _, _, _, _, info = env.step(np.zeros(7, dtype=np.float32))
        assert info["time"] == pytest.approx(k / control_hz, abs=1e-9)
        assert info["time"] - previous == pytest.approx(1.0 / control_hz, abs=1e-9)
        previous = info["time"]


@pytest.mark.parametrize(
    "control_hz, seconds, steps", [(10, 1.0, 10), (20, 0.5, 10), (40, 0.75, 30), (20, 1.2, 24)]
)
def test_episode_is_truncated_after_episode_seconds_times_control_hz_steps(
    make_env, control_hz, seconds, steps
):
    env = make_env(control_hz=control_hz, scene_overrides={"task": {"episode_seconds": seconds}})
    env.reset(seed=0)
    for k in range(1, steps + 1):
        _, _, terminated, truncated, info = env.step(np.zeros(7, dtype=np.float32))
        assert not terminated
        assert truncated == (k == steps), f"step {k}: truncated={truncated}"
    assert info["time"] == pytest.approx(seconds)


def test_a_reset_starts_the_clock_again(make_env, actions):
    env = make_env(scene_overrides=SHORT)
    env.reset(seed=0)
    for action in actions(0, 5):
        env.step(action)
    _, info = env.reset(seed=1)
    assert info["time"] == 0.0
    _, _, _, truncated, info = env.step(np.zeros(7, dtype=np.float32))
    assert info["time"] == pytest.approx(0.05)
    assert not truncated


def test_gym_make_adds_no_step_limit_of_its_own(make_env):
    # The env truncates itself at episode_seconds; a TimeLimit wrapper would cut
    # 10 Hz or 40 Hz episodes at a step count meant for another rate.
    env = make_env(control_hz=40, scene_overrides={"task": {"episode_seconds": 2.0}})
    assert env.spec.max_episode_steps is None
    wrapper = env
    while isinstance(wrapper, gym.Wrapper):
        assert not isinstance(wrapper, gym.wrappers.TimeLimit)
        wrapper = wrapper.env
