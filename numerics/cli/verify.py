"""Command line of ``python -m numerics verify``: parse flags, run :func:`numerics.verify_case`, print.

    python -m numerics verify [--source SOURCE.json] [--heads H] [--window M] [--degree D]
        [--seq-len L] [--sequences N] [--seed S] [--device auto|cpu|cuda[:N]]
        [--mode stagewise|joint] [--config TRAIN_CONFIG.json] [--heldout N]
        [--prediction-samples N] [--out DIR] [--quiet]

Defaults: the paper's source (``theory.PAPER_SOURCE``: d=3, P=(1, 2), Dirichlet(0.1)) and model
(H=M=3, D=2), L=100, n=2000, seed 0, the default stage-wise schedule, ``--out results/verify``.
``--window`` defaults to ``max(H, 3)`` and ``--degree`` to ``min(H, 2)``. ``--config`` takes a
``numerics.TrainConfig`` JSON (``TrainConfig.to_dict``); its n, L and mode then apply.

Prints the check table (predicted, measured, tolerance, PASS/FAIL), the held-out losses, notes,
the verdict and the time taken. Exit status: 0 every check passed, 1 a check failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from theory.errors import InductionHeadsError
from theory.spec import PAPER_MODEL, PAPER_SOURCE, ModelSpec, load_source

__all__ = ["build_parser", "run"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``verify`` (module docstring)."""
    p = argparse.ArgumentParser(
        prog="python -m numerics verify",
        description="Predict the limit of TF(M, H, d, D) on a source, train it, and check that "
                    "training reaches the prediction.")
    p.add_argument("--source", type=Path, default=None,
                   help="source JSON (theory.Source.to_dict); default: the paper's source")
    p.add_argument("--heads", type=int, default=PAPER_MODEL.heads, help="H (default 3)")
    p.add_argument("--window", type=int, default=None, help="M (default max(H, 3))")
    p.add_argument("--degree", type=int, default=None, help="D (default min(H, 2))")
    p.add_argument("--seq-len", type=int, default=None, help="L (default 100)")
    p.add_argument("--sequences", type=int, default=None, help="n (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--mode", choices=("stagewise", "joint"), default="stagewise",
                   help="training schedule (default stagewise, the regime the theorem covers)")
    p.add_argument("--config", type=Path, default=None,
                   help="a TrainConfig JSON replacing the default schedule")
    p.add_argument("--heldout", type=int, default=None, help="held-out sequences (default 2000)")
    p.add_argument("--prediction-samples", type=int, default=None,
                   help="Monte Carlo sequences of the prediction (default 2000)")
    p.add_argument("--out", type=Path, default=Path("results/verify"),
                   help="output directory (default results/verify)")
    p.add_argument("--quiet", action="store_true",
                   help="print only the verdict line; no progress bar")
    return p


def _inputs(args: argparse.Namespace) -> tuple[Any, ModelSpec, Any]:
    """Source, model spec and optional TrainConfig from the parsed flags."""
    from numerics.training import TrainConfig

    source = PAPER_SOURCE if args.source is None else load_source(args.source)
    heads = args.heads
    window = max(heads, PAPER_MODEL.window) if args.window is None else args.window
    degree = min(heads, PAPER_MODEL.degree) if args.degree is None else args.degree
    spec = ModelSpec(heads=heads, window=window, degree=degree)
    config = None
    if args.config is not None:
        try:
            config = TrainConfig.from_dict(json.loads(args.config.read_text()))
        except (OSError, json.JSONDecodeError) as err:
            raise InductionHeadsError(f"--config: expected a readable TrainConfig JSON file, "
                                      f"received {str(args.config)!r} ({err})") from None
    return source, spec, config


def run(argv: list[str] | None = None) -> int:
    """Parse ``argv``, verify, write ``--out``, print; return the exit status (module docstring)."""
    from numerics.verify import (
        DEFAULT_HELDOUT,
        DEFAULT_PREDICTION_SAMPLES,
        format_report,
        verify_case,
        write_report,
    )

    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        source, spec, config = _inputs(args)
        report = verify_case(
            source, spec, seq_len=args.seq_len, sequences=args.sequences, seed=args.seed,
            mode=args.mode, config=config, device=args.device,
            heldout=DEFAULT_HELDOUT if args.heldout is None else args.heldout,
            prediction_samples=(DEFAULT_PREDICTION_SAMPLES if args.prediction_samples is None
                                else args.prediction_samples),
            progress=not args.quiet)
        paths = write_report(report, args.out)
    except InductionHeadsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: --out {str(args.out)!r}: expected a writable directory ({err})",
              file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    data = report.to_dict()
    if not args.quiet:
        print(format_report(data))
        print(f"\nwrote {len(paths)} files to {args.out}: " + ", ".join(p.name for p in paths))
    n_pass = sum(c["passed"] for c in data["checks"])
    verdict = "PASS" if report.passed else "FAIL"
    print(f"verdict: {verdict} ({n_pass}/{len(data['checks'])} checks) in {elapsed:.1f} s")
    return 0 if report.passed else 1
