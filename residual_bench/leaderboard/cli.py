"""The leaderboard's commands: ``bench submit``, ``bench verify``, ``bench leaderboard``.

User errors are raised as ``ValueError`` / ``FileNotFoundError`` / ``FileExistsError`` and
turned into one line on stderr (exit status 2) by the main ``bench`` entry point.
``bench leaderboard check`` prints one line per broken rule and exits with 1 when any is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from residual_bench.leaderboard.layout import DEFAULT_ROOT, SUBMISSIONS_DIR
from residual_bench.registration import add_env_option


def _cmd_submit(args: argparse.Namespace) -> int:
    # Deferred: this module is imported for every `bench --help`; these take seconds.
    from residual_bench.leaderboard.submission import submit
    from residual_bench.leaderboard.validate import validate_submission

    residual = None if args.residual == "none" else args.residual
    path = submit(
        args.results_dir,
        name=args.name,
        base=args.base,
        residual=residual,
        submitter=args.submitter,
        root=args.root,
        supersedes=args.supersedes,
        env_id=args.env,
    )
    failures = validate_submission(path)
    for failure in failures:
        print(failure, file=sys.stderr)
    print(f"wrote submission {path.name} to {path}")
    return 1 if failures else 0


def _cmd_verify(args: argparse.Namespace) -> int:
    # Deferred: this module is imported for every `bench --help`; these take seconds.
    from residual_bench.leaderboard import verify

    if args.heldout_seeds is not None:
        result = verify.heldout_evaluation(args.submission, args.heldout_seeds)
        key = "heldout"
    else:
        result = verify.verify_submission(args.submission, k=args.k, nonce=args.nonce)
        key = "replay"
    _print_result(result)
    if args.record:
        print(f"wrote {verify.write_verification(args.root, result, key)}")
    return 0 if result["status"] in (verify.VERIFIED, "consistent") else 1


def _print_result(result: dict[str, Any]) -> None:
    for e in result.get("episodes", []):
        seed = "" if e["train_seed"] is None else f" train seed {e['train_seed']}"
        verdict = "match" if e["match"] else f"MISMATCH claimed {e['claimed']} rerun {e['rerun']}"
        print(f"  {e['suite']}/{e['objects']}{seed} episode {e['episode_index']}: {verdict}")
    for c in result.get("cells", []):
        seed = "" if c["train_seed"] is None else f" train seed {c['train_seed']}"
        print(
            f"  {c['suite']}/{c['objects']}{seed}: claimed {c['claimed'][0]}/{c['claimed'][1]}, "
            f"hidden {c['hidden'][0]}/{c['hidden'][1]}"
            + ("" if c["consistent"] else "  INCONSISTENT")
        )
    reason = f" ({result['reason']})" if "reason" in result else ""
    if "draw" in result:
        print(f"  drawn with nonce {result['draw']['nonce']} (repeat with --nonce)")
    print(f"submission {result['submission']}: {result['status']}{reason}")


def _cmd_check(args: argparse.Namespace) -> int:
    # Deferred: this module is imported for every `bench --help`; these take seconds.
    from residual_bench.leaderboard.validate import validate_all
    from residual_bench.leaderboard.verify import audit_verifications

    failures = validate_all(args.root)
    for failure in failures:
        print(failure, file=sys.stderr)
    audit = audit_verifications(args.root)
    for problem in audit:
        print(f"verification {problem}", file=sys.stderr)
    where = Path(args.root) / SUBMISSIONS_DIR
    n = len([p for p in where.iterdir() if not p.name.startswith(".")]) if where.is_dir() else 0
    bad = len({f.submission for f in failures})
    print(f"{n} submission(s) checked, {bad} invalid; {len(audit)} verification problem(s)")
    return 1 if failures or audit else 0


def _cmd_convert(args: argparse.Namespace) -> int:
    # Deferred: this module is imported for every `bench --help`; these take seconds.
    from residual_bench.leaderboard.submission import convert_submission

    for submission in args.submissions:
        print(f"converted {submission} -> {convert_submission(submission)}")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    # Deferred: this module is imported for every `bench --help`; these take seconds.
    from residual_bench.leaderboard.render import build

    written = build(args.root, args.out)
    print("wrote " + " and ".join(str(p) for p in written))
    return 0


def add_leaderboard_parsers(subparsers: Any) -> None:
    """Add ``submit``, ``verify`` and ``leaderboard {check,build}`` to ``bench``'s subparsers."""
    root_help = f"leaderboard directory ({DEFAULT_ROOT})"

    p = subparsers.add_parser("submit", help="turn a results directory into a submission")
    p.add_argument("results_dir", help="a `bench eval` / `bench run` results directory")
    add_env_option(p)
    p.add_argument("--name", required=True, help="the name shown on the leaderboard")
    p.add_argument("--base", required=True, help="the base policy of the submitted episodes")
    p.add_argument(
        "--residual", required=True, help="the residual's name (e.g. sac), or none for the base"
    )
    p.add_argument("--submitter", required=True, help="who submits (name or handle)")
    p.add_argument(
        "--supersedes",
        nargs="+",
        default=[],
        metavar="ID",
        help="earlier submissions of yours that this one replaces (moved to the history)",
    )
    p.add_argument("--root", default=DEFAULT_ROOT, help=root_help)
    p.set_defaults(func=_cmd_submit)

    p = subparsers.add_parser("verify", help="re-run a submission's episodes and compare")
    p.add_argument("submission", help="a submission directory (leaderboards/submissions/ID)")
    p.add_argument("--k", type=int, default=10, help="episodes to re-run (10)")
    p.add_argument(
        "--nonce",
        default=None,
        help="hex nonce that seeds the draw of episodes (default: a fresh random one; give a "
        "stored verification's nonce to repeat it)",
    )
    p.add_argument(
        "--heldout-seeds",
        default=None,
        metavar="FILE",
        help="instead: run on a private master seed ({'master_seed': S, 'episodes': N})",
    )
    p.add_argument("--record", action="store_true", help="store the result in ROOT/verifications")
    p.add_argument("--root", default=DEFAULT_ROOT, help=root_help)
    p.set_defaults(func=_cmd_verify)

    p = subparsers.add_parser("leaderboard", help="validate submissions and build the tables")
    sub = p.add_subparsers(dest="leaderboard_command", metavar="LEADERBOARD_COMMAND", required=True)
    p_check = sub.add_parser("check", help="check every submission against the rules")
    p_check.add_argument("--root", default=DEFAULT_ROOT, help=root_help)
    p_check.set_defaults(func=_cmd_check)
    p_convert = sub.add_parser(
        "convert",
        help="re-submit submissions whose checkpoints are in the pickle-bearing model.zip "
        "format, converted without unpickling (same episodes, new id)",
    )
    p_convert.add_argument("submissions", nargs="+", help="submission directories")
    p_convert.set_defaults(func=_cmd_convert)
    p_build = sub.add_parser("build", help="generate README.md and index.html")
    p_build.add_argument("--root", default=DEFAULT_ROOT, help=root_help)
    p_build.add_argument("--out", default=None, help="output directory (ROOT)")
    p_build.set_defaults(func=_cmd_build)
