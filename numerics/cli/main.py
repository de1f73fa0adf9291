"""``python -m numerics {bench, train, verify}``: dispatch to the subcommands.

Exit statuses, the same for every subcommand: 0 success (for ``verify``: every check passed),
1 a check failed (``verify`` only), 2 bad input with a one-line message on stderr. Anything else
(a traceback) is a bug.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from numerics.cli.bench import add_bench_parser, run_bench
from numerics.cli.train import add_train_parser, run_train
from theory.errors import InductionHeadsError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m numerics`` (``verify`` parses its own flags)."""
    parser = argparse.ArgumentParser(prog="python -m numerics",
                                     description="Train, verify and benchmark TF(M, H, d, D).")
    sub = parser.add_subparsers(dest="command", required=True)
    add_bench_parser(sub)
    add_train_parser(sub)
    sub.add_parser("verify", add_help=False,
                   help="train and check the predicted limit (python -m numerics verify -h)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 on :class:`InductionHeadsError`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "verify":
        from numerics.cli.verify import run as verify_run  # parses its own flags

        return verify_run(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.command == "bench":
            return run_bench(args)
        return run_train(args)
    except InductionHeadsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
