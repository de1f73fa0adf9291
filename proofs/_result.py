"""The frozen result every lemma returns, and the exact-zero rule that decides ``holds``.

An identity ``lhs = rhs`` *holds* here only when its residual ``lhs - rhs``, after targeted exact
simplification (``together`` then ``cancel``, or ``expand`` for polynomials), is structurally the
sympy zero ``S.Zero``. ``simplify()`` is never used to decide an identity: a heuristic that happens
to return 0 is not a certificate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import sympy as sp

from theory.errors import require

__all__ = [
    "LemmaResult", "rational_residual", "first_nonzero", "check_sizes", "exact_witness",
    "termwise_residual", "marginal_residual", "nonnegative_certificate", "conclude",
]

_MAX_FAILED_SHOWN = 6  # failure notes kept in ``detail``; the rest are elided with " …"


@dataclass(frozen=True)
class LemmaResult:
    """Outcome of one lemma's symbolic check.

    Attributes:
        name: short identifier of the lemma, e.g. ``"first_order"``.
        statement: the lemma in words and formulas (what was checked, with its assumptions).
        holds: True iff every sub-check passed (every residual structurally zero, every
            certificate decided by sympy's assumption system).
        residual: ``S.Zero`` when ``holds``; otherwise the first residual that was not zero
            (or the certificate that could not be decided), so a failure shows its evidence.
        detail: how it was checked (the certificate), one line per sub-check.
        sizes_checked: the finite sizes over which a statement general in ``d``, ``L`` or the
            number of sets was verified, e.g. ``("L=2", "L=3")``; empty when fully symbolic.
    """

    name: str
    statement: str
    holds: bool
    residual: sp.Expr
    detail: str
    sizes_checked: tuple[str, ...]

    def __post_init__(self) -> None:
        require(isinstance(self.holds, bool), "holds", "a bool", self.holds)
        require(isinstance(self.residual, sp.Basic), "residual", "a sympy expression",
                self.residual)
        require(self.holds == (self.residual == sp.S.Zero), "holds",
                "True exactly when residual is S.Zero", (self.holds, self.residual))


def rational_residual(lhs: sp.Expr, rhs: sp.Expr) -> sp.Expr:
    """Exact residual ``lhs - rhs`` of two rational expressions, brought to canonical form.

    Uses ``together`` then ``cancel`` (numerator and denominator as expanded coprime
    polynomials), so the result is ``S.Zero`` exactly when the two rational functions agree.
    """
    return sp.cancel(sp.together(sp.sympify(lhs) - sp.sympify(rhs)))


def exact_witness(expr: sp.Expr, symbols: Sequence[sp.Symbol], *, points: int = 3
                  ) -> sp.Expr | None:
    """An exact non-zero value of ``expr`` at a fixed positive rational point, or ``None``.

    A non-zero exact value at one point proves that a rational function is not identically
    zero, cheaply, without bringing a large residual to canonical form. The points are fixed
    (no randomness): symbol ``i`` takes ``(p_i + k) / (p_{i+1} + 2k)`` at trial ``k`` with
    ``p_i`` the i-th prime, so every value lies in ``(0, 1)`` and differs between symbols.
    ``None`` means no witness was found (the expression may still be non-zero).
    """
    symbols = list(symbols)
    primes = list(sp.primerange(2, 1000))[: len(symbols) + 1]
    for k in range(points):
        point = {x: sp.Rational(primes[i] + k, primes[i + 1] + 2 * k)
                 for i, x in enumerate(symbols)}
        value = sp.cancel(sp.together(sp.sympify(expr).xreplace(point)))
        if value.is_number and value != sp.S.Zero:
            return value
    return None


def termwise_residual(lhs: sp.Expr, rhs: sp.Expr) -> sp.Expr:
    """``lhs - rhs`` with every summand cancelled separately, then summed and expanded.

    Exact and cheap; ``S.Zero`` here proves the identity. A non-zero result may still be the
    zero function (cancellation across denominators): pass it to :func:`rational_residual`.
    """
    diff = sp.expand(sp.sympify(lhs) - sp.sympify(rhs), deep=False, mul=True, multinomial=False)
    return sp.expand(sp.Add(*[sp.cancel(t) for t in sp.Add.make_args(diff)]))


def marginal_residual(expr: sp.Expr, marginals: Mapping[sp.Symbol, sp.Expr],
                      symbols: Sequence[sp.Symbol]) -> tuple[sp.Expr, str]:
    """Decide ``expr = 0`` where ``expr`` uses opaque positive symbols for sums (marginals).

    ``expr`` is a rational expression in free symbols and placeholder symbols ``M`` standing
    for non-zero sums ``marginals[M]``. Expanded as a Laurent polynomial in all of them, powers
    of a placeholder cancel structurally (legitimate because every sum is non-zero). The terms
    are grouped by their denominator monomial ``D``; in each group's numerator the placeholders
    are replaced by their sums and the result expanded. If every numerator is the zero
    polynomial, ``expr`` is identically zero. Otherwise a non-zero value at a rational point
    refutes it (:func:`exact_witness`), else the remainder is put through ``together`` +
    ``cancel``. Returns ``(residual, how)``.
    """
    groups: dict[sp.Expr, list[sp.Expr]] = {}
    for term in sp.Add.make_args(sp.expand(sp.sympify(expr))):
        numer, denom = term.as_numer_denom()
        groups.setdefault(denom, []).append(numer)
    remainder = [sp.expand(sp.Add(*numers).xreplace(dict(marginals))) / denom
                 for denom, numers in groups.items()]
    remainder = [r for r in remainder if r != sp.S.Zero]
    if not remainder:
        return sp.S.Zero, "Laurent expansion, numerators vanish per denominator"
    full = sp.Add(*remainder).xreplace(dict(marginals))
    witness = exact_witness(full, symbols)
    if witness is not None:
        return full, f"fails: residual = {witness} at a rational point"
    return rational_residual(full, 0), "together+cancel"


def nonnegative_certificate(expr: sp.Expr, symbols: Sequence[sp.Symbol]) -> bool:
    """Decide ``expr >= 0`` for all positive ``symbols`` by a coefficient-sign certificate.

    ``expr`` is brought to one fraction with ``together``; numerator and denominator are
    expanded as polynomials in ``symbols``. If every coefficient of both is a non-negative
    number and the denominator is not the zero polynomial, then ``expr >= 0`` wherever all
    ``symbols`` are positive (and, by continuity, at boundary points where it is defined).
    ``False`` means *no certificate* (not a proof that ``expr`` can be negative).
    """
    symbols = list(symbols)
    numer, denom = (sp.expand(p) for p in sp.together(sp.sympify(expr)).as_numer_denom())
    if denom == sp.S.Zero:
        return False
    for sign in (1, -1):  # the fraction may come out as (-N)/(-D)
        polys = [sp.Poly(sign * p, *symbols) for p in (numer, denom)]
        if all(c.is_number and c.is_nonnegative for poly in polys for c in poly.coeffs()):
            return True
    return False


def first_nonzero(residuals: Iterable[sp.Expr]) -> sp.Expr:
    """The first residual that is not ``S.Zero`` (``S.Zero`` when all are zero)."""
    for r in residuals:
        if r != sp.S.Zero:
            return sp.sympify(r)
    return sp.S.Zero


def conclude(name: str, statement: str, *, residuals: Iterable[sp.Expr], detail: str,
             failed: Sequence[str], sizes_checked: Iterable[str]) -> LemmaResult:
    """Assemble a lemma's :class:`LemmaResult` from its residuals and failure notes.

    Args:
        name: short identifier of the lemma, e.g. ``"first_order"``.
        statement: the lemma in words and formulas.
        residuals: every sub-check's residual; ``holds`` iff all are ``S.Zero``, and the
            reported ``residual`` is the first that is not (:func:`first_nonzero`).
        detail: how it was checked (the certificate).
        failed: one note per failed sub-check; when non-empty, the first six are appended to
            ``detail`` after ``"; FAILED: "`` (followed by ``" …"`` when more were dropped).
        sizes_checked: the finite sizes the statement was verified over, e.g. ``"L=2"``.

    Returns:
        The frozen :class:`LemmaResult`.
    """
    residual = first_nonzero(residuals)
    if failed:
        detail += ("; FAILED: " + "; ".join(failed[:_MAX_FAILED_SHOWN])
                   + (" …" if len(failed) > _MAX_FAILED_SHOWN else ""))
    return LemmaResult(name=name, statement=statement, holds=residual == sp.S.Zero,
                       residual=residual, detail=detail, sizes_checked=tuple(sizes_checked))


def check_sizes(sizes: Sequence[int], what: str, minimum: int, maximum: int) -> tuple[int, ...]:
    """Validate a non-empty sequence of integer sizes in ``[minimum, maximum]``.

    Raises:
        InductionHeadsError: when ``sizes`` is empty or holds a non-integer or out-of-range value.
    """
    require(len(sizes) > 0, what, "a non-empty sequence of integers", sizes)
    for n in sizes:
        require(isinstance(n, int) and not isinstance(n, bool) and minimum <= n <= maximum,
                what, f"integers in [{minimum}, {maximum}] (larger sizes are too slow for sympy)",
                sizes)
    return tuple(sizes)
