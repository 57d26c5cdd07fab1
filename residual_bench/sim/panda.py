"""The Franka Panda: end-effector delta control through inverse kinematics, and a gripper.

Action convention (the Bridge / OpenVLA / Octo one), ``Box(-1, 1, (7,))``:

======  ==============================================  =====================================
index   meaning                                         scale at +-1
======  ==============================================  =====================================
0-2     delta x, y, z of the gripper's grasp point      ``POSITION_SCALE`` m per control step
3-5     delta roll, pitch, yaw (world axes)             ``ROTATION_SCALE`` rad per control step
6       gripper, absolute                               -1 fully closed, +1 fully open
======  ==============================================  =====================================

The commanded pose accumulates deltas (so a zero action holds the pose without drift) but is
pulled back towards the measured pose when the arm is blocked, so pushing against the table
does not wind up a target the arm then jumps to.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import pybullet as pb

from residual_bench.sim.pybullet_world import PyBulletWorld

POSITION_SCALE = 0.02
"""Metres per control step for a translation action of 1.0 (0.4 m/s at 20 Hz)."""
ROTATION_SCALE = 0.1
"""Radians per control step for a rotation action of 1.0 (2 rad/s at 20 Hz)."""
FINGER_MAX = 0.04
"""Opening of one finger in metres (the gripper opens to 8 cm)."""
MAX_TARGET_LAG = 0.04
"""How far (m) the commanded position may run ahead of the measured one."""
WORKSPACE_LOW = np.array([0.20, -0.40, 0.005])
WORKSPACE_HIGH = np.array([0.80, 0.40, 0.55])
"""Box the commanded grasp point is clipped to (robot base frame = world frame)."""

IK_ITERATIONS = 10
"""Inverse-kinematics iterations per control step. The solve starts from the current joints
and the commanded pose persists, so a residual error is finished off on the next step.
PyBullet always runs every iteration (about 3.5 us each); 5 made grasps visibly sloppier."""

HOME_JOINTS = np.array([0.0, -0.35, 0.0, -2.5, 0.0, 2.15, np.pi / 4])
ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("panda_finger_joint1", "panda_finger_joint2")
TCP_LINK = "panda_grasptarget"
FINGER_LINKS = ("panda_leftfinger", "panda_rightfinger")


@functools.cache
def low_poly_panda_urdf(data_path: str) -> str:
    """The pybullet_data Panda with its collision meshes as visuals.

    The high-poly visual meshes make TinyRenderer about 8x slower; the collision meshes
    look the same at the 84-128 px the benchmark's cameras use.
    """
    meshes = Path(data_path) / "franka_panda" / "meshes"
    text = (Path(data_path) / "franka_panda" / "panda.urdf").read_text()
    text = text.replace("package://meshes/visual/", "package://meshes/collision/")
    text = text.replace("package://meshes/", f"{meshes.as_posix()}/")
    out = Path(tempfile.mkdtemp(prefix="residual_bench_")) / "panda_low_poly.urdf"
    out.write_text(text)
    return str(out)


class Panda:
    """A Franka Panda with a parallel gripper, fixed at the world origin."""

    def __init__(self, world: PyBulletWorld, name: str = "panda") -> None:
        self.world = world
        self.name = name
        client = world.client
        self.body = world.load_urdf(
            name, low_poly_panda_urdf(world.data_path), fixed_base=True, flags=0
        )
        self._client = client
        self._cid = world.id
        links, joints = {}, {}
        for j in range(client.getNumJoints(self.body)):
            info = client.getJointInfo(self.body, j)
            joints[info[1].decode()] = j
            links[info[12].decode()] = j
        self.arm_joints = [joints[n] for n in ARM_JOINTS]
        self.finger_joints = [joints[n] for n in FINGER_JOINTS]
        self._all_joints = self.arm_joints + self.finger_joints
        self.tcp_link = links[TCP_LINK]
        self.finger_links = [links[n] for n in FINGER_LINKS]
        self.link_names = links
        limits = [client.getJointInfo(self.body, j)[8:10] for j in self.arm_joints]
        self._lower = [lo for lo, _ in limits]
        self._upper = [hi for _, hi in limits]
        self._ranges = [hi - lo for lo, hi in limits]
        self._arm_forces = [87.0] * 4 + [12.0] * 3
        for link in self.finger_links:
            client.changeDynamics(self.body, link, lateralFriction=1.0, spinningFriction=0.001)
        self._target_pos = np.zeros(3)
        self._target_orn = np.array([0.0, 0.0, 0.0, 1.0])
        self._gripper_target = FINGER_MAX
        self._forced_open_substeps = 0
        self.reset()

    # -- state -----------------------------------------------------------------------------

    def reset(self, joints: np.ndarray = HOME_JOINTS, gripper_open: bool = True) -> None:
        """Teleport to a joint configuration and make it the commanded pose."""
        client = self._client
        for j, q in zip(self.arm_joints, joints, strict=True):
            client.resetJointState(self.body, j, q)
        width = FINGER_MAX if gripper_open else 0.0
        for j in self.finger_joints:
            client.resetJointState(self.body, j, width)
        self._gripper_target = width
        self._forced_open_substeps = 0
        self._target_pos, self._target_orn = self.tcp_pose()
        self._send_joint_targets(np.asarray(joints, dtype=float))

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Position and quaternion (x, y, z, w) of the grasp point between the fingertips."""
        state = pb.getLinkState(
            self.body, self.tcp_link, computeForwardKinematics=1, physicsClientId=self._cid
        )
        return np.array(state[4]), np.array(state[5])

    def tcp_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Position, quaternion and linear velocity (m/s) of the grasp point."""
        state = pb.getLinkState(
            self.body,
            self.tcp_link,
            computeLinkVelocity=1,
            computeForwardKinematics=1,
            physicsClientId=self._cid,
        )
        return np.array(state[4]), np.array(state[5]), np.array(state[6])

    def joint_positions(self) -> np.ndarray:
        """The 7 arm joint angles followed by the 2 finger positions."""
        states = pb.getJointStates(self.body, self._all_joints, physicsClientId=self._cid)
        return np.array([s[0] for s in states])

    def fingers_touch(self, body: int) -> tuple[bool, bool]:
        """Whether the left and the right finger each touch ``body``."""
        left, right = self.finger_links
        cid = self._cid
        return (
            len(pb.getContactPoints(self.body, body, linkIndexA=left, physicsClientId=cid)) > 0,
            len(pb.getContactPoints(self.body, body, linkIndexA=right, physicsClientId=cid)) > 0,
        )

    # -- control ---------------------------------------------------------------------------

    def apply_action(self, action: np.ndarray) -> None:
        """Turn one normalised 7-D action into joint targets (see the module docstring)."""
        pos, _ = self.tcp_pose()
        # Accumulate on the commanded pose, but never let it run away from the real one.
        lag = self._target_pos - pos
        lag_norm = float(np.linalg.norm(lag))
        if lag_norm > MAX_TARGET_LAG:
            self._target_pos = pos + lag * (MAX_TARGET_LAG / lag_norm)
        self._target_pos = np.clip(
            self._target_pos + action[:3] * POSITION_SCALE, WORKSPACE_LOW, WORKSPACE_HIGH
        )
        delta = pb.getQuaternionFromEuler((action[3:6] * ROTATION_SCALE).tolist())
        _, orn = pb.multiplyTransforms((0, 0, 0), delta, (0, 0, 0), self._target_orn.tolist())
        self._target_orn = np.asarray(orn)
        self._gripper_target = float((action[6] + 1.0) * 0.5 * FINGER_MAX)
        joints = self.inverse_kinematics(self._target_pos, self._target_orn, IK_ITERATIONS)
        self._send_joint_targets(joints)

    def inverse_kinematics(
        self, position: np.ndarray, orientation: np.ndarray, iterations: int
    ) -> np.ndarray:
        """Arm joints (7) that put the grasp point at a pose, within the joint limits and
        near the home pose."""
        joints = pb.calculateInverseKinematics(
            self.body,
            self.tcp_link,
            np.asarray(position).tolist(),
            np.asarray(orientation).tolist(),
            lowerLimits=self._lower,
            upperLimits=self._upper,
            jointRanges=self._ranges,
            restPoses=HOME_JOINTS.tolist(),
            maxNumIterations=iterations,
            physicsClientId=self._cid,
        )
        return np.asarray(joints[:7])

    def command_arm(self, arm: np.ndarray) -> None:
        """Position targets for the arm's joint motors (they track them as physics steps)."""
        pb.setJointMotorControlArray(
            self.body,
            self.arm_joints,
            pb.POSITION_CONTROL,
            targetPositions=np.asarray(arm, dtype=float).tolist(),
            forces=self._arm_forces,
            physicsClientId=self._cid,
        )

    def command_fingers(self, finger: float) -> None:
        """Position target of each finger (m from the centre: half the opening)."""
        pb.setJointMotorControlArray(
            self.body,
            self.finger_joints,
            pb.POSITION_CONTROL,
            targetPositions=[finger] * 2,
            forces=[40.0, 40.0],
            physicsClientId=self._cid,
        )

    def _send_joint_targets(self, arm: np.ndarray) -> None:
        self.command_arm(arm)
        self._send_finger_targets()

    def _send_finger_targets(self) -> None:
        self.command_fingers(FINGER_MAX if self._forced_open_substeps > 0 else self._gripper_target)

    # -- faults (perturbations) --------------------------------------------------------------

    def force_gripper_open(self, n_substeps: int) -> None:
        """Open the gripper for ``n_substeps`` physics steps, overriding every command."""
        self._forced_open_substeps = max(self._forced_open_substeps, int(n_substeps))
        self._send_finger_targets()

    @property
    def gripper_forced_open(self) -> bool:
        """Whether a forced opening is in progress."""
        return self._forced_open_substeps > 0

    def tick_substep(self) -> None:
        """Advance fault timers by one physics step (call once per substep while faulted)."""
        if self._forced_open_substeps > 0:
            self._forced_open_substeps -= 1
            if self._forced_open_substeps == 0:
                self._send_finger_targets()  # back to what the policy commands
