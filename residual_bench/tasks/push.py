"""Language-conditioned non-prehensile pushing into a goal circle.

**Task Description:**
The table holds one or two objects and a flat goal circle drawn on it (no collision: objects
slide over it). The instruction names one object by colour and type ("push the red cube
into the circle"); the robot must push that object, without picking it up, until its centre
rests inside the circle. Pushing is contact-rich: the object turns and slides sideways
unless the pusher keeps re-centring behind it, and a poke or slide changes the whole push.

**Randomizations** (ranges in ``envs/push.yaml``, all drawn from the episode's seeded
generator):

- the target's position; the goal's direction (uniform) and distance from it
- number of objects (a distractor is kept off the push corridor); which objects (from the
  chosen split: ``train`` has the primitives and meshes 000-899, ``heldout`` meshes 900-999)
- their size, yaw, mass and friction; distinct named colours with per-channel jitter
- light direction, camera eye and target jitter, RGB pixel noise
- the instruction's wording (one of several templates; ``instructions="heldout"``
  draws from wordings that no training episode uses)

**Success Conditions:**

- the target object's centre lies within ``goal_radius`` of the goal's centre (horizontally),
  and
- its speed is below ``max_speed`` (it is at rest, not sliding through the circle).

Grasping is neither needed nor forbidden; a ``drop`` perturbation does not apply (nothing is
held), so the task declares the perturbation kinds that do.
"""

from __future__ import annotations

import math

import numpy as np

from residual_bench.sim.geometry import quat_to_matrix
from residual_bench.sim.objects import objects_in_split
from residual_bench.sim.panda import Panda
from residual_bench.sim.pybullet_world import PyBulletWorld
from residual_bench.tasks.registry import register_task
from residual_bench.tasks.scene_checks import check_scene_bounds
from residual_bench.tasks.scene_objects import (
    add_catalogue_object,
    create_table,
    distinct_color_names,
)
from residual_bench.tasks.task import ObjectState, Task

TEMPLATES = (
    "push the {object} into the circle",
    "push the {object} onto the white circle",
    "slide the {object} into the circle without lifting it",
    "nudge the {object} into the marked circle",
)
HELDOUT_TEMPLATES = (
    "shove the {object} into the circle",
    "the {object} goes into the circle, kept on the table",
    "could you drive the {object} into the circle",
    "move the {object} along the table into the circle",
)
"""Wordings no training episode uses (``instructions="heldout"``): whether a policy follows
the instruction or only its familiar phrasing."""
GOAL_COLOR = (0.95, 0.95, 0.95, 1.0)
GOAL_THICKNESS = 0.002
CORRIDOR_BEHIND = 0.10
"""How far behind the target (away from the goal) the push corridor starts: the pusher
comes down there, so no distractor may stand in it."""

MIN_GRASP_WIDTH = 0.005
"""m between the fingers below which both touching the object is a push, not a grasp."""

SEGMENTATION_CLASSES = ("background", "table", "robot", "goal", "target", "distractor_1")


@register_task("ResidualPush-v0")
class PushTask(Task):
    """Scene construction, instruction, reward and success for pushing."""

    scene = "push"
    templates = TEMPLATES
    heldout_templates = HELDOUT_TEMPLATES
    phases = ("approach", "push", "done")
    perturbation_kinds = ("poke", "slide", "latency")
    # Nothing is held, and no pick-and-place suite fits its phases: suites of its own.
    suites = ("nominal", "push-poke", "push-slide", "push-latency", "push-mixed")
    segmentation_classes = SEGMENTATION_CLASSES
    goal_class = "goal"
    scene_bounds = {
        "task.goal_distance": (0.02, 0.4),  # m: within the table's useful part
        "task.max_speed": (0.001, 0.5),  # m/s
        "task.n_objects": (1, 2),
    }

    def __init__(self, world: PyBulletWorld, robot: Panda, spec: dict, objects: str) -> None:
        super().__init__(world, robot, spec, objects)
        check_scene_bounds(spec, self.scene_bounds)
        self.models = objects_in_split(objects)
        self.vertices: dict[str, np.ndarray] = {}
        create_table(world)
        # Drawn on the table, not a body on it: the pushed object slides over it freely.
        world.create_primitive(
            "goal",
            "cylinder",
            (spec["task"]["goal_radius"], GOAL_THICKNESS),
            0.0,
            (0.5, 0.0, GOAL_THICKNESS / 2),
            rgba=GOAL_COLOR,
            collision=False,
        )

    # -- scene -----------------------------------------------------------------------------

    def build(self, rng: np.random.Generator) -> None:
        """Sample and create a new scene: target, goal circle, distractor, instruction."""
        task, rand = self.spec["task"], self.spec["randomization"]
        lo, hi = task["n_objects"]
        n = int(rng.integers(lo, hi + 1))
        start, goal_xy = self._target_and_goal(rng)
        self.goal = np.array([goal_xy[0], goal_xy[1], 0.0])
        self.world.set_pose(
            "goal", np.array([*goal_xy, GOAL_THICKNESS / 2]), np.array([0, 0, 0, 1.0])
        )
        models = [self.models[i] for i in rng.choice(len(self.models), size=n, replace=False)]
        color_names = distinct_color_names(rng, n)
        self.vertices = {}
        sizes, masses = task["object_size"], rand["object_mass"]
        for index, (model, color_name) in enumerate(zip(models, color_names, strict=True)):
            xy = start if index == 0 else self._distractor_spot(rng, start, goal_xy)
            obj, self.vertices[f"object_{index}"] = add_catalogue_object(
                self.world, rng, model, color_name, index, xy, sizes, masses, rand
            )
            self.objects.append(obj)
        template = self.instruction_template(rng)
        self.instruction = template.format(object=self.target.description)

    def settle(self) -> None:
        """Remember how high each settled object's origin sits above the table."""
        for obj, state in zip(self.objects, self.object_states(), strict=True):
            obj.rest_height = float(state.center[2])

    def _target_and_goal(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        task = self.spec["task"]
        region, goals = task["object_region"], task["goal_region"]
        for _ in range(200):
            start = rng.uniform(region["low"], region["high"])
            angle = float(rng.uniform(-math.pi, math.pi))
            distance = float(rng.uniform(*task["goal_distance"]))
            goal = start + distance * np.array([math.cos(angle), math.sin(angle)])
            if np.all(goal >= goals["low"]) and np.all(goal <= goals["high"]):
                return start, goal
        raise RuntimeError(
            f"could not place a goal task.goal_distance={task['goal_distance']} from a target "
            f"in task.object_region inside task.goal_region={goals}; widen the goal region"
        )

    def _distractor_spot(
        self, rng: np.random.Generator, start: np.ndarray, goal: np.ndarray
    ) -> np.ndarray:
        task = self.spec["task"]
        region, sep = task["goal_region"], task["min_separation"]
        direction = (goal - start) / np.linalg.norm(goal - start)
        behind = start - CORRIDOR_BEHIND * direction
        for _ in range(200):
            xy = rng.uniform(region["low"], region["high"])
            if _segment_distance(xy, behind, goal) >= sep:
                return xy
        raise RuntimeError(
            f"could not place a distractor task.min_separation={sep} from the push corridor "
            "inside task.goal_region; widen the region, lower the separation or set "
            "task.n_objects to [1, 1]"
        )

    # -- state -----------------------------------------------------------------------------

    def contact_offset(self, state: ObjectState, direction: np.ndarray) -> float:
        """How far (m) the target's outline reaches from its centre towards ``-direction``
        (horizontal): where a pusher moving along ``direction`` meets it."""
        vertices = self.vertices[self.target.body_name] @ quat_to_matrix(state.orientation).T
        return float(np.max(vertices[:, :2] @ -np.asarray(direction[:2])))

    def progress(self, states: list[ObjectState], tcp: np.ndarray) -> dict[str, float | bool]:
        """Task-progress quantities: contact, distances (metres) and speed."""
        target, state = self.target, states[0]
        left, right = self.robot.fingers_touch(self.world.bodies[target.body_name])
        center = state.center
        dx, dy = float(center[0] - tcp[0]), float(center[1] - tcp[1])
        to_goal = math.hypot(float(center[0] - self.goal[0]), float(center[1] - self.goal[1]))
        speed = float(np.linalg.norm(state.linear_velocity))
        top = float(center[2]) + target.height / 2
        task = self.spec["task"]
        # Closed fingers pushing with their broad side touch the object with both: a grasp
        # needs the object between them, holding them apart.
        joints = self.robot.joint_positions()
        between = joints[7] + joints[8] > MIN_GRASP_WIDTH
        return {
            "is_grasped": bool(left and right and between),
            "touching_object": bool(left or right),
            "tcp_to_object": math.hypot(dx, dy, float(center[2] - tcp[2])),
            "tcp_to_object_xy": math.hypot(dx, dy),
            "tcp_below_object_top": bool(tcp[2] < top),
            "object_to_goal": to_goal,
            "object_height": float(center[2]) - target.rest_height,
            "object_speed": speed,
            "success": bool(to_goal <= task["goal_radius"] and speed < task["max_speed"]),
        }

    @staticmethod
    def phase(progress: dict) -> str:
        """``approach`` until the hand is down beside the object (within 6 cm of its centre,
        below its top) or touches it, ``push`` from then on, ``done`` while the task
        condition holds."""
        if progress["success"]:
            return "done"
        beside = progress["tcp_to_object_xy"] < 0.06 and progress["tcp_below_object_top"]
        if progress["touching_object"] or beside:
            return "push"
        return "approach"

    def clear_spot_towards(self, xy: np.ndarray, azimuth: float, distance: float) -> np.ndarray:
        """The farthest point up to ``distance`` along ``azimuth`` from ``xy`` that stays on
        the goal region (widened by 5 cm), clear of the distractor and 4 cm clear of the
        goal circle (a disturbance must never do the task for the policy)."""
        task = self.spec["task"]
        lo = np.array(task["goal_region"]["low"]) - 0.05
        hi = np.array(task["goal_region"]["high"]) + 0.05
        clearance = 0.5 * task["min_separation"]
        others = [s.center[:2] for s in self.object_states()[1:]]
        direction = np.array([math.cos(azimuth), math.sin(azimuth)])
        for fraction in np.linspace(1.0, 0.0, 11):
            candidate = np.clip(xy + direction * distance * fraction, lo, hi)
            off_goal = np.linalg.norm(candidate - self.goal[:2]) >= task["goal_radius"] + 0.04
            if off_goal and all(np.linalg.norm(candidate - o) >= clearance for o in others):
                return candidate
        return np.asarray(xy, dtype=float)

    def segmentation_bodies(self) -> dict[str, int]:
        """Table 1, robot 2, goal circle 3, then the objects from 4 (the target first)."""
        bodies = {"table": 1, "panda": 2, "goal": 3}
        for index, obj in enumerate(self.objects):
            bodies[obj.body_name] = 4 + index
        return bodies

    @staticmethod
    def reward(progress: dict, mode: str) -> float:
        """``sparse``: 1 on success. ``dense``: reach the object (0.3) plus bring it to the
        goal (0.6), 1 on success: in [0, 1]."""
        if mode == "sparse":
            return float(progress["success"])
        if progress["success"]:
            return 1.0
        reach = 1.0 - math.tanh(10.0 * max(progress["tcp_to_object"] - 0.03, 0.0))
        return 0.3 * reach + 0.6 * (1.0 - math.tanh(10.0 * progress["object_to_goal"]))


def _segment_distance(point: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Distance from ``point`` to the segment from ``a`` to ``b`` (2-D)."""
    ab = b - a
    t = float(np.clip(np.dot(point - a, ab) / np.dot(ab, ab), 0.0, 1.0))
    return float(np.linalg.norm(point - (a + t * ab)))
