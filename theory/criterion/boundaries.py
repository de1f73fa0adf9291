"""Phase boundaries of the criterion G(S) over one-parameter families of fixed kernels (sympy).

:func:`family_criteria` derives ``G(S)`` (or χ² MI) of every head set of a small model as an
exact rational function of the parameter of a :class:`KernelFamily`, from the symbolic stationary
law of :func:`theory.sources.stationary_exact.window_law_field`. A *phase boundary* of ``S1, S2`` is a
root of odd multiplicity of the numerator of ``G(S1) - G(S2)`` in the family's interval, where the
two swap ranks (:func:`phase_boundaries`); :func:`phase_diagram` cuts the interval into pieces
with one argmax, the set the selector limit picks (docs/theory.md §3.2). Two families over
``P = (1, 2)`` are predefined in :mod:`theory.criterion.families`. The
first-order binary chain ``[[1-p, p], [q, 1-q]]`` has none: :func:`first_order_binary_gaps`
factorises ``G({1}) - G(S)`` and :func:`certified_sign` proves every gap ``>= 0`` on ``(0, 1)^2``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from theory.criterion.families import (
    KernelFamily,
    check_family_value,
)
from theory.criterion.values import (
    CRITERION_KINDS,
    check_head_set,
    criterion_from_joint,
    law_window,
)
from theory.errors import require
from theory.sources.spec import head_sets
from theory.sources.stationary import marginal
from theory.sources.stationary_exact import window_law_field

__all__ = [
    "Boundary", "Phase", "family_criteria", "criterion_functions", "phase_boundaries",
    "phase_diagram", "ranking_at", "certified_sign", "first_order_binary_gaps", "SAME_ROOT_GAP",
]

SAME_ROOT_GAP = 1e-12
"""Boundaries of different pairs closer than this are one point of the phase diagram: far below
any gap between distinct roots of the families' small integer polynomials, far above round-off."""

@dataclass(frozen=True)
class Boundary:
    """A point where ``G(set_a) - G(set_b)`` changes sign.

    Attributes:
        set_a, set_b: the two sets.
        root: the exact parameter value (Rational, radical or ``CRootOf``).
        value: ``float(root)``.
        polynomial: the irreducible factor of the numerator of ``G(set_a) - G(set_b)`` that
            vanishes at ``root``.
        a_wins_below: True when ``G(set_a) > G(set_b)`` just below ``root``.
    """

    set_a: tuple[int, ...]
    set_b: tuple[int, ...]
    root: sp.Expr
    value: float
    polynomial: sp.Expr
    a_wins_below: bool


@dataclass(frozen=True)
class Phase:
    """A piece ``(lo, hi)`` of the interval on which ``winner`` has the largest criterion."""

    lo: sp.Expr
    hi: sp.Expr
    winner: tuple[int, ...]


def _check_sets(family: KernelFamily, sets: Any) -> tuple[tuple[int, ...], ...]:
    if sets is None:
        return family.sets
    require(isinstance(sets, (list, tuple)) and len(sets) >= 1, "sets",
            "a non-empty list or tuple of head sets", sets)
    return tuple(dict.fromkeys(check_head_set(s) for s in sets))


@functools.lru_cache(maxsize=16)
def _law(family: KernelFamily, window: int) -> tuple[np.ndarray, Any]:
    """The symbolic window law ``(d,)*K`` of the family and its field QQ(symbol)."""
    return window_law_field(family.kernel.tolist(), family.parents, window, symbolic=True)


@functools.lru_cache(maxsize=256)
def _criterion(family: KernelFamily, head_set: tuple[int, ...], kind: str) -> sp.Expr:
    if not head_set:
        return sp.Integer(0)
    window = law_window(family.parents, family.sets + (head_set,))  # one law serves all sets
    law, ring = _law(family, window)  # (d,)*K
    return sp.factor(ring.to_sympy(criterion_from_joint(marginal(law, head_set), 0, kind)))


def family_criteria(family: KernelFamily, sets: Any = None, *, kind: str = "G"
                    ) -> dict[tuple[int, ...], sp.Expr]:
    """``G(S)`` (or χ² MI) of every set as a factored rational function of the family's symbol.

    Args:
        family: the family.
        sets: head sets (default ``family.sets``); one symbolic stationary law (cached per
            family) serves all of them, and each set's expression is cached.
        kind: ``"G"`` or ``"chi2"``.

    Returns:
        ``{S: expression}`` in the order of ``sets``; ``0`` for the empty set. Valid on the
        family's interval (where the chain is primitive).
    """
    require(isinstance(family, KernelFamily), "family", "a KernelFamily", type(family).__name__)
    require(kind in CRITERION_KINDS, "kind", f"one of {CRITERION_KINDS}", kind)
    sets = _check_sets(family, sets)
    return {s: _criterion(family, s, kind) for s in sets}


def criterion_functions(family: KernelFamily, sets: Any = None, *, kind: str = "G"
                        ) -> dict[tuple[int, ...], Callable[[Any], Any]]:
    """Numeric twins of :func:`family_criteria`: ``{S: f}`` with ``f`` numpy-vectorised in the
    parameter (float64 in, float64 out, shape kept)."""
    exprs = family_criteria(family, sets, kind=kind)
    return {s: np.vectorize(sp.lambdify(family.symbol, e, "numpy"), otypes=[np.float64])
            for s, e in exprs.items()}


def phase_boundaries(family: KernelFamily, set_a: Any, set_b: Any, *, kind: str = "G"
                     ) -> tuple[Boundary, ...]:
    """Where ``G(set_a) = G(set_b)`` with a change of sign, inside the family's open interval.

    The difference is brought to one fraction; every irreducible factor of the numerator of odd
    multiplicity contributes its real roots in the interval (exact: sympy ``real_roots`` gives
    Rationals, radicals for quadratics and ``CRootOf`` otherwise). Roots of even multiplicity
    (the sets touch without swapping) are left out.

    Returns:
        The boundaries in increasing order (empty when one set wins on the whole interval).

    Raises:
        InductionHeadsError: on a bad family, set or kind, or ``set_a == set_b``.
    """
    sa, sb = check_head_set(set_a), check_head_set(set_b)
    require(sa != sb, "set_b", f"a head set other than set_a = {sa}", set_b)
    family_criteria(family, (sa, sb), kind=kind)  # validates the family and the kind
    return _boundaries(family, sa, sb, kind)


@functools.lru_cache(maxsize=1024)
def _boundaries(family: KernelFamily, sa: tuple[int, ...], sb: tuple[int, ...], kind: str
                ) -> tuple[Boundary, ...]:
    crit = family_criteria(family, (sa, sb), kind=kind)
    gap = sp.cancel(sp.together(crit[sa] - crit[sb]))
    num, _ = sp.fraction(gap)
    w, (lo, hi) = family.symbol, family.interval
    found = []
    for factor, mult in ([] if num == 0 else sp.factor_list(num, w)[1]):
        if mult % 2 == 1 and factor.has(w):
            found += [(r, factor) for r in sp.real_roots(sp.Poly(factor, w)) if lo < r < hi]
    found.sort(key=lambda item: float(item[0]))
    out = []
    for k, (root, factor) in enumerate(found):
        left = float(found[k - 1][0]) if k else float(lo)
        probe = sp.Rational((left + float(root)) / 2)  # between the previous root and this one
        out.append(Boundary(sa, sb, root, float(root), factor,
                            bool(gap.subs(w, probe) > 0)))
    return tuple(out)


def ranking_at(family: KernelFamily, value: Any, sets: Any = None, *, kind: str = "G"
               ) -> tuple[tuple[tuple[int, ...], sp.Rational], ...]:
    """Sets by decreasing exact criterion at ``value`` (a float is read as its exact binary
    value; ties keep the order of ``sets``).

    Returns:
        ``((S, criterion of S at value as a Rational), ...)``, the argmax first.
    """
    val = check_family_value(family, value)
    exact = [(s, sp.Rational(e.subs(family.symbol, val)))
             for s, e in family_criteria(family, sets, kind=kind).items()]
    return tuple(sorted(exact, key=lambda item: -item[1]))


def phase_diagram(family: KernelFamily, sets: Any = None, *, kind: str = "G"
                  ) -> tuple[Phase, ...]:
    """The pieces of the interval on which one set has the largest criterion.

    All pairwise boundaries of the non-empty sets cut the interval; the argmax is evaluated
    exactly at a rational point of each cut piece and equal neighbours are merged. Cuts closer
    than :data:`SAME_ROOT_GAP` (three sets crossing at one point) count once.

    Returns:
        The phases from ``lo`` to ``hi``; consecutive ones share an exact end point.
    """
    crit = family_criteria(family, sets, kind=kind)
    named = [s for s in crit if s]
    roots = sorted((b.root for i, a in enumerate(named) for c in named[i + 1:]
                    for b in phase_boundaries(family, a, c, kind=kind)), key=float)
    cuts = [r for k, r in enumerate(roots)
            if k == 0 or float(r) - float(roots[k - 1]) > SAME_ROOT_GAP]
    ends = [family.interval[0], *cuts, family.interval[1]]
    phases: list[Phase] = []
    for lo, hi in zip(ends, ends[1:]):
        mid = sp.Rational((float(lo) + float(hi)) / 2)  # a rational inside the piece
        winner = ranking_at(family, mid, tuple(crit), kind=kind)[0][0]
        if phases and phases[-1].winner == winner:
            phases[-1] = Phase(phases[-1].lo, hi, winner)
        else:
            phases.append(Phase(lo, hi, winner))
    return tuple(phases)


def _polya_sign(poly: sp.Expr, symbols: tuple[sp.Symbol, ...]) -> int | None:
    """The strict sign of a polynomial on ``(0, 1)^n`` proven by ``x = u/(1+u)``, or None."""
    us = sp.symbols(f"u0:{len(symbols)}", positive=True)
    moved = sp.together(poly.subs(dict(zip(symbols, [u / (1 + u) for u in us]))))
    num, _ = sp.fraction(moved)  # the denominator is a product of powers of (1 + u) > 0
    signs = {int(sp.sign(c)) for c in sp.Poly(num, *us).coeffs()}
    return next(iter(signs)) if signs in ({1}, {-1}) else None


def certified_sign(expr: sp.Expr, symbols: tuple[sp.Symbol, ...]) -> int | None:
    """A proof of a fixed sign of the rational function ``expr`` on the open box ``(0, 1)^n``.

    Numerator and denominator are factorised; a factor of even multiplicity is ``>= 0``. A factor
    of odd multiplicity, after ``x = u/(1+u)`` per symbol (a bijection of ``(0, ∞)`` onto
    ``(0, 1)``) times its positive denominator, must be a polynomial in the ``u`` whose
    coefficients share one strict sign: it then has that sign on the whole open box.

    Args:
        expr: a rational function of ``symbols`` (and no other symbol).
        symbols: the variables, each ranging over ``(0, 1)``.

    Returns:
        ``+1`` when ``expr >= 0`` on the box (zero at most on the zero sets of the
        even-multiplicity factors), ``-1`` when ``expr <= 0``, None when this test cannot decide
        (which proves nothing either way).
    """
    require(isinstance(expr, sp.Expr) and expr.free_symbols <= set(symbols), "expr",
            f"a sympy expression in {tuple(symbols)}", expr)
    sign = 1
    for part in sp.fraction(sp.together(expr)):
        coeff, factors = sp.factor_list(part, *symbols)
        sign *= int(sp.sign(coeff))
        for factor, mult in factors:
            if mult % 2 == 1:
                strict = _polya_sign(factor, tuple(symbols))
                if strict is None:
                    return None
                sign *= strict
    return sign


def first_order_binary_gaps(sets: Any = None) -> tuple[tuple[sp.Symbol, sp.Symbol],
                                                       dict[tuple[int, ...], sp.Expr]]:
    """``G({1}) - G(S)`` for the binary chain ``[[1-p, p], [q, 1-q]]`` with parent ``{1}``.

    Args:
        sets: head sets (default: those of ``H = 3, D = 2`` without ``{1}`` and ``∅``).

    Returns:
        ``((p, q), {S: factored gap})``; :func:`certified_sign` of every gap is ``+1``.
    """
    p, q = sp.symbols("p q", positive=True)
    sets = tuple(s for s in (head_sets(3, 2) if sets is None else
                             tuple(check_head_set(s) for s in sets)) if s not in ((), (1,)))
    require(len(sets) >= 1, "sets", "at least one head set other than () and (1,)", sets)
    kernel = [[1 - p, p], [q, 1 - q]]
    law, ring = window_law_field(kernel, (1,), law_window((1,), sets + ((1,),)), symbolic=True)
    crit = {s: ring.to_sympy(criterion_from_joint(marginal(law, s), 0, "G"))
            for s in sets + ((1,),)}
    return (p, q), {s: sp.factor(crit[(1,)] - crit[s]) for s in sets}
