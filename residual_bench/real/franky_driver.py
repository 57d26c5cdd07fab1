"""The ``franky`` driver: franky-control's own 1 kHz controller tracks our targets.

franky-control ships wheels per libfranka version: a Panda (system 4.x, server protocol 5)
needs the libfranka 0.9.2 build, an FR3 the default one (see ``docs/real_robot.md``). Each
target is an absolute :class:`franky.CartesianMotion` sent asynchronously; a new motion
takes over the running one seamlessly, so Python only acts at the control rate.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

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


class FrankyDriver(WallClock):
    """A Franka arm (and hand) through franky-control.

    Args:
        host: the robot's FCI address (the control box's shop-floor IP).
        dynamics_factor: franky's relative dynamics factor (velocity, acceleration and jerk
            as a fraction of the robot's limits); 0.1 keeps it well below Franka's.
        gripper: whether a Franka Hand is attached.
        gripper_speed: finger speed in m/s.
    """

    name = "franky"

    def __init__(
        self,
        host: str = "172.16.0.2",
        dynamics_factor: float = 0.1,
        gripper: bool = True,
        gripper_speed: float = 0.05,
    ) -> None:
        self.franky: Any = lazy_import(
            "franky", "franky", "pip install franky-control  (Panda: the libfranka 0.9.2 wheel)"
        )
        self.host, self.dynamics_factor = host, dynamics_factor
        self.use_gripper, self.gripper_speed = gripper, gripper_speed
        self.robot: Any = None
        self.gripper: Any = None
        self._robot_time: float | None = None
        self._stamp = 0.0
        self._width = 0.08

    def connect(self) -> None:
        """Connect to the arm and hand; an unreachable robot is a DriverUnavailableError."""
        if self.robot is not None:
            return
        franky = self.franky
        try:
            self.robot = franky.Robot(self.host)
            self.robot.relative_dynamics_factor = self.dynamics_factor
            if self.use_gripper:
                self.gripper = franky.Gripper(self.host)
        except Exception as exc:  # franky raises its own network / protocol types
            self.robot = None
            raise DriverUnavailableError(
                f"cannot reach the robot at {self.host!r} through franky "
                f"({type(exc).__name__}: {exc}); check the network, that FCI is enabled in "
                "Desk and that the libfranka version matches the robot"
            ) from None

    def _fault(self, exc: Exception) -> RobotFault:
        franky, text = self.franky, str(exc)
        if isinstance(exc, franky.NetworkException):
            self.robot = None
            return DisconnectError(f"franky: {text}")
        if "user stop" in text.lower() or "user_stop" in text.lower():
            return UserStopError(f"franky: {text}")
        return ReflexError(f"franky: {type(exc).__name__}: {text}")

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if self.robot is None:
            raise DisconnectError("franky: not connected")
        try:
            return fn(*args, **kwargs)
        except self.franky.Exception as exc:
            raise self._fault(exc) from None
        except RuntimeError as exc:
            raise self._fault(exc) from None

    def read_state(self) -> RobotState:
        """The latest state; its timestamp only advances when the robot's own time does."""
        robot = self.robot
        state = self._call(lambda: robot.state)
        if self._call(lambda: robot.has_errors):
            raise ReflexError(
                f"franky: robot reports errors: {getattr(state, 'current_errors', '')}"
            )
        robot_time = float(
            getattr(getattr(state, "time", None), "to_sec", lambda: time.monotonic())()
        )
        if robot_time != self._robot_time:
            self._robot_time, self._stamp = robot_time, self.clock()
        cart = self._call(lambda: robot.current_cartesian_state)
        pose = cart.pose.end_effector_pose
        joints = np.asarray(self._call(lambda: robot.current_joint_state).position, dtype=float)
        if self.gripper is not None:
            self._width = float(self.gripper.width)
        return RobotState(
            self._stamp,
            joints,
            self._width,
            np.asarray(pose.translation, dtype=float),
            np.asarray(pose.quaternion, dtype=float),
            np.asarray(cart.velocity.end_effector_twist.linear, dtype=float),
        )

    def set_ee_target(self, position: np.ndarray, orientation: np.ndarray) -> None:
        """Queue an absolute Cartesian target; returns at once."""
        franky = self.franky
        pos, orn = check_pose(position, orientation)
        motion = franky.CartesianMotion(
            franky.Affine(pos, orn), franky.ReferenceType.Absolute, return_when_finished=False
        )
        self._call(self.robot.move, motion, asynchronous=True)

    def set_gripper(self, width: float) -> None:
        """Start a finger move (asynchronous); a close is sent as a move, not a grasp."""
        if self.gripper is not None:
            self._call(
                self.gripper.move_async, float(np.clip(width, 0.0, 0.08)), self.gripper_speed
            )

    def move_to_joints(self, joints: np.ndarray, timeout: float = 10.0) -> None:
        """Blocking joint move (resets); the timeout is enforced by franky's own dynamics."""
        franky = self.franky
        motion = franky.JointMotion(franky.JointState(list(map(float, joints))))
        self._call(self.robot.move, motion, asynchronous=True)
        start = time.monotonic()
        while True:
            if self._call(self.robot.join_motion, 0.1):
                return
            if time.monotonic() - start > timeout:
                self.stop()
                raise ReflexError(f"franky: joint move did not finish in {timeout} s")

    def recover(self) -> None:
        """Clear errors (automatic error recovery) after the operator's acknowledgement."""
        self._call(self.robot.recover_from_errors)

    def stop(self) -> None:
        """Stop the running motion."""
        if self.robot is not None:
            self._call(self.robot.stop)

    def close(self) -> None:
        """Stop and drop the connection."""
        try:
            self.stop()
        finally:
            self.robot = self.gripper = None
