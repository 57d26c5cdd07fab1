"""The franky driver against franka-sim (a libfranka network-protocol simulator).

franka-sim speaks server protocol 10 (FR3), so this would exercise the FR3 build of franky,
not a Panda's wire protocol. It runs only where ``FRANKA_SIM_HOST`` names a running
``run-franka-sim-server`` (started from its own venv: franka-sim pins numpy 1.26.4) and
franky is importable here; offline, the server cannot start without a local FR3 model
(``FR3_MJCF``), see docs/real_robot.md.
"""

import importlib.util
import os

import numpy as np
import pytest

HOST = os.environ.get("FRANKA_SIM_HOST")
pytestmark = pytest.mark.skipif(
    HOST is None or importlib.util.find_spec("franky") is None,
    reason="needs a franka-sim server (FRANKA_SIM_HOST) and franky-control; franka-sim "
    "downloads its FR3 model at first start, which fails offline",
)


def test_franky_driver_reads_and_moves_against_franka_sim():
    from residual_bench.real.franky_driver import FrankyDriver

    driver = FrankyDriver(host=HOST, gripper=False)
    driver.connect()
    state = driver.read_state()
    assert state.joints.shape == (7,) and np.isfinite(state.tcp_position).all()
    target = state.tcp_position + np.array([0.0, 0.0, -0.01])
    driver.set_ee_target(target, state.tcp_orientation)
    driver.sleep(1.0)
    assert np.linalg.norm(driver.read_state().tcp_position - target) < 0.005
    driver.close()
