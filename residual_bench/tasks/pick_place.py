"""Language-conditioned pick-and-place onto a plate.

**Task Description:**
The table holds one to three objects and a round plate. The instruction names one object by
colour and type ("put the red cube on the plate"); the robot must pick that object up and
leave it resting on the plate, with the gripper no longer touching it.

**Randomizations** (ranges in ``envs/pick_place.yaml``, all drawn from the episode's seeded
generator):

- number of objects; which objects (from the chosen split); their size, yaw, mass, friction
- object positions (pairwise separated, and away from the plate); plate position
- object colours: distinct named colours, with per-channel jitter
- light direction, camera eye and target jitter, RGB pixel noise
- the instruction's wording (one of several templates; ``instructions="heldout"``
  draws from wordings that no training episode uses)

**Success Conditions:**

- the target object's centre lies within ``goal_radius`` of the plate's centre (horizontally),
- its lowest point is within 2 cm of the plate's top surface (it rests on the plate),
- its speed is below 5 cm/s, and
- neither finger touches it (it has been released).
"""

from __future__ import annotations

import math

import numpy as np

from residual_bench.sim.geometry import yaw_of
from residual_bench.sim.objects import objects_in_split
from residual_bench.sim.panda import Panda
from residual_bench.sim.pybullet_world import PyBulletWorld
from residual_bench.tasks.registry import register_task
from residual_bench.tasks.scene_objects import (
    add_catalogue_object,
    create_table,
    distinct_color_names,
)
from residual_bench.tasks.task import ObjectState, SceneObject, Task

TEMPLATES = (
    "put the {object} on the plate",
    "place the {object} on the plate",
    "move the {object} onto the plate",
    "pick up the {object} and put it on the plate",
)
HELDOUT_TEMPLATES = (
    "set the {object} down on the plate",
    "the {object} goes onto the plate",
    "could you bring the {object} over to the plate",
    "transfer the {object} to the plate",
)
"""Wordings no training episode uses (``instructions="heldout"``): whether a policy follows
the instruction or only its familiar phrasing."""
PLATE_COLOR = (0.93, 0.93, 0.90, 1.0)
PLATE_HEIGHT = 0.01
SUCCESS_REST_TOL = 0.02
SUCCESS_MAX_SPEED = 0.05

# Semantic segmentation ids, also the layout of the ``objects`` observation (target first).
SEGMENTATION_CLASSES = (
    "background",
    "table",
    "robot",
    "plate",
    "target",
    "distractor_1",
    "distractor_2",
)


@register_task(
    "ResidualPickPlace-v1",
    # v0 let an episode run on to the time limit after its target left the arm's reach.
    previous={"ResidualPickPlace-v0": {"terminate_out_of_reach": False}},
)
class PickPlaceTask(Task):
    """Scene construction, instruction, reward and success for pick-and-place."""

    scene = "pick_place"
    templates = TEMPLATES
    heldout_templates = HELDOUT_TEMPLATES
    phases = ("approach", "grasp", "transport", "done")
    suites = ("nominal", "poke", "slide", "drop", "latency", "mixed")
    segmentation_classes = SEGMENTATION_CLASSES
    goal_class = "plate"

    def __init__(self, world: PyBulletWorld, robot: Panda, spec: dict, objects: str) -> None:
        super().__init__(world, robot, spec, objects)
        self.models = objects_in_split(objects)
        create_table(world)
        world.create_primitive(
            "plate",
            "cylinder",
            (spec["task"]["goal_radius"], PLATE_HEIGHT),
            0.0,
            (0.5, 0.0, PLATE_HEIGHT / 2),
            rgba=PLATE_COLOR,
        )

    # -- scene -----------------------------------------------------------------------------

    def build(self, rng: np.random.Generator) -> None:
        """Sample and create a new scene: the plate's pose, objects and the instruction."""
        task, rand = self.spec["task"], self.spec["randomization"]
        lo, hi = task["n_objects"]
        n = int(rng.integers(lo, hi + 1))
        goal_xy = rng.uniform(task["goal_region"]["low"], task["goal_region"]["high"])
        self.goal = np.array([goal_xy[0], goal_xy[1], PLATE_HEIGHT])
        self.world.set_pose(
            "plate", np.array([*goal_xy, PLATE_HEIGHT / 2]), np.array([0, 0, 0, 1.0])
        )
        placed = [goal_xy]
        models = [self.models[i] for i in rng.choice(len(self.models), size=n, replace=False)]
        color_names = distinct_color_names(rng, n)
        sizes, masses = task["object_size"], rand["object_mass"]
        for index, (model, color_name) in enumerate(zip(models, color_names, strict=True)):
            xy = self._free_spot(rng, placed)
            placed.append(xy)
            obj, _ = add_catalogue_object(
                self.world, rng, model, color_name, index, xy, sizes, masses, rand
            )
            self.objects.append(obj)
        template = self.instruction_template(rng)
        self.instruction = template.format(object=self.target.description)

    def settle(self) -> None:
        """Remember how high each settled object's origin sits above the table.

        Meshes come to rest in whatever pose they fall into, so "resting on the plate" is
        judged against this measured height rather than the mesh's nominal extents.
        """
        for obj, state in zip(self.objects, self.object_states(), strict=True):
            obj.rest_height = float(state.center[2])

    def _free_spot(self, rng: np.random.Generator, placed: list[np.ndarray]) -> np.ndarray:
        region = self.spec["task"]["object_region"]
        sep = self.spec["task"]["min_separation"]
        for _ in range(200):
            xy = rng.uniform(region["low"], region["high"])
            if all(np.linalg.norm(xy - other) >= sep for other in placed):
                return xy
        raise RuntimeError(
            "could not place objects with task.min_separation="
            f"{sep} inside task.object_region={region}; widen the region or lower the separation"
        )

    # -- state -----------------------------------------------------------------------------

    def grasp_yaw(self, obj: SceneObject, state: ObjectState) -> float:
        """World angle of the direction the fingers should close along."""
        return yaw_of(state.orientation) + obj.model.grasp_yaw

    def progress(self, states: list[ObjectState], tcp: np.ndarray) -> dict[str, float | bool]:
        """Task-progress quantities: grasp state and distances (metres)."""
        progress = self._carry_progress(states[0], tcp)
        on_plate = (
            progress["object_to_goal"] <= self.spec["task"]["goal_radius"]
            and abs(progress["object_height"] - self.goal[2]) <= SUCCESS_REST_TOL
        )
        still = progress["object_speed"] < SUCCESS_MAX_SPEED
        progress["success"] = bool(on_plate and still and not progress["touching_object"])
        return progress

    def _carry_progress(self, state: ObjectState, tcp: np.ndarray) -> dict[str, float | bool]:
        """What carrying the target to :attr:`goal` is judged by, for this task and those
        built on it: contacts, distances (m), the target's height above its rest and speed."""
        target = self.target
        left, right = self.robot.fingers_touch(self.world.bodies[target.body_name])
        center = state.center
        dx, dy = float(center[0] - tcp[0]), float(center[1] - tcp[1])
        gx, gy = float(center[0] - self.goal[0]), float(center[1] - self.goal[1])
        return {
            "is_grasped": bool(left and right),
            "touching_object": bool(left or right),
            "tcp_to_object": math.hypot(dx, dy, float(center[2] - tcp[2])),
            "tcp_to_object_xy": math.hypot(dx, dy),
            "object_to_goal": math.hypot(gx, gy),
            "object_height": float(center[2]) - target.rest_height,
            "object_speed": float(np.linalg.norm(state.linear_velocity)),
        }

    @staticmethod
    def phase(progress: dict) -> str:
        """The task phase perturbations trigger on, from the progress quantities alone.

        ``approach`` until the grasp point is within 4 cm of the object, ``grasp`` until the
        object is held and lifted 2 cm, ``transport`` while it is carried, ``done`` once the
        task condition holds.
        """
        if progress["success"]:
            return "done"
        if progress["is_grasped"] and progress["object_height"] > 0.02:
            return "transport"
        if progress["tcp_to_object"] < 0.04:
            return "grasp"
        return "approach"

    def clear_spot_towards(self, xy: np.ndarray, azimuth: float, distance: float) -> np.ndarray:
        """The farthest point up to ``distance`` along ``azimuth`` from ``xy`` that stays on
        the table's object region (widened by 5 cm), clear of the other objects and off the
        plate (a disturbance must never do the task for the policy)."""
        region = self.spec["task"]["object_region"]
        lo = np.array(region["low"]) - 0.05
        hi = np.array(region["high"]) + 0.05
        clearance = 0.5 * self.spec["task"]["min_separation"]
        others = [s.center[:2] for s in self.object_states()[1:]]
        direction = np.array([math.cos(azimuth), math.sin(azimuth)])
        for fraction in np.linspace(1.0, 0.0, 11):
            candidate = np.clip(xy + direction * distance * fraction, lo, hi)
            if self._off_goal(candidate) and all(
                np.linalg.norm(candidate - o) >= clearance for o in others
            ):
                return candidate
        return np.asarray(xy, dtype=float)

    def _off_goal(self, xy: np.ndarray) -> bool:
        """Whether a slide may end at ``xy``: off the plate, with 4 cm to spare."""
        return bool(np.linalg.norm(xy - self.goal[:2]) >= self.spec["task"]["goal_radius"] + 0.04)

    def segmentation_bodies(self) -> dict[str, int]:
        """Table 1, robot 2, plate 3, then the objects from 4 (the target first)."""
        bodies = {"table": 1, "panda": 2, "plate": 3}
        for index, obj in enumerate(self.objects):
            bodies[obj.body_name] = 4 + index
        return bodies

    @staticmethod
    def reward(progress: dict, mode: str) -> float:
        """``sparse``: 1 on success. ``dense``: staged reach/grasp/place shaping in [0, 1]."""
        if mode == "sparse":
            return float(progress["success"])
        if progress["success"]:
            return 1.0
        reach = 1.0 - math.tanh(10.0 * progress["tcp_to_object"])
        if not progress["is_grasped"]:
            return 0.25 * reach
        lifted = min(progress["object_height"] / 0.05, 1.0)
        place = 1.0 - math.tanh(5.0 * progress["object_to_goal"])
        return 0.25 + 0.15 * lifted + 0.4 * place
