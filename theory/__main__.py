"""Command line: ``python -m theory predict`` prints the predicted limit of TF(M, H, d, D).

Example::

    python -m theory predict --heads 3 --window 3 --degree 2 --seq-len 100 --json out.json

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
from theory.sizes import MEMORY_LIMIT_ENV
from theory.sources.spec import PAPER_SOURCE, ModelSpec, Source, load_source
from theory.validation import as_int
from theory.work import DEFAULT_TIME_LIMIT_S, TIME_LIMIT_ENV

__all__ = ["main", "build_parser", "format_prediction"]


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
    return parser


def _fmt_set(s: Sequence[int]) -> str:
    return "{" + ", ".join(str(h) for h in s) + "}"


def _describe_source(source: Source) -> str:
    prior = source.prior.to_dict()
    kind = prior.pop("kind")
    if kind == "fixed":
        detail = "fixed kernel"
    elif kind == "dirichlet":
        detail = f"Dirichlet(alpha={prior['alpha']:g})"
    else:
        detail = "mixture " + " + ".join(
            f"{c['weight']:g}*Dir({c['alpha']:g}) on {_fmt_set(c['parents'])}"
            for c in prior["components"])
    return f"d={source.vocab_size}, parents P={_fmt_set(source.parents)}, {detail}"


def format_prediction(pred: LimitPrediction) -> str:
    """The readable table printed by ``predict`` (one string, lines joined by newlines)."""
    m = pred.spec
    if pred.seq_len is None:
        what = f"G (L -> inf), {pred.exact.samples} kernel sample(s)"
    else:
        what = f"G_L at L={pred.seq_len}, {pred.exact.samples} sequences"
    lines = [f"source: {_describe_source(pred.source)}",
             f"model:  H={m.heads}, M={m.window}, D={m.degree}; criterion {what}", ""]
    asym_col = pred.seq_len is not None
    header = f"{'rank':>4}  {'set':<12}{pred.exact.kind:>10}  {'± stderr':>10}"
    lines.append(header + (f"  {'G (L->inf)':>11}" if asym_col else ""))
    index = {s: i for i, s in enumerate(pred.sets)}
    for rank, (s, value, err) in enumerate(pred.exact.ordered(), start=1):
        row = f"{rank:>4}  {_fmt_set(s):<12}{value:>10.5f}  {err:>10.5f}"
        if asym_col:
            row += f"  {pred.asymptotic.values[index[s]]:>11.5f}"
        lines.append(row + ("   <- S*" if s == pred.selected_set else ""))
    lines.append("")
    lines.append(f"S* = {_fmt_set(pred.selected_set)}   runner-up "
                 f"{_fmt_set(pred.exact.runner_up)}   margin = {pred.exact.margin:.5f} "
                 f"({pred.exact.margin_se:.1f} SE of the difference)")
    if pred.exact.margin_train_noise is not None:
        lines.append(f"margin in training noise of {pred.train_sequences} sequences: "
                     f"{pred.exact.margin_train_noise:.1f}")
    lines.append(f"decidable (>= {DECIDABLE_Z:g} SE): {'yes' if pred.exact.decidable else 'no'}")
    if asym_col:
        agree = "agrees" if pred.agrees_with_asymptotic else "DISAGREES"
        lines.append(f"asymptotic S* (argmax G) = {_fmt_set(pred.asymptotic.best)} ({agree})")
    if pred.initial is not None:
        same = "agrees" if pred.stage1_premise_holds else "DIFFERS: stage-wise training ends there"
        lines.append(f"stage 1 from the initial copier (argmax G_L at w+={m.w_plus:g}, "
                     f"w-={m.w_minus:g}) = {_fmt_set(pred.initial.best)} ({same}; decidable: "
                     f"{'yes' if pred.initial.decidable else 'no'})")
    heads = ", ".join(f"head {h}: " + (f"offset {c}" if isinstance(c, int) else str(c))
                      for h, c in enumerate(pred.copier, start=1))
    lines.append(f"copier window: {heads}")
    lines.append("missing parents (not expressible): "
                 + (_fmt_set(pred.missing_parents) if pred.missing_parents else "none"))
    return "\n".join(lines)


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
        try:
            _write_replacing(args.json, json.dumps(data, indent=2) + "\n")
        except OSError as err:
            raise InductionHeadsError(
                f"--json: expected a writable path, received {str(args.json)!r} ({err.strerror})"
            ) from None
        print(f"wrote {args.json}")
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
        status = _predict(args)
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
