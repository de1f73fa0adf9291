"""Command line of ``python -m numerics sweep``: expand a sweep spec, run its cases, tabulate.

    python -m numerics sweep SPEC.json --out DIR [--executor process|dask|serial]
        [--workers N] [--threads-per-worker K] [--scheduler ADDRESS] [--by COLUMN]
        [--no-figures] [--json OUT] [--no-progress]

``SPEC.json`` (or ``.toml``) is a grid or random-draw sweep spec (:mod:`numerics.sweep.spec`).
Every case is one :func:`numerics.verify_case`; its row goes to ``DIR/results.csv``
(:mod:`numerics.sweep.table`) as it finishes, the spec and environment to ``DIR/sweep.json``, and
at the end the table is sorted by case id and ``DIR/agreement.png`` (and ``DIR/phase_map.png``
when two numeric axes vary) are drawn. Rerunning the same spec into the same ``DIR`` skips the
cases already in the table; a ``DIR`` holding another spec's sweep is refused.

``--executor process`` (default): a local spawn-context process pool of ``--workers`` processes
(default: the CPU count over ``--threads-per-worker``), each at ``--threads-per-worker`` torch
and BLAS threads (default 1). ``--executor dask``: a dask ``LocalCluster`` of ``--workers``
single-threaded worker processes, or the cluster of ``--scheduler ADDRESS``. ``--executor
serial``: the cases one by one in this process. ``--json OUT`` writes the summary as JSON.

A failed check, or a case that raised anything (training diverged, out of memory, ...), is a
result (a row; ``error`` holds the message), not an error of the command. Exit status: 0 the
sweep finished; 2 bad input (one ``error: ...`` line on stderr: an unreadable or invalid spec, a
bad flag, an output location that is a file, unwritable, another sweep's, another command's (a
``train`` or ``verify`` run) or in use by another command (its lock,
:class:`numerics.run_directory.RunDirectory`, held for the sweep's life); checked before any
case runs; or a pool worker killed by the system); 130 interrupted (a first Ctrl-C writes the
rows of the running cases as they finish, a second stops at once; the rows finished so far stay
in the table; rerun to resume).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from numerics.cli.inputs import check_device, check_ints
from numerics.cli.status import EXIT_OK, Parser, guarded
from numerics.io import write_json_atomic
from theory.errors import InductionHeadsError

__all__ = ["SWEEP_SIZES", "build_parser", "run"]

SWEEP_SIZES = "seq_len, sequences, heldout or prediction_samples in the spec, or --workers"
"""What sizes a sweep (named when memory runs out)."""

_BOUNDS = (("workers", 1, None), ("threads_per_worker", 1, None))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sweep`` (module docstring)."""
    from numerics.sweep.figures import FEATURES
    from numerics.sweep.run import EXECUTORS

    p = Parser(prog="python -m numerics sweep",
               description="Run a grid or random draws of verify cases and tabulate learned vs "
                           "predicted head sets.",
               epilog="Exit status: 0 the sweep finished, 2 bad input (one 'error:' line), "
                      "130 interrupted (rerun to resume).")
    p.add_argument("spec", type=Path, metavar="SPEC", help="sweep spec (JSON, or TOML with a .toml suffix)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="output directory: results.csv, sweep.json, figures")
    p.add_argument("--executor", choices=EXECUTORS, default="process",
                   help="process pool (default), dask.distributed, or serial in this process")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes (default: CPU count // --threads-per-worker)")
    p.add_argument("--threads-per-worker", type=int, default=1, metavar="K",
                   help="torch and BLAS threads per worker (default 1)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running dask scheduler (with --executor dask)")
    p.add_argument("--by", choices=FEATURES, default=None, metavar="COLUMN",
                   help=f"column the agreement figure groups by, one of {', '.join(FEATURES)} "
                        "(default: the first that varies)")
    p.add_argument("--no-figures", action="store_true", help="do not draw the figures")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the summary as JSON here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _sweep(args: argparse.Namespace) -> int:
    from numerics.io import check_output_file
    from numerics.sweep.run import run_sweep
    from numerics.sweep.spec import expand_cases, load_sweep_spec

    check_ints(args, _BOUNDS)
    if args.scheduler is not None and args.executor != "dask":
        raise InductionHeadsError(f"--scheduler: expected only with --executor dask, received "
                                  f"it with --executor {args.executor}")
    if args.json is not None:
        check_output_file(args.json, flag="--json")
    spec, base = load_sweep_spec(args.spec)
    try:
        cases = expand_cases(spec, base=base)
        if isinstance(spec, dict):
            check_device(spec.get("device", "cpu"), "device")
    except InductionHeadsError as err:
        raise InductionHeadsError(f"{str(args.spec)!r}: {err}") from None
    workers = (args.workers if args.workers is not None
               else max(1, (os.cpu_count() or 1) // args.threads_per_worker))
    result = run_sweep(spec, cases, args.out, executor=args.executor, workers=workers,
                       threads=args.threads_per_worker, scheduler=args.scheduler,
                       progress=not args.no_progress, figures=not args.no_figures, by=args.by)
    rows = result.rows
    decided = [r for r in rows if r["decidable"] == "True"]
    summary = {"cases": len(rows), "ran": len(result.ran), "skipped": result.skipped,
               "failed": sum(bool(r["error"]) for r in rows),
               "decidable": len(decided),
               "agree_decidable": sum(r["agrees"] == "True" for r in decided),
               "passed": sum(r["passed"] == "True" for r in rows),
               "seconds": round(result.seconds, 3), "out": str(result.out),
               "figures": [p.name for p in result.figures]}
    if args.json is not None:
        write_json_atomic(args.json, summary, indent=2)
    print(f"sweep: {summary['cases']} cases ({summary['ran']} run, {summary['skipped']} "
          f"skipped); learned = predicted S* on {summary['agree_decidable']}/"
          f"{summary['decidable']} decidable; all checks passed on {summary['passed']}; "
          f"{summary['failed']} failed with an error; "
          f"{result.seconds:.1f} s; wrote {result.out}")
    return EXIT_OK


def run(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the sweep, print the summary line; return the exit status.

    Unparsable flags raise the parser's ``SystemExit(2)`` after one ``error: ...`` line.
    """
    args = build_parser().parse_args(argv)
    return guarded(lambda: _sweep(args), sizes=SWEEP_SIZES)
