"""``PandaReal-v0``: the real Franka Panda (or its twin) as a gymnasium env.

Same action and observation conventions as ``ResidualPickPlace-v1`` for the image modes,
so a residual trained in sim runs unchanged: the action is the sim's normalised delta pose
plus absolute gripper, accumulated on a commanded target exactly as in
:mod:`residual_bench.sim.panda`, but passed through the :class:`SafetyLayer` and sent to the
driver's own controller. There is no privileged ``state`` mode on a robot.

Step ``info`` carries the keys the shared recorder needs. Success and grasp are unknown on
hardware until the operator labels the episode, so they are reported as ``False`` and
``tcp_to_object_xy`` as infinity (unknown; NaN would break
equality checks on info) during the episode; the session writes the operator's label into
the record. Further keys: ``termination_reason`` (``None``, ``reflex``, ``user_stop``,
``disconnect``, ``watchdog``, or the safety layer's ``joint_limit``, ``non_finite_input``,
``malformed_input``, ``clock``), ``safety_mode``, ``safety_interventions``, ``frame_age``,
``frame_late`` and ``overrun`` (the step took longer than its period).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from residual_bench.language import INSTRUCTION_DIM, instruction_features
from residual_bench.real.cameras import (
    CameraSource,
    GroundTruthSegmenter,
    RealSenseCamera,
    ReplayCamera,
    Segmenter,
    fit_frame,
)
from residual_bench.real.driver import RobotDriver, RobotFault, RobotState
from residual_bench.real.franky_driver import FrankyDriver
from residual_bench.real.panda_py_driver import PandaPyDriver
from residual_bench.real.safety import SafetyLayer, SafetyLimits, check_reset_joints
from residual_bench.real.twin import TwinCamera, TwinDriver
from residual_bench.sim.panda import HOME_JOINTS
from residual_bench.spaces import PROPRIO_DIM, camera_spaces, validate_action
from residual_bench.tasks.pick_place import SEGMENTATION_CLASSES, PickPlaceTask

REAL_OBS_MODES = ("rgb", "rgbd", "rgb+seg", "rgbd+seg")
DRIVERS = ("twin", "franky", "panda-py")
DEFAULT_INSTRUCTION = "put the object on the plate"


class FaultNotAcknowledged(RuntimeError):
    """A fault ended the last episode and no operator has acknowledged it yet."""


def make_driver(driver: str | RobotDriver, **options: Any) -> RobotDriver:
    """A driver by name (``twin``, ``franky``, ``panda-py``) or a ready driver object."""
    if not isinstance(driver, str):
        if not isinstance(driver, RobotDriver):
            raise ValueError(f"driver must be one of {list(DRIVERS)} or a RobotDriver")
        return driver
    if driver == "twin":
        return TwinDriver(**options)
    if driver == "franky":
        return FrankyDriver(**options)
    if driver == "panda-py":
        return PandaPyDriver(**options)
    raise ValueError(f"unknown driver {driver!r}; valid choices: {', '.join(DRIVERS)}")


class PandaRealEnv(gym.Env):
    """A Franka Panda driven through a :class:`RobotDriver`, with a camera and a segmenter.

    Args:
        driver: ``twin``, ``franky``, ``panda-py`` or a driver object.
        obs_mode: ``rgb``, ``rgbd``, ``rgb+seg`` or ``rgbd+seg``.
        image_size: square image size of the observation (frames are centre-cropped).
        control_hz: control rate (targets per second).
        camera: ``None`` (the twin's camera on the twin, else ``realsense``), ``realsense``,
            an ``.npz`` replay file or a :class:`CameraSource`.
        segmenter: a :class:`Segmenter`; needed for ``+seg`` modes off the twin.
        instruction: the task instruction (``reset`` option ``instruction`` overrides it).
        episode_seconds: time limit (truncation).
        limits: the :class:`SafetyLimits`.
        home_joints: the reset configuration (``reset`` option ``joints`` overrides it).
        max_frame_age: frames older than this (s) are marked late; default two periods.
        driver_options: keyword arguments of the driver (e.g. ``host``).
        render_mode: ``None`` or ``rgb_array`` (the latest camera image).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}
    task_class = PickPlaceTask
    """The task the real robot runs: its segmentation classes (the segmenter's ids) and goal
    body are what a residual's ``objects`` features read, as in simulation."""

    def __init__(
        self,
        driver: str | RobotDriver = "twin",
        obs_mode: str = "rgbd+seg",
        image_size: int = 84,
        control_hz: int = 20,
        camera: str | CameraSource | None = None,
        segmenter: Segmenter | None = None,
        instruction: str | None = None,
        episode_seconds: float = 12.0,
        limits: SafetyLimits | None = None,
        home_joints: np.ndarray | None = None,
        max_frame_age: float | None = None,
        driver_options: dict[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        if obs_mode not in REAL_OBS_MODES:
            raise ValueError(
                f"obs_mode must be one of {list(REAL_OBS_MODES)} on a robot (no privileged "
                f"state), got {obs_mode!r}"
            )
        if not isinstance(image_size, int) or not 32 <= image_size <= 256:
            raise ValueError(f"image_size must be an integer in [32, 256], got {image_size!r}")
        if not isinstance(control_hz, int) or not 1 <= control_hz <= 50:
            raise ValueError(f"control_hz must be an integer in [1, 50], got {control_hz!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.obs_mode, self.image_size, self.control_hz = obs_mode, image_size, control_hz
        self.dt = 1.0 / control_hz
        self.metadata = {**type(self).metadata, "render_fps": control_hz}
        self.render_mode = render_mode
        self.max_steps = int(round(episode_seconds * control_hz))
        self.default_instruction = instruction
        limits = limits or SafetyLimits()
        self.home_joints = check_reset_joints(
            HOME_JOINTS if home_joints is None else home_joints, limits.joint_margin
        )
        self.max_frame_age = 2 * self.dt if max_frame_age is None else float(max_frame_age)
        self.driver = make_driver(driver, **(driver_options or {}))
        self.camera = self._make_camera(camera)
        if segmenter is None and self.camera.name == "twin":
            segmenter = GroundTruthSegmenter()
        if segmenter is None and obs_mode.endswith("+seg"):
            raise ValueError(f"obs_mode={obs_mode!r} needs a segmenter off the twin")
        self.segmenter = segmenter
        self.safety = SafetyLayer(limits, self.dt)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(7,), dtype=np.float32)
        self.observation_space = self._make_observation_space()
        self.instruction = ""
        self.episode_seed: int | None = None
        self._obs: dict[str, np.ndarray] | None = None
        self._frame = None
        self._done = True
        self._steps = 0
        self.driver.connect()
        self.camera.start()

    def _make_camera(self, camera: str | CameraSource | None) -> CameraSource:
        if camera is None:
            camera = "twin" if self.driver.name == "twin" else "realsense"
        if camera == "twin":
            return TwinCamera(self.driver, self.image_size)
        if camera == "realsense":
            return RealSenseCamera(clock=self.driver.clock)
        if isinstance(camera, str | Path):
            return ReplayCamera(camera, clock=self.driver.clock)
        return camera

    def _make_observation_space(self) -> spaces.Dict:
        # Must equal ResidualPickPlace-v1's for the same mode and size (a test checks it).
        obs = {
            "proprio": spaces.Box(-np.inf, np.inf, (PROPRIO_DIM,), np.float32),
            "instruction": spaces.Box(-1.0, 1.0, (INSTRUCTION_DIM,), np.float32),
            **camera_spaces(self.obs_mode, self.image_size, len(SEGMENTATION_CLASSES)),
        }
        return spaces.Dict(obs)

    @property
    def time(self) -> float:
        """Seconds on the driver's clock since the last reset."""
        return self.driver.clock() - self._t0

    # -- gymnasium API -----------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Move to the reset pose (blocking) and start an episode.

        Options: ``joints`` (7 reset joint angles) and ``instruction``.

        Raises:
            FaultNotAcknowledged: the previous episode ended in a fault that no operator has
                acknowledged (:meth:`acknowledge_fault`).
        """
        super().reset(seed=seed)
        if self.safety.latched is not None:
            raise FaultNotAcknowledged(
                f"the last episode ended with {self.safety.latched!r}; an operator must "
                "inspect the robot and call acknowledge_fault() before the next reset"
            )
        options = dict(options or {})
        unknown = sorted(set(options) - {"joints", "instruction"})
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; valid: joints, instruction")
        self.episode_seed = (
            int(seed) if seed is not None else int(self.np_random.integers(2**63 - 1))
        )
        instruction = options.get("instruction") or self.default_instruction
        reset_scene = getattr(self.driver, "reset_scene", None)
        if reset_scene is not None:  # the twin lays out its own scene
            instruction = instruction or reset_scene(self.episode_seed % 2**32)
        self.instruction = instruction or DEFAULT_INSTRUCTION
        self._instruction_vec = instruction_features(self.instruction)
        joints = check_reset_joints(
            options.get("joints", self.home_joints), self.safety.limits.joint_margin
        )
        self.driver.move_to_joints(joints)
        state = self.driver.read_state()
        self.safety.reset(state)
        self._t0 = self._deadline = self._action_time = self.driver.clock()
        self._steps, self._done = 0, False
        self._observe(state)
        info = self._info()
        info.update(seed=self.episode_seed, new_events=[])
        return self._obs, info

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict[str, Any]]:
        """Send one safe target, wait for the next control tick and observe."""
        action = validate_action(action)
        if self._done:
            raise ResetNeeded("PandaRealEnv: the episode is over; call reset()")
        driver, reason, mode, interventions = self.driver, None, "stop", []
        now = driver.clock()
        try:
            state = driver.read_state()
            decision = self.safety.filter(action, state, now, self._action_time)
            mode, interventions = decision.mode, [i.kind for i in decision.interventions]
            if mode == "stop":
                driver.stop()
                reason = self.safety.latched or "watchdog"
            elif mode == "track":
                driver.set_ee_target(decision.position, decision.orientation)
                driver.set_gripper(decision.gripper_width)
            # On "hold" nothing new is sent: the library keeps tracking the last target.
        except RobotFault as fault:
            reason = self._fault(fault, now)
        # Pace even after a fault, so that time advances by a period on every step.
        self._deadline += self.dt
        overrun = driver.clock() > self._deadline + 1e-9
        self._deadline = max(self._deadline, driver.clock())
        driver.sleep(self._deadline - driver.clock())
        if reason is None:
            try:
                state = driver.read_state()
                self._observe(state)
            except RobotFault as fault:
                reason = self._fault(fault, now)
        self._steps += 1
        terminated = reason is not None
        self._done = terminated or self._steps >= self.max_steps
        info = self._info()
        info.update(
            new_events=[],
            termination_reason=reason,
            safety_mode=mode,
            safety_interventions=interventions,
            overrun=bool(overrun),
        )
        truncated = not terminated and self._steps >= self.max_steps
        return self._obs, 0.0, terminated, truncated, info

    def _fault(self, fault: RobotFault, now: float) -> str:
        self.safety.latch(fault.reason, now)
        try:
            self.driver.stop()
        except RobotFault:
            pass  # already stopped or gone; the latch keeps the robot out of use
        return fault.reason

    def acknowledge_fault(self, operator: str) -> None:
        """An operator has inspected the robot: reconnect if needed, clear the fault."""
        if self.safety.latched == "disconnect":
            self.driver.connect()
        self.driver.recover()
        self.safety.acknowledge(operator, self.driver.clock())

    def mark_action_time(self, time: float) -> None:
        """When the observation behind the next action was taken (default: the last step's);
        a chunked or remote base reports its own, older, time here for the watchdog. On the
        driver's clock: a time ahead of it is a latched stop (it would silence the watchdog)."""
        self._action_time = float(time)

    def render(self) -> np.ndarray | None:
        """The latest camera image (full resolution)."""
        if self.render_mode != "rgb_array" or self._frame is None:
            return None
        return self._frame.rgb

    def close(self) -> None:
        if getattr(self, "driver", None) is not None:
            try:
                self.driver.stop()
            except RobotFault:
                # A faulted robot has already stopped itself; the camera and the connection
                # must still be released, which is what close() is for.
                pass
            self.camera.stop()
            self.driver.close()
            self.driver = None

    # -- internals -------------------------------------------------------------------------

    def _observe(self, state: RobotState) -> None:
        self._frame = self.camera.read()
        self._action_time = self.driver.clock()
        frame = fit_frame(self._frame, self.image_size)
        half = state.gripper_width / 2
        proprio = np.concatenate(
            [state.joints, [half, half], state.tcp_position, state.tcp_orientation,
             state.tcp_velocity, [state.gripper_width]]
        )  # fmt: skip
        obs = {
            "proprio": proprio.astype(np.float32),
            "instruction": self._instruction_vec.copy(),
            "rgb": frame.rgb.astype(np.uint8),
        }
        if self.obs_mode.startswith("rgbd"):
            if frame.depth is None:
                raise ValueError(f"obs_mode={self.obs_mode!r} needs a depth camera")
            obs["depth"] = np.maximum(frame.depth, 0.0).astype(np.float32)
        if self.obs_mode.endswith("+seg"):
            obs["segmentation"] = self.segmenter.segment(frame, self.instruction).astype(np.uint8)
        self._obs = obs

    def _info(self) -> dict[str, Any]:
        age = self.driver.clock() - self._frame.timestamp if self._frame is not None else 0.0
        return {
            "time": self.time,
            "success": False,
            "is_grasped": False,
            "tcp_to_object_xy": math.inf,
            "instruction": self.instruction,
            "target_object": "",
            "base_stalled": False,
            "real": True,
            "frame_age": float(age),
            "frame_late": bool(age > self.max_frame_age + 1e-9),
        }
