"""The ``panda-py`` driver: panda-python (libfranka 0.9.2, so a Panda) as an alternative.

Targets go to panda-py's C++ Cartesian impedance controller, which runs at 1 kHz inside the
library; Python only updates its reference at the control rate.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from residual_bench.real.driver import (
    DisconnectError,
    DriverUnavailableError,
    ReflexError,
    RobotFault,
    RobotState,
    UserStopError,
    WallClock,
    check_pose,
    lazy_import,
)


class PandaPyDriver(WallClock):
    """A Panda through panda-python.

    Args:
        host: the robot's FCI address.
        gripper: whether a Franka Hand is attached.
        gripper_speed: finger speed in m/s.
    """

    name = "panda-py"

    def __init__(self, host: str = "172.16.0.2", gripper: bool = True,
                 gripper_speed: float = 0.05) -> None:  # fmt: skip
        self.panda_py: Any = lazy_import("panda_py", "panda-py", "pip install panda-python")
        self.host, self.use_gripper, self.gripper_speed = host, gripper, gripper_speed
        self.panda: Any = None
        self.gripper: Any = None
        self.controller: Any = None
        self._robot_time: float | None = None
        self._stamp = 0.0
        self._width = 0.08

    def connect(self) -> None:
        """Connect; an unreachable robot is a DriverUnavailableError."""
        if self.panda is not None:
            return
        try:
            self.panda = self.panda_py.Panda(self.host)
            if self.use_gripper:
                self.gripper = self.panda_py.libfranka.Gripper(self.host)
        except Exception as exc:  # libfranka's network and incompatible-version errors
            self.panda = None
            raise DriverUnavailableError(
                f"cannot reach the robot at {self.host!r} through panda-py "
                f"({type(exc).__name__}: {exc}); panda-py is libfranka 0.9.2: Panda only"
            ) from None

    def _call(self, fn: Any, *args: Any) -> Any:
        if self.panda is None:
            raise DisconnectError("panda-py: not connected")
        try:
            return fn(*args)
        except Exception as exc:  # panda-py surfaces libfranka errors as RuntimeError
            raise self._fault(exc) from None

    def _fault(self, exc: Exception) -> RobotFault:
        text = f"panda-py: {type(exc).__name__}: {exc}"
        if "network" in text.lower() or "connection" in text.lower():
            self.panda = None
            return DisconnectError(text)
        if "user stop" in text.lower():
            return UserStopError(text)
        return ReflexError(text)

    def read_state(self) -> RobotState:
        """The latest libfranka state (O_T_EE is column-major)."""
        state = self._call(self.panda.get_state)
        robot_time = float(getattr(getattr(state, "time", None), "to_sec", time.monotonic)())
        if robot_time != self._robot_time:
            self._robot_time, self._stamp = robot_time, self.clock()
        pose = np.asarray(state.O_T_EE, dtype=float).reshape(4, 4).T
        velocity = np.asarray(getattr(state, "O_dP_EE_c", np.zeros(6)), dtype=float)[:3]
        if self.gripper is not None:
            self._width = float(self._call(self.gripper.read_once).width)
        return RobotState(
            self._stamp, np.asarray(state.q, dtype=float), self._width, pose[:3, 3],
            Rotation.from_matrix(pose[:3, :3]).as_quat(), velocity,
        )  # fmt: skip

    def set_ee_target(self, position: np.ndarray, orientation: np.ndarray) -> None:
        """Update the Cartesian impedance controller's reference (started on first use)."""
        pos, orn = check_pose(position, orientation)
        if self.controller is None:
            self.controller = self.panda_py.controllers.CartesianImpedance()
            self._call(self.panda.start_controller, self.controller)
        self._call(self.controller.set_control, pos, orn)

    def set_gripper(self, width: float) -> None:
        """Move the fingers in a background thread (libfranka's gripper calls block)."""
        if self.gripper is not None:
            target = float(np.clip(width, 0.0, 0.08))
            threading.Thread(
                target=self.gripper.move, args=(target, self.gripper_speed), daemon=True
            ).start()

    def move_to_joints(self, joints: np.ndarray, timeout: float = 10.0) -> None:
        """Blocking joint move (stops the Cartesian controller first)."""
        self.stop()
        self._call(self.panda.move_to_joint_position, np.asarray(joints, dtype=float))

    def recover(self) -> None:
        """libfranka's automatic error recovery, after the operator's acknowledgement."""
        self._call(self.panda.recover)

    def stop(self) -> None:
        """Stop the running controller (the robot holds position)."""
        if self.panda is not None and self.controller is not None:
            self._call(self.panda.stop_controller)
        self.controller = None

    def close(self) -> None:
        """Stop and drop the connection."""
        try:
            self.stop()
        finally:
            self.panda = self.gripper = None
