"""The base-policy interface: spec and chunk validation, and the native -> env converter."""

import dataclasses
import math

import numpy as np
import pybullet as pb
import pytest

from residual_bench.policies.base import ActionChunk, BasePolicy, PolicySpec, check_chunk
from residual_bench.policies.convert import ActionConverter
from residual_bench.sim.panda import POSITION_SCALE, ROTATION_SCALE

SPEC_FIELDS = dict(
    name="fake",
    control_hz=5.0,
    chunk_len=4,
    action_dim=7,
    action_repr="delta_ee_euler",
    gripper="absolute_pm1",
    position_unit_m=1.0,
    rotation_unit_rad=1.0,
    cameras={"primary": (224, 224)},
    needs_instruction=True,
    needs_state=False,
    normalization_key="bridge_orig",
)


def make_spec(**overrides) -> PolicySpec:
    return PolicySpec(**{**SPEC_FIELDS, **overrides})


class FakePolicy:
    def __init__(self, spec: PolicySpec) -> None:
        self.spec = spec

    def reset(self, instruction: str, seed: int | None) -> None:
        pass

    def act(self, obs: dict, instruction: str) -> ActionChunk:
        return ActionChunk(np.zeros((self.spec.chunk_len, 7), dtype=np.float32))


# -- PolicySpec --------------------------------------------------------------------------------


def test_a_valid_spec_keeps_its_values_and_is_frozen():
    spec = make_spec()
    assert spec.control_hz == 5.0 and spec.chunk_len == 4 and spec.period_s == pytest.approx(0.2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.chunk_len = 8


def test_the_spec_copies_the_cameras_so_the_caller_cannot_change_it():
    cams = {"primary": [128, 96]}
    spec = make_spec(cameras=cams)
    cams["wrist"] = (64, 64)
    assert spec.cameras == {"primary": (128, 96)}


@pytest.mark.parametrize(
    "field, value",
    [
        ("name", ""),
        ("control_hz", 0),
        ("control_hz", math.inf),
        ("chunk_len", 0),
        ("chunk_len", 2.5),
        ("action_dim", 6),
        ("action_repr", "delta_ee_quat"),
        ("gripper", "absolute"),
        ("position_unit_m", -0.01),
        ("rotation_unit_rad", math.nan),
        ("cameras", {"wrist": (0, 64)}),
        ("cameras", [(224, 224)]),
        ("needs_instruction", "yes"),
        ("needs_state", 1),
        ("normalization_key", 3),
        ("holds_rotation", "no"),
    ],
)
def test_an_invalid_spec_field_is_named_in_the_error(field, value):
    with pytest.raises(ValueError, match=rf"^{field}"):
        make_spec(**{field: value})


def test_joint_control_is_rejected_with_a_reason():
    with pytest.raises(ValueError, match="action_repr: joint control is not supported"):
        make_spec(action_repr="joint")


# -- ActionChunk, check_chunk, BasePolicy ---------------------------------------------------------


@pytest.mark.parametrize(
    "actions, problem",
    [
        ([[0.0] * 7], "numpy array"),
        (np.zeros(7, dtype=np.float32), "shape"),
        (np.zeros((0, 7), dtype=np.float32), "shape"),
        (np.zeros((4, 7)), "float32"),
        (np.full((4, 7), np.nan, dtype=np.float32), "NaN"),
    ],
)
def test_an_invalid_chunk_is_rejected_with_the_problem_named(actions, problem):
    with pytest.raises(ValueError, match=problem):
        ActionChunk(actions)


def test_check_chunk_enforces_the_spec_shape_and_finiteness():
    spec = make_spec(chunk_len=4)
    check_chunk(spec, ActionChunk(np.zeros((4, 7), dtype=np.float32), {"infer_time_s": 0.1}))
    with pytest.raises(ValueError, match=r"\(chunk_len, action_dim\) = \(4, 7\)"):
        check_chunk(spec, ActionChunk(np.zeros((3, 7), dtype=np.float32)))
    chunk = ActionChunk(np.zeros((4, 7), dtype=np.float32))
    chunk.actions[2, 0] = np.inf  # arrays are mutable after validation
    with pytest.raises(ValueError, match="NaN or inf"):
        check_chunk(spec, chunk)
    with pytest.raises(ValueError, match="ActionChunk"):
        check_chunk(spec, np.zeros((4, 7), dtype=np.float32))


def test_base_policy_is_a_structural_protocol():
    assert isinstance(FakePolicy(make_spec()), BasePolicy)
    assert not isinstance(object(), BasePolicy)


# -- ActionConverter ---------------------------------------------------------------------------


def native(xyz=(0, 0, 0), rot=(0, 0, 0), g=1.0) -> np.ndarray:
    return np.array([*xyz, *rot, g], dtype=np.float32)


def test_a_per_base_step_delta_is_spread_over_the_env_steps_of_one_base_period():
    # Base at 5 Hz, env at 20 Hz: one native step of 0.02 m is four env steps of 0.005 m.
    conv = ActionConverter(make_spec(control_hz=5.0), env_dt=0.05)
    out = conv.convert(native(xyz=(0.02, -0.01, 0.0)))
    assert out.dtype == np.float64 and out.shape == (7,)
    np.testing.assert_allclose(out[:3], [0.25, -0.125, 0.0])
    assert 4 * out[0] * POSITION_SCALE == pytest.approx(0.02)


def test_native_units_are_turned_into_metres_and_radians():
    conv = ActionConverter(make_spec(position_unit_m=0.001, rotation_unit_rad=0.01), env_dt=0.05)
    out = conv.convert(native(xyz=(20.0, 0, 0), rot=(0, 0, 40.0)))  # 20 mm, 0.4 rad per base step
    np.testing.assert_allclose(out[[0, 5]], [0.25, 0.4 * 0.25 / ROTATION_SCALE])


def test_same_rate_base_and_env_need_no_time_rescaling():
    conv = ActionConverter(make_spec(control_hz=20.0), env_dt=0.05)
    np.testing.assert_allclose(conv.convert(native(xyz=(0.01, 0, 0)))[0], 0.5)


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("angle", [0.3, -0.35])
def test_axis_angle_and_euler_agree_on_single_axis_rotations(axis, angle):
    rot = np.zeros(3)
    rot[axis] = angle
    euler = ActionConverter(make_spec(action_repr="delta_ee_euler"), env_dt=0.05)
    axang = ActionConverter(make_spec(action_repr="delta_ee_axangle"), env_dt=0.05)
    a, b = euler.convert(native(rot=rot)), axang.convert(native(rot=rot))
    np.testing.assert_allclose(a, b, atol=1e-12)
    assert a[3 + axis] == pytest.approx(angle * 0.25 / ROTATION_SCALE)


def test_axis_angle_env_steps_compose_exactly_to_the_native_rotation():
    rotvec = np.array([0.2, -0.3, 0.25])
    conv = ActionConverter(make_spec(action_repr="delta_ee_axangle"), env_dt=0.05)
    step = conv.convert(native(rot=rotvec))
    # Apply it the way the env does, four times (one base period), world-frame increments.
    q = (0.0, 0.0, 0.0, 1.0)
    delta = pb.getQuaternionFromEuler((step[3:6] * ROTATION_SCALE).tolist())
    for _ in range(4):
        _, q = pb.multiplyTransforms((0, 0, 0), delta, (0, 0, 0), q)
    angle = np.linalg.norm(rotvec)
    want = (*np.sin(angle / 2) * rotvec / angle, np.cos(angle / 2))
    assert abs(np.dot(q, want)) == pytest.approx(1.0, abs=1e-6)


def test_absolute_gripper_conventions():
    pm1 = ActionConverter(make_spec(gripper="absolute_pm1"))
    assert [pm1.convert(native(g=g))[6] for g in (-1.0, 0.3, 1.0)] == pytest.approx([-1, 0.3, 1])
    zo = ActionConverter(make_spec(gripper="absolute_01"))
    assert [zo.convert(native(g=g))[6] for g in (0.0, 0.5, 1.0)] == pytest.approx([-1, 0, 1])


def test_binary_gripper_takes_the_sign_and_zero_keeps_the_previous_command():
    conv = ActionConverter(make_spec(gripper="binary_pm1"))
    assert conv.convert(native(g=0.0))[6] == 1.0  # open after construction
    assert conv.convert(native(g=-0.2))[6] == -1.0
    assert conv.convert(native(g=0.0))[6] == -1.0
    assert conv.convert(native(g=0.7))[6] == 1.0


def test_relative_gripper_integrates_clips_and_reset_opens():
    conv = ActionConverter(make_spec(gripper="relative"))
    assert [conv.convert(native(g=-0.75))[6] for _ in range(4)] == pytest.approx(
        [0.25, -0.5, -1.0, -1.0]
    )
    assert conv.last_clipped
    conv.reset()
    assert conv.gripper == 1.0
    assert conv.convert(native(g=-0.5))[6] == pytest.approx(0.5)


def test_a_chunk_carries_the_gripper_state_from_row_to_row():
    conv = ActionConverter(make_spec(gripper="relative"))
    rows = np.stack([native(g=-0.5)] * 3)
    env, clipped = conv.convert_chunk(rows)
    np.testing.assert_allclose(env[:, 6], [0.5, 0.0, -0.5])
    assert env.shape == (3, 7) and not clipped.any()


def test_clipping_is_flagged_with_its_size_and_cleared_by_the_next_in_range_action():
    conv = ActionConverter(make_spec(), env_dt=0.05)
    out = conv.convert(native(xyz=(0.2, 0, 0)))  # 0.2 m per 0.2 s is 2.5 env units
    assert out[0] == 1.0 and conv.last_clipped and conv.last_clip_excess == pytest.approx(1.5)
    env, clipped = conv.convert_chunk(np.stack([native(), native(xyz=(0, -0.2, 0))]))
    assert clipped.tolist() == [False, True] and env[1, 1] == -1.0 and conv.last_clipped
    conv.convert(native(xyz=(0.01, 0, 0)))
    assert not conv.last_clipped and conv.last_clip_excess == 0.0


@pytest.mark.parametrize(
    "bad, problem",
    [(np.zeros(6), "shape"), (np.zeros((1, 7)), "shape"), (native(xyz=(np.nan, 0, 0)), "NaN")],
)
def test_the_converter_rejects_a_malformed_native_action(bad, problem):
    with pytest.raises(ValueError, match=problem):
        ActionConverter(make_spec()).convert(bad)
