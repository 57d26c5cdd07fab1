"""``oriented-objects`` features: the ``objects`` features plus the target's narrow axis.

Specified here: the fingers' closing direction is read from the grasp point's quaternion; the
narrow axis of a footprint of points is found whichever way it lies, relative to the fingers
and up to the gripper's half-turn symmetry, and fades out for a round footprint; in the env
the 18 features are the 15 ``objects`` ones plus these three, and they tell which way (and how
far) the hand must turn, as the privileged expert would turn it.
"""

import math

import numpy as np
import pytest

from residual_bench.policies.expert import ScriptedExpert
from residual_bench.residual import make_residual_env
from residual_bench.residual.env import observation_layout
from residual_bench.residual.features import (
    FEATURE_DIMS,
    ObjectFeatureNoise,
    finger_closing_yaw,
    object_features,
    target_axis_features,
)
from residual_bench.sim.geometry import rotate

AXIS = slice(15, 18)  # after the 15 ``objects`` features


def footprint(long_m: float, narrow_m: float, narrow_yaw: float, n: int = 4000) -> np.ndarray:
    """Points spread uniformly over a rectangle whose narrow side lies along ``narrow_yaw``."""
    rng = np.random.default_rng(0)
    local = rng.uniform(-0.5, 0.5, (n, 2)) * [narrow_m, long_m]
    c, s = math.cos(narrow_yaw), math.sin(narrow_yaw)
    xy = local @ np.array([[c, s], [-s, c]])
    return np.column_stack([xy + [0.5, 0.1], np.full(n, 0.02)])


def turn(features: np.ndarray) -> float:
    """The angle (rad) from the fingers to the narrow axis that ``features`` encode."""
    return 0.5 * math.atan2(features[0], features[1])


def test_the_closing_direction_is_the_hands_y_axis_on_the_table():
    rng = np.random.default_rng(3)
    for _ in range(20):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        axis = rotate(q, np.array([0.0, 1.0, 0.0]))
        assert finger_closing_yaw(q) == pytest.approx(math.atan2(axis[1], axis[0]), abs=1e-9)


@pytest.mark.parametrize("narrow_yaw", [0.0, 0.4, -1.2, 2.5])
@pytest.mark.parametrize("closing_yaw", [0.0, 0.3, -2.0])
def test_the_narrow_axis_is_found_relative_to_the_fingers(narrow_yaw, closing_yaw):
    points = footprint(0.04, 0.02, narrow_yaw)
    features = target_axis_features(points, np.ones(len(points), bool), closing_yaw)
    expected = math.remainder(narrow_yaw - closing_yaw, math.pi)  # half-turn symmetric
    assert turn(features) == pytest.approx(expected, abs=math.radians(2))
    # Variances grow with the side squared: (16 - 4) / (16 + 4).
    assert features[2] == pytest.approx(0.6, abs=0.03)


def test_fingers_turned_half_a_turn_see_the_same_axis():
    points = footprint(0.05, 0.02, 0.7)
    mask = np.ones(len(points), bool)
    np.testing.assert_allclose(
        target_axis_features(points, mask, 0.2),
        target_axis_features(points, mask, 0.2 + math.pi),
        atol=1e-9,
    )


def test_a_round_footprint_has_no_narrow_axis_and_too_few_points_have_none_at_all():
    rng = np.random.default_rng(1)
    angle, radius = rng.uniform(0, 2 * math.pi, 20000), np.sqrt(rng.uniform(0, 1, 20000))
    disc = np.column_stack([radius * np.cos(angle), radius * np.sin(angle), np.zeros(20000)])
    features = target_axis_features(disc * 0.03, np.ones(20000, bool), 0.4)
    assert np.all(np.abs(features) < 0.03)
    two = np.ones(2, bool)
    np.testing.assert_array_equal(target_axis_features(disc[:2], two, 0.4), np.zeros(3))


@pytest.fixture
def oriented_env():
    env = make_residual_env("scripted", "oriented-objects", suite="nominal", objects="heldout")
    yield env
    env.close()


def test_the_oriented_features_are_the_objects_features_then_the_axis(oriented_env):
    assert FEATURE_DIMS["oriented-objects"] == FEATURE_DIMS["objects"] + 3
    assert oriented_env.observation_space.shape == (20 + 7 + 18,)
    layout = observation_layout("oriented-objects")
    assert layout["target_axis_from_fingers"] == slice(27 + 15, 27 + 17)
    assert layout["target_elongation"] == slice(27 + 17, 27 + 18)
    obs, _ = oriented_env.reset(seed=0)
    raw, _ = oriented_env.last_raw_observation
    pose = oriented_env.unwrapped.camera.pose
    np.testing.assert_array_equal(obs[27 : 27 + 15], object_features(raw, pose))
    np.testing.assert_array_equal(obs[27:], object_features(raw, pose, oriented=True))


def test_the_axis_tells_the_turn_the_privileged_expert_would_make(oriented_env):
    # Seed 0 draws an elongated held-out object (elongation about 0.65).
    obs, _ = oriented_env.reset(seed=0)
    sim = oriented_env.unwrapped
    features = obs[27:][AXIS]
    assert features[2] > 0.3
    state = sim.object_states[0]
    grasp_yaw = sim.task.grasp_yaw(sim.task.target, state)
    expert_turn = ScriptedExpert._yaw_error(np.asarray(obs[12:16], float), grasp_yaw)
    assert turn(features) == pytest.approx(expert_turn, abs=math.radians(10))


def test_a_dropped_detection_hides_the_axis_too(oriented_env):
    obs, _ = oriented_env.reset(seed=0)
    raw, _ = oriented_env.last_raw_observation
    pose = oriented_env.unwrapped.camera.pose
    dropped = ObjectFeatureNoise(position_std_m=0.0, dropout=1.0)
    features = object_features(raw, pose, dropped, np.random.default_rng(0), oriented=True)
    np.testing.assert_array_equal(features[AXIS], np.zeros(3))
