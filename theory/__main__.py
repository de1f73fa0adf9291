"""Command line: ``python -m theory predict`` prints the predicted limit of TF(M, H, d, D);
``python -m theory boundaries`` prints the phase diagram of a predefined kernel family;
``python -m theory references`` prints the reference losses of a named preset
(:mod:`theory.cli_references`).

Examples::

    python -m theory predict --heads 3 --window 3 --degree 2 --seq-len 100 --json out.json
    python -m theory boundaries --family two-parent --digits 8 --exact
    python -m theory references varre-trigram --sequences 20000 --json refs.json
    python -m theory references --list

Head sets print as :func:`theory.notation.head_set_label` spells them (``(1, 2)``, ``(1)``,
``()``), as everywhere else in the library. Phase boundaries print as numbers of ``--digits``
significant digits; ``--exact`` adds each one's closed form (a Rational, a radical or a sympy
``CRootOf`` of the irreducible polynomial it is a root of).

``--source`` takes a source JSON file (format in :mod:`theory.sources.spec`) and defaults to the paper's
source (d=3, P=(1,2), Dirichlet(0.1)). Exit status: 0 on success; 2 on bad input, with a one-line
``error: ...`` message on stderr and no traceback. Bad input includes unparsable flags, a source
file that is missing, not UTF-8 or not valid JSON, a negative ``--seed``, and a request over the
memory limit of :mod:`theory.sizes` or over the time limit of :mod:`theory.work` (refused before
any sampling; the limits are raised with ``INDUCTION_HEADS_MEMORY_LIMIT_GIB``,
``INDUCTION_HEADS_TIME_LIMIT_S`` or ``--time-limit``). Ctrl-C exits 130 after one
``interrupted:`` line, startup included; a closed stdout (``| head``) exits 141 silently. This
module is the only place in ``theory`` that prints (a long prediction also shows a progress
bar on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np
import sympy as sp

from theory.cli_references import (
    DEFAULT_REFERENCE_SEQUENCES,
    describe_source,
    format_presets,
    format_references,
    references_document,
)
from theory.criterion.boundaries import Phase, phase_diagram
from theory.criterion.families import BINARY_PARITY_FAMILY, TWO_PARENT_FAMILY, KernelFamily
from theory.criterion.values import CRITERION_KINDS
from theory.errors import InductionHeadsError, require
from theory.exits import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    end_process,
    interrupted,
    quiet_broken_pipe,
    restore_interrupts,
)
from theory.limit.fits import require_prediction_fits
from theory.limit.prediction import DECIDABLE_Z, LimitPrediction, predict_limit
from theory.notation import head_set_label
from theory.predictors.reference_losses import reference_losses
from theory.sizes import MEMORY_LIMIT_ENV
from theory.sources.kernels import kernel_atoms
from theory.sources.presets import PRESETS, preset
from theory.sources.spec import PAPER_SOURCE, ModelSpec, load_source
from theory.validation import as_int
from theory.work import DEFAULT_TIME_LIMIT_S, TIME_LIMIT_ENV

__all__ = ["main", "build_parser", "format_prediction", "format_phase_diagram", "FAMILIES",
           "DEFAULT_DIGITS", "MAX_DIGITS"]

FAMILIES: dict[str, KernelFamily] = {"two-parent": TWO_PARENT_FAMILY,
                                     "binary-parity": BINARY_PARITY_FAMILY}
"""The predefined kernel families of :mod:`theory.criterion.families` by their ``--family``
name."""

DEFAULT_DIGITS = 6
"""Significant digits of a printed phase boundary: enough to tell apart the boundaries of the
predefined families (the closest two are 0.08 apart), short enough to read at a glance."""

MAX_DIGITS = 15
"""The most significant digits ``--digits`` accepts: a float64 holds about 15; ``--exact`` gives
the boundary itself."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one ``error: ...`` line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m theory``."""
    parser = _Parser(prog="python -m theory",
                     description="Closed-form predictions of the theory.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="rank head sets by the selection criterion; print S*")
    p.add_argument("--source", type=Path, default=None,
                   help="source JSON file (default: the paper's d=3, P=(1,2), Dirichlet(0.1))")
    p.add_argument("--heads", type=int, required=True, help="H, number of copier heads")
    p.add_argument("--window", type=int, required=True, help="M >= H, copier window")
    p.add_argument("--degree", type=int, required=True, help="D, largest head set (1 <= D <= H)")
    p.add_argument("--seq-len", type=int, default=None,
                   help="L: rank by the finite-length criterion G_L (default: G, L -> inf)")
    p.add_argument("--samples", type=int, default=2000,
                   help="Monte Carlo kernels / sequences (default 2000)")
    p.add_argument("--train-sequences", type=int, default=None,
                   help="training-sample size for the margin in training-noise units "
                        "(needs --seq-len)")
    p.add_argument("--seed", type=int, default=0, help="numpy seed, >= 0 (default 0)")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help=f"refuse predictions estimated above SECONDS of work (default: "
                        f"${TIME_LIMIT_ENV}, else {DEFAULT_TIME_LIMIT_S:g} s)")
    p.add_argument("--json", type=Path, default=None, help="write the prediction as JSON here")
    p.set_defaults(run=_predict)
    b = sub.add_parser("boundaries",
                       help="print where the best head set of a kernel family changes")
    b.add_argument("--family", choices=tuple(FAMILIES), required=True,
                   help="a predefined one-parameter kernel family (theory.criterion.families)")
    b.add_argument("--criterion", choices=CRITERION_KINDS, default="G",
                   help="the criterion that ranks the head sets (default G)")
    b.add_argument("--digits", type=int, default=DEFAULT_DIGITS,
                   help=f"significant digits of each boundary, 1..{MAX_DIGITS} "
                        f"(default {DEFAULT_DIGITS})")
    b.add_argument("--exact", action="store_true",
                   help="also print each boundary's closed form (Rational, radical or CRootOf)")
    b.set_defaults(run=_boundaries)
    r = sub.add_parser("references",
                       help="print the cross-entropy of every reference predictor of a preset")
    r.add_argument("preset", nargs="?", default=None, metavar="PRESET",
                   help=f"a named preset: {', '.join(PRESETS)}")
    r.add_argument("--list", action="store_true",
                   help="list the presets with their settings and citations")
    r.add_argument("--sequences", type=int, default=DEFAULT_REFERENCE_SEQUENCES,
                   help=f"held-out sequences, >= 2 (default {DEFAULT_REFERENCE_SEQUENCES})")
    r.add_argument("--seed", type=int, default=0, help="numpy seed, >= 0 (default 0)")
    r.add_argument("--json", type=Path, default=None, help="write the losses as JSON here")
    r.set_defaults(run=_references)
    return parser


def format_prediction(pred: LimitPrediction) -> str:
    """The readable table printed by ``predict`` (one string, lines joined by newlines)."""
    m = pred.spec
    if pred.seq_len is None:
        atoms = kernel_atoms(pred.source)
        what = ("G (L -> inf), exact over the prior's " + f"{len(atoms[1])} kernel(s)"
                if atoms is not None else f"G (L -> inf), {pred.exact.samples} kernel samples")
    else:
        what = f"G_L at L={pred.seq_len}, {pred.exact.samples} sequences"
    lines = [f"source: {describe_source(pred.source)}",
             f"model:  H={m.heads}, M={m.window}, D={m.degree}; criterion {what}", ""]
    asym_col = pred.seq_len is not None
    header = f"{'rank':>4}  {'set':<12}{pred.exact.kind:>10}  {'± stderr':>10}"
    lines.append(header + (f"  {'G (L->inf)':>11}" if asym_col else ""))
    index = {s: i for i, s in enumerate(pred.sets)}
    for rank, (s, value, err) in enumerate(pred.exact.ordered(), start=1):
        row = f"{rank:>4}  {head_set_label(s):<12}{value:>10.5f}  {err:>10.5f}"
        if asym_col:
            row += f"  {pred.asymptotic.values[index[s]]:>11.5f}"
        lines.append(row + ("   <- S*" if s == pred.selected_set else ""))
    lines.append("")
    lines.append(f"S* = {head_set_label(pred.selected_set)}   runner-up "
                 f"{head_set_label(pred.exact.runner_up)}   margin = {pred.exact.margin:.5f} "
                 f"({pred.exact.margin_se:.1f} SE of the difference)")
    if pred.exact.margin_train_noise is not None:
        lines.append(f"margin in training noise of {pred.train_sequences} sequences: "
                     f"{pred.exact.margin_train_noise:.1f}")
    lines.append(f"decidable (>= {DECIDABLE_Z:g} SE): {'yes' if pred.exact.decidable else 'no'}")
    if asym_col:
        agree = "agrees" if pred.agrees_with_asymptotic else "DISAGREES"
        lines.append(f"asymptotic S* (argmax G) = {head_set_label(pred.asymptotic.best)} ({agree})")
    if pred.initial is not None:
        same = "agrees" if pred.stage1_premise_holds else "DIFFERS: stage-wise training ends there"
        lines.append(f"stage 1 from the initial copier (argmax G_L at w+={m.w_plus:g}, "
                     f"w-={m.w_minus:g}) = {head_set_label(pred.initial.best)} ({same}; decidable: "
                     f"{'yes' if pred.initial.decidable else 'no'})")
    heads = ", ".join(f"head {h}: " + (f"offset {c}" if isinstance(c, int) else str(c))
                      for h, c in enumerate(pred.copier, start=1))
    lines.append(f"copier window: {heads}")
    lines.append("missing parents (not expressible): "
                 + (head_set_label(pred.missing_parents) if pred.missing_parents else "none"))
    return "\n".join(lines)


def _number(value: sp.Expr, digits: int) -> str:
    """An exact real number as ``digits`` significant digits (sympy evaluates it to that
    precision, so a ``CRootOf`` prints as its value)."""
    return f"{float(sp.N(value, digits + 2)):.{digits}g}"


def format_phase_diagram(family: KernelFamily, phases: Sequence[Phase], *, kind: str = "G",
                         digits: int = DEFAULT_DIGITS, exact: bool = False) -> str:
    """The readable phase diagram printed by ``boundaries`` (one string, lines joined by
    newlines): each phase's piece of the interval and its best head set, then each boundary
    between consecutive phases as a number of ``digits`` significant digits, with its closed
    form when ``exact``."""
    w = family.symbol.name
    lo, hi = family.interval
    lines = [f"family: {family.name}, {w} in ({_number(lo, digits)}, {_number(hi, digits)})",
             f"source: d={family.vocab_size}, parents P={head_set_label(family.parents)}; "
             f"head sets of H={family.heads}, D={family.degree} ranked by {kind}", ""]
    for phase in phases:
        piece = f"{_number(phase.lo, digits)} < {w} < {_number(phase.hi, digits)}"
        lines.append(f"{piece:<36}best set {head_set_label(phase.winner)}")
    lines.append("")
    if len(phases) == 1:
        lines.append(f"no boundary: {head_set_label(phases[0].winner)} is best on the whole "
                     f"interval")
    for left, right in zip(phases, phases[1:]):
        lines.append(f"boundary {w} = {_number(left.hi, digits)}: "
                     f"{head_set_label(left.winner)} below, {head_set_label(right.winner)} above")
        if exact:
            lines.append(f"    closed form: {sp.sstr(left.hi)}")
    return "\n".join(lines)


def _boundaries(args: argparse.Namespace) -> int:
    digits = as_int(args.digits, "--digits", minimum=1)
    require(digits <= MAX_DIGITS, "--digits", f"an integer in 1..{MAX_DIGITS}", digits)
    family = FAMILIES[args.family]
    phases = phase_diagram(family, kind=args.criterion)
    print(format_phase_diagram(family, phases, kind=args.criterion, digits=digits,
                               exact=args.exact))
    return EXIT_OK


def _write_replacing(path: Path, text: str) -> None:
    """Write ``text`` to a temporary sibling of ``path``, then rename it into place, so that a
    failed write (a full disk) leaves neither a partial file nor a lost previous one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _predict(args: argparse.Namespace) -> int:
    seed = as_int(args.seed, "--seed", minimum=0)
    samples = as_int(args.samples, "--samples", minimum=2)
    source = PAPER_SOURCE if args.source is None else load_source(args.source)
    spec = ModelSpec(heads=args.heads, window=args.window, degree=args.degree)
    require(args.time_limit is None or args.time_limit > 0, "--time-limit",
            "a positive number of seconds (inf: no limit)", args.time_limit)
    require_prediction_fits(source, spec, samples=samples, seq_len=args.seq_len,
                            time_limit_s=args.time_limit, limit_name="--time-limit")
    pred = predict_limit(source, spec, seq_len=args.seq_len, samples=samples,
                         rng=np.random.default_rng(seed), train_sequences=args.train_sequences,
                         time_limit_s=args.time_limit)
    print(format_prediction(pred))
    if args.json is not None:
        data = pred.to_dict()
        data["seed"] = args.seed
        _write_json(args.json, data)
    return EXIT_OK


def _write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON to ``--json``'s path and say so."""
    try:
        _write_replacing(path, json.dumps(data, indent=2) + "\n")
    except OSError as err:
        raise InductionHeadsError(
            f"--json: expected a writable path, received {str(path)!r} ({err.strerror})"
        ) from None
    print(f"wrote {path}")


def _references(args: argparse.Namespace) -> int:
    if args.list:
        require(args.preset is None and args.json is None, "--list",
                "no PRESET and no --json beside it", args.preset or str(args.json))
        print(format_presets())
        return EXIT_OK
    require(args.preset is not None, "PRESET", f"a preset name ({', '.join(PRESETS)}) or --list",
            args.preset)
    chosen = preset(args.preset)
    seed = as_int(args.seed, "--seed", minimum=0)
    sequences = as_int(args.sequences, "--sequences", minimum=2)
    table = reference_losses(chosen, sequences=sequences, rng=np.random.default_rng(seed))
    print(format_references(chosen, table, seed))
    if args.json is not None:
        _write_json(args.json, references_document(chosen, table, seed))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status: 0, 2 on bad input, 130 after Ctrl-C, 141 when stdout
    is closed early.

    Unparsable flags exit with status 2 from the parser (``SystemExit``); every
    :class:`InductionHeadsError` and a ``MemoryError`` (a request too large for this machine
    although within the limit) return 2 after one ``error: ...`` line on stderr; Ctrl-C returns
    130 after one ``interrupted: ...`` line and no traceback; a closed stdout (``| head``)
    returns 141 silently.
    """
    restore_interrupts()  # the handler of the imports (theory.exits)
    try:
        args = build_parser().parse_args(argv)
        status = args.run(args)
        sys.stdout.flush()
        return status
    except InductionHeadsError as err:
        print(f"error: {err}", file=sys.stderr)
    except MemoryError:
        print(f"error: out of memory: expected a request that fits this machine's memory, "
              f"received one that does not (pass fewer --samples, or set {MEMORY_LIMIT_ENV} "
              f"below the free memory so that such requests are refused up front)",
              file=sys.stderr)
    except KeyboardInterrupt:
        return interrupted()
    except BrokenPipeError:
        return quiet_broken_pipe()
    return EXIT_BAD_INPUT


if __name__ == "__main__":
    end_process(main())
