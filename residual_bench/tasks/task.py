"""The interface every task implements, and the scene records tasks share.

The generic env (:class:`residual_bench.task_env.ResidualTaskEnv`) owns the robot, the
camera, seeding, observations and input checking; a :class:`Task` owns what differs between
task families: the scene built from its YAML spec, the instruction, progress, success,
reward, the phases perturbations trigger on, and the privileged quantities that scripted
experts, the ``objects`` features and perturbations read. Those callers ask the task through
this interface (``env.task.target``, ``env.task.goal``, ``env.task.phase(...)``), never
through one task's own names.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from residual_bench.sim.objects import ObjectModel
from residual_bench.sim.panda import Panda
from residual_bench.sim.pybullet_world import PyBulletWorld


@dataclass
class SceneObject:
    """One object placed in the current episode."""

    model: ObjectModel
    color_name: str
    scale: float
    body_name: str

    @property
    def description(self) -> str:
        return f"{self.color_name} {self.model.noun}"

    rest_height: float = 0.0  # height of the body origin above the table once settled

    @property
    def height(self) -> float:
        return self.model.extents[2] * self.scale


@dataclass
class ObjectState:
    """An object's bounding-box centre (its body origin), orientation and velocity."""

    center: np.ndarray
    orientation: np.ndarray
    linear_velocity: np.ndarray


class Task(ABC):
    """One task family: scene, instruction, progress, success, reward and phases.

    A subclass declares its gymnasium id with :func:`residual_bench.tasks.registry.register_task`
    and its scene YAML (``envs/<scene>.yaml``) in :attr:`scene`. The env calls, per episode:
    :meth:`clear`, :meth:`build`, lets the scene settle, :meth:`settle`; then per step
    :meth:`object_states`, :meth:`progress`, :meth:`phase` and :meth:`reward`.

    Args:
        world: the simulator (the only way a task touches PyBullet).
        robot: the Panda, for contact queries (is the object between the fingers?).
        spec: the resolved scene spec (the task's YAML with the user's overrides).
        objects: the object split, ``"train"`` or ``"heldout"``.
    """

    env_id: ClassVar[str] = ""
    """The gymnasium id, set by ``register_task``."""
    scene: ClassVar[str]
    """Name of the scene YAML under ``envs/`` that every spec of this task is laid over."""
    scene_bounds: ClassVar[dict[str, Any]] = {}
    """Physical bounds of the scene's numbers by dotted field (see ``env_spec``)."""
    phases: ClassVar[tuple[str, ...]]
    """The task phases, in order; the last one means the task condition holds."""
    segmentation_classes: ClassVar[tuple[str, ...]]
    """Segmentation id -> what it marks; the layout of the ``objects`` observation follows
    the object ids (target first)."""
    goal_class: ClassVar[str | None] = None
    """The segmentation class of where the target must go (the plate, the support, the
    fixture, the goal circle): the second body of the residual's ``objects`` features.
    ``None``: the task has no goal body, and those features always read it as unseen."""
    max_objects: ClassVar[int] = 3
    """Rows of the ``objects`` observation."""
    suites: ClassVar[tuple[str, ...]] = ("nominal",)
    """The shipped perturbation suites the task is evaluated on, in report order: what
    ``bench run --env`` runs when no ``--suite`` is given. ``nominal`` comes first and the
    task's ``mixed`` suite (one of each kind it takes) last: ``bench run --quick`` runs those
    two. Each must apply to the task (its phases and :attr:`perturbation_kinds`)."""
    perturbation_kinds: ClassVar[tuple[str, ...] | None] = None
    """The perturbation kinds that mean something for this task (``None``: every kind). A
    suite with another kind is refused when applied to the task: a ``drop`` on a task where
    nothing is held would otherwise silently do nothing."""
    base_error_scale: ClassVar[float] = 1.0
    """The factor on the geometric errors of the VLA-like ``scripted`` base (perceived object
    and goal positions, grasp direction and height) on this task. The error model is tuned on
    pick-and-place's centimetre tolerances; a task with millimetre ones takes a fraction of
    it, so that the base fails some episodes there, not all (a residual needs a base that is
    nearly right)."""

    templates: ClassVar[tuple[str, ...]] = ()
    """The instruction's training wordings, for :meth:`instruction_template`."""
    heldout_templates: ClassVar[tuple[str, ...]] = ()
    """Wordings no training episode uses (the env's ``instructions="heldout"``); a task
    without them cannot be evaluated on held-out wordings."""

    def __init__(self, world: PyBulletWorld, robot: Panda, spec: dict, objects: str) -> None:
        self.world = world
        self.robot = robot
        self.spec = spec
        self.objects: list[SceneObject] = []
        self.goal = np.zeros(3)
        self.instruction = ""
        self.instructions = "train"
        """The split of wordings :meth:`instruction_template` draws from (set by the env)."""
        self.now = 0.0
        """Simulated seconds since the episode started, set by the env before each
        :meth:`progress`: for a task whose condition must hold for a while."""

    @property
    def target(self) -> SceneObject:
        """The object the instruction names (perturbations push, slide and drop it)."""
        return self.objects[0]

    def clear(self) -> None:
        """Remove the previous episode's objects."""
        for obj in self.objects:
            self.world.remove(obj.body_name)
        self.objects = []

    @abstractmethod
    def build(self, rng: np.random.Generator) -> None:
        """Sample and create a new scene and its instruction from ``rng`` alone."""

    def instruction_template(self, rng: np.random.Generator) -> str:
        """This episode's wording, from :attr:`instructions`' split.

        One draw over the training wordings whichever the split, so that a seed gives the same
        scene with either: the held-out split only changes the words.
        """
        if not self.templates:
            raise ValueError(f"{type(self).__name__} sets no instruction templates (templates)")
        index = int(rng.integers(len(self.templates)))
        if self.instructions == "heldout":
            return self.heldout_templates[index % len(self.heldout_templates)]
        return self.templates[index]

    def settle(self) -> None:  # noqa: B027  (an optional hook; most tasks need nothing)
        """Called once the new scene has come to rest, before the first observation."""

    def object_states(self) -> list[ObjectState]:
        """Pose and velocity of every object, target first (one pass over the simulator)."""
        states = []
        for obj in self.objects:
            body = self.world.body_state(obj.body_name)
            states.append(ObjectState(body.position, body.orientation, body.linear_velocity))
        return states

    @abstractmethod
    def progress(self, states: list[ObjectState], tcp: np.ndarray) -> dict[str, Any]:
        """Task-progress quantities from this step's states; must include ``success``."""

    @abstractmethod
    def phase(self, progress: dict[str, Any]) -> str:
        """The task phase (one of :attr:`phases`) from the progress quantities alone."""

    @abstractmethod
    def reward(self, progress: dict[str, Any], mode: str) -> float:
        """``sparse``: 1 on success; ``dense``: the task's shaping in [0, 1]."""

    @abstractmethod
    def segmentation_bodies(self) -> dict[str, int]:
        """Body name -> segmentation id (one of :attr:`segmentation_classes`)."""

    def clear_spot_towards(self, xy: np.ndarray, azimuth: float, distance: float) -> np.ndarray:
        """Where a slide of the target along ``azimuth`` from ``xy`` may put it: by default
        the full ``distance``; tasks narrow this so a disturbance never does the task."""
        direction = np.array([math.cos(azimuth), math.sin(azimuth)])
        return np.asarray(xy, dtype=float) + direction * distance
