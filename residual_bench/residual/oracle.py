"""The oracle residual, and episodes of it that seed a residual's replay buffer.

The oracle residual is the correction that makes the base act as the privileged expert
(``scripted-expert``: no errors, the control rate, the true state), as far as alpha allows:
each step ``r = clip((a_expert - a_base) / alpha, -1, 1)``. It is what
``benchmarks/residual_headroom.py`` measures, and what a critic trained only near r = 0 never
sees: on the base's own states a SAC critic scored it below the base alone
(results/residual/critic-probe.md), because it is a large correction at almost every step and
the residual's exploration stays near zero.

Seeding the replay buffer with a few oracle episodes before training (RLPD and ResFiT seed
theirs with demonstrations) shows the critic what large corrections earn. The expert is
privileged, so this is training-time help from the simulator only, like DAgger's labels; the
residual that acts still sees only its features.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tqdm import tqdm

from residual_bench.policies.registry import make_controller
from residual_bench.residual.env import ResidualEnv
from residual_bench.seeding import episode_seed

ORACLE_EXPERT = "scripted-expert"


class OracleResidual:
    """``r = clip((a_expert - a_base) / alpha, -1, 1)`` on a residual env.

    The expert runs in the base's shadow on the true state every step, also while the base is
    stalled. Dimensions whose alpha is 0 get r = 0 (nothing can be corrected there). Through
    a gripper deadband, the gripper's r is the output the band maps onto the correction.
    """

    def __init__(self, env: ResidualEnv) -> None:
        self.env = env
        self.expert = make_controller(ORACLE_EXPERT, env.unwrapped)

    def reset(self, info: dict | None = None) -> None:
        """Start a new episode (call after the env's reset; ``info`` is not needed: the
        expert reads the wrapped env's own)."""
        self.expert.reset(self.env.last_raw_observation[1])

    def __call__(self, obs: Any = None, info: dict | None = None) -> np.ndarray:
        raw_obs, raw_info = self.env.last_raw_observation
        target, _ = self.expert.act(raw_obs, {**raw_info, "base_stalled": False})
        authority = self.env.scale * self.env.alpha
        correction = np.divide(
            target - self.env.base_action,
            authority,
            out=np.zeros(len(authority)),
            where=authority > 0,
        )
        r = np.clip(correction, -1.0, 1.0)
        band = self.env.gripper_deadband
        if band > 0 and r[6] != 0:  # the output that the band maps onto this correction
            r[6] = np.copysign(band + (1.0 - band) * abs(r[6]), r[6])
        return r


def seed_replay_buffer(
    model: Any,
    env: ResidualEnv,
    episodes: int,
    seed: int,
    progress: bool = False,
    add_to_buffer: bool = True,
) -> int:
    """Add ``episodes`` episodes of the oracle residual on ``env`` to ``model``'s buffer.

    Transitions are stored as the agent's own would be (observation, next observation, r, the
    env's shaped reward, done, and SB3's time-limit flag, so a truncated episode is
    bootstrapped). The buffer must take one transition at a time (a single-env agent). A
    model that can hold them (``hold_oracle_demonstrations``) also keeps the observations and
    the oracle's residuals, for its imitation term; ``add_to_buffer`` False keeps only those
    (a resumed run, whose buffer has the transitions already). Returns the number of
    transitions collected.

    Raises:
        ValueError: a buffer of several envs, or a model without one (on-policy agents).
    """
    buffer = getattr(model, "replay_buffer", None)
    if buffer is None:
        raise ValueError("oracle episodes seed an off-policy agent's replay buffer; this has none")
    if buffer.n_envs != 1:
        raise ValueError(
            f"oracle episodes seed a single-env replay buffer, this one has {buffer.n_envs} envs"
        )
    oracle = OracleResidual(env)
    observations, corrections = [], []
    for i in tqdm(range(episodes), desc="oracle episodes", unit="episode", disable=not progress):
        obs, _ = env.reset(seed=episode_seed(seed, "oracle-replay", i))
        oracle.reset()
        done = False
        while not done:
            r = oracle()
            next_obs, reward, terminated, truncated, _ = env.step(r)
            done = terminated or truncated
            timeout = {"TimeLimit.truncated": bool(truncated and not terminated)}
            if add_to_buffer:
                buffer.add(
                    _batch(obs), _batch(next_obs), r[None], np.array([reward]), np.array([done]),
                    [timeout],
                )  # fmt: skip
            observations.append(obs)
            corrections.append(r)
            obs = next_obs
    if hasattr(model, "hold_oracle_demonstrations") and not isinstance(obs, dict):
        model.hold_oracle_demonstrations(np.stack(observations), np.stack(corrections))
    return len(corrections)


def _batch(obs: Any) -> Any:
    """One observation as a batch of one (a vector, or a dict of arrays)."""
    if isinstance(obs, dict):
        return {key: np.asarray(value)[None] for key, value in obs.items()}
    return np.asarray(obs)[None]
