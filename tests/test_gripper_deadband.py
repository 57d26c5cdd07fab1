"""The gripper deadband: the gripper's residual acts only beyond |r| = d.

Specified here: inside the band the base's gripper command is executed unchanged and outside
it the correction grows from zero to the full alpha; the other dimensions are untouched; the
raw output stays in the step info; bad widths are refused by the env, the config and the
loader of a trained residual, and residuals trained before the band act as they did.
"""

import json

import numpy as np
import pytest
import yaml

from residual_bench.env_spec import SpecError
from residual_bench.policies.registry import make_controller
from residual_bench.residual import make_residual_env
from residual_bench.residual.checkpoint import load_residual, read_metadata
from residual_bench.residual.config import load_config
from residual_bench.residual.env import deadband
from residual_bench.residual.oracle import ORACLE_EXPERT, OracleResidual


def test_inside_the_band_nothing_outside_it_a_continuous_ramp_to_the_full_range():
    assert deadband(0.0, 0.3) == 0.0
    assert deadband(0.3, 0.3) == 0.0 and deadband(-0.29, 0.3) == 0.0
    assert deadband(0.65, 0.3) == pytest.approx(0.5)
    assert deadband(-0.65, 0.3) == pytest.approx(-0.5)
    assert deadband(1.0, 0.3) == pytest.approx(1.0) and deadband(-1.0, 0.3) == pytest.approx(-1.0)
    grid = np.linspace(-1, 1, 401)
    mapped = [deadband(r, 0.3) for r in grid]
    assert np.all(np.diff(mapped) >= 0)
    assert deadband(0.42, 0.0) == 0.42  # no band: the identity


@pytest.fixture
def banded_env():
    env = make_residual_env(
        "scripted", "proprio", (0.3, 0.3, 2.0), {"gripper_deadband": 0.3}, suite="nominal"
    )
    yield env
    env.close()


def test_a_small_gripper_output_leaves_the_base_command_and_a_full_one_overrides_it(
    banded_env,
):
    banded_env.reset(seed=0)
    small = np.array([0.1, 0, 0, 0, 0, 0, 0.25])
    _, _, _, _, info = banded_env.step(small)
    np.testing.assert_allclose(info["residual_action"], [0.03, 0, 0, 0, 0, 0, 0.0], atol=1e-12)
    np.testing.assert_array_equal(info["residual_output"], small)  # what the policy said
    full = np.array([0, 0, 0, 0, 0, 0, -1.0])
    _, _, _, _, info = banded_env.step(full)
    assert info["residual_action"][6] == pytest.approx(-2.0)
    assert info["executed_action"][6] == -1.0


@pytest.mark.parametrize("width", [1.0, -0.1, "wide"])
def test_a_band_outside_zero_to_one_is_refused_by_the_env_and_the_config(tmp_path, width):
    with pytest.raises(ValueError, match="gripper_deadband must be a number in"):
        make_residual_env("scripted", "proprio", 0.3, {"gripper_deadband": width})
    path = tmp_path / "banded.yaml"
    path.write_text(yaml.safe_dump({"algo": "sac", "gripper_deadband": width}))
    with pytest.raises(SpecError, match="gripper_deadband must be a number in"):
        load_config(path)
    assert load_config("sac").gripper_deadband == 0.0


def shipped_copy(tmp_path):
    """A copy of a shipped residual whose ``residual.json`` the test may edit."""
    source = read_metadata("shipped:scripted-sac-seed0")
    target = tmp_path / "residual"
    target.mkdir()
    location = load_residual("shipped:scripted-sac-seed0").path
    (target / "policy.safetensors").write_bytes((location / "policy.safetensors").read_bytes())
    return target, source


def test_a_trained_residual_acts_through_its_recorded_band_and_older_ones_have_none(tmp_path):
    assert load_residual("shipped:scripted-sac-seed0").gripper_deadband == 0.0
    target, meta = shipped_copy(tmp_path)
    (target / "residual.json").write_text(json.dumps({**meta, "gripper_deadband": 0.3}))
    assert load_residual(target).gripper_deadband == 0.3
    (target / "residual.json").write_text(json.dumps({**meta, "gripper_deadband": 5}))
    with pytest.raises(ValueError, match="gripper_deadband must be a number in"):
        load_residual(target)


def test_through_a_band_the_oracle_still_makes_the_base_act_as_the_expert(banded_env):
    oracle = OracleResidual(banded_env)
    expert = make_controller(ORACLE_EXPERT, banded_env.unwrapped)
    banded_env.reset(seed=3)
    oracle.reset()
    expert.reset(banded_env.last_raw_observation[1])
    for _ in range(20):
        raw_obs, raw_info = banded_env.last_raw_observation
        target, _ = expert.act(raw_obs, {**raw_info, "base_stalled": False})
        _, _, _, _, info = banded_env.step(oracle())
        assert info["executed_action"][6] == pytest.approx(target[6], abs=1e-5)
