"""The digital twin: the benchmark's PyBullet Panda behind the :class:`RobotDriver` protocol.

Time is simulated: :meth:`TwinDriver.sleep` steps physics, so a session on the twin runs as
fast as the CPU allows while every timestamp behaves like a real clock. A target is solved
by inverse kinematics once and tracked by PyBullet's joint motors, as a real target is
tracked by libfranka's controller.

Faults are injected at a simulated time with :meth:`TwinDriver.inject`:

==============  ==============================================================================
``reflex``      the arm halts; reads and commands raise :class:`ReflexError` until recover()
``user_stop``   as ``reflex`` with :class:`UserStopError`
``stale_state`` for ``duration`` s every read returns the same old state (timestamp frozen)
``disconnect``  everything raises :class:`DisconnectError` until connect()
``late_frames`` for ``duration`` s the camera returns the frame from the fault's start
==============  ==============================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from residual_bench.env_spec import load_env_spec
from residual_bench.real.cameras import Frame
from residual_bench.real.driver import (
    DisconnectError,
    ReflexError,
    RobotFault,
    RobotState,
    UserStopError,
    check_pose,
)
from residual_bench.sim.camera import Camera, CameraPose
from residual_bench.sim.panda import Panda
from residual_bench.sim.pybullet_world import PHYSICS_HZ, PyBulletWorld
from residual_bench.tasks.pick_place import PickPlaceTask

FAULTS = ("reflex", "user_stop", "stale_state", "disconnect", "late_frames")
_STOPS = {"reflex": ReflexError, "user_stop": UserStopError}


@dataclass
class Fault:
    """An injected fault: ``kind`` from :data:`FAULTS`, active from ``at`` (simulated s)."""

    kind: str
    at: float
    duration: float = 0.0


class TwinDriver:
    """A simulated Panda on the benchmark's tabletop.

    Args:
        objects: object split the twin's scene draws from.
    """

    name = "twin"

    def __init__(self, objects: str = "train") -> None:
        self.world = PyBulletWorld()
        self.robot = Panda(self.world)
        self.spec = load_env_spec(None, {"task": {"n_objects": [1, 1]}})
        self.task = PickPlaceTask(self.world, self.robot, self.spec, objects)
        self._clean = self.world.save_state()
        self._time = 0.0
        self._faults: list[Fault] = []
        self._stopped: RobotFault | None = None
        self._connected = False
        self._last_state: RobotState | None = None
        self._last_frame: Frame | None = None

    # -- scene (twin only: on hardware the operator arranges the scene) --------------------

    def reset_scene(self, seed: int) -> str:
        """Lay out a fresh scene from ``seed``; returns its instruction."""
        self.task.clear()
        self.world.restore_state(self._clean)
        self.robot.reset()
        self.task.build(np.random.default_rng(seed))
        self.world.step(PHYSICS_HZ // 2)
        self.task.settle()
        return self.task.instruction

    def oracle(self) -> dict:
        """Ground-truth task progress (success, grasp): what the twin's operator labels with."""
        tcp, _ = self.robot.tcp_pose()
        return self.task.progress(self.task.object_states(), tcp)

    def segmentation_classes(self) -> dict[int, int]:
        """PyBullet body id -> the env's semantic class ids."""
        bodies = self.world.bodies
        classes = {bodies["table"]: 1, bodies["panda"]: 2, bodies["plate"]: 3}
        for index, obj in enumerate(self.task.objects):
            classes[bodies[obj.body_name]] = 4 + index
        return classes

    # -- faults --------------------------------------------------------------------------

    def inject(self, kind: str, at: float | None = None, duration: float = 0.0) -> None:
        """Schedule a fault at simulated time ``at`` (now when ``None``)."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; valid choices: {', '.join(FAULTS)}")
        self._faults.append(Fault(kind, self._time if at is None else float(at), duration))
        self._fire_due()

    def _active(self, kind: str) -> Fault | None:
        for f in self._faults:
            if f.kind == kind and f.at <= self._time < f.at + f.duration:
                return f
        return None

    def _fire_due(self) -> None:
        for f in [f for f in self._faults if f.kind in ("reflex", "user_stop", "disconnect")]:
            if f.at <= self._time:
                self._faults.remove(f)
                if f.kind == "disconnect":
                    self._connected = False
                else:
                    self._stopped = _STOPS[f.kind](f"twin: injected {f.kind} at t={f.at:.3f}")
                self._halt()

    def _check(self) -> None:
        self._fire_due()
        if not self._connected:
            raise DisconnectError("twin: not connected (call connect())")
        if self._stopped is not None:
            raise self._stopped

    def _halt(self) -> None:
        self._send_arm(self.robot.joint_positions()[:7])

    # -- RobotDriver -----------------------------------------------------------------------

    def connect(self) -> None:
        """Connect (clears an injected disconnect)."""
        self._connected = True

    def read_state(self) -> RobotState:
        """The simulated state, or the frozen one during a ``stale_state`` fault."""
        self._check()
        if self._active("stale_state") and self._last_state is not None:
            return self._last_state
        joints = self.robot.joint_positions()
        pos, orn, vel = self.robot.tcp_state()
        self._last_state = RobotState(self._time, joints[:7], float(joints[7] + joints[8]),
                                      pos, orn, vel)  # fmt: skip
        return self._last_state

    def set_ee_target(self, position: np.ndarray, orientation: np.ndarray) -> None:
        """Solve IK once for the target; the joint motors track it while time passes."""
        self._check()
        pos, orn = check_pose(position, orientation)
        self._send_arm(self.robot.inverse_kinematics(pos, orn, iterations=20))

    def _send_arm(self, arm: np.ndarray) -> None:
        self.robot.command_arm(arm)

    def set_gripper(self, width: float) -> None:
        """Command the finger opening (m)."""
        self._check()
        self.robot.command_fingers(float(np.clip(width, 0.0, 0.08)) / 2)

    def move_to_joints(self, joints: np.ndarray, timeout: float = 10.0) -> None:
        """Drive the arm to ``joints`` with the motors (blocking, in simulated time)."""
        self._check()
        self._send_arm(np.asarray(joints, dtype=float))
        elapsed = 0.0
        while elapsed < timeout:
            self.sleep(0.1)
            elapsed += 0.1
            self._check()
            if np.max(np.abs(self.robot.joint_positions()[:7] - joints)) < 0.01:
                return
        raise ReflexError(f"twin: joint move did not converge in {timeout} s")

    def recover(self) -> None:
        """Clear a reflex or user stop (the operator has acknowledged it)."""
        if not self._connected:
            raise DisconnectError("twin: cannot recover while disconnected; connect() first")
        self._stopped = None

    def stop(self) -> None:
        """Hold the current joint positions."""
        if self._connected:
            self._halt()

    def clock(self) -> float:
        """Simulated seconds since the twin was made."""
        return self._time

    def sleep(self, seconds: float) -> None:
        """Simulate ``seconds`` of physics."""
        n = max(0, int(round(seconds * PHYSICS_HZ)))
        self.world.step(n)
        self._time += n / PHYSICS_HZ
        self._fire_due()

    def close(self) -> None:
        """Release the simulation."""
        self.world.close()
        self._connected = False


class TwinCamera:
    """The benchmark's simulated camera on the twin's scene, with ``late_frames`` faults."""

    name = "twin"

    def __init__(self, twin: TwinDriver, size: int) -> None:
        self.twin = twin
        cam = twin.spec["camera"]
        self.pose: CameraPose | None = CameraPose(tuple(cam["eye"]), tuple(cam["target"]),
                                                  cam["fov_deg"])  # fmt: skip
        self.camera = Camera(twin.world, size, size)
        self.camera.set_pose(self.pose)

    def start(self) -> None:
        """Nothing to open."""

    def read(self) -> Frame:
        """Render rgb, depth and segmentation; repeats the old frame while frames are late."""
        twin = self.twin
        if twin._active("late_frames") and twin._last_frame is not None:
            return twin._last_frame
        self.camera.set_segmentation_classes(twin.segmentation_classes())
        f = self.camera.render(rgb=True, depth=True, segmentation=True)
        twin._last_frame = Frame(f.rgb, f.depth, twin.clock(), f.segmentation)
        return twin._last_frame

    def stop(self) -> None:
        """Nothing to release."""
