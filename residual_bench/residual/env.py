"""The residual environment: env + frozen base -> an env whose action corrects the base.

Each step the frozen base proposes ``a_base`` (at its own rate, chunking and latency, through
its controller), the residual policy outputs ``r`` in [-1, 1]^7, and the robot executes

    a = clip(a_base + scale * alpha * r, -1, 1)

with ``alpha`` per dimension (translation, rotation and gripper separately); a config may
pass the gripper's ``r`` through a deadband first (:func:`deadband`). SB3's SAC and TD3
already squash their actions with tanh, so ``r`` is the squashed output and the wrapper does
not squash again. ``scale`` is 1 at evaluation; training may ramp it up (see
:mod:`residual_bench.residual.train`).

Observation: a flat ``Box`` vector (SB3's ``MlpPolicy``) of proprioception (20), the base's
current action (7), then the feature vector of :mod:`residual_bench.residual.features`;
:func:`observation_layout` names its slices. ``global`` features make it a ``Dict``
(``MultiInputPolicy``) of that vector and the image, downsampled to ``GLOBAL_IMAGE_SIZE``
pixels. With ``base_plan_steps`` N > 0 the vector ends with ``base_plan``: the base's next N
actions as far as they are already decided (7 N numbers, step by step) and the age in seconds
of the observation its current action was computed from. A chunked base behind latency acts
on old observations and has fixed its next steps already; without the plan the residual sees
only the current action, and what the base does next is, from its view, not a function of
what it observes.

Reward: the env's reward, minus optional penalties on the residual's magnitude
(``magnitude_penalty * mean(r^2)``) and on how much the executed action changes between steps
(``rate_penalty * mean((a_t - a_{t-1})^2)``), which discourage over-correction and jitter
when the base is already right. Two optional terms reward finishing, and finishing early:
``success_bonus`` is added once per episode, at the first step whose ``info["success"]`` is
true, and ``time_penalty`` is subtracted at every step before it (not at it, nor after), so
a residual that makes the base faster earns more. Every weight defaults to 0, which leaves
the env's reward exactly as it is.
"""

from __future__ import annotations

import math
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from residual_bench.policies.controller import Controller
from residual_bench.policies.wrapper import BasePolicyWrapper
from residual_bench.residual.features import (
    FEATURE_PARTS,
    GLOBAL_IMAGE_SIZE,
    MASK_FEATURE_MODES,
    OBS_MODE_FOR,
    ObjectFeatureNoise,
    check_features,
    global_image,
    object_features,
    privileged_features,
    segment_ids,
)
from residual_bench.spaces import MAX_ALPHA, PROPRIO_DIM

ACTION_DIM = 7
DEFAULT_ALPHA = 0.1
MAX_BASE_PLAN_STEPS = 16
"""The most planned base steps a residual may observe: 0.8 s at 20 Hz, one chunk of the
``scripted`` base."""


def check_base_plan_steps(n_steps: Any) -> int:
    """``n_steps`` as an int if it is an integer from 0 to ``MAX_BASE_PLAN_STEPS``, else a
    ValueError naming ``base_plan_steps``."""
    valid = isinstance(n_steps, int | np.integer) and not isinstance(n_steps, bool)
    if not (valid and 0 <= n_steps <= MAX_BASE_PLAN_STEPS):
        raise ValueError(
            f"base_plan_steps must be an integer from 0 to {MAX_BASE_PLAN_STEPS}, got {n_steps!r}"
        )
    return int(n_steps)


def observation_layout(features: str, base_plan_steps: int = 0) -> dict[str, slice]:
    """The named slices of the residual's observation vector for ``features``, in order:
    ``proprio``, ``base_action``, the parts of the feature vector, then, with
    ``base_plan_steps`` N > 0, ``base_plan`` (7 N planned actions and the base action's age).

    Raises:
        ValueError: an invalid ``base_plan_steps`` (see :func:`check_base_plan_steps`).
    """
    plan = check_base_plan_steps(base_plan_steps)
    parts = (("proprio", PROPRIO_DIM), ("base_action", ACTION_DIM), *FEATURE_PARTS[features])
    if plan:
        parts = (*parts, ("base_plan", ACTION_DIM * plan + 1))
    layout, start = {}, 0
    for name, size in parts:
        layout[name] = slice(start, start + size)
        start += size
    return layout


def alpha_vector(alpha: float | tuple[float, float] | tuple[float, float, float]) -> np.ndarray:
    """Per-dimension alpha from one number, (arm, gripper) or (translation, rotation, gripper).

    Raises:
        ValueError: a non-finite, negative, above-``MAX_ALPHA`` or malformed alpha.
    """
    try:
        values = np.atleast_1d(np.asarray(alpha, dtype=float))
    except (TypeError, ValueError):
        raise ValueError(
            f"alpha: expected a number, (arm, gripper) or (translation, rotation, gripper), "
            f"got {alpha!r}"
        ) from None
    if values.ndim != 1 or len(values) not in (1, 2, 3) or not np.all(np.isfinite(values)):
        raise ValueError(
            f"alpha: expected a number, (arm, gripper) or (translation, rotation, gripper), "
            f"got {alpha!r}"
        )
    if np.any(values < 0) or np.any(values > MAX_ALPHA):
        raise ValueError(f"alpha must be in [0, {MAX_ALPHA:g}] per dimension, got {alpha!r}")
    if len(values) == 1:
        return np.full(ACTION_DIM, values[0])
    if len(values) == 2:
        return np.array([values[0]] * 6 + [values[1]])
    return np.array([values[0]] * 3 + [values[1]] * 3 + [values[2]])


def check_deadband(width: float) -> float:
    """``width`` as a float if it is a number in [0, 1), else a ValueError naming it."""
    try:
        width = float(width)
    except (TypeError, ValueError):
        raise ValueError(f"gripper_deadband must be a number in [0, 1), got {width!r}") from None
    if not (0.0 <= width < 1.0):
        raise ValueError(f"gripper_deadband must be a number in [0, 1), got {width!r}")
    return width


def deadband(r: float, width: float) -> float:
    """``sign(r) * max(|r| - width, 0) / (1 - width)``: zero inside the band, continuous at
    its edge, and +-1 still reaches the full alpha.

    The gripper command is a finger position: step-to-step variation of a tenth of r at alpha
    2 loosens held objects, where the same variation in translation and rotation changes
    little (``benchmarks/residual_action_noise.py``), while a deliberate override (closing
    a gripper the base holds open) needs |r| near 1. The band keeps an actor's small,
    state-dependent wobble away from the fingers.
    """
    magnitude = max(abs(r) - width, 0.0) / (1.0 - width)
    return math.copysign(magnitude, r) if magnitude > 0 else 0.0


class ResidualEnv(BasePolicyWrapper):
    """A frozen base behind a task's env; the action is the residual ``r``.

    Args:
        env: a task's env (``ResidualPickPlace-v1``, ...) made with the observation mode the
            base and the features need (``residual_bench.residual.make_residual_env`` does
            this).
        base: a registered base name or a controller already built for ``env``.
        features: ``objects``, ``privileged``, ``global`` or ``proprio``.
        alpha: residual scale (see :func:`alpha_vector`); default 0.1. On a base whose spec
            ``holds_rotation`` (the shipped ``bc`` network) the rotation's alpha is 0: the
            base never turns the hand back, so rotation noise from the residual would build
            up into a tilted hand that misses every grasp (it did: results/residual).
        magnitude_penalty: reward penalty weight on ``mean(r^2)``.
        rate_penalty: reward penalty weight on the executed action's change per step.
        success_bonus: reward added once per episode, at its first successful step.
        time_penalty: reward subtracted at every step before the episode's first success.
        feature_noise: corrupt the ``objects`` features (training only); None = clean.
        gripper_deadband: d in [0, 1): the gripper's residual output acts only beyond d,
            ``sign(r) * max(|r| - d, 0) / (1 - d)`` (see :func:`deadband`).
        base_plan_steps: N in 0..``MAX_BASE_PLAN_STEPS``: the observation vector ends with
            the base's next N already-decided actions and its action's age (``base_plan``,
            see the module docstring); 0 (default): it does not.
        seed: seeds the feature noise.

    Step info adds ``base_action``, ``residual_output`` (r), ``residual_action`` (the
    correction applied, ``scale * alpha * r``), ``alpha`` (the effective per-dimension scale),
    ``executed_action``, and the base controller's step info.
    """

    def __init__(
        self,
        env: gym.Env,
        base: str | Controller,
        features: str = "objects",
        alpha: float | tuple = DEFAULT_ALPHA,
        magnitude_penalty: float = 0.0,
        rate_penalty: float = 0.0,
        feature_noise: ObjectFeatureNoise | None = None,
        seed: int | None = None,
        success_bonus: float = 0.0,
        time_penalty: float = 0.0,
        gripper_deadband: float = 0.0,
        base_plan_steps: int = 0,
    ) -> None:
        self.features = check_features(features)
        self.base_plan_steps = check_base_plan_steps(base_plan_steps)
        needs = ("depth", "segmentation") if features in MASK_FEATURE_MODES else ()
        needs = ("rgb",) if features == "global" else needs
        missing = [k for k in needs if k not in env.observation_space.spaces]
        if missing:
            raise ValueError(
                f"features={features!r} needs observation keys {missing}; make the env with "
                f"obs_mode={OBS_MODE_FOR[features]!r}"
            )
        super().__init__(env, base)
        self.base_name = getattr(self.controller, "name", str(base))
        self.alpha = alpha_vector(alpha)
        spec = getattr(getattr(self.controller, "policy", None), "spec", None)
        if getattr(spec, "holds_rotation", False):
            self.alpha[3:6] = 0.0
        self.scale = 1.0
        self.magnitude_penalty = float(magnitude_penalty)
        self.rate_penalty = float(rate_penalty)
        self.success_bonus = float(success_bonus)
        self.time_penalty = float(time_penalty)
        self.gripper_deadband = check_deadband(gripper_deadband)
        self.feature_noise = feature_noise
        self._rng = np.random.default_rng(seed)
        size = max(part.stop for part in observation_layout(features, base_plan_steps).values())
        vector = spaces.Box(-np.inf, np.inf, (size,), np.float32)
        if features == "global":
            side, channels = GLOBAL_IMAGE_SIZE, env.observation_space["rgb"].shape[2]
            image = spaces.Box(0, 255, (side, side, channels), np.uint8)
            self.observation_space = spaces.Dict({"image": image, "vector": vector})
        else:
            self.observation_space = vector
        self._sim = env.unwrapped
        task = self._sim.task_class
        self._segment_ids = segment_ids(task.segmentation_classes, task.goal_class)
        self._last_executed: np.ndarray | None = None
        self._succeeded = False

    def set_scale(self, scale: float) -> None:
        """Set :attr:`scale`, the factor on alpha (0: the base alone, 1: full authority).

        A method, so that a vector env reaches it in every worker through any wrapper
        (``env_method("set_scale", s)``: gymnasium forwards a method lookup to the wrapped
        env, but an attribute set on a wrapper stays on the wrapper).

        Raises:
            ValueError: a scale that is not a finite number >= 0.
        """
        scale = float(scale)
        if not (math.isfinite(scale) and scale >= 0):
            raise ValueError(f"scale must be a finite number >= 0, got {scale!r}")
        self.scale = scale

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step as :meth:`BasePolicyWrapper.step`, with the reward shaped as the module
        docstring says (the success terms read the step's ``info["success"]``)."""
        obs, reward, terminated, truncated, info = super().step(action)
        if not self._succeeded:
            if info["success"]:
                self._succeeded = True
                reward = reward + self.success_bonus
            else:
                reward = reward - self.time_penalty
        return obs, reward, terminated, truncated, info

    @property
    def last_raw_observation(self) -> tuple[dict, dict]:
        """The wrapped env's latest observation and info, as the features were computed from."""
        if self._raw is None:
            raise ResetNeeded("ResidualEnv: call reset() first")
        return self._raw

    def _observation(self, obs: Any, info: dict[str, Any]) -> Any:
        parts = [obs["proprio"], self._base_action]
        if self.features in MASK_FEATURE_MODES:
            oriented = self.features == "oriented-objects"
            pose = self._sim.camera.pose
            noise, ids = self.feature_noise, self._segment_ids
            parts.append(object_features(obs, pose, noise, self._rng, oriented, ids))
        elif self.features == "privileged":
            parts.append(privileged_features(self._sim))
        if self.base_plan_steps:
            age = self._base_info.get("base_action_age_s") or 0.0
            parts += [self.planned_base_actions(self.base_plan_steps).ravel(), [age]]
        vector = np.concatenate(parts).astype(np.float32)
        if self.features == "global":
            return {"image": global_image(obs["rgb"]), "vector": vector}
        return vector

    def _after_reset(self) -> None:
        self._last_executed = None
        self._succeeded = False

    def _correction(self, r: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """``scale * alpha * r``: the residual's output ``r`` scaled per dimension (the
        gripper's through its deadband, if any)."""
        effective_alpha = self.scale * self.alpha
        acting = r
        if self.gripper_deadband > 0:
            acting = r.copy()
            acting[6] = deadband(r[6], self.gripper_deadband)
        applied = effective_alpha * acting
        return applied, {
            "residual_action": applied.copy(),  # the correction actually applied
            "residual_output": r.copy(),
            "alpha": effective_alpha.copy(),
        }

    def _reward(self, reward: SupportsFloat, r: np.ndarray, executed: np.ndarray) -> float:
        penalty = self.magnitude_penalty * float(np.mean(r**2))
        if self._last_executed is not None:
            penalty += self.rate_penalty * float(np.mean((executed - self._last_executed) ** 2))
        self._last_executed = executed
        return float(reward) - penalty
