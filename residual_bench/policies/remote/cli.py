"""``bench serve``: serve a registered base over the websocket protocol.

Wire it into the main parser with ``add_serve_parser(sub)``; like every ``bench`` command, bad
input (an unknown base, one that cannot be served, a port in use) raises ``ValueError`` or
``OSError`` subclasses that ``bench`` prints as one line.
"""

from __future__ import annotations

import argparse
import os
import sys

from residual_bench.policies.remote.server import serve_base

API_KEY_ENV = "RESIDUAL_BENCH_API_KEY"


def _cmd_serve(args: argparse.Namespace) -> int:
    api_key = args.api_key or os.environ.get(API_KEY_ENV) or None
    if args.delay < 0:
        raise ValueError(f"--delay: must be >= 0, got {args.delay}")
    try:
        server = serve_base(args.base, args.host, args.port, api_key=api_key, delay_s=args.delay)
    except OSError as exc:  # address in use, permission denied: the user's to fix
        raise ValueError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from None
    auth = " (API key required)" if api_key else ""
    print(f"serving base {args.base!r} on ws://{args.host}:{server.port}{auth}", flush=True)
    print(f"connect with: --base remote:ws://HOST:{server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("bench serve: stopped", file=sys.stderr)
    finally:
        server.shutdown()
    return 0


def add_serve_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``bench serve`` to ``bench``'s subparsers; returns its parser."""
    p = subparsers.add_parser(
        "serve", help="serve a base policy over a websocket (openpi protocol)"
    )
    p.add_argument("--base", required=True, help="an observation-only base from `bench list`")
    p.add_argument("--host", default="127.0.0.1", help="interface (0.0.0.0 for other machines)")
    p.add_argument("--port", type=int, default=8000, help="TCP port, 0 for any free one (8000)")
    p.add_argument(
        "--api-key",
        default=None,
        help=f"require 'Authorization: Api-Key KEY' (default ${API_KEY_ENV}; prefer the variable)",
    )
    p.add_argument(
        "--delay", type=float, default=0.0, help="seconds added to every answer (testing)"
    )
    p.set_defaults(func=_cmd_serve)
    return p
