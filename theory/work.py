"""Time limits of ``theory``'s Monte Carlo and stationary solves: estimates of the work, checked
before any of it starts (docs/theory.md §6).

A limit prediction (:func:`theory.limit.prediction.predict_limit`) runs up to three Monte Carlo
stages, each of a cost that can be counted before it starts:

- ``G`` over ``n`` kernels (a prior's own ``N`` when it has finitely many): per kernel one stationary solve on ``d^r``
  states (an LU solve, ``(d^r)^3`` units of :data:`SOLVE_UNIT_S`) and, per head set, a pass over
  the window law of ``d^K`` entries, ``K = max(H, r) + 1`` (:data:`LAW_UNIT_S`), plus a fixed
  cost per set (:data:`SET_UNIT_S`);
- ``G_L`` over ``samples`` sequences of ``L + 1`` tokens: sampling, then per head set a pass over
  the ``(samples, L)`` similarity (:data:`SIGNAL_UNIT_S` per sequence position and set);
- the criterion at the initial copier: the same, plus ``5H + 2M`` per sequence position for the
  head similarities (:data:`COPIER_UNIT_S`).

Adaptive draws repeat the last two stages up to the budget ``max_samples``; the estimate counts
the whole budget, the longest the prediction can run. The estimate is in seconds on a reference
CPU (one core of a recent x86 server, numpy with one BLAS thread); a faster machine finishes
sooner, and the bound is on the estimate, so a request is refused or admitted the same way on
every machine:

    limit = $INDUCTION_HEADS_TIME_LIMIT_S seconds when that variable is set, or the
            ``time_limit_s`` keyword of the entry point, else DEFAULT_TIME_LIMIT_S = 300 s.

Like the memory estimates of :mod:`theory.sizes`, everything is computed in Python integers
and floats from the sizes alone, so astronomically large requests are estimated without work.
"""

from __future__ import annotations

import math
import os

from theory.errors import InductionHeadsError, require
from theory.sizes import LAW_CHUNK_ENTRIES

__all__ = [
    "TIME_LIMIT_ENV",
    "DEFAULT_TIME_LIMIT_S",
    "PROGRESS_AFTER_S",
    "SOLVE_UNIT_S",
    "LAW_UNIT_S",
    "SET_UNIT_S",
    "SIGNAL_UNIT_S",
    "COPIER_UNIT_S",
    "time_limit_seconds",
    "format_seconds",
    "require_time",
    "prediction_stage_seconds",
]

TIME_LIMIT_ENV = "INDUCTION_HEADS_TIME_LIMIT_S"
"""Environment variable overriding the time limit, in seconds (a positive number, e.g. ``3600``)."""

DEFAULT_TIME_LIMIT_S = 300.0
"""Time limit when neither :data:`TIME_LIMIT_ENV` nor a keyword sets one: five minutes of
estimated work, long enough for every prediction in the project's tests, notebooks and CLIs (the
largest, the scale notebook's d=5, P=(1,3), H=4, D=3 at L=400 over 4000 samples, is estimated at
about a minute), short enough that a request that would run for hours with no output is refused
at once with its estimate, and the user decides to raise the limit."""

PROGRESS_AFTER_S = 10.0
"""Estimated seconds above which a prediction shows a progress bar on stderr (shorter ones stay
silent)."""

SOLVE_UNIT_S = 5e-10
"""Seconds per ``(d^r)^3`` unit of one kernel's float stationary solve (LU factorisation and
solve of ``I - T + E``, the GTH check): about two dense float64 operations per unit at a few
GFLOP/s on one core."""

LAW_UNIT_S = 1.5e-8
"""Seconds per window-law entry and head set of the ``G`` stage: each set marginalises the
``d^K`` law of every kernel onto its offsets and takes its criterion (several strided numpy
passes, each a few ns per entry). This term dominates for many heads, ``|𝒮| = Σ_{k<=D} C(H, k)``
sets times ``d^(H+1)`` entries per kernel: the paper's source at one thread took 10 to 25 ns
per entry and set at H = M = 6..9, D = 6 (64 to 466 sets; 1.8 s, 3.5 s, 4.4 s, 2.6 s on 500,
200, 50, 10 kernels, on two shared cores), and 126 s at H = M = 8 over 2000 kernels on another machine (estimate
146 s), so H = M = 12, D = 6 (2510 sets, 3^13 entries) over 2000 kernels is estimated at 33 h
and refused by :data:`DEFAULT_TIME_LIMIT_S`."""

SET_UNIT_S = 2e-6
"""Seconds of fixed numpy overhead per head set and chunk of kernels (numpy calls on small
arrays; kernels go in chunks of :data:`theory.sizes.LAW_CHUNK_ENTRIES` law entries)."""

SIGNAL_UNIT_S = 2e-8
"""Seconds per sequence position and head set (or per sampled token and ``k + d`` of sampling)
of the ``G_L`` stage: the match indicator, the similarity and the centred signal, about six
float64 passes over ``(n, L)``."""

COPIER_UNIT_S = 2.5e-8
"""Seconds per sequence position and head array of the criterion at the initial copier: the
``5H + 2M`` arrays of :data:`theory.sizes.COPIER_HEAD_ARRAYS` and
:data:`theory.sizes.COPIER_OFFSET_ARRAYS`, then one soft similarity per head set."""


def time_limit_seconds(limit_s: float | None = None) -> float:
    """The time limit in seconds: ``limit_s`` when given, else :data:`TIME_LIMIT_ENV` if set,
    else :data:`DEFAULT_TIME_LIMIT_S`.

    Raises:
        InductionHeadsError: when ``limit_s`` or the variable is not a positive number (``inf``
            is accepted: no limit).
    """
    if limit_s is not None:
        try:
            value = float(limit_s)
        except (TypeError, ValueError):
            value = math.nan
        require(not isinstance(limit_s, bool) and value > 0, "time_limit_s",
                "None or a positive number of seconds (inf: no limit)", limit_s)
        return value
    raw = os.environ.get(TIME_LIMIT_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_TIME_LIMIT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    require(value > 0, TIME_LIMIT_ENV, "a positive number of seconds, e.g. 3600 (inf: no limit)",
            raw)
    return value


def format_seconds(seconds: float) -> str:
    """``seconds`` for a message: ``"42 s"``, ``"3.5 min"``, ``"2.0 h"``, ``"4.1 days"``, or a
    power of ten of years for astronomically long requests."""
    if seconds < 120:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.2g} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    years = seconds / (365.25 * 86400)
    if years < 1000:
        return f"{seconds / 86400:.1f} days"
    return (f"10^{math.floor(math.log10(years))} years" if math.isfinite(years)
            else "more than 10^300 years")


def require_time(estimate_s: float, request: str, hint: str, *,
                 limit_s: float | None = None, limit_name: str = "time_limit_s") -> None:
    """Refuse ``request`` when its estimated work (seconds) exceeds the time limit.

    Args:
        estimate_s: seconds on the reference CPU (module docstring).
        request: what is asked for, e.g. ``"limit prediction for d=4, P=(5,), H=5, D=2 over
            2000 samples"``.
        hint: what the caller can shrink, e.g. ``"pass fewer samples"``.
        limit_s: the caller's limit (a keyword of the entry point), or None for
            :func:`time_limit_seconds`'s.
        limit_name: how the caller's user raises it (a keyword, or a CLI flag).

    Raises:
        InductionHeadsError: e.g. ``limit prediction ...: expected a request within the time
            limit of 300 s (set INDUCTION_HEADS_TIME_LIMIT_S, pass time_limit_s or pass fewer
            samples), received one estimated at about 15.0 min on a reference CPU``.
    """
    limit = time_limit_seconds(limit_s)
    if estimate_s > limit:
        raise InductionHeadsError(
            f"{request}: expected a request within the time limit of {format_seconds(limit)} "
            f"(set {TIME_LIMIT_ENV}, pass {limit_name} or {hint}), received one estimated at "
            f"about {format_seconds(estimate_s)} on a reference CPU")


def prediction_stage_seconds(d: int, k: int, r: int, heads: int, window: int, n_sets: int, *,
                             kernels: int, samples: int, seq_len: int | None,
                             max_samples: int | None = None) -> dict[str, float]:
    """Estimated seconds of each stage of a limit prediction (module docstring).

    Args:
        d, k, r: vocabulary, number of parents, ``max(P)``.
        heads, window: ``H`` and the copier's ``M``.
        n_sets: head sets ranked.
        kernels: kernels behind ``G`` (a prior's own kernels when it has finitely many, e.g. 1
            for a Fixed prior).
        samples: sequences of each fixed ``G_L`` draw.
        seq_len: ``L``, or None (``G`` only).
        max_samples: the adaptive budget (None: ``samples``).

    Returns:
        ``{"G": s, "G_L": s, "initial copier": s}`` (the last two only with ``seq_len``).
    """
    states = d**r
    law = d ** (max(heads, r) + 1)
    chunks = -(-kernels // max(1, LAW_CHUNK_ENTRIES // law))
    out = {"G": _seconds(SOLVE_UNIT_S, kernels * states**3)
           + _seconds(LAW_UNIT_S, kernels * law * (n_sets + 1))
           + _seconds(SET_UNIT_S, n_sets * chunks)}
    if seq_len is None:
        return out
    drawn = max(samples, max_samples or samples)
    positions = drawn * (seq_len + 1)
    out["G_L"] = _seconds(SIGNAL_UNIT_S, positions * (n_sets + k + d))
    out["initial copier"] = (_seconds(COPIER_UNIT_S, positions * (5 * heads + 2 * window + n_sets))
                             + _seconds(SIGNAL_UNIT_S, positions * (k + d)))
    return out


def _seconds(unit_s: float, units: int) -> float:
    """``unit_s * units``, counted exactly in integers and ``inf`` beyond the float range."""
    try:
        return unit_s * float(units)
    except OverflowError:
        return math.inf
