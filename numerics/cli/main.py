"""``python -m numerics {bench, sweep, train, verify, reproduce}``: dispatch to the subcommands.

Exit statuses, the same for every subcommand (:mod:`numerics.cli.status`):

    0    success (for ``verify``: every check passed; ``reproduce``: every fact held);
    1    a check failed (``verify``), a fact of the authors' run did not hold (``reproduce``);
    2    bad input, with one ``error: ...`` line on stderr and no traceback: unparsable flags,
         out-of-range values (a negative ``--seed``, zero or negative sizes), an input file that
         is missing, not UTF-8 or not valid JSON, a ``--config`` with unknown keys, a device that
         does not exist here (``tpu``, ``cuda`` without CUDA), sizes refused by the memory guard
         or too large for this machine, a bad or tampered checkpoint, an output location that
         is a file or not writable, or one holding another run's results without ``--force``;
    130  interrupted (Ctrl-C), startup included, with one ``interrupted:`` line and no traceback;
    141  stdout closed early by its reader (``| head``), silently.

Anything else (a traceback) is a bug. Every input is checked before any work and any write.
``train``, ``verify`` and ``reproduce`` write one run per ``--out`` directory
(:mod:`numerics.cli.outputs`): ``--force`` replaces another run's files there, and only once the
new run has succeeded; a run that fails leaves the directory as it found it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from numerics.cli.bench import BENCH_SIZES, add_bench_parser, run_bench
from numerics.cli.reproduce import REPRODUCE_SIZES, add_reproduce_parser, run_reproduce
from numerics.cli.status import (
    Parser,
    guarded,
    interrupted,
    quiet_broken_pipe,
    restore_interrupts,
)
from numerics.cli.train import TRAIN_SIZES, add_train_parser, run_train

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m numerics`` (``verify`` parses its own flags)."""
    parser = Parser(prog="python -m numerics",
                    description="Train, verify and benchmark TF(M, H, d, D).",
                    epilog="Exit status: 0 success, 1 a verify check or reproduced fact "
                           "failed, 2 bad input (one 'error:' line), 130 interrupted.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_bench_parser(sub)
    add_train_parser(sub)
    add_reproduce_parser(sub)
    sub.add_parser("verify", add_help=False,
                   help="train and check the predicted limit (python -m numerics verify -h)")
    sub.add_parser("sweep", add_help=False,
                   help="run a grid of verify cases into a table (python -m numerics sweep -h)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (module docstring).

    Unparsable flags raise the parser's ``SystemExit(2)`` after one ``error: ...`` line. Ctrl-C
    anywhere, the imports of a subcommand included, returns 130 after one line; a closed stdout
    returns 141 silently.
    """
    restore_interrupts()
    try:
        status = _dispatch(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()
        return status
    except KeyboardInterrupt:
        return interrupted()
    except BrokenPipeError:
        return quiet_broken_pipe()


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] == "verify":
        from numerics.cli.verify import run as verify_run  # parses its own flags

        return verify_run(argv[1:])
    if argv and argv[0] == "sweep":
        from numerics.cli.sweep import run as sweep_run  # parses its own flags

        return sweep_run(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "bench":
        return guarded(lambda: run_bench(args), sizes=BENCH_SIZES)
    if args.command == "reproduce":
        return guarded(lambda: run_reproduce(args), sizes=REPRODUCE_SIZES)
    return guarded(lambda: run_train(args), sizes=TRAIN_SIZES)
