"""A frozen base policy put behind the environment: "base alone" as a runnable policy.

:class:`BasePolicyWrapper` turns any ``ResidualPickPlace-v1`` environment into one whose
action is a *correction* added to a frozen base policy's action. A zero correction runs the
base alone, exactly as :func:`residual_bench.rollout.run_episodes` would; a residual policy
(learned or not) outputs non-zero corrections and sees the base's action in ``info``. Later
residual wrappers (observation augmentation, scaled corrections, ...) build on this one.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from residual_bench.policies.controller import Controller
from residual_bench.policies.registry import make_controller
from residual_bench.spaces import validate_action


def validate_correction(correction: Any) -> np.ndarray:
    """Check a correction as the env checks an action; return it as float64 in [-1, 1].

    Entries outside [-1, 1] are clipped, as the env clips actions outside its box.

    Raises:
        ValueError: wrong shape, a non-numeric dtype, or NaN / inf entries; the message
            names the correction.
    """
    try:
        return validate_action(correction)
    except ValueError as err:
        message = str(err)
        if message.startswith("action "):
            message = "correction" + message[len("action") :]
        else:
            message = f"correction: {message}"
        raise ValueError(message) from None


class BasePolicyWrapper(gym.Wrapper):
    """``ResidualPickPlace-v1`` driven by a frozen base; the action corrects the base's.

    Each :meth:`step` asks the base controller for its action from the latest observation and
    info (so its rate, chunking, latency and stalls behave as in a plain rollout), adds the
    correction, clips the sum to [-1, 1] and steps the environment with it.

    Usage::

        import gymnasium as gym
        import numpy as np
        import residual_bench  # noqa: F401  (registers the env id)
        from residual_bench.policies.wrapper import BasePolicyWrapper

        env = BasePolicyWrapper(gym.make("ResidualPickPlace-v1"), "scripted")
        obs, info = env.reset(seed=0)
        obs, reward, terminated, truncated, info = env.step(np.zeros(7))  # the base alone
        info["base_action"], info["executed_action"], info["base_held"]

    Args:
        env: a ``ResidualPickPlace-v1`` environment, wrapped or not.
        base: a registered policy name (``residual_bench.policies.registry.base_names()``),
            built for ``env`` with :func:`~residual_bench.policies.registry.make_controller`,
            or a :class:`~residual_bench.policies.controller.Controller` already built for it.

    Action space: the env's ``Box(-1, 1, (7,))``, read as a correction added to the base's
    action; zeros reproduce the base alone.

    Step info: the env's info plus ``base_action`` (7,) float64, what the base asked for;
    ``executed_action`` (7,) float64, what the env was stepped with; and the controller's
    step info (``base_fresh``, ``base_held``, and for chunked bases ``base_action_age_s``,
    ``base_calls``, ``base_infer_time_s``, ``base_clipped``). Keys the env sets keep the
    env's value.

    Raises:
        ValueError: an unknown base name (the message lists the valid ones), or an env whose
            action space is not a 7-D box.
        TypeError: ``base`` is neither a name nor an object with ``reset`` and ``act``.
    """

    def __init__(self, env: gym.Env, base: str | Controller) -> None:
        super().__init__(env)
        space = env.action_space
        if not isinstance(space, spaces.Box) or space.shape != (7,):
            raise ValueError(f"env: expected a Box action space of shape (7,), got {space}")
        if isinstance(base, str):
            controller = make_controller(base, env)
        elif callable(getattr(base, "reset", None)) and callable(getattr(base, "act", None)):
            controller = base
        else:
            raise TypeError(
                "base: expected a registered policy name or a controller with "
                f"reset(info) and act(obs, info), got {type(base).__name__}"
            )
        self.controller: Controller = controller
        self.base_name: str = getattr(controller, "name", type(controller).__name__)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(7,), dtype=np.float32)
        self._obs: dict[str, np.ndarray] | None = None
        self._info: dict[str, Any] | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset the env, then the base controller with the env's reset info."""
        obs, info = self.env.reset(seed=seed, options=options)
        self.controller.reset(info)
        self._obs, self._info = obs, info
        return obs, info

    def step(
        self, correction: Any
    ) -> tuple[dict[str, np.ndarray], SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the env with ``clip(base action + correction, -1, 1)``.

        Args:
            correction: shape (7,), real; entries outside [-1, 1] are clipped first.

        Raises:
            ValueError: a correction of the wrong shape or dtype, or with NaN / inf.
            gymnasium.error.ResetNeeded: :meth:`reset` has not been called yet.
        """
        delta = validate_correction(correction)
        if self._obs is None or self._info is None:
            raise ResetNeeded("BasePolicyWrapper: call reset() before step()")
        base_action, base_info = self.controller.act(self._obs, self._info)
        base = np.array(base_action, dtype=np.float64)
        executed = np.clip(base + delta, -1.0, 1.0)
        obs, reward, terminated, truncated, info = self.env.step(executed)
        self._obs, self._info = obs, info
        info = {**base_info, **info, "base_action": base, "executed_action": executed.copy()}
        return obs, reward, terminated, truncated, info
