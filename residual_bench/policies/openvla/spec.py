"""OpenVLA's action convention, shared by the in-process base and the REST client; light to
import (no torch)."""

from __future__ import annotations

from residual_bench.policies.base import PolicySpec

CONTROL_HZ = 5.0
"""BridgeData V2 is recorded at 5 Hz: one OpenVLA action covers 0.2 s."""


def openvla_spec(
    name: str, camera: str, size: int, unnorm_key: str | None, description: str
) -> PolicySpec:
    """OpenVLA's native convention: one end-effector delta (metres, radians) and a gripper in
    [0, 1] (1 = open) per call, from one square camera image and the instruction."""
    return PolicySpec(
        name=name,
        control_hz=CONTROL_HZ,
        chunk_len=1,
        action_dim=7,
        action_repr="delta_ee_euler",
        gripper="absolute_01",
        position_unit_m=1.0,
        rotation_unit_rad=1.0,
        cameras={camera: (size, size)},
        needs_instruction=True,
        needs_state=False,
        normalization_key=unnorm_key,
        description=description,
    )
