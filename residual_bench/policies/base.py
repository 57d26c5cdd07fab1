"""The interface every frozen base policy implements.

A base policy is a thin adapter around one model's API: it answers an observation and an
instruction with a chunk of actions in the model's *own* convention, described by its
:class:`PolicySpec`. Scaling, rotation representation and gripper convention are translated
to the environment's action by :class:`~residual_bench.policies.convert.ActionConverter`;
running the chunks at the control rate, with latency, is the job of
:class:`~residual_bench.policies.executor.ChunkExecutor`. Keeping those layers out of the
adapters means a new model only has to fill in a spec and return chunks.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

ACTION_REPRS = ("delta_ee_euler", "delta_ee_axangle")
"""Supported native action representations: 3 translation deltas, 3 rotation deltas (roll,
pitch, yaw about the world axes, or an axis-angle rotation vector), 1 gripper value."""
GRIPPER_CONVENTIONS = ("absolute_pm1", "absolute_01", "binary_pm1", "relative")
"""Native gripper conventions: ``absolute_pm1`` -1 closed / +1 open (the environment's own),
``absolute_01`` 0 closed / 1 open (OpenVLA), ``binary_pm1`` only the sign counts,
``relative`` a change of the previous gripper command (in the -1..1 units)."""
EE_ACTION_DIM = 7


def _positive_finite(name: str, value: Any) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"{name}: must be a real number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: must be positive and finite, got {value!r}")
    return float(value)


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: must be an integer >= 1, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class PolicySpec:
    """What a base policy needs and what its actions mean.

    Args:
        name: short identifier of the policy.
        control_hz: rate at which the model itself runs (calls per second, e.g. 5 for OpenVLA);
            each native action covers ``1 / control_hz`` seconds.
        chunk_len: number of actions per call (H >= 1).
        action_dim: size of one native action; 7 (3 translation, 3 rotation, 1 gripper).
        action_repr: ``"delta_ee_euler"`` or ``"delta_ee_axangle"`` (joint control is not
            supported by the environment).
        gripper: one of :data:`GRIPPER_CONVENTIONS`.
        position_unit_m: metres that one unit of native translation means (1.0 when the model
            outputs metres, as OpenVLA does after un-normalisation).
        rotation_unit_rad: radians that one unit of native rotation means.
        cameras: camera name -> (height, width) the model expects; empty for state-based bases.
        needs_instruction: whether ``act`` uses the instruction.
        needs_state: whether ``act`` uses the proprioceptive / privileged state.
        normalization_key: dataset statistics the model un-normalises with (OpenVLA's
            ``unnorm_key``), or None.
        description: one line for listings.
        holds_rotation: the base never commands a rotation (a position-only network): the arm
            keeps the hand's orientation, and nothing would turn it back from a rotation
            someone else adds - residuals on such a base get no rotation (``ResidualEnv``).

    Raises:
        ValueError: a field is invalid; the message starts with the field's name.
    """

    name: str
    control_hz: float
    chunk_len: int
    action_dim: int
    action_repr: str
    gripper: str
    position_unit_m: float
    rotation_unit_rad: float
    cameras: dict[str, tuple[int, int]]
    needs_instruction: bool
    needs_state: bool
    normalization_key: str | None
    description: str = ""
    holds_rotation: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name: must be a non-empty string, got {self.name!r}")
        # Frozen: normalised values are written through object.__setattr__.
        object.__setattr__(self, "control_hz", _positive_finite("control_hz", self.control_hz))
        object.__setattr__(self, "chunk_len", _positive_int("chunk_len", self.chunk_len))
        object.__setattr__(self, "action_dim", _positive_int("action_dim", self.action_dim))
        if self.action_repr == "joint":
            raise ValueError(
                "action_repr: joint control is not supported by the environment, which takes "
                f"end-effector deltas; valid choices: {', '.join(ACTION_REPRS)}"
            )
        if self.action_repr not in ACTION_REPRS:
            raise ValueError(
                f"action_repr: unknown representation {self.action_repr!r}; "
                f"valid choices: {', '.join(ACTION_REPRS)}"
            )
        if self.action_dim != EE_ACTION_DIM:
            raise ValueError(
                f"action_dim: {self.action_repr} actions have {EE_ACTION_DIM} entries "
                f"(3 translation, 3 rotation, 1 gripper), got {self.action_dim}"
            )
        if self.gripper not in GRIPPER_CONVENTIONS:
            raise ValueError(
                f"gripper: unknown convention {self.gripper!r}; "
                f"valid choices: {', '.join(GRIPPER_CONVENTIONS)}"
            )
        for name in ("position_unit_m", "rotation_unit_rad"):
            object.__setattr__(self, name, _positive_finite(name, getattr(self, name)))
        object.__setattr__(self, "cameras", _check_cameras(self.cameras))
        for name in ("needs_instruction", "needs_state", "holds_rotation"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: must be a bool, got {getattr(self, name)!r}")
        if self.normalization_key is not None and not isinstance(self.normalization_key, str):
            raise ValueError(
                f"normalization_key: must be a string or None, got {self.normalization_key!r}"
            )
        if not isinstance(self.description, str):
            raise ValueError(f"description: must be a string, got {self.description!r}")

    @property
    def period_s(self) -> float:
        """Seconds one native action covers (``1 / control_hz``)."""
        return 1.0 / self.control_hz


def _check_cameras(cameras: Any) -> dict[str, tuple[int, int]]:
    if not isinstance(cameras, dict):
        raise ValueError(f"cameras: must be a dict name -> (height, width), got {cameras!r}")
    out = {}
    for name, size in cameras.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"cameras: names must be non-empty strings, got {name!r}")
        ok = isinstance(size, tuple | list) and len(size) == 2
        ok = ok and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0 for v in size
        )
        if not ok:
            raise ValueError(
                f"cameras[{name!r}]: must be (height, width) positive integers, got {size!r}"
            )
        out[name] = (int(size[0]), int(size[1]))
    # A copy, so that the caller's dict cannot change a frozen spec behind its back.
    return out


@dataclass
class ActionChunk:
    """The answer of one base-policy call.

    Args:
        actions: (H, D) float32, the model's native convention; row i is the action for the
            i-th base step after the observation.
        info: anything the adapter wants recorded (raw tokens, ``infer_time_s``, ...).

    Raises:
        ValueError: ``actions`` is not a finite 2-D float32 array with H, D >= 1, or ``info``
            is not a dict.
    """

    actions: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        a = self.actions
        if not isinstance(a, np.ndarray):
            raise ValueError(f"actions: must be a numpy array, got {type(a).__name__}")
        if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
            raise ValueError(f"actions: must have shape (H, D) with H, D >= 1, got {a.shape}")
        if a.dtype != np.float32:
            raise ValueError(f"actions: must be float32, got {a.dtype} (cast with .astype)")
        if not np.all(np.isfinite(a)):
            raise ValueError("actions: contains NaN or inf")
        if not isinstance(self.info, dict):
            raise ValueError(f"info: must be a dict, got {type(self.info).__name__}")


@runtime_checkable
class BasePolicy(Protocol):
    """A frozen base policy: a spec, a reset and a chunked ``act``."""

    spec: PolicySpec

    def reset(self, instruction: str, seed: int | None) -> None:
        """Start an episode (clear history, seed any sampling)."""
        ...

    def act(self, obs: dict, instruction: str) -> ActionChunk:
        """Return ``spec.chunk_len`` native actions for this observation."""
        ...


def check_chunk(spec: PolicySpec, chunk: ActionChunk) -> None:
    """Check that a chunk honours a spec.

    Args:
        spec: the policy's spec.
        chunk: what its ``act`` returned.

    Raises:
        ValueError: not an :class:`ActionChunk`, shape other than ``(chunk_len, action_dim)``,
            or non-finite entries (arrays are mutable, so this is checked again here).
    """
    if not isinstance(chunk, ActionChunk):
        raise ValueError(f"{spec.name}: act must return an ActionChunk, got {type(chunk).__name__}")
    expected = (spec.chunk_len, spec.action_dim)
    if chunk.actions.shape != expected:
        raise ValueError(
            f"{spec.name}: chunk shape {chunk.actions.shape} does not match the spec's "
            f"(chunk_len, action_dim) = {expected}"
        )
    if not np.all(np.isfinite(chunk.actions)):
        raise ValueError(f"{spec.name}: chunk contains NaN or inf")


def repeated_plan(action: np.ndarray, n_steps: int) -> np.ndarray:
    """``action`` as the plan of the next ``n_steps`` steps, shape ``(n_steps, 7)`` float64:
    the plan of a controller that has decided nothing beyond its current action.

    Raises:
        ValueError: ``n_steps`` is not an integer >= 0.
    """
    return np.tile(np.asarray(action, dtype=np.float64), (check_plan_steps(n_steps), 1))


def check_plan_steps(n_steps: Any) -> int:
    """``n_steps`` of a ``planned_actions`` call as an int, if it is an integer >= 0.

    Raises:
        ValueError: anything else (a bool, a float, a negative number), naming ``n_steps``.
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer) or n_steps < 0:
        raise ValueError(f"n_steps: must be an integer >= 0, got {n_steps!r}")
    return int(n_steps)
