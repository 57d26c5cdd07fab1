"""Does a residual's critic know what its actor's corrections earn?

    python benchmarks/residual_value_calibration.py RUN --config CONFIG --episodes 10

For a ``bench train`` run folder (its ``checkpoint/model.zip``, at its last checkpoint) and
the config it was trained with, the ``scripted`` base runs alone and with the run's
deterministic residual on the same ``mixed`` episodes (``--objects``, seeds of ``bench
eval``), in an env that pays the run's own training reward (its ``train.reward`` mode and
penalties). At every step t it compares the critic's value of the action taken, Q(s_t, a_t)
(minimum over its Q-networks), with what the episode then paid: the discounted sum of the
rewards to the episode's end plus gamma^(T - t) times the critic's value there, as a
time-limit bootstrap would. An actor that climbs its critic's errors shows as a Q above the
base's while its return falls below.

SAC's values also carry its entropy bonus, which the deterministic residual does not collect,
so its Q and return differ by about that much even when the critic is right: compare the
gaps of the two rows, not the rows with zero. The checkpoint is the run's own SB3 save, read
with SB3's loader (which unpickles): point it only at run folders this machine wrote.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

import residual_bench.registration  # noqa: F401  (registers every task id)
from residual_bench.provenance import shown_path
from residual_bench.residual.agents import load_agent
from residual_bench.residual.config import load_config
from residual_bench.residual.critic_values import pessimistic_critic_value
from residual_bench.residual.factory import make_residual_env
from residual_bench.residual.train import residual_env_options
from residual_bench.run_directory import own_checkpoint_model, training_run_argument
from residual_bench.seeding import episode_seed

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
DEFAULT_OUT = RESULTS / "residual" / "value-calibration.md"


def bootstrapped_returns(rewards: np.ndarray, last_value: float, gamma: float) -> np.ndarray:
    """G_t = sum_k gamma^k r_{t+k} to the end, plus gamma^(T - t) * last_value."""
    returns = np.empty(len(rewards))
    running = last_value
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns


def success_auc(q_values: np.ndarray, solved: np.ndarray) -> float:
    """The probability that a step of a solved episode has a higher Q than a step of a
    failed one (ties count half): 0.5 when Q says nothing of the outcome, NaN when every
    episode had the same outcome."""
    if solved.all() or not solved.any():
        return float("nan")
    ranks = rankdata(q_values)
    wins, losses = int(solved.sum()), int((~solved).sum())
    return float((ranks[solved].sum() - wins * (wins + 1) / 2) / (wins * losses))


def calibration(run: Path, config_path: Path, episodes: int, objects: str, seed: int) -> dict:
    """Per acting policy (the base alone, the actor): mean Q(s, a), mean bootstrapped return,
    success, the correlation of Q with the return over steps, and :func:`success_auc`."""
    config = load_config(config_path)
    if config.algo not in ("sac", "td3", "tqc"):
        raise SystemExit(f"{config_path}: {config.algo} has no Q-critic to calibrate")
    model = load_agent(config.algo, str(own_checkpoint_model(run)))
    env = make_residual_env(
        "scripted",
        config.features,
        tuple(config.alpha),
        residual_env_options(config),
        suite="mixed",
        objects=objects,
        reward_mode=config.train.reward,
    )
    gamma = float(config.hyperparams.get("gamma", 0.99))
    rows = {}
    for name in ("base alone", "residual"):
        q_values, returns, wins, step_solved = [], [], [], []
        for i in range(episodes):
            obs, info = env.reset(seed=episode_seed(seed, "mixed", objects, i))
            q, rewards, done = [], [], False
            while not done:
                action = np.zeros(7)
                if name == "residual":
                    action = model.predict(obs, deterministic=True)[0]
                q.append(pessimistic_critic_value(model, obs, action))
                obs, reward, terminated, truncated, info = env.step(action)
                rewards.append(float(reward))
                done = terminated or truncated
            q_values += q
            returns += list(bootstrapped_returns(np.array(rewards), q[-1], gamma))
            wins.append(bool(info["success"]))
            step_solved += [wins[-1]] * len(q)
        q_array, g_array = np.array(q_values), np.array(returns)
        tracking = np.corrcoef(q_array, g_array)[0, 1] if np.ptp(q_array) > 0 else float("nan")
        auc = success_auc(q_array, np.array(step_solved))
        rows[name] = (q_array.mean(), g_array.mean(), np.mean(wins), tracking, auc)
    env.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "runs", nargs="+", type=training_run_argument, help="training run folders (your own)"
    )
    parser.add_argument("--config", type=Path, required=True, help="the config they trained with")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--objects", choices=("train", "heldout"), default="train")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    lines = [
        "| run | acting | success | mean Q(s, a) | mean return | Q - return "
        "| corr(Q, return) | Q ranks the solved episodes' steps (AUC) | s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in args.runs:
        start = time.perf_counter()
        rows = calibration(run, args.config, args.episodes, args.objects, args.seed)
        wall = time.perf_counter() - start
        for name, (q, g, won, tracking, auc) in rows.items():
            lines.append(
                f"| {run.name} | {name} | {won:.0%} | {q:+.2f} | {g:+.2f} | {q - g:+.2f} "
                f"| {tracking:+.2f} | {auc:.2f} | {wall:.0f} |".replace("nan", "-")
            )
            print(lines[-1], flush=True)
    command = "python benchmarks/residual_value_calibration.py " + " ".join(
        [*(f"RUN/{r.name}" for r in args.runs), f"--config {shown_path(args.config)}"]
    )
    text = (
        "# Does the critic know what its actor's corrections earn?\n\n"
        f"Produced by `{command} --episodes {args.episodes} --objects {args.objects}` "
        f"(`mixed`, master seed {args.seed}; RUN is the folder the run was trained into, at its "
        "last checkpoint). Per step, the critic's Q(s, a) of the action taken against the "
        "discounted return the episode then paid in the run's training reward, bootstrapped "
        "with the critic's value at the episode's end; means over every step of every "
        "episode. corr(Q, return): their correlation over those steps. AUC: the chance that "
        "a step of an episode that was solved has a higher Q than a step of one that failed "
        "(0.5: Q says nothing of the outcome; '-' when every episode had the same one).\n\n"
        + "\n".join(lines)
        + "\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
