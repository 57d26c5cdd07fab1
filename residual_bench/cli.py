"""The ``bench`` command line.

Every subcommand turns bad input (unknown names, missing files, malformed specs) into one
line on stderr that names the problem, and a non-zero exit status - never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from residual_bench import __version__
from residual_bench.registration import add_env_option
from residual_bench.sweep.cli import add_sweep_parser
from residual_bench.training_cli import add_training_parsers

# Errors that mean "your input is wrong"; anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, PermissionError)
BASE_FORMS = (
    ("bc:PATH", "a bc network checkpoint of yours (bench base train)"),
    ("remote:ws://HOST:PORT", "a policy server speaking openpi's protocol (bench serve)"),
    ("openvla-rest:http://HOST:PORT", "OpenVLA's own REST server (vla-scripts/deploy.py)"),
    ("octo", "Octo on a policy server of its own (docs/remote_policies.md)"),
)


def _cmd_list(args: argparse.Namespace) -> int:
    from residual_bench.env_spec import spec_dir
    from residual_bench.finetune.config import finetune_names, load_finetune_config
    from residual_bench.perturb import load_suite, suite_names
    from residual_bench.policies.registry import base_names, get_base
    from residual_bench.registration import ENV_IDS
    from residual_bench.residual.config import config_names, load_config
    from residual_bench.residual.features import FEATURE_MODES
    from residual_bench.sim.objects import OBJECT_SPLITS, objects_in_split
    from residual_bench.spaces import OBS_MODES
    from residual_bench.tasks import task_entry, task_ids

    print("environments:")
    for env_id in ENV_IDS:
        print(f"  {env_id}  (obs_mode: {', '.join(OBS_MODES)})")
        if env_id in task_ids():  # the real Panda is evaluated by session plans instead
            print(f"    suites (bench run): {', '.join(task_entry(env_id).task.suites)}")
    print("object splits:")
    for split in OBJECT_SPLITS:
        print(f"  {split:<8} {len(objects_in_split(split))} objects")
    print("scene specs (envs/):")
    for path in sorted(spec_dir().glob("*.yaml")):
        print(f"  {path.stem}")
    print("perturbation suites (envs/suites/, split: train or heldout):")
    for name in suite_names():
        suite = load_suite(name)
        print(f"  {name:<19} {suite.split:<8} {suite.description}")
    print("base policies:")
    for name in base_names():
        print(f"  {name:<16} {get_base(name).description}")
    print("  and by form:")
    for form, meaning in BASE_FORMS:
        print(f"  {form:<34} {meaning}")
    print("residual configs (baselines/, bench train --residual):")
    for name in config_names():
        print(f"  {name:<16} {load_config(name).description}")
    print("fine-tuning configs (baselines/, bench train --base bc --residual):")
    for name in finetune_names():
        print(f"  {name:<19} {load_finetune_config(name).description}")
    print(f"residual feature modes (--features): {', '.join(FEATURE_MODES)}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from residual_bench.rollout import run_episodes, success_line

    _, summary = run_episodes(
        args.episodes,
        policy=args.policy,
        suite=args.suite,
        objects=args.objects,
        seed=args.seed,
        out=args.out,
        progress=not args.quiet,
        scene_figure=True,
        env_id=args.env,
    )
    print(
        f"{args.policy} on {args.env}, suite {summary['run']['suite']}, {args.objects} objects: "
        f"{success_line(summary)}"
    )
    if summary["completion_time_mean"] is not None:
        print(f"mean completion time {summary['completion_time_mean']:.2f} s (simulated)")
    recovery = summary["recovery_rate"]
    if recovery["n"]:
        print(
            f"recovery rate {recovery['k']}/{recovery['n']} perturbed episodes = "
            f"{recovery['rate']:.1%}"
        )
    print(f"wrote {args.out}/episodes.jsonl, summary.json and scene.png")
    return 0


def _residual_paths(values: list[str]) -> list[str | None]:
    """``none`` is the base alone; anything else must be a trained residual directory (or
    ``shipped:NAME``, a residual shipped with the package)."""
    from residual_bench.residual.checkpoint import residual_location

    paths: list[str | None] = []
    for value in values:
        if value == "none":
            paths.append(None)
        elif not residual_location(value).exists():
            raise FileNotFoundError(f"--residual: {value!r} does not exist")
        else:
            paths.append(value)
    return paths


def _print_cells(summary: dict) -> None:
    from residual_bench.rollout import format_rate

    for cell in summary["cells"]:
        method = cell["base"] + (f"+{cell['residual']}" if cell["residual"] else "")
        if cell["train_seed"] is not None:
            method += f" (seed {cell['train_seed']})"
        print(
            f"  {method:<24} {cell['suite']:<12} {cell['objects']:<8} "
            f"success {format_rate(cell['success_rate'])}  "
            f"recovery {format_rate(cell['recovery_rate'])}"
        )


def _cmd_eval(args: argparse.Namespace) -> int:
    from residual_bench.eval.episode_tasks import make_tasks
    from residual_bench.eval.runner import evaluate

    tasks = make_tasks(
        args.base,
        _residual_paths(args.residual),
        args.suite,
        args.objects,
        args.episodes,
        args.seed,
        env_id=args.env,
        instructions=args.instructions,
    )
    summary = evaluate(
        tasks,
        args.out,
        executor=args.executor,
        workers=args.workers,
        resume=args.resume,
        progress=not args.quiet,
    )
    _print_cells(summary)
    print(f"wrote {args.out}/episodes.jsonl and summary.json")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from residual_bench.benchmark_run import ProtocolOptions, execute_run, plan_run
    from residual_bench.protocol import parse_seeds

    options = ProtocolOptions(
        quick=args.quick,
        suites=args.suite,
        heldout=args.heldout,
        objects=args.objects,
        episodes=args.episodes,
        seeds=parse_seeds(args.seeds) if args.seeds else None,
        train_steps=args.steps,
        master_seed=args.seed,
    )
    use_shipped = not args.retrain
    run = plan_run(
        args.base,
        args.residual,
        args.out,
        args.env,
        options,
        workers=args.workers,
        use_shipped=use_shipped,
    )
    print(run.describe(), flush=True)
    report = execute_run(
        run,
        executor=args.executor,
        workers=args.workers,
        resume=args.resume,
        progress=not args.quiet,
        use_shipped=use_shipped,
    )
    print(run.closing_text())
    print(f"report: {report} (and {report.with_suffix('.html').name})")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from residual_bench.eval.report import build_report

    if args.filmstrip:
        from residual_bench.eval.filmstrip import save_comparison_filmstrip

        for directory in args.dirs:
            save_comparison_filmstrip(directory, Path(directory) / "filmstrip.png")
    path = build_report(args.dirs, args.out)
    print(f"wrote {path} and {path.with_suffix('.html')}")
    return 0


def _add_selection(p: argparse.ArgumentParser, defaults: bool) -> None:
    """The options `bench eval` and `bench run` share to select episodes."""
    suites = "nominal" if defaults else "the task's own: bench list; each task the ones that fit it"
    add_env_option(p, every_task=not defaults)
    p.add_argument("--base", required=True, help="a base policy name from `bench list`")
    p.add_argument(
        "--suite",
        nargs="+",
        default=["nominal"] if defaults else None,
        help=f"suite names or YAML paths ({suites})",
    )
    p.add_argument(
        "--objects",
        nargs="+",
        default=["heldout"] if defaults else None,
        choices=["train", "heldout"],
        help="object split(s) (heldout)",
    )
    p.add_argument(
        "--episodes", type=int, default=20 if defaults else None, help="episodes per cell"
    )
    p.add_argument("--seed", type=int, default=0, help="master seed of the episode seeds (0)")
    p.add_argument("--out", required=True, help="results directory")
    p.add_argument(
        "--executor",
        default="local",
        choices=["local", "serial", "ray"],
        help="local process pool (default), serial, or Ray (RAY_ADDRESS)",
    )
    p.add_argument("--workers", type=int, default=None, help="parallel workers (one per core)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``bench`` (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="bench",
        description="residual-bench: residual RL on top of frozen robot policies.",
    )
    parser.add_argument("--version", action="version", version=f"residual-bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p_list = sub.add_parser("list", help="environments, object splits, suites and base policies")
    p_list.set_defaults(func=_cmd_list)

    p_demo = sub.add_parser(
        "demo", help="run the scripted expert for a few episodes and draw the scene"
    )
    add_env_option(p_demo)
    p_demo.add_argument("--episodes", type=int, default=20, help="number of episodes (20)")
    p_demo.add_argument("--objects", default="train", help="object split: train | heldout")
    p_demo.add_argument("--suite", default="nominal", help="perturbation suite name or YAML path")
    p_demo.add_argument("--policy", default="expert", help="a policy name from `bench list`")
    p_demo.add_argument("--seed", type=int, default=0, help="master seed (0)")
    p_demo.add_argument(
        "--out", default="runs/demo", help="output directory, must not hold results yet"
    )
    p_demo.add_argument("--quiet", action="store_true", help="no progress bar")
    p_demo.set_defaults(func=_cmd_demo)

    add_training_parsers(sub)
    add_sweep_parser(sub)

    p_eval = sub.add_parser("eval", help="evaluate a base, alone or with trained residuals")
    _add_selection(p_eval, defaults=True)
    p_eval.add_argument(
        "--residual",
        nargs="+",
        default=["none"],
        help="trained residual directories, or none for the base alone (none)",
    )
    p_eval.add_argument(
        "--instructions",
        default="train",
        choices=["train", "heldout"],
        help="the instructions' wordings: those of training, or the same scenes in wordings "
        "no training used (train)",
    )
    p_eval.set_defaults(func=_cmd_eval)

    p_run = sub.add_parser(
        "run",
        help="the main job: residual vs base on every suite, with a report (without --env: "
        "on every task, with one task x suite table)",
    )
    _add_selection(p_run, defaults=False)
    p_run.add_argument(
        "--residual",
        default="sac",
        help="residual algorithm (sac); without --env one residual is trained per task",
    )
    p_run.add_argument("--seeds", nargs="+", default=None, help="training seeds, e.g. 0 1 2")
    p_run.add_argument("--steps", type=int, default=None, help="training steps if it trains")
    p_run.add_argument("--quick", action="store_true", help="a smoke run of a few minutes")
    p_run.add_argument(
        "--heldout",
        action="store_true",
        help="also the held-out perturbation suites (disturbances no training suite has)",
    )
    p_run.add_argument(
        "--retrain", action="store_true", help="train residuals even when one is shipped"
    )
    p_run.set_defaults(func=_cmd_run)

    from residual_bench.leaderboard.cli import add_leaderboard_parsers
    from residual_bench.policies.remote.cli import add_serve_parser
    from residual_bench.real.cli import add_real_eval_parser

    add_serve_parser(sub)
    add_real_eval_parser(sub)
    add_leaderboard_parsers(sub)

    p_report = sub.add_parser("report", help="tables and plots from result directories")
    p_report.add_argument("dirs", nargs="+", help="result directories (with episodes.jsonl)")
    p_report.add_argument("--out", default="runs/report", help="report directory")
    p_report.add_argument(
        "--filmstrip",
        action="store_true",
        help="make each directory's filmstrip again first (re-runs two of its episodes)",
    )
    p_report.set_defaults(func=_cmd_report)
    describe_subcommands(parser)
    return parser


def describe_subcommands(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand's ``--help`` page its one-line help as a description, so that
    ``bench train --help`` says what ``bench train`` does, not only its options."""
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        helps = {a.dest: a.help for a in getattr(action, "_choices_actions", [])}
        for name, subparser in getattr(action, "choices", {}).items():
            if subparser.description is None and helps.get(name):
                subparser.description = helps[name][0].upper() + helps[name][1:] + "."
            describe_subcommands(subparser)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bench`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except USER_ERRORS as exc:
        print(f"bench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"bench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
