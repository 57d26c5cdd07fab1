"""Warm-starting a residual's actor from expert corrections (optional, before RL).

RL from a zero residual has to discover, from reward alone, which small corrections help; an
actor that follows a young critic can wreck a decent base long before it improves it. In
simulation a privileged expert is available, so its *corrections* can seed the actor: along
the states the base (plus the current residual) visits, the target is

    r* = clip((a_expert - a_base) / alpha, -1, 1)

the residual that would move the executed action towards the expert's as far as alpha allows.
Rounds of DAgger collect the states under the residual being trained, so the actor learns to
correct its own mistakes too. The deployed residual still sees only its usual observation
(proprioception, base action, features); the expert is used for labels in training only.
RL then fine-tunes from there (the critic-only phase lets the critic learn this actor's values
first).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from residual_bench.policies.expert import ScriptedExpert
from residual_bench.residual.env import ResidualEnv
from residual_bench.seeding import episode_seed

PRETRAIN_DEFAULTS: dict[str, Any] = {
    "episodes": 0,  # per DAgger round; 0 switches the warm start off
    "rounds": 2,
    "epochs": 30,
    "learning_rate": 1e-3,
}


def collect_corrections(
    env: ResidualEnv, actor: Any, episodes: int, seed: int, round_index: int, progress: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Observations and expert-correction targets along the states ``actor`` visits.

    ``actor`` maps a batch of observations to residual actions (None: the base alone).
    """
    observations, targets = [], []
    alpha = env.scale * env.alpha
    for index in tqdm(range(episodes), desc=f"corrections {round_index}", disable=not progress):
        obs, _ = env.reset(seed=episode_seed(seed, "residual-pretrain", round_index, index))
        expert = ScriptedExpert()
        expert.reset()
        done = False
        while not done:
            expert_action = expert.act(env.unwrapped)
            wanted = (expert_action - env.base_action) / np.maximum(alpha, 1e-9)
            observations.append(obs)
            targets.append(np.clip(wanted, -1.0, 1.0).astype(np.float32))
            r = np.zeros(7) if actor is None else actor(obs[None])[0]
            obs, _, terminated, truncated, _ = env.step(r)
            done = terminated or truncated
    return np.asarray(observations, dtype=np.float32), np.asarray(targets)


def pretrain_actor(
    model: Any, env: ResidualEnv, options: dict[str, Any], seed: int, progress: bool = True
) -> dict[str, float]:
    """Fit ``model``'s deterministic actor to expert corrections (SAC and TD3 actors).

    Returns:
        The final mean-squared error and the number of labelled steps.
    """
    actor = model.actor
    # SAC's actor samples unless asked for its mean; TD3's is deterministic already.
    takes_flag = "deterministic" in actor.forward.__code__.co_varnames

    def forward(batch: torch.Tensor) -> torch.Tensor:
        return actor(batch, deterministic=True) if takes_flag else actor(batch)

    optimiser = torch.optim.Adam(actor.parameters(), lr=float(options["learning_rate"]))
    generator = torch.Generator().manual_seed(seed)
    data_obs, data_targets = [], []
    loss_value = float("nan")

    def act(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return forward(torch.as_tensor(batch)).numpy()

    for round_index in range(int(options["rounds"])):
        obs, targets = collect_corrections(
            env, None if round_index == 0 else act, int(options["episodes"]), seed, round_index,
            progress,
        )  # fmt: skip
        data_obs.append(obs)
        data_targets.append(targets)
        x = torch.as_tensor(np.concatenate(data_obs))
        y = torch.as_tensor(np.concatenate(data_targets))
        for _ in range(int(options["epochs"])):
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), 256):
                idx = order[start : start + 256]
                loss = torch.nn.functional.mse_loss(forward(x[idx]), y[idx])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            loss_value = float(loss.item())
    if hasattr(model, "actor_target"):  # TD3: the target actor starts where the actor is
        model.actor_target.load_state_dict(actor.state_dict())
    return {"mse": loss_value, "steps": int(sum(len(o) for o in data_obs))}
