"""Lemma 6 (classifier limit): with {0,1} similarities the classifier tends to the GIH.

Statement. Let ``s_l ∈ {0, 1}`` for ``l = 1..L``; ``m = #{l : s_l = 1}`` positions match the
query, ``m_e`` of them hold the token ``e``; ``u = L - m`` do not, ``u_e`` of them hold ``e``.
With ``E = e^a``,

    ŷ(e) = Σ_l softmax_l(a s_l) 1{x_l = e} = (m_e E + u_e) / (m E + u),

so as ``a → ∞``: ``ŷ(e) → m_e / m`` when ``m >= 1`` (the empirical law of the tokens at the
matching positions: the generalized induction head), with the explicit bound
``|ŷ(e) - m_e/m| <= (u/m) e^{-a}``; and when ``m = 0`` ``ŷ(e) = u_e / L`` for every ``a``
(the uniform average over all positions).

Assumptions: ``0 <= m_e <= m``, ``0 <= u_e <= u``, ``m + u = L >= 1``.

Supports docs/theory.md §3 (classifier limit): ``ŷ`` tends to the GIH, the empirical distribution
of ``x_l`` over the positions whose S*-context equals that of ``L+1`` (all positions when none
match).

How it is checked: (1) for every ``L`` in ``sizes`` (default 2..4), every similarity pattern
in ``{0,1}^L`` and every token-indicator pattern ``1{x_l = e}``, ŷ(e) built from the softmax
definition (with ``e^a`` replaced by a positive symbol ``E``) equals the count form by
``together`` + ``cancel``; (2) ``sp.limit`` as ``a → ∞`` of the count form with symbolic
counts (``m, u >= 1``; ``m_e, u_e`` positive or zero; ``u = 0``) against the claim, and the
claim at every enumerated pattern against the symbolic limit evaluated there; (3) the bound by
a coefficient-sign certificate with ``m = m_e + k``, ``u = u_e + r``; (4) the ``m = 0`` case
exactly for every ``a``. The claimed limit ``(m, m_e, u, u_e) -> expr`` can be injected.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import sympy as sp

from proofs._result import (
    LemmaResult,
    check_sizes,
    conclude,
    nonnegative_certificate,
    rational_residual,
)

__all__ = ["claimed_limit", "count_form", "numeric_prediction", "numeric_limit", "verify"]

Claim = Callable[[sp.Expr, sp.Expr, sp.Expr, sp.Expr], sp.Expr]
"""``(m, m_e, u, u_e) -> expr``: the claimed ``lim_{a→∞} ŷ(e)``."""

_STATEMENT = (
    "s_l ∈ {0,1}: ŷ(e) = (m_e e^a + u_e)/(m e^a + u) → m_e/m as a → ∞ when m >= 1, with "
    "|ŷ(e) - m_e/m| <= (u/m)e^{-a}; ŷ(e) = u_e/L for all a when m = 0"
)


def claimed_limit(m: sp.Expr, m_e: sp.Expr, u: sp.Expr, u_e: sp.Expr) -> sp.Expr:
    """The claimed limit: ``m_e / m`` when ``m >= 1`` (``m`` not literally 0), else ``u_e / u``."""
    m, m_e, u, u_e = (sp.sympify(v) for v in (m, m_e, u, u_e))
    return u_e / u if m == sp.S.Zero else m_e / m


def count_form(m: sp.Expr, m_e: sp.Expr, u: sp.Expr, u_e: sp.Expr, big_e: sp.Expr) -> sp.Expr:
    """``ŷ(e) = (m_e E + u_e) / (m E + u)`` with ``E = e^a``."""
    return (m_e * big_e + u_e) / (m * big_e + u)


def numeric_prediction() -> Callable[[float, int, int, int, int], float]:
    """The count form lambdified: ``(a, m, m_e, u, u_e) ↦ ŷ(e)`` in float64 (numeric twin)."""
    a = sp.Symbol("a", positive=True)
    m, m_e, u, u_e = sp.symbols("m m_e u u_e", nonnegative=True)
    fn = sp.lambdify([a, m, m_e, u, u_e], count_form(m, m_e, u, u_e, sp.exp(a)), modules="numpy")
    return lambda av, *counts: float(fn(float(av), *(float(c) for c in counts)))


def numeric_limit(*, claim: Claim = claimed_limit) -> Callable[[int, int, int, int], float]:
    """The claimed limit as a float function of the integer counts ``(m, m_e, u, u_e)``."""
    return lambda *counts: float(claim(*(sp.Integer(int(c)) for c in counts)))


def _softmax_prediction(sim: Sequence[int], hits: Sequence[int], big_e: sp.Symbol) -> sp.Expr:
    """ŷ(e) from the definition: weights ``e^{a s_l}`` (``E`` for ``s_l = 1``, 1 for ``s_l = 0``)."""
    a = sp.Symbol("a", real=True)
    weights = [sp.exp(a * s) for s in sim]  # (L,)
    y_e = sp.Add(*[h * w for h, w in zip(hits, weights)]) / sp.Add(*weights)
    return y_e.xreplace({a: sp.log(big_e)})


def verify(*, claim: Claim = claimed_limit, sizes: Sequence[int] = (2, 3, 4)) -> LemmaResult:
    """Check Lemma 6 exactly; ``claim`` may be replaced to show that a wrong limit fails.

    Args:
        claim: ``(m, m_e, u, u_e) -> expr``, the claimed limit of ŷ(e).
        sizes: numbers of positions ``L`` to enumerate (each in 1..6).

    Returns:
        The frozen :class:`LemmaResult`.

    Raises:
        InductionHeadsError: when ``sizes`` is empty or out of range.
    """
    sizes = check_sizes(sizes, "sizes", 1, 6)
    residuals: list[sp.Expr] = []
    failed: list[str] = []
    a = sp.Symbol("a", real=True)
    m, u = sp.symbols("m u", positive=True, integer=True)
    k, r = sp.symbols("k r", positive=True, integer=True)
    mp, up = sp.symbols("m_e u_e", positive=True, integer=True)
    cases = {  # (m, m_e, u, u_e) with symbolic counts
        "generic": (m, mp, u, up), "m_e = 0": (m, 0, u, up), "u_e = 0": (m, mp, u, 0),
        "u = 0": (m, mp, 0, 0),
    }
    general = sp.limit(count_form(m, mp, u, up, sp.exp(a)), a, sp.oo)
    for label, counts in cases.items():
        lim = sp.limit(count_form(*counts, sp.exp(a)), a, sp.oo)
        res = rational_residual(lim, claim(*counts))
        residuals.append(res)
        if res != sp.S.Zero:
            failed.append(f"symbolic limit, {label}")

    big_e = sp.Symbol("E", positive=True)
    n_patterns = 0
    for L in sizes:
        for sim in itertools.product((0, 1), repeat=L):
            for hits in itertools.product((0, 1), repeat=L):
                mm = sum(sim)
                me = sum(s * h for s, h in zip(sim, hits))
                uu, ue = L - mm, sum(hits) - me
                definition = rational_residual(_softmax_prediction(sim, hits, big_e),
                                               count_form(mm, me, uu, ue, big_e))
                if mm >= 1:
                    limit = general.xreplace({m: mm, mp: me, u: uu, up: ue})
                else:  # no match: the count form does not depend on a at all
                    limit = count_form(0, 0, uu, ue, big_e)
                pair = (definition, rational_residual(limit, claim(mm, me, uu, ue)))
                residuals.extend(pair)
                n_patterns += 1
                if any(res != sp.S.Zero for res in pair):
                    failed.append(f"L={L}: pattern s={sim}, hits={hits}")

    x = sp.Symbol("x", positive=True)  # e^{-a}
    counts = (mp + k, mp, up + r, up)
    gap = count_form(*counts, 1 / x) - claim(*counts)
    bound = (up + r) / (mp + k) * x
    for sign in (1, -1):
        if not nonnegative_certificate(bound - sign * gap, [x, mp, k, up, r]):
            residuals.append(sp.Symbol(f"undecided_bound_{'upper' if sign > 0 else 'lower'}"))
            failed.append("explicit bound |ŷ - limit| <= (u/m)e^(-a)")

    detail = (
        f"sp.limit a → ∞ with symbolic counts in 4 cases; {n_patterns} (similarity, token) "
        "patterns: softmax definition = count form and claim = limit, together+cancel; "
        "|ŷ - m_e/m| <= (u/m)e^(-a) by coefficient-sign certificates"
    )
    return conclude("classifier_limit", _STATEMENT, residuals=residuals, detail=detail,
                    failed=failed, sizes_checked=tuple(f"L={L}" for L in sizes))
