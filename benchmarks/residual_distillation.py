"""Can a residual that sees only its features learn the oracle's correction? DAgger says how far.

    python benchmarks/residual_distillation.py                       # 8 rounds of 20 episodes
    python benchmarks/residual_distillation.py --rounds 3 --episodes 5 --out /tmp/d.md

The oracle residual (``residual.oracle``) fixes the ``scripted`` base with enough authority
(results/residual/headroom.md: 93% on held-out ``mixed`` at alpha (0.3, 0.3, 2)), but it reads
the privileged expert. This benchmark asks whether its correction is a function a residual's
own network can learn from what the residual observes (``objects`` features, the base's
action), leaving reinforcement learning out: supervised learning with the answer at every step.

Round 0 collects episodes of the oracle acting (training objects, ``mixed``) and fits the
network of the shipped ``sac`` residual (256x256 here) to the oracle's r by mean squared error
on tanh of the actor's mean, as the residual acts. Every later round collects episodes of the
network acting alone, labels each visited state with the oracle's r (DAgger), and fits again
on everything collected. Per round: the error on the new round's states before fitting them
(states the network has not seen: how well it generalises where it goes), per dimension
group, the error after fitting, the collecting policy's success, and the network's success on
the learning curve's 20 held-out ``mixed`` episodes. Writes
``results/residual/distillation.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import residual_bench.registration  # noqa: F401  (registers every task id)
from residual_bench.provenance import shown_path
from residual_bench.residual.agents import build_agent
from residual_bench.residual.config import load_config
from residual_bench.residual.factory import make_residual_env
from residual_bench.residual.oracle import OracleResidual
from residual_bench.seeding import episode_seed
from residual_bench.training.learning_curve import heldout_success

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "results" / "residual" / "distillation.md"
ALPHA = (0.3, 0.3, 2.0)
GROUPS = {"translation": slice(0, 3), "rotation": slice(3, 6), "gripper": slice(6, 7)}
# tanh never reaches the oracle's clipped +-1: fitting a reachable target keeps the mean finite.
TARGET_LIMIT = 0.98


def collect(env, oracle, model, episodes: int, round_index: int, seed: int, oracle_acts: bool):
    """States, oracle labels and successes of ``episodes`` episodes, acted by the oracle or
    by the network."""
    states, labels, solved = [], [], []
    for i in range(episodes):
        obs, _ = env.reset(seed=episode_seed(seed, "distillation", round_index, i))
        oracle.reset()
        done = False
        while not done:
            label = oracle()
            states.append(obs)
            labels.append(label)
            action = label if oracle_acts else model.predict(obs, deterministic=True)[0]
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        solved.append(bool(info["success"]))
    return np.array(states, np.float32), np.array(labels, np.float32), float(np.mean(solved))


def squared_errors(model, states: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-sample, per-dimension squared error of the network's residual against the labels."""
    with torch.no_grad():
        mean, _, _ = model.actor.get_action_dist_params(torch.as_tensor(states))
        predicted = torch.tanh(mean).numpy()
    return (predicted - np.clip(labels, -TARGET_LIMIT, TARGET_LIMIT)) ** 2


def fit(model, states: np.ndarray, labels: np.ndarray, epochs: int, generator) -> None:
    """Minibatch Adam on the mean squared error of tanh(mean) against the labels."""
    optimizer = torch.optim.Adam(model.actor.parameters(), lr=1e-3)
    x = torch.as_tensor(states)
    y = torch.as_tensor(np.clip(labels, -TARGET_LIMIT, TARGET_LIMIT))
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), 256):
            batch = order[start : start + 256]
            mean, _, _ = model.actor.get_action_dist_params(x[batch])
            loss = ((torch.tanh(mean) - y[batch]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def group_errors(errors: np.ndarray) -> str:
    return " | ".join(f"{errors[:, part].mean():.3f}" for part in GROUPS.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--episodes", type=int, default=20, help="collected per round")
    parser.add_argument("--epochs", type=int, default=30, help="over all data, per round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    for name in ("rounds", "episodes", "epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(args.seed)
    env = make_residual_env("scripted", "objects", ALPHA, suite="mixed", objects="train")
    curve_env = make_residual_env("scripted", "objects", ALPHA, suite="mixed", objects="heldout")
    config = load_config("sac")
    config.alpha = list(ALPHA)
    config.hyperparams["policy_kwargs"] = {"net_arch": [256, 256]}
    model = build_agent(config, env, seed=args.seed)
    oracle = OracleResidual(env)
    act = lambda obs, info: model.predict(obs, deterministic=True)[0]  # noqa: E731
    states, labels = np.empty((0, *env.observation_space.shape), np.float32), np.empty((0, 7))
    groups = " | ".join(f"{g} error, new states" for g in GROUPS)
    lines = [
        f"| round | acting | states | {groups} | error after fitting | collected success "
        "| held-out success (20) | s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    start = time.perf_counter()
    for k in range(args.rounds):
        new_states, new_labels, collected = collect(
            env, oracle, model, args.episodes, k, args.seed, oracle_acts=k == 0
        )
        before = squared_errors(model, new_states, new_labels)
        states = np.concatenate([states, new_states])
        labels = np.concatenate([labels, new_labels]).astype(np.float32)
        fit(model, states, labels, args.epochs, generator)
        after = squared_errors(model, states, labels).mean()
        success = heldout_success(curve_env, act, "mixed", 20)
        lines.append(
            f"| {k} | {'oracle' if k == 0 else 'network'} | {len(states)} | "
            f"{group_errors(before)} | {after:.3f} | {collected:.0%} | {success:.0%} "
            f"| {time.perf_counter() - start:.0f} |"
        )
        print(lines[-1], flush=True)
    env.close()
    curve_env.close()
    command = (
        f"python benchmarks/residual_distillation.py --rounds {args.rounds} "
        f"--episodes {args.episodes} --epochs {args.epochs} --seed {args.seed}"
    )
    if args.out.resolve() != DEFAULT_OUT.resolve():
        command += f" --out {shown_path(args.out)}"
    text = (
        "# Can a residual's own network learn the oracle's correction?\n\n"
        f"Produced by `{command}` (`scripted` base, alpha {ALPHA}, `objects` features, "
        "training objects and the `mixed` suite for the rounds, the learning curve's 20 "
        "held-out `mixed` episodes for the last column). Errors are mean squared errors of r "
        "(in units of alpha, the oracle's r clipped to +-0.98); 'new states' are those the "
        "round collected, before the network is fitted to them (in round 0 the network is "
        "still zero: the errors of r = 0). Round 0 is behaviour cloning "
        "of the oracle's own episodes; later rounds are DAgger (the network acts, the oracle "
        "labels).\n\n" + "\n".join(lines) + "\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
