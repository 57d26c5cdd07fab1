"""A thin wrapper around one PyBullet client: bodies by name, stepping, state snapshots.

Everything the tasks and robots do with PyBullet goes through :class:`PyBulletWorld`, so
the rest of the package never handles raw body ids and never touches a global client.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pybullet as p
import pybullet_data
from pybullet_utils.bullet_client import BulletClient

from residual_bench.sim.native_output import quiet_native_output

PHYSICS_HZ = 240
"""Physics rate in Hz. PyBullet's default, and what its contact parameters are tuned for."""


NOT_COPYABLE = (
    "an env cannot be deep-copied or pickled: its physics lives in a PyBullet client, which a "
    "deep copy would share with the original and a pickle would lose. To branch or restore an "
    "episode, make a new env and replay: an episode is a deterministic function of "
    "reset(seed=...) and the actions that followed. To run envs in other processes, pass a "
    "function that makes one (as vector envs do)."
)


@dataclass(frozen=True)
class BodyState:
    """Pose and velocity of a body's base in the world frame."""

    position: np.ndarray
    orientation: np.ndarray  # quaternion (x, y, z, w), PyBullet's order
    linear_velocity: np.ndarray
    angular_velocity: np.ndarray


class PyBulletWorld:
    """One headless PyBullet simulation (DIRECT mode, TinyRenderer).

    Args:
        physics_hz: physics substep rate.
    """

    def __init__(self, physics_hz: int = PHYSICS_HZ) -> None:
        with quiet_native_output():
            self.client = BulletClient(connection_mode=p.DIRECT)
        # Hot paths call pybullet directly with this id: BulletClient's attribute lookup
        # builds a new partial on every call, which shows up at thousands of steps/s.
        self.id: int = self.client._client
        self.client.setAdditionalSearchPath(pybullet_data.getDataPath())
        self.physics_hz = physics_hz
        self.timestep = 1.0 / physics_hz
        self.bodies: dict[str, int] = {}
        self.configure_physics()

    # -- copies ----------------------------------------------------------------------------

    def __deepcopy__(self, memo: dict) -> PyBulletWorld:
        raise TypeError(NOT_COPYABLE)

    def __reduce_ex__(self, protocol: object) -> object:
        raise TypeError(NOT_COPYABLE)

    # -- setup -----------------------------------------------------------------------------

    def configure_physics(self) -> None:
        """Gravity, timestep and the engine settings that make runs reproducible."""
        # Without deterministicOverlappingPairs the broadphase pair order depends on
        # insertion history, and two runs of the same seed drift apart after contacts.
        # The residual threshold lets the solver stop once it has converged instead of
        # always running all 50 iterations; it buys about 1.5x physics throughput with no
        # visible change in grasps (the expert's success rate is the check).
        self.client.setPhysicsEngineParameter(
            fixedTimeStep=self.timestep,
            deterministicOverlappingPairs=1,
            solverResidualThreshold=1e-4,
        )
        self.client.setGravity(0, 0, -9.81)

    @property
    def data_path(self) -> str:
        """The pybullet_data directory (robot and object models)."""
        return pybullet_data.getDataPath()

    def load_urdf(
        self,
        name: str,
        path: str,
        position: np.ndarray | tuple = (0.0, 0.0, 0.0),
        orientation: np.ndarray | tuple = (0.0, 0.0, 0.0, 1.0),
        fixed_base: bool = False,
        flags: int = 0,
        global_scaling: float = 1.0,
    ) -> int:
        """Load a URDF and remember it under ``name``."""
        body = self.client.loadURDF(
            path,
            basePosition=list(position),
            baseOrientation=list(orientation),
            useFixedBase=fixed_base,
            flags=flags,
            globalScaling=global_scaling,
        )
        self.bodies[name] = body
        return body

    def create_primitive(
        self,
        name: str,
        shape: str,
        size: tuple[float, ...],
        mass: float,
        position: np.ndarray | tuple,
        orientation: np.ndarray | tuple = (0.0, 0.0, 0.0, 1.0),
        rgba: tuple[float, float, float, float] = (0.5, 0.5, 0.5, 1.0),
        collision: bool = True,
    ) -> int:
        """Create a box (size = half extents), cylinder (radius, height) or sphere (radius)."""
        if shape == "box":
            kwargs = {"halfExtents": list(size)}
            visual_kwargs = kwargs
        elif shape == "cylinder":
            kwargs = {"radius": size[0], "height": size[1]}
            visual_kwargs = {"radius": size[0], "length": size[1]}
        elif shape == "sphere":
            kwargs = {"radius": size[0]}
            visual_kwargs = kwargs
        else:
            raise ValueError(f"unknown primitive shape {shape!r}; expected box, cylinder or sphere")
        geom = {"box": p.GEOM_BOX, "cylinder": p.GEOM_CYLINDER, "sphere": p.GEOM_SPHERE}[shape]
        collision_id = self.client.createCollisionShape(geom, **kwargs) if collision else -1
        visual_id = self.client.createVisualShape(geom, rgbaColor=list(rgba), **visual_kwargs)
        return self._spawn(name, collision_id, visual_id, mass, position, orientation)

    def create_box_compound(
        self,
        name: str,
        boxes: list[tuple[tuple[float, float, float], tuple[float, float, float]]],
        position: np.ndarray | tuple,
        orientation: np.ndarray | tuple = (0.0, 0.0, 0.0, 1.0),
        rgba: tuple[float, float, float, float] = (0.5, 0.5, 0.5, 1.0),
    ) -> int:
        """A fixed body made of several boxes, each ``(half_extents, offset)`` in the body
        frame: a fixture with a hole or a slot (a hole cannot be one convex shape).

        One body keeps one name and one segmentation id for the whole fixture. Its boxes get
        the same tiny collision margin as every primitive here, so a gap built between them
        is the gap a peg meets (measured in ``tests/test_task_insert.py``).
        """
        halves = [list(half) for half, _ in boxes]
        offsets = [list(offset) for _, offset in boxes]
        collision_id = self.client.createCollisionShapeArray(
            [p.GEOM_BOX] * len(boxes), halfExtents=halves, collisionFramePositions=offsets
        )
        visual_id = self.client.createVisualShapeArray(
            [p.GEOM_BOX] * len(boxes),
            halfExtents=halves,
            visualFramePositions=offsets,
            rgbaColors=[list(rgba)] * len(boxes),
        )
        return self._spawn(name, collision_id, visual_id, 0.0, position, orientation)

    def _spawn(
        self,
        name: str,
        collision_id: int,
        visual_id: int,
        mass: float,
        position: np.ndarray | tuple,
        orientation: np.ndarray | tuple,
    ) -> int:
        body = self.client.createMultiBody(
            baseMass=mass,
            baseCollisionShapeIndex=collision_id,
            baseVisualShapeIndex=visual_id,
            basePosition=list(position),
            baseOrientation=list(orientation),
        )
        self.bodies[name] = body
        return body

    def create_ground_plane(self, name: str, height: float = 0.0) -> int:
        """An infinite static collision plane (no visual) at ``height``.

        Contacts against a plane are about 20% cheaper than against a box, and resting
        contacts are most of the physics cost of a tabletop scene.
        """
        shape = self.client.createCollisionShape(p.GEOM_PLANE)
        # A body without a visual shape is drawn from its collision shape, and an infinite
        # plane drawn at table height fights with the table's own surface: give it a speck
        # of a visual, out of sight below the table.
        speck = self.client.createVisualShape(
            p.GEOM_SPHERE, radius=1e-3, rgbaColor=[0, 0, 0, 0], visualFramePosition=[0, 0, -0.5]
        )
        return self._spawn(name, shape, speck, 0.0, (0.0, 0.0, height), (0.0, 0.0, 0.0, 1.0))

    def create_mesh(
        self,
        name: str,
        hull_vertices: np.ndarray,
        visual_obj: str,
        visual_scale: float,
        visual_offset: np.ndarray,
        visual_orientation: np.ndarray | tuple,
        mass: float,
        position: tuple,
        orientation: np.ndarray | tuple,
        rgba: tuple[float, float, float, float],
    ) -> int:
        """A rigid body whose collision shape is the convex hull of ``hull_vertices``.

        One hull built from vertices is cheaper to collide than the URDF's mesh shape and
        graspable the same way; the visual keeps the full mesh.
        """
        collision_id = self.client.createCollisionShape(
            p.GEOM_MESH, vertices=np.asarray(hull_vertices).tolist()
        )
        visual_id = self.client.createVisualShape(
            p.GEOM_MESH,
            fileName=visual_obj,
            meshScale=[visual_scale] * 3,
            rgbaColor=list(rgba),
            visualFramePosition=list(visual_offset),
            visualFrameOrientation=list(visual_orientation),
        )
        return self._spawn(name, collision_id, visual_id, mass, position, orientation)

    def create_hull(self, name: str, vertices: np.ndarray, mass: float, position: tuple) -> int:
        """An invisible rigid body whose collision shape is the convex hull of ``vertices``."""
        collision_id = self.client.createCollisionShape(
            p.GEOM_MESH, vertices=np.asarray(vertices).tolist()
        )
        return self._spawn(name, collision_id, -1, mass, position, (0.0, 0.0, 0.0, 1.0))

    def allow_sleeping(self, name: str) -> None:
        """Let a body fall asleep once it has been at rest for a while.

        Resting contacts are most of the physics cost of a tabletop scene; a sleeping body
        costs nothing until something active touches it. Code that pushes or moves a body
        directly must call :meth:`wake` first.
        """
        self.client.changeDynamics(
            self.bodies[name], -1, activationState=p.ACTIVATION_STATE_ENABLE_SLEEPING
        )

    def wake(self, name: str) -> None:
        """Wake a sleeping body so that forces and velocities applied to it take effect."""
        p.changeDynamics(
            self.bodies[name],
            -1,
            activationState=p.ACTIVATION_STATE_WAKE_UP,
            physicsClientId=self.id,
        )

    def remove(self, name: str) -> None:
        """Remove a body from the simulation and forget its name."""
        self.client.removeBody(self.bodies.pop(name))

    # -- stepping and snapshots ----------------------------------------------------------------

    def step(self, n_substeps: int = 1) -> None:
        """Advance physics by ``n_substeps`` fixed timesteps."""
        cid = self.id
        for _ in range(n_substeps):
            p.stepSimulation(physicsClientId=cid)

    def save_state(self) -> int:
        """Snapshot the whole simulation in memory; returns a handle for :meth:`restore_state`."""
        return self.client.saveState()

    def restore_state(self, state_id: int) -> None:
        """Return to a snapshot (the set of bodies must be the one that existed at saving)."""
        self.client.restoreState(stateId=state_id)

    # -- body queries ----------------------------------------------------------------------

    def body_state(self, name: str) -> BodyState:
        """Base pose and velocity of a named body."""
        body = self.bodies[name]
        pos, orn = p.getBasePositionAndOrientation(body, physicsClientId=self.id)
        lin, ang = p.getBaseVelocity(body, physicsClientId=self.id)
        return BodyState(np.array(pos), np.array(orn), np.array(lin), np.array(ang))

    def set_pose(self, name: str, position: np.ndarray, orientation: np.ndarray) -> None:
        """Teleport a body's base (velocity is zeroed)."""
        body = self.bodies[name]
        self.client.resetBasePositionAndOrientation(body, list(position), list(orientation))
        self.client.resetBaseVelocity(body, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])

    def set_velocity(
        self, name: str, linear: np.ndarray | list, angular: np.ndarray | list = (0.0, 0.0, 0.0)
    ) -> None:
        """Set a body's base velocity (m/s, rad/s), leaving its pose."""
        p.resetBaseVelocity(self.bodies[name], list(linear), list(angular), physicsClientId=self.id)

    def push(self, name: str, force: np.ndarray) -> None:
        """Apply ``force`` (N, world frame) at the body's base for the next substep only."""
        body = self.bodies[name]
        position, _ = p.getBasePositionAndOrientation(body, physicsClientId=self.id)
        p.applyExternalForce(
            body, -1, list(force), position, p.WORLD_FRAME, physicsClientId=self.id
        )

    def mass(self, name: str) -> float:
        """Mass (kg) of a body's base link."""
        return float(p.getDynamicsInfo(self.bodies[name], -1, physicsClientId=self.id)[0])

    def set_dynamics(self, name: str, link: int = -1, **kwargs: float) -> None:
        """Change mass, friction etc. of one link (``link=-1`` is the base)."""
        self.client.changeDynamics(self.bodies[name], link, **kwargs)

    def aabb(self, name: str, link: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned bounding box (min, max) of one link in the world frame."""
        lo, hi = self.client.getAABB(self.bodies[name], link)
        return np.array(lo), np.array(hi)

    def overlaps(self, name_a: str, name_b: str, margin: float = 0.0) -> bool:
        """Whether two bodies are closer than ``margin`` (or interpenetrating)."""
        points = p.getClosestPoints(
            self.bodies[name_a], self.bodies[name_b], margin, physicsClientId=self.id
        )
        return len(points) > 0

    def close(self) -> None:
        """Disconnect the client; the world is unusable afterwards."""
        if self.client is not None:
            try:
                self.client.disconnect()
            except p.error:
                pass  # the server is already gone (closed twice, or torn down at exit)
            self.client = None
