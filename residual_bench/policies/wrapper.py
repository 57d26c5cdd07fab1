"""A frozen base policy put behind the environment: "base alone" as a runnable policy.

:class:`BasePolicyWrapper` turns any task's environment into one whose action is a
*correction* added to a frozen base policy's action. A zero correction runs the base alone,
exactly as :func:`residual_bench.rollout.run_episodes` would; a residual policy (learned or
not) outputs non-zero corrections and sees the base's action in ``info``. It is the one
"base + correction" wrapper: the residual env (:class:`residual_bench.residual.env.ResidualEnv`)
is this class with a scaled correction, its own observation and a shaped reward.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from residual_bench.policies.base import repeated_plan
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
    """A task's env driven by a frozen base; the action corrects the base's.

    After each reset and step the base controller is asked for its next action from the
    latest observation and info (so its rate, chunking, latency and stalls behave as in a
    plain rollout); :meth:`step` adds the correction, clips the sum to [-1, 1] and steps the
    environment with it.

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
        env: a task's environment (``ResidualPickPlace-v1``, ...), wrapped or not.
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
        self._raw: tuple[dict, dict] | None = None
        self._base_action = np.zeros(7)
        self._base_info: dict[str, Any] = {}

    @property
    def base_action(self) -> np.ndarray:
        """The base's action for the coming step (what the correction is added to)."""
        return np.array(self._base_action, dtype=np.float64)

    def planned_base_actions(self, n_steps: int) -> np.ndarray:
        """The base's actions on the ``n_steps`` steps after the coming one, as far as the
        controller has decided them already (its ``planned_actions``), shape
        ``(n_steps, 7)``. A controller that does not say is taken to have decided nothing
        beyond its current action: that action, repeated.

        Raises:
            ValueError: ``n_steps`` is not an integer >= 0.
        """
        planned = getattr(self.controller, "planned_actions", None)
        if planned is None:
            return repeated_plan(self._base_action, n_steps)
        return np.asarray(planned(n_steps), dtype=np.float64)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the env, then the base controller with the env's reset info; the base's
        first action is asked for now, so a subclass's first observation can hold it."""
        obs, info = self.env.reset(seed=seed, options=options)
        self.controller.reset(info)
        self._after_reset()
        self._ask_base(obs, info)
        return self._observation(obs, info), info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the env with ``clip(base action + correction, -1, 1)``.

        Args:
            action: shape (7,), real; entries outside [-1, 1] are clipped first.

        Raises:
            ValueError: an action of the wrong shape or dtype, or with NaN / inf.
            gymnasium.error.ResetNeeded: :meth:`reset` has not been called yet.
        """
        delta = validate_correction(action)
        if self._raw is None:
            raise ResetNeeded(f"{type(self).__name__}: call reset() before step()")
        base = np.array(self._base_action, dtype=np.float64)
        correction, extra = self._correction(delta)
        executed = np.clip(base + correction, -1.0, 1.0)
        obs, reward, terminated, truncated, info = self.env.step(executed)
        reward = self._reward(reward, delta, executed)
        info = {
            **self._base_info,
            **info,
            "base_action": base,
            **extra,
            "executed_action": executed.copy(),
        }
        self._ask_base(obs, info)
        return self._observation(obs, info), reward, terminated, truncated, info

    # -- what a subclass changes -------------------------------------------------------------

    def _correction(self, action: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """The correction added to the base's action, and what it adds to the step info."""
        return action, {}

    def _reward(self, reward: SupportsFloat, action: np.ndarray, executed: np.ndarray) -> Any:
        return reward

    def _observation(self, obs: Any, info: dict[str, Any]) -> Any:
        return obs

    def _after_reset(self) -> None:
        """Per-episode state of a subclass, cleared before the base's first action."""

    def _ask_base(self, obs: Any, info: dict[str, Any]) -> None:
        self._raw = (obs, info)
        self._base_action, self._base_info = self.controller.act(obs, info)
