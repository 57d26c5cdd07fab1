"""The perturbations: one small class per kind of in-episode disturbance.

Every perturbation samples all of its randomness when the episode is planned (at reset, from
the episode's generator), so the same seed gives the same disturbances bit for bit, whatever
the policy does. ``apply`` then acts on the simulation when the scheduler fires it and
returns the event record (JSON-serialisable) that goes into ``info["new_events"]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from residual_bench.sim.geometry import quat_from_yaw


@dataclass
class Perturbation:
    """Base class: ``params`` are the YAML fields of one suite entry (already validated)."""

    kind: ClassVar[str] = ""
    #: YAML fields this kind accepts, with their defaults; ranges are [low, high].
    fields: ClassVar[dict[str, Any]] = {}
    #: The physical bounds of each range field (a suite outside them is refused at load).
    bounds: ClassVar[dict[str, tuple[float, float]]] = {}
    #: For kinds with a ``mode``: the sampled values each mode uses (the others are left
    #: out of the event record so it only says what happened).
    mode_params: ClassVar[dict[str, tuple[str, ...]]] = {}
    sampled: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def sample(cls, params: dict[str, Any], rng: np.random.Generator) -> Perturbation:
        """Draw this event's magnitudes from the ranges in ``params``."""
        raise NotImplementedError

    def apply(self, sim: Any, time: float, trigger: str) -> dict[str, Any]:
        """Disturb the simulation now; return the event record."""
        raise NotImplementedError

    def event(
        self, time: float, trigger: str, magnitude: float, target: str, duration: float = 0.0
    ) -> dict[str, Any]:
        return {
            "type": self.kind,
            "trigger": trigger,
            "time": float(time),
            "magnitude": float(magnitude),
            "target": target,
            "duration": float(duration),
            "params": {k: _plain(v) for k, v in self.sampled.items() if self._recorded(k)},
        }

    def _recorded(self, key: str) -> bool:
        mode = self.sampled.get("mode")
        return mode is None or key == "mode" or key in self.mode_params[mode]


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [float(v) for v in value]
    if isinstance(value, np.floating | np.integer):
        return value.item()
    return value


def _uniform(rng: np.random.Generator, bounds: list[float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


class Poke(Perturbation):
    """A push on the target object: a constant force for ``duration`` seconds.

    The push is specified by the velocity change it would give the free object, ``speed``
    (m/s), so that it means the same for a 50 g and a 250 g object; the force applied is
    ``mass * speed / duration``. The horizontal direction is uniform and ``elevation``
    tilts it upwards (degrees). Friction and the fingers then decide how far it goes.
    """

    kind = "poke"
    fields = {"speed": [0.3, 0.6], "duration": [0.02, 0.03], "elevation": [0.0, 20.0]}
    # Past 3 m/s a 50 g object leaves the 1 m table; a poke lasts from one physics substep
    # to half a second; a downward poke (negative elevation) presses the object into the table.
    bounds = {"speed": (0.0, 3.0), "duration": (1 / 240, 0.5), "elevation": (-60.0, 80.0)}

    @classmethod
    def sample(cls, params, rng):
        azimuth = float(rng.uniform(-math.pi, math.pi))
        elevation = math.radians(_uniform(rng, params["elevation"]))
        direction = np.array(
            [
                math.cos(azimuth) * math.cos(elevation),
                math.sin(azimuth) * math.cos(elevation),
                math.sin(elevation),
            ]
        )
        return cls(
            sampled={
                "speed": _uniform(rng, params["speed"]),
                "duration": _uniform(rng, params["duration"]),
                "direction": direction,
            }
        )

    def apply(self, sim, time, trigger):
        target = sim.task.target.body_name
        sim.world.wake(target)
        mass = sim.world.mass(target)
        n_substeps = max(1, round(self.sampled["duration"] * sim.world.physics_hz))
        duration = n_substeps / sim.world.physics_hz
        force = mass * self.sampled["speed"] / duration
        sim.add_object_force(force * np.asarray(self.sampled["direction"]), n_substeps)
        self.sampled["force"] = force
        return self.event(time, trigger, self.sampled["speed"], target, duration)


class Slide(Perturbation):
    """The target object moves sideways on the table.

    ``mode: displace`` shifts it by ``distance`` metres at once (kept on the table and clear of
    the other objects); ``mode: kick`` gives it a horizontal velocity of ``speed`` m/s.
    """

    kind = "slide"
    fields = {"mode": "displace", "distance": [0.03, 0.06], "speed": [0.3, 0.6]}
    # The objects' region is 24 x 44 cm: a longer displacement cannot stay on it.
    bounds = {"distance": (0.0, 0.25), "speed": (0.0, 2.0)}
    # ``applied_distance``: how far the object really moved (the table's region and the other
    # objects can shorten a displacement); ``distance`` is what was drawn.
    mode_params = {
        "displace": ("azimuth", "distance", "applied_distance"),
        "kick": ("azimuth", "speed"),
    }

    @classmethod
    def sample(cls, params, rng):
        return cls(
            sampled={
                "mode": params["mode"],
                "azimuth": float(rng.uniform(-math.pi, math.pi)),
                "distance": _uniform(rng, params["distance"]),
                "speed": _uniform(rng, params["speed"]),
            }
        )

    def apply(self, sim, time, trigger):
        world, task = sim.world, sim.task
        target = task.target.body_name
        world.wake(target)
        state = world.body_state(target)
        pos, orn = state.position, state.orientation
        azimuth = self.sampled["azimuth"]
        if self.sampled["mode"] == "kick":
            speed = self.sampled["speed"]
            world.set_velocity(target, [speed * math.cos(azimuth), speed * math.sin(azimuth), 0.0])
            magnitude = speed
        else:
            magnitude = self.sampled["distance"]
            new_xy = task.clear_spot_towards(np.array(pos[:2]), azimuth, magnitude)
            world.set_pose(task.target.body_name, np.array([*new_xy, pos[2]]), np.array(orn))
            magnitude = float(np.linalg.norm(new_xy - np.array(pos[:2])))
            self.sampled["applied_distance"] = magnitude
        return self.event(time, trigger, magnitude, task.target.body_name)


class Drop(Perturbation):
    """The object leaves the hand, or falls from a height.

    ``mode: release``: the gripper is forced open for ``duration`` seconds whatever the policy
    commands (a slip or a gripper fault mid-transport). ``mode: from_height``: the object is
    lifted ``height`` metres, moved ``shift`` metres sideways, turned to a random yaw and let
    fall (an object handed over and fumbled). A top-down parallel gripper has its palm above
    its fingers, so nothing can fall *into* it; the object lands on the table, or on the arm
    if the arm is in the way, and the policy has to find it again.
    """

    kind = "drop"
    fields = {
        "mode": "release",
        "duration": [0.2, 0.4],
        "height": [0.08, 0.15],
        "shift": [0.04, 0.08],
    }
    # At most the episode's length open; lifted no higher than the arm reaches above the table.
    bounds = {"duration": (0.0, 10.0), "height": (0.0, 0.5), "shift": (0.0, 0.25)}
    mode_params = {"release": ("duration",), "from_height": ("height", "shift", "azimuth", "yaw")}

    @classmethod
    def sample(cls, params, rng):
        return cls(
            sampled={
                "mode": params["mode"],
                "duration": _uniform(rng, params["duration"]),
                "height": _uniform(rng, params["height"]),
                "shift": _uniform(rng, params["shift"]),
                "azimuth": float(rng.uniform(-math.pi, math.pi)),
                "yaw": float(rng.uniform(-math.pi, math.pi)),
            }
        )

    def apply(self, sim, time, trigger):
        target = sim.task.target.body_name
        sim.world.wake(target)
        if self.sampled["mode"] == "from_height":
            state = sim.world.body_state(target)
            height = self.sampled["height"]
            tcp, _ = sim.robot.tcp_pose()
            orientation = quat_from_yaw(self.sampled["yaw"])
            # Fall where the hand is not: try the sampled direction, then turn by 45 degrees.
            for turn in range(8):
                azimuth = self.sampled["azimuth"] + turn * math.pi / 4
                xy = sim.task.clear_spot_towards(state.position[:2], azimuth, self.sampled["shift"])
                pos = np.array([xy[0], xy[1], state.position[2] + height])
                sim.world.set_pose(target, pos, orientation)
                clear_of_hand = np.linalg.norm(xy - tcp[:2]) >= 0.1
                if clear_of_hand and not sim.world.overlaps(target, "panda", margin=0.01):
                    break
            return self.event(time, trigger, height, target)
        duration = self.sampled["duration"]
        sim.robot.force_gripper_open(round(duration * sim.world.physics_hz))
        return self.event(time, trigger, duration, target, duration)


class Latency(Perturbation):
    """The base policy stalls: no fresh action for ``duration`` seconds (a network stall).

    The environment only marks the window (``info["base_stalled"]``); whoever runs the base
    policy holds its last good action meanwhile.
    """

    kind = "latency"
    fields = {"duration": [0.3, 0.8]}
    bounds = {"duration": (0.0, 10.0)}

    @classmethod
    def sample(cls, params, rng):
        return cls(sampled={"duration": _uniform(rng, params["duration"])})

    def apply(self, sim, time, trigger):
        duration = self.sampled["duration"]
        sim.stall_base_until(time + duration)
        return self.event(time, trigger, duration, "base_policy", duration)


PERTURBATIONS: dict[str, type[Perturbation]] = {
    cls.kind: cls for cls in (Poke, Slide, Drop, Latency)
}
