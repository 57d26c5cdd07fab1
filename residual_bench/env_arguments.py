"""The keyword arguments of a task env, and the checks every one of them passes.

Each bad argument is refused with the name of the argument and its valid values before the
simulator starts (:func:`check_env_arguments`).
"""

from __future__ import annotations

import numbers
from typing import Any

from residual_bench.sim.objects import OBJECT_SPLITS
from residual_bench.sim.pybullet_world import PHYSICS_HZ
from residual_bench.spaces import OBS_MODES
from residual_bench.tasks.task import Task

REWARD_MODES = ("dense", "sparse")
"""The rewards a task env pays (``reward_mode``)."""

INSTRUCTION_SPLITS = ("train", "heldout")
"""The instruction wordings an env may draw from: the training ones, or those no training
episode uses."""

ENV_KWARGS = (
    "obs_mode",
    "control_hz",
    "objects",
    "instructions",
    "image_size",
    "render_mode",
    "reward_mode",
    "scene_spec",
    "scene_overrides",
    "terminate_on_success",
    "terminate_out_of_reach",
    "suite",
)
"""The keyword arguments of the env (``gym.make`` passes them through)."""


def check_env_arguments(
    task_class: type[Task],
    unknown: dict[str, Any],
    *,
    obs_mode: str,
    control_hz: Any,
    objects: str,
    instructions: str,
    image_size: Any,
    render_mode: str | None,
    reward_mode: str,
) -> tuple[int, int]:
    """Refuse an unknown keyword (``TypeError``) or a bad value (``ValueError``), naming the
    argument and what it may be; returns ``control_hz`` and ``image_size`` as ints."""
    if unknown:
        raise TypeError(
            f"{task_class.env_id} got unknown keyword argument(s) {sorted(unknown)}; "
            f"valid ones are: {', '.join(ENV_KWARGS)}"
        )
    _check_choice("obs_mode", obs_mode, OBS_MODES)
    _check_choice("objects", objects, OBJECT_SPLITS)
    _check_choice("instructions", instructions, INSTRUCTION_SPLITS)
    if instructions == "heldout" and not task_class.heldout_templates:
        raise ValueError(
            f"{task_class.env_id} has no held-out instruction wordings "
            "(its task's heldout_templates); use instructions='train'"
        )
    _check_choice("reward_mode", reward_mode, REWARD_MODES)
    _check_choice("render_mode", render_mode, (None, "rgb_array"))
    if isinstance(control_hz, numbers.Integral) and not isinstance(control_hz, bool):
        control_hz = int(control_hz)
    if isinstance(image_size, numbers.Integral) and not isinstance(image_size, bool):
        image_size = int(image_size)
    if not isinstance(control_hz, int) or control_hz <= 0 or PHYSICS_HZ % control_hz:
        raise ValueError(
            f"control_hz must be a positive divisor of {PHYSICS_HZ}, got {control_hz!r}"
        )
    if not isinstance(image_size, int) or not 32 <= image_size <= 256:
        raise ValueError(f"image_size must be an integer in [32, 256], got {image_size!r}")
    return control_hz, image_size


def _check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
