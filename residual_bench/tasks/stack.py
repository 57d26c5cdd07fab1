"""Language-conditioned stacking: one named object on top of another.

**Task Description:**
The table holds two or three objects. The instruction names two of them by colour and type
("stack the red cube on the blue block"); the robot must pick the first up and leave it
resting on top of the second (the *support*), released, and stable there. A precision
placement: the support's top is a few centimetres across, and a poke of either object
matters.

**Randomizations** (ranges in ``envs/stack.yaml``, all drawn from the episode's seeded
generator):

- number of objects (a distractor or not); which object is moved (from the chosen split) and
  which support (a square block or a round disc, in both splits: stacking needs a flat top,
  and what a held-out split should vary is the object the robot handles); their sizes, yaw,
  masses and friction
- object positions (pairwise separated)
- object colours: distinct named colours, with per-channel jitter
- light direction, camera eye and target jitter, RGB pixel noise
- the instruction's wording (one of several templates; ``instructions="heldout"``
  draws from wordings that no training episode uses)

**Success Conditions:**

- the moved object's centre lies within ``stack_tolerance`` (2 cm) of the support's centre,
  horizontally: with a support at least 6 cm across, its centre of mass is then at least
  1 cm inside the support's edge, so it rests supported rather than balanced on an edge,
- its lowest point is within 1.2 cm of the support's top surface (the support is at least
  3 cm tall, so an object on the table never counts),
- its speed is below 5 cm/s, neither finger touches it, and the support still stands where
  it settled (not lifted or tipped), and
- all of this has held for ``stable_seconds`` (0.5 s) of simulated time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from residual_bench.env_spec import SpecError, quote
from residual_bench.sim.objects import ObjectModel, objects_in_split
from residual_bench.sim.panda import Panda
from residual_bench.sim.pybullet_world import PyBulletWorld
from residual_bench.tasks.pick_place import PickPlaceTask
from residual_bench.tasks.registry import register_task
from residual_bench.tasks.scene_objects import (
    add_catalogue_object,
    create_table,
    distinct_color_names,
)
from residual_bench.tasks.task import ObjectState, SceneObject, Task

TEMPLATES = (
    "stack the {object} on the {support}",
    "put the {object} on top of the {support}",
    "place the {object} on the {support}",
    "pick up the {object} and stack it on the {support}",
)
HELDOUT_TEMPLATES = (
    "set the {object} down on the {support}",
    "the {object} goes on the {support}",
    "could you pile the {object} onto the {support}",
    "transfer the {object} to the top of the {support}",
)
"""Wordings no training episode uses (``instructions="heldout"``): whether a policy follows
the instruction or only its familiar phrasing."""
# Flat-topped supports, half as tall as they are wide (scaled to ``task.support_size``).
SUPPORTS = (
    ObjectModel("support_block", "block", "box", (1.0, 1.0, 0.5), 0.0),
    ObjectModel("support_disc", "disc", "cylinder", (1.0, 1.0, 0.5), 0.0),
)
SUCCESS_REST_TOL = 0.012  # m between the object's bottom and the support's top
SUCCESS_MAX_SPEED = 0.05  # m/s
SUPPORT_MOVED_TOL = 0.005  # m the support's centre may rise or sink from where it settled
# Bounds of the scene fields only this task has (the loader checks the shared ones).
STACK_BOUNDS = {
    "support_size": (0.05, 0.1),  # m: wide enough to stand on, small enough to be precise
    "stack_tolerance": (0.002, 0.05),  # m
    "stable_seconds": (0.0, 5.0),  # s
}
SEGMENTATION_CLASSES = ("background", "table", "robot", "target", "support", "distractor")


@register_task("ResidualStack-v0")
class StackTask(PickPlaceTask):
    """Scene, instruction, success and reward for stacking.

    A stack is a pick-and-place whose goal is another object's top: it shares pick-and-place's
    object catalogue, object creation, grasp direction, phases, perturbation suites and
    reward shaping, and its :attr:`goal` follows the support (so the ``goal`` observation
    and a privileged expert see where the support is now, after a poke).
    """

    scene = "stack"
    templates = TEMPLATES
    heldout_templates = HELDOUT_TEMPLATES
    phases = ("approach", "grasp", "transport", "done")
    # A block's top is a smaller target than a plate: with pick-and-place's full errors the
    # scripted base succeeds in about a third of the episodes, with half of them in about
    # two thirds (results/expert/tasks.md).
    base_error_scale = 0.5
    segmentation_classes = SEGMENTATION_CLASSES
    goal_class = "support"

    def __init__(self, world: PyBulletWorld, robot: Panda, spec: dict, objects: str) -> None:
        # Not pick-and-place's scene (no plate): the table only.
        Task.__init__(self, world, robot, spec, objects)
        _check_stack_fields(spec["task"])
        self.models = objects_in_split(objects)
        create_table(world)
        self._stable_since: float | None = None

    @property
    def support(self) -> SceneObject:
        """The object the target is to be stacked on."""
        return self.objects[1]

    # -- scene -----------------------------------------------------------------------------

    def build(self, rng: np.random.Generator) -> None:
        """Sample and create a new scene: the moved object, the support, a distractor."""
        task, rand = self.spec["task"], self.spec["randomization"]
        lo, hi = task["n_objects"]
        n = int(rng.integers(lo, hi + 1))
        movable = [self.models[i] for i in rng.choice(len(self.models), n - 1, replace=False)]
        support_model = SUPPORTS[int(rng.integers(len(SUPPORTS)))]
        models = [movable[0], support_model, *movable[1:]]
        color_names = distinct_color_names(rng, n)
        placed: list[np.ndarray] = []
        for index, (model, color_name) in enumerate(zip(models, color_names, strict=True)):
            xy = self._free_spot(rng, placed)
            placed.append(xy)
            size_range = task["support_size"] if index == 1 else task["object_size"]
            mass_range = rand["support_mass"] if index == 1 else rand["object_mass"]
            obj, _ = add_catalogue_object(
                self.world, rng, model, color_name, index, xy, size_range, mass_range, rand
            )
            self.objects.append(obj)
        template = self.instruction_template(rng)
        self.instruction = template.format(
            object=self.target.description, support=self.support.description
        )
        self._stable_since = None
        self._update_goal(placed[1], self.support.height)

    def _update_goal(self, support_xy: np.ndarray, top: float) -> None:
        self.goal = np.array([support_xy[0], support_xy[1], top])

    # -- state -----------------------------------------------------------------------------

    def progress(self, states: list[ObjectState], tcp: np.ndarray) -> dict[str, Any]:
        """Task-progress quantities: grasp state, distances (metres), and success."""
        state, support, base = states[0], self.support, states[1]
        # Primitives have their origin at their centre: the top is half a height above it.
        self._update_goal(base.center[:2], float(base.center[2]) + support.height / 2)
        progress = self._carry_progress(state, tcp)
        support_standing = abs(float(base.center[2]) - support.rest_height) < SUPPORT_MOVED_TOL
        stacked = (
            progress["object_to_goal"] <= self.spec["task"]["stack_tolerance"]
            and abs(progress["object_height"] - self.goal[2]) <= SUCCESS_REST_TOL
            and progress["object_speed"] < SUCCESS_MAX_SPEED
            and not progress["touching_object"]
            and support_standing
        )
        # Stable: the condition has held since ``_stable_since``. Idempotent at one time, so
        # an expert asking again within the step gets the env's answer.
        if not stacked:
            self._stable_since = None
        elif self._stable_since is None:
            self._stable_since = self.now
        held = stacked and self.now - self._stable_since >= self.spec["task"]["stable_seconds"]
        progress["stacked"] = bool(stacked)
        progress["success"] = bool(held)
        return progress

    def _off_goal(self, xy: np.ndarray) -> bool:
        # The goal is the support's top, and the support is one of the objects a slide
        # already keeps clear of: no further keep-out.
        return True

    def segmentation_bodies(self) -> dict[str, int]:
        """Table 1, robot 2, the moved object 3, the support 4, a distractor 5."""
        bodies = {"table": 1, "panda": 2}
        for index, obj in enumerate(self.objects):
            bodies[obj.body_name] = 3 + index
        return bodies


def _check_stack_fields(task: dict[str, Any]) -> None:
    """The stack's own scene fields within their physical bounds, named as the loader does."""
    for key, (low, high) in STACK_BOUNDS.items():
        value = task[key]
        numbers = value if isinstance(value, list) else [value]
        if not all(low <= v <= high for v in numbers):
            raise SpecError(f"task.{key}: {quote(value)} is outside [{low:g}, {high:g}]")
    if task["stack_tolerance"] >= task["support_size"][0] / 2:
        raise SpecError(
            f"task.stack_tolerance: {quote(task['stack_tolerance'])} must be less than half the "
            f"smallest support ({task['support_size'][0]:g} m): the object would overhang"
        )
    if task["n_objects"][0] < 2:
        got = quote(task["n_objects"])
        raise SpecError(f"task.n_objects: a stack needs at least 2 objects, got {got}")
