"""What every robot driver provides: the :class:`RobotDriver` protocol, its state and errors.

A driver hides one way of talking to a Franka arm (the PyBullet twin, franky, panda-py)
behind the same small surface. Drivers never run a control loop in Python: an end-effector
target goes to the library's own (1 kHz, C++) controller, which interpolates towards it, and
the env only sends a new target at the control rate.

Faults are exceptions derived from :class:`RobotFault`, each with a machine-readable
``reason``; the env turns them into the end of an episode, never into a silent retry.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

GRIPPER_MAX_WIDTH = 0.08
"""Fully open Franka Hand, metres between the fingers."""


@dataclass(frozen=True)
class RobotState:
    """One reading of the arm.

    Attributes:
        timestamp: the driver's monotonic clock when the state was measured (seconds). A
            timestamp that stops advancing means the state is stale.
        joints: the 7 arm joint angles (rad).
        gripper_width: distance between the fingers (m).
        tcp_position: grasp point in the robot base frame (m).
        tcp_orientation: grasp point quaternion (x, y, z, w).
        tcp_velocity: grasp point linear velocity (m/s).
    """

    timestamp: float
    joints: np.ndarray
    gripper_width: float
    tcp_position: np.ndarray
    tcp_orientation: np.ndarray
    tcp_velocity: np.ndarray


class RobotFault(RuntimeError):
    """The robot stopped or cannot be reached; ends the episode with :attr:`reason`."""

    reason = "fault"


class ReflexError(RobotFault):
    """libfranka's reflex (collision or limit violation) stopped the arm."""

    reason = "reflex"


class UserStopError(RobotFault):
    """The external activation device (user stop) was pressed."""

    reason = "user_stop"


class DisconnectError(RobotFault):
    """The connection to the robot was lost; a reconnect is needed."""

    reason = "disconnect"


class DriverUnavailableError(ValueError):
    """A driver's library is missing or its robot cannot be reached.

    A ``ValueError`` so the command line reports it as one line, like any other bad input.
    """


@runtime_checkable
class RobotDriver(Protocol):
    """The surface :class:`~residual_bench.real.env.PandaRealEnv` drives.

    All times are the driver's own monotonic clock (:meth:`clock`): wall time on hardware,
    simulated time on the twin, so the env paces itself the same way on both.
    """

    name: str

    def connect(self) -> None:
        """Open the connection (idempotent); raises :class:`DriverUnavailableError`."""

    def read_state(self) -> RobotState:
        """The latest measured state; raises a :class:`RobotFault` if the robot stopped."""

    def set_ee_target(self, position: np.ndarray, orientation: np.ndarray) -> None:
        """Send a new end-effector target and return at once (the library tracks it)."""

    def set_gripper(self, width: float) -> None:
        """Command the finger opening in metres (non-blocking)."""

    def move_to_joints(self, joints: np.ndarray, timeout: float = 10.0) -> None:
        """Move to a joint configuration and block until there (resets only)."""

    def recover(self) -> None:
        """Clear a reflex or user stop, after an operator has acknowledged it."""

    def stop(self) -> None:
        """Stop any motion now and hold position."""

    def clock(self) -> float:
        """Seconds on the driver's monotonic clock."""

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass (the twin simulates them, hardware waits)."""

    def close(self) -> None:
        """Stop and release the connection."""


def check_pose(position: np.ndarray, orientation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate an end-effector target before it reaches hardware.

    Raises:
        ValueError: wrong shape, non-finite values or a quaternion far from unit length.
    """
    pos = np.asarray(position, dtype=float)
    orn = np.asarray(orientation, dtype=float)
    if pos.shape != (3,) or orn.shape != (4,):
        raise ValueError(f"target must be (3,) and (4,), got {pos.shape} and {orn.shape}")
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(orn))):
        raise ValueError(f"target is not finite: {pos.tolist()} {orn.tolist()}")
    norm = float(np.linalg.norm(orn))
    if abs(norm - 1.0) > 1e-3:
        raise ValueError(f"target quaternion has norm {norm:.4f}, expected 1")
    return pos, orn / norm


def lazy_import(module: str, driver: str, install: str) -> object:
    """Import a hardware library only when its driver is used.

    Raises:
        DriverUnavailableError: the library is not installed, naming what to install.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DriverUnavailableError(
            f"the {driver!r} driver needs the {module!r} module ({exc}); install it with "
            f"`{install}` (see docs/real_robot.md for the libfranka version per robot)"
        ) from None


class WallClock:
    """``clock`` and ``sleep`` of a driver for a real robot: monotonic wall-clock time; the
    library's own controller keeps tracking the last target while Python sleeps."""

    def clock(self) -> float:
        """Wall-clock monotonic seconds."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Wait without blocking the robot's controller."""
        if seconds > 0:
            time.sleep(seconds)
