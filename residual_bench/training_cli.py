"""The training commands of ``bench``: ``bench base`` (demonstrations and learned bases),
``bench train`` (a residual or a fine-tuning baseline) and ``bench residual convert``.

Like the rest of the command line, the heavy libraries are imported when a command runs, not
when ``bench --help`` builds the parser.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

from residual_bench.registration import ENV_ID, add_env_option, same_task


def _cmd_base_collect(args: argparse.Namespace) -> int:
    from residual_bench.policies.bc.data import collect_demonstrations

    data = collect_demonstrations(
        args.episodes, seed=args.seed, out=args.out, progress=not args.quiet
    )
    print(f"wrote {len(data['action'])} steps of {args.episodes} expert episodes to {args.out}")
    return 0


def _cmd_base_train(args: argparse.Namespace) -> int:
    if args.kind != "bc":
        raise ValueError(f"unknown trainable base {args.kind!r}; valid choices: bc")
    from residual_bench.policies.bc.train import train_bc

    summary = train_bc(
        args.data,
        args.out,
        epochs=args.epochs,
        seed=args.seed,
        batch_size=args.batch_size,
        lr=args.lr,
        resume=not args.restart,
        progress=not args.quiet,
        object_centric=args.object_centric,
        position_only=args.position_only,
        own_vocabulary=args.own_vocabulary,
    )
    print(
        f"trained bc for {summary['epochs']} epochs on {summary['samples']} steps, "
        f"final loss {summary['final_loss']:.4f}; wrote {args.out}"
    )
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from residual_bench.finetune.config import is_finetune_config
    from residual_bench.finetune.train import train_finetune
    from residual_bench.residual.train import train_residual

    if is_finetune_config(args.residual):
        if not same_task(args.env, ENV_ID):
            # The learned base and its fine-tuning run on pick-and-place demonstrations only.
            raise ValueError(
                f"{args.residual} fine-tunes the bc base, which knows {ENV_ID} only; "
                f"--env {args.env} applies to residuals"
            )
        if args.features is not None:
            raise ValueError(
                f"{args.residual} fine-tunes the base's own network; --features applies to "
                "residuals only"
            )
        path = train_finetune(
            args.base,
            args.residual,
            args.out,
            args.seed,
            not args.quiet,
            steps=args.steps,
            suite=args.suite,
            resume=args.resume,
        )
        print(f"fine-tuned {args.base} with {args.residual} (seed {args.seed}); wrote {path}")
        print(f"learning curve: {Path(args.out) / 'progress.csv'}")
        return 0
    path = train_residual(
        args.base,
        args.residual,
        args.out,
        steps=args.steps,
        seed=args.seed,
        suite=args.suite,
        features=args.features,
        progress=not args.quiet,
        resume=args.resume,
        task=args.env,
    )
    print(f"trained {args.base} + {args.residual} on {args.env} (seed {args.seed}); wrote {path}")
    print(f"learning curve: {Path(args.out) / 'progress.csv'}")
    return 0


def _cmd_residual_convert(args: argparse.Namespace) -> int:
    from residual_bench.residual.checkpoint import convert_residual

    for directory in args.dirs:
        convert_residual(directory)
        print(f"converted {directory}: residual.json + policy.safetensors, model.zip removed")
    return 0


class WholeNamesFormatter(argparse.HelpFormatter):
    """Help text wrapped between words only: a config name (``sac-gated``,
    ``finetune-dagger``) is never split at its hyphen, so it can be copied from the help."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def add_training_parsers(sub: Any) -> None:
    """Add ``base``, ``train`` and ``residual`` to ``bench``'s subparsers."""
    p_base = sub.add_parser("base", help="collect demonstrations and train learned bases")
    base_sub = p_base.add_subparsers(dest="base_command", metavar="BASE_COMMAND", required=True)
    p_collect = base_sub.add_parser("collect", help="record expert demonstrations (camera view)")
    p_collect.add_argument("--episodes", type=int, default=300, help="episodes (300)")
    p_collect.add_argument("--seed", type=int, default=0, help="master seed (0)")
    p_collect.add_argument("--out", default="runs/bc_demos.npz", help="output .npz file")
    p_collect.add_argument("--quiet", action="store_true", help="no progress bar")
    p_collect.set_defaults(func=_cmd_base_collect)
    p_train = base_sub.add_parser("train", help="train a learned base (bc) on demonstrations")
    p_train.add_argument("kind", help="which base: bc")
    p_train.add_argument("--data", default="runs/bc_demos.npz", help="demonstrations file")
    p_train.add_argument("--out", default="runs/bc_base.pt", help="checkpoint to write")
    p_train.add_argument("--epochs", type=int, default=30, help="epochs (30)")
    p_train.add_argument("--seed", type=int, default=0, help="training seed (0)")
    p_train.add_argument("--batch-size", type=int, default=128, help="batch size (128)")
    p_train.add_argument("--lr", type=float, default=1e-3, help="learning rate (1e-3)")
    p_train.add_argument(
        "--object-centric",
        action="store_true",
        help="the object-centric network: keypoints only to the action head (see results/bc)",
    )
    p_train.add_argument(
        "--position-only",
        action="store_true",
        help="predict translation and gripper only; the hand keeps pointing down",
    )
    p_train.add_argument(
        "--own-vocabulary",
        action="store_true",
        help="read the instruction as counts of the demonstrations' words, not hashed features",
    )
    p_train.add_argument(
        "--restart",
        action="store_true",
        help="ignore an interrupted run's state instead of resuming it",
    )
    p_train.add_argument("--quiet", action="store_true", help="no progress bar")
    p_train.set_defaults(func=_cmd_base_train)

    p_rtrain = sub.add_parser(
        "train", help="train a residual on a frozen base", formatter_class=WholeNamesFormatter
    )
    add_env_option(p_rtrain)
    p_rtrain.add_argument("--base", required=True, help="a base policy name from `bench list`")
    p_rtrain.add_argument(
        "--residual",
        default="sac",
        help="a residual config (sac, sac-gated, td3, ppo, tqc, crossq, scratch), a fine-tuning "
        "config (finetune-dagger, finetune-rl, finetune-rl-bc, finetune-rl-bc-head, "
        "finetune-rl-ppo; --base bc), "
        "or a YAML path; "
        "default sac (`bench list` describes each)",
    )
    p_rtrain.add_argument("--suite", default=None, help="training suite (the config's: mixed)")
    p_rtrain.add_argument("--steps", type=int, default=None, help="environment steps (config)")
    p_rtrain.add_argument("--seed", type=int, default=0, help="training seed (0)")
    p_rtrain.add_argument(
        "--features", default=None, help="objects | privileged | global | proprio (config)"
    )
    p_rtrain.add_argument("--out", required=True, help="run directory")
    p_rtrain.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run of yours in --out (its checkpoint is unpickled)",
    )
    p_rtrain.add_argument("--quiet", action="store_true", help="no progress bar")
    p_rtrain.set_defaults(func=_cmd_train)

    p_residual = sub.add_parser("residual", help="trained residual directories")
    residual_sub = p_residual.add_subparsers(dest="residual_command", required=True)
    p_convert = residual_sub.add_parser(
        "convert",
        help="rewrite a residual of the earlier model.zip format as safetensors + JSON, "
        "without unpickling it",
    )
    p_convert.add_argument("dirs", nargs="+", help="residual directories, converted in place")
    p_convert.set_defaults(func=_cmd_residual_convert)
