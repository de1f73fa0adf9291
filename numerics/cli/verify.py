"""Command line of ``python -m numerics verify``: parse flags, run :func:`numerics.verify_case`, print.

    python -m numerics verify [--kind simplified|full|standard] [--source SOURCE.json]
        [--heads H] [--window M] [--degree D] [--seq-len L] [--sequences N] [--seed S]
        [--device auto|cpu|cuda[:N]] [--mode stagewise|joint] [--config TRAIN_CONFIG.json]
        [--architecture STANDARD_SPEC.json] [--heldout N] [--prediction-samples N]
        [--out DIR] [--force] [--quiet]

Defaults: TF(M, H, d, D) (``--kind simplified``; ``--model`` is the same flag), the paper's source (``theory.PAPER_SOURCE``:
d=3, P=(1, 2), Dirichlet(0.1)) and model (H=M=3, D=2), L=100, n=2000, seed 0, the default
stage-wise schedule, ``--out results/verify``. ``--window`` defaults to ``max(H, 3)`` and
``--degree`` to ``min(H, 2)``. ``--config`` takes a ``numerics.TrainConfig`` JSON
(``TrainConfig.to_dict``, or a ``config.json`` of ``train``); its n, L and mode then apply.

``--kind`` names an entry of the model-kind registry (:data:`numerics.training.KINDS`): ``full``
trains the paper's full variant (docs/theory.md §7) with its own default rates; ``standard`` a
standard transformer (``--architecture``: a ``StandardSpec.to_dict`` JSON, default ``FAST_SPEC``
with H first-layer heads; ``--config``: a ``StandardTrainConfig.to_dict`` JSON, default
``FAST_TRAINING``, L = 50, 2000 steps of 128 fresh sequences; ``--sequences`` does not apply).
Which checks run for which kind: its registry entry's ``checks``.

Prints the check table (predicted, measured, tolerance, PASS/FAIL), the held-out losses, notes,
the verdict and the time taken, and writes ``report.json``, ``config.json`` and the figures into
``--out`` (:func:`numerics.verify.write_report`).

The output directory is checked before any work: an existing file, a location that cannot be
written, a directory holding another run's results (named in the message; of any command) or one
another command is writing (:mod:`numerics.run_directory`) is refused with exit status 2;
``--force`` replaces that run's files, once the new report is written (they wait in
``DIR/.replaced-run/`` meanwhile, through any kill). A run that fails or is interrupted leaves
the directory as it found it.

Exit status: 0 every check passed; 1 a check failed; 2 bad input (one ``error: ...`` line on
stderr; :mod:`numerics.cli.main` lists the cases); 130 interrupted.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from numerics.cli.inputs import (
    SEED_MAX,
    check_device,
    check_ints,
    read_json_file,
    read_train_config,
)
from numerics.cli.outputs import REPORT_FILES, out_directory
from numerics.cli.status import EXIT_CHECK_FAILED, EXIT_OK, Parser, guarded
from numerics.training.kinds import KIND_NAMES, KINDS, get_kind
from theory.errors import InductionHeadsError
from theory.sources.spec import PAPER_MODEL, PAPER_SOURCE, ModelSpec, load_source

__all__ = ["VERIFY_SIZES", "build_parser", "run"]

VERIFY_SIZES = "--sequences, --seq-len, --heldout or --prediction-samples"
"""The flags that size a verification (named when memory runs out)."""

_BOUNDS = (("heads", 1, None), ("window", 1, None), ("degree", 1, None), ("seq_len", 2, None),
           ("sequences", 1, None), ("seed", 0, SEED_MAX), ("heldout", 2, None),
           ("prediction_samples", 2, None))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``verify`` (module docstring)."""
    p = Parser(
        prog="python -m numerics verify",
        description="Predict the limit of TF(M, H, d, D) on a source, train it, and check that "
                    "training reaches the prediction.",
        epilog="Exit status: 0 every check passed, 1 a check failed, 2 bad input (one 'error:' "
               "line), 130 interrupted.")
    p.add_argument("--kind", "--model", dest="kind", choices=KIND_NAMES, default="simplified",
                   help="the model kind to train: " + "; ".join(
                       f"{k.name}: {k.summary}" for k in KINDS.values()) + " (default simplified)")
    p.add_argument("--source", type=Path, default=None,
                   help="source JSON (theory.Source.to_dict); default: the paper's source")
    p.add_argument("--heads", type=int, default=PAPER_MODEL.heads, help="H (default 3)")
    p.add_argument("--window", type=int, default=None, help="M (default max(H, 3))")
    p.add_argument("--degree", type=int, default=None, help="D (default min(H, 2))")
    p.add_argument("--seq-len", type=int, default=None, help="L (default 100)")
    p.add_argument("--sequences", type=int, default=None, help="n (default 2000)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of every random draw, in 0..2**64-1 (default 0)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--mode", choices=("stagewise", "joint"), default="stagewise",
                   help="training schedule (default stagewise, the regime the theorem covers)")
    p.add_argument("--config", type=Path, default=None,
                   help="a TrainConfig JSON replacing the default schedule")
    p.add_argument("--architecture", type=Path, default=None,
                   help="an architecture JSON (a StandardSpec for --kind standard)")
    p.add_argument("--heldout", type=int, default=None, help="held-out sequences (default 2000)")
    p.add_argument("--prediction-samples", type=int, default=None,
                   help="Monte Carlo sequences of the prediction (default 2000)")
    p.add_argument("--out", type=Path, default=Path("results/verify"),
                   help="output directory (default results/verify)")
    p.add_argument("--force", action="store_true",
                   help="replace another run's results in --out (once this report is written)")
    p.add_argument("--quiet", action="store_true",
                   help="print only the verdict line; no progress bar")
    return p


def _inputs(args: argparse.Namespace) -> tuple[Any, ModelSpec, Any, Any]:
    """Source, model spec, optional train config and architecture from the flags, all checked."""
    check_ints(args, _BOUNDS)
    check_device(args.device, "--device")
    source = PAPER_SOURCE if args.source is None else load_source(args.source)
    heads = args.heads
    window = max(heads, PAPER_MODEL.window) if args.window is None else args.window
    degree = min(heads, PAPER_MODEL.degree) if args.degree is None else args.degree
    spec = ModelSpec(heads=heads, window=window, degree=degree)
    kind = get_kind(args.kind)
    if args.architecture is not None and kind.architecture_class is None:
        raise InductionHeadsError(f"--architecture: expected only with a kind that has one "
                                  f"({', '.join(k.name for k in KINDS.values() if k.architecture_class)}), "
                                  f"received it with --kind {kind.name}")
    if args.sequences is not None and not kind.fixed_sample:
        raise InductionHeadsError(f"--sequences: expected only with --kind "
                                  f"{' or '.join(k.name for k in KINDS.values() if k.fixed_sample)} "
                                  f"(--kind {kind.name} trains on fresh batches: set batch_size "
                                  f"in --config), received {args.sequences}")
    config = architecture = None
    if args.config is not None:
        config = read_train_config(args.config, "--config", {}, cls=kind.config_class)
        if args.device is None:
            check_device(config.device, "--config device")
    if args.architecture is not None:
        data = read_json_file(args.architecture, "--architecture",
                              kind.architecture_class.__name__)
        try:
            architecture = kind.architecture_class.from_dict(data)
        except InductionHeadsError as err:
            raise InductionHeadsError(f"--architecture {str(args.architecture)!r}: {err}"
                                      ) from None
    return source, spec, config, architecture


def _verify(args: argparse.Namespace) -> int:
    from numerics.verify import (
        DEFAULT_HELDOUT,
        DEFAULT_PREDICTION_SAMPLES,
        format_report,
        verify_case,
        write_report,
    )

    started = time.perf_counter()
    out = out_directory(args.out, REPORT_FILES, force=args.force)        # before any work
    source, spec, config, architecture = _inputs(args)
    with out:                      # the directory's lock for the whole run
        report = verify_case(
            source, spec, seq_len=args.seq_len, sequences=args.sequences, seed=args.seed,
            mode=args.mode, config=config, device=args.device, kind=args.kind,
            architecture=architecture,
            heldout=DEFAULT_HELDOUT if args.heldout is None else args.heldout,
            prediction_samples=(DEFAULT_PREDICTION_SAMPLES if args.prediction_samples is None
                                else args.prediction_samples),
            progress=not args.quiet)
        try:
            paths = write_report(report, args.out)
        except OSError as err:
            raise InductionHeadsError(f"--out: expected a writable directory, received "
                                      f"{str(args.out)!r} ({err.strerror or err})") from None
    elapsed = time.perf_counter() - started
    data = report.to_dict()
    if not args.quiet:
        print(format_report(data))
        print(f"\nwrote {len(paths)} files to {args.out}: " + ", ".join(p.name for p in paths))
    n_pass = sum(c["passed"] for c in data["checks"])
    verdict = "PASS" if report.passed else "FAIL"
    print(f"verdict: {verdict} ({n_pass}/{len(data['checks'])} checks) in {elapsed:.1f} s")
    return EXIT_OK if report.passed else EXIT_CHECK_FAILED


def run(argv: list[str] | None = None) -> int:
    """Parse ``argv``, verify, write ``--out``, print; return the exit status (module docstring).

    Unparsable flags raise the parser's ``SystemExit(2)`` after one ``error: ...`` line.
    """
    args = build_parser().parse_args(argv)
    return guarded(lambda: _verify(args), sizes=VERIFY_SIZES)
