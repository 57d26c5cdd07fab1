"""The one gymnasium environment class, over any registered task.

Every task id (``ResidualPickPlace-v1``, ...) builds :class:`ResidualTaskEnv` over its
:class:`~residual_bench.tasks.task.Task` (see :mod:`residual_bench.tasks`); the action
convention is :mod:`residual_bench.sim.panda`'s. This module wires world, robot, task and
camera into a ``gymnasium.Env`` and owns everything about observations, seeding and input
checking; what differs between tasks is asked of the task.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from residual_bench.env_arguments import check_env_arguments
from residual_bench.env_spec import load_env_spec, spec_hash
from residual_bench.language import instruction_features
from residual_bench.perturb import PerturbationScheduler, Suite, check_suite_applies, load_suite
from residual_bench.sim.camera import Camera, jitter_cameras
from residual_bench.sim.panda import Panda
from residual_bench.sim.pybullet_world import PHYSICS_HZ, PyBulletWorld
from residual_bench.spaces import OBJECT_FEATURES, observation_space, validate_action
from residual_bench.tasks.registry import task_entry
from residual_bench.tasks.task import Task

SETTLE_SECONDS = 0.5
"""Simulated time objects get to come to rest before an episode starts (blobs rock)."""


REACH_M = 0.9
"""Horizontal distance (m) from the robot's base beyond which the target object is out of the
Panda's reach (0.855 m): the env ends the episode there, as a failure (unless built with
``terminate_out_of_reach=False``, as ``ResidualPickPlace-v0`` is)."""


class ResidualTaskEnv(gym.Env):
    """A language-conditioned Franka Panda task in PyBullet.

    Args:
        task: the task's id (``"ResidualPickPlace-v1"``) or :class:`Task` subclass.
        obs_mode: ``"state"`` (privileged object and goal state), ``"rgb"``, ``"rgbd"``,
            ``"rgb+seg"`` or ``"rgbd+seg"`` (camera images plus proprioception and
            instruction features).
        control_hz: control rate; physics runs at 240 Hz, so it must divide 240.
        objects: object split, ``"train"`` or ``"heldout"`` (novel objects).
        image_size: camera resolution in pixels (square), 32-256.
        render_mode: ``None`` or ``"rgb_array"`` (a 256 px view for videos).
        reward_mode: ``"dense"`` (staged shaping in [0, 1]) or ``"sparse"`` (1 on success).
        scene_spec: scene and randomisation spec: a shipped name, a YAML path or a dict,
            laid over the task's own (``envs/pick_place.yaml`` for pick-and-place).
        scene_overrides: dict laid over that, e.g. ``{"task": {"n_objects": [1, 1]}}``.
        terminate_on_success: end the episode at the first success instead of at the time
            limit (the benchmark's metrics use the state at the time limit, so default off).
        suite: perturbation suite: a shipped name (``bench list``), a YAML path or a dict;
            ``None`` is ``nominal`` (no perturbations). See :mod:`residual_bench.perturb`.
        terminate_out_of_reach: end the episode once the target has left the arm's reach.
        instructions: the instruction's wordings, ``"train"`` or ``"heldout"`` (wordings no
            training episode uses; the same scenes, seed for seed).

    Observation (a ``Dict``; all arrays float32 unless noted):
        ``proprio`` (20,): 7 arm joints, 2 finger joints, grasp-point position (3),
        quaternion (4), linear velocity (3), gripper width (1).
        ``instruction`` (32,): :func:`instruction_features` of the instruction.
        state mode: ``objects`` (3, 13): per object position, quaternion, linear velocity and
        position relative to the grasp point, target first, zero rows for absent objects;
        ``object_mask`` (3,); ``goal`` (3,): the task's goal point (pick-and-place: the
        plate's centre on its top surface).
        image modes: ``rgb`` (H, W, 3) uint8; ``depth`` (H, W, 1) metres; ``segmentation``
        (H, W, 1) uint8 with the ids of :attr:`segmentation_names`.

    The instruction string is ``env.unwrapped.instruction`` and ``info["instruction"]``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        task: str | type[Task],
        obs_mode: str = "state",
        control_hz: int = 20,
        objects: str = "train",
        image_size: int = 84,
        render_mode: str | None = None,
        reward_mode: str = "dense",
        scene_spec: str | dict | None = None,
        scene_overrides: dict | None = None,
        terminate_on_success: bool = False,
        suite: str | dict | Suite | None = None,
        terminate_out_of_reach: bool = True,
        instructions: str = "train",
        **unknown: Any,
    ) -> None:
        self.task_class = task_entry(task).task if isinstance(task, str) else task
        control_hz, image_size = check_env_arguments(
            self.task_class,
            unknown,
            obs_mode=obs_mode,
            control_hz=control_hz,
            objects=objects,
            instructions=instructions,
            image_size=image_size,
            render_mode=render_mode,
            reward_mode=reward_mode,
        )
        self.obs_mode = obs_mode
        self.control_hz = control_hz
        # Per instance: recorded videos must play at this env's own control rate.
        self.metadata = {**type(self).metadata, "render_fps": control_hz}
        self.dt = 1.0 / control_hz
        self.substeps = PHYSICS_HZ // control_hz
        self.objects_split = objects
        self.reward_mode = reward_mode
        self.render_mode = render_mode
        self.terminate_on_success = terminate_on_success
        self.terminate_out_of_reach = bool(terminate_out_of_reach)
        self.scene_spec = load_env_spec(scene_spec, scene_overrides, self.task_class.scene)
        self.scene_spec_hash = spec_hash(self.scene_spec)
        self.suite = load_suite(suite)
        # A kind or a trigger phase the task does not have would never fire: refuse it here.
        origin = None if suite is None or isinstance(suite, dict | Suite) else str(suite)
        kinds, phases = self.task_class.perturbation_kinds, self.task_class.phases
        check_suite_applies(self.suite, self.task_class.env_id, phases, kinds, origin)
        # Everything that shapes the episodes a seed gives (not the observation format).
        self.env_spec_hash = spec_hash(
            {
                "scene": self.scene_spec,
                "suite": dataclasses.asdict(self.suite),
                "control_hz": control_hz,
                # Only when held out: the training wordings keep every record's hash.
                **({"instructions": instructions} if instructions != "train" else {}),
            }
        )
        self.max_steps = int(round(self.scene_spec["task"]["episode_seconds"] * control_hz))

        self.world = PyBulletWorld()
        self.robot = Panda(self.world)
        self.task = self.task_class(self.world, self.robot, self.scene_spec, objects)
        self.task.instructions = instructions
        self.camera = Camera(self.world, image_size, image_size)
        self._render_camera = Camera(self.world, 256, 256)
        self._clean_state = self.world.save_state()

        self.action_space = spaces.Box(-1.0, 1.0, shape=(7,), dtype=np.float32)
        self.observation_space = observation_space(
            obs_mode,
            image_size,
            self.task_class.max_objects,
            len(self.task_class.segmentation_classes),
        )
        self.instruction = ""
        self.episode_seed: int | None = None
        self._rng = np.random.default_rng(0)
        self._suite_rng = np.random.default_rng(0)
        self._noise_rng = np.random.default_rng(0)
        self._pixel_noise_std = 0.0
        self._steps = 0
        self._first_success_time: float | None = None
        self._scheduler = PerturbationScheduler(self.suite, self._rng)
        self._phase = self.task_class.phases[0]
        self._stall_until = -1.0
        self._object_force: np.ndarray | None = None
        self._object_force_substeps = 0

    # -- spaces ----------------------------------------------------------------------------

    @property
    def segmentation_names(self) -> dict[int, str]:
        """Segmentation id -> what it marks (pick-and-place: the target object is id 4)."""
        return dict(enumerate(self.task_class.segmentation_classes))

    @property
    def time(self) -> float:
        """Simulated seconds since the last reset."""
        return self._steps * self.dt

    # -- gymnasium API -----------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode. Every episode gets a seed (drawn from the env's generator when
        none is given), reported in ``info["seed"]``: resetting with it replays the episode."""
        super().reset(seed=seed)
        if options:
            raise ValueError(f"reset() takes no options, got {sorted(options)}")
        self.episode_seed = (
            int(seed) if seed is not None else int(self.np_random.integers(2**63 - 1))
        )
        # One stream per purpose, all from the episode seed: a suite's draws never shift the
        # scene or the camera noise, so adding a suite changes nothing before its first event.
        scene_seq, suite_seq, noise_seq = np.random.SeedSequence(self.episode_seed).spawn(3)
        self._rng = np.random.default_rng(scene_seq)
        self._suite_rng = np.random.default_rng(suite_seq)
        self._noise_rng = np.random.default_rng(noise_seq)
        # Back to the snapshot taken right after construction, so nothing from previous
        # episodes (contacts, solver warm starts, body ids) can leak into this one.
        self.task.clear()
        self.world.restore_state(self._clean_state)
        self.robot.reset()
        self.task.build(self._rng)
        self._randomize_camera()
        self.world.step(int(SETTLE_SECONDS * PHYSICS_HZ))
        self.task.settle()
        self._scheduler = PerturbationScheduler(self.suite, self._suite_rng)
        self._stall_until = -1.0
        self._object_force, self._object_force_substeps = None, 0
        self.instruction = self.task.instruction
        self._instruction_vec = instruction_features(self.instruction)
        self._steps = 0
        self._first_success_time = None
        progress = self._update()
        self._phase = self.task.phase(progress)
        info = self._info(progress)
        info["new_events"] = []
        info["seed"] = self.episode_seed
        info["suite"] = self.suite.name
        info["objects"] = [o.model.name for o in self.task.objects]
        info["scene_spec_hash"] = self.scene_spec_hash
        info["env_spec_hash"] = self.env_spec_hash
        return self._observation(), info

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict[str, Any]]:
        """Apply one 7-D action for ``1 / control_hz`` simulated seconds."""
        action = validate_action(action)
        events = self._scheduler.fire(self, self.time, self._phase)
        self.robot.apply_action(action)
        self._simulate(self.substeps)
        self._steps += 1
        progress = self._update()
        self._phase = self.task.phase(progress)
        if progress["success"] and self._first_success_time is None:
            self._first_success_time = self.time
        reward = self.task.reward(progress, self.reward_mode)
        termination = None
        if self.terminate_out_of_reach and self._target_out_of_reach():
            termination = "object_out_of_reach"
        elif self.terminate_on_success and progress["success"]:
            termination = "success"
        terminated = termination is not None
        truncated = self._steps >= self.max_steps
        info = self._info(progress)
        info["new_events"] = events
        info["termination"] = termination
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """A 256 x 256 RGB view from the (jittered) task camera, for videos and figures."""
        if self.render_mode != "rgb_array":
            return None
        if self.camera.pose is not None:
            self._render_camera.set_pose(self.camera.pose)
            self._render_camera.light_direction = self.camera.light_direction
        return self._render_camera.render(rgb=True).rgb

    def close(self) -> None:
        if getattr(self, "world", None) is not None:
            self.world.close()
            self.world = None

    # -- perturbation hooks (called by residual_bench.perturb) -------------------------------

    def add_object_force(self, force: np.ndarray, n_substeps: int) -> None:
        """Push the target object with ``force`` (N, world frame) for ``n_substeps``."""
        self._object_force = np.asarray(force, dtype=float)
        self._object_force_substeps = int(n_substeps)

    def stall_base_until(self, time: float) -> None:
        """Mark the base policy as delivering no fresh action until simulated ``time``."""
        self._stall_until = max(self._stall_until, time)

    @property
    def base_stalled(self) -> bool:
        """Whether the base policy is stalled for the next control step."""
        return self.time < self._stall_until - 1e-9

    # -- internals -------------------------------------------------------------------------

    def _simulate(self, n_substeps: int) -> None:
        if self._object_force_substeps == 0 and not self.robot.gripper_forced_open:
            self.world.step(n_substeps)
            return
        # A fault is active: go substep by substep (external forces last one substep).
        target = self.task.target.body_name
        for _ in range(n_substeps):
            if self._object_force_substeps > 0:
                self.world.push(target, self._object_force)
                self._object_force_substeps -= 1
            self.world.step(1)
            self.robot.tick_substep()

    def _target_out_of_reach(self) -> bool:
        """Whether the target object has left the arm's reach (a poke or slide sent it off
        the table's useful part): the episode cannot be solved any more."""
        centre = self._object_states[0].center
        return bool(np.hypot(centre[0], centre[1]) > REACH_M)

    def _randomize_camera(self) -> None:
        cameras = [self.camera, self._render_camera]
        self._pixel_noise_std = jitter_cameras(cameras, self.scene_spec, self._rng)
        bodies = self.world.bodies
        classes = {bodies[name]: id_ for name, id_ in self.task.segmentation_bodies().items()}
        self.camera.set_segmentation_classes(classes)

    def _update(self) -> dict:
        """Read the simulator once per step; observation and info use this snapshot."""
        joints = self.robot.joint_positions()
        tcp, orn, vel = self.robot.tcp_state()
        self._proprio = np.concatenate([joints, tcp, orn, vel, [joints[7] + joints[8]]]).astype(
            np.float32
        )
        self._object_states = self.task.object_states()
        self.task.now = self.time  # a condition that must hold a while is timed on it
        return self.task.progress(self._object_states, tcp)

    def _observation(self) -> dict[str, np.ndarray]:
        obs = {"proprio": self._proprio, "instruction": self._instruction_vec.copy()}
        if self.obs_mode == "state":
            tcp = self._proprio[9:12]
            rows = self.task_class.max_objects
            objects = np.zeros((rows, OBJECT_FEATURES), dtype=np.float32)
            mask = np.zeros(rows, dtype=np.float32)
            for i, state in enumerate(self._object_states):
                c = state.center
                objects[i] = np.concatenate([c, state.orientation, state.linear_velocity, c - tcp])
                mask[i] = 1.0
            obs.update(objects=objects, object_mask=mask, goal=self.task.goal.astype(np.float32))
            return obs
        frame = self.camera.render(
            rgb=True,
            depth=self.obs_mode.startswith("rgbd"),
            segmentation=self.obs_mode.endswith("+seg"),
        )
        rgb = frame.rgb
        if self._pixel_noise_std > 0:
            noise = self._noise_rng.normal(0.0, self._pixel_noise_std, rgb.shape)
            rgb = np.clip(rgb + noise, 0, 255).astype(np.uint8)
        obs["rgb"] = rgb
        if frame.depth is not None:
            obs["depth"] = frame.depth
        if frame.segmentation is not None:
            obs["segmentation"] = frame.segmentation
        return obs

    def _info(self, progress: dict) -> dict[str, Any]:
        return {
            **progress,
            "time": self.time,
            "first_success_time": self._first_success_time,
            "instruction": self.instruction,
            "target_object": self.task.target.description,
            "phase": self._phase,
            "base_stalled": self.base_stalled,
        }

    # -- privileged access (scripted controllers, metrics, tests) --------------------------

    @property
    def object_states(self) -> list:
        """This step's :class:`~residual_bench.tasks.task.ObjectState` list, target
        first: privileged state for scripted controllers, metrics and tests."""
        return self._object_states

    def state_hash(self) -> str:
        """Hash of the full physical state (robot joints, all object poses and velocities)."""
        h = hashlib.sha256(self.robot.joint_positions().tobytes())
        for obj in self.task.objects:
            s = self.world.body_state(obj.body_name)
            for arr in (s.position, s.orientation, s.linear_velocity, s.angular_velocity):
                h.update(np.asarray(arr, dtype=np.float64).tobytes())
        return h.hexdigest()
