"""Lemma 7 (classifier growth): -∂ℓ/∂a decays like κ e^{-a}, so a(t) grows like log t.

Statement. For one context with similarities in ``{0, 1}``: ``m`` matching positions, ``m_e``
of them followed by (holding) the target ``e``; ``u`` non-matching ones, ``u_e`` of them
holding ``e``. The loss ``ℓ(a) = -log ŷ(e)``, ``ŷ(e) = (m_e e^a + u_e)/(m e^a + u)``
(Lemma 6), has

    -∂ℓ/∂a = u/(m e^a + u) - u_e/(m_e e^a + u_e)
           = (u/m - u_e/m_e) e^{-a} + O(e^{-2a})        (m_e >= 1),
    -∂ℓ/∂a → -1                                           (m_e = 0, u_e >= 1),

so the loss keeps decreasing in ``a`` only while every target is found at the matching
positions; a context whose target never follows a match (``m_e = 0``) pushes ``a`` back with
unit force, which is what makes the best ``a`` finite at finite ``L``. Where the net force is
``κ e^{-a}`` (``κ > 0``), gradient flow ``da/dt = κ e^{-a}``, ``a(0) = a_0``, is solved by

    a(t) = log(e^{a_0} + κ t),        a(t) - log t → log κ:

logarithmic growth.

Assumptions: ``m >= 1``; ``u >= 0``; the counts fixed (copier and selector at their limits).

Supports docs/theory.md §3 (classifier limit): ``a(t) → ∞`` logarithmically in time under
gradient flow, and the finite optimum ``a*(L)`` at finite ``L``.

How it is checked: (1) for every ``L`` in ``sizes`` (default 2..4) and every similarity and
target-indicator pattern with a finite loss, sympy differentiates ``log ŷ(e)`` from the softmax
definition and the result (``e^a`` replaced by a positive symbol) equals the closed form by
``together`` + ``cancel``; (2) with ``x = e^{-a}`` and symbolic positive counts, ``sp.series``
to order ``x^2`` gives the coefficient of ``x``, compared with the claimed coefficient
(symbolically and at every enumerated pattern), and ``lim_{x→0} (rate - κx)/x^2`` is finite
(the remainder is ``O(e^{-2a})``); (3) ``sp.limit`` gives ``-1`` when ``m_e = 0``; (4) the claimed
solution satisfies the ODE (residual by ``together`` + ``cancel`` with ``e^{a_0}`` a positive
symbol), the initial condition, and ``a(t) - log t → log κ``. Both the coefficient
``(m, m_e, u, u_e) -> κ`` and the solution ``(t, a_0, κ) -> a(t)`` can be injected.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import sympy as sp

from proofs._result import LemmaResult, check_sizes, conclude, rational_residual

__all__ = [
    "claimed_coefficient",
    "claimed_solution",
    "growth_rate",
    "numeric_rate",
    "numeric_coefficient",
    "numeric_solution",
    "verify",
]

Coefficient = Callable[[sp.Expr, sp.Expr, sp.Expr, sp.Expr], sp.Expr]
"""``(m, m_e, u, u_e) -> κ``: the claimed coefficient of ``e^{-a}`` in ``-∂ℓ/∂a``."""

Solution = Callable[[sp.Expr, sp.Expr, sp.Expr], sp.Expr]
"""``(t, a_0, κ) -> a(t)``: the claimed solution of ``da/dt = κ e^{-a}``."""

_STATEMENT = (
    "-∂ℓ/∂a = u/(m e^a + u) - u_e/(m_e e^a + u_e) = (u/m - u_e/m_e)e^{-a} + O(e^{-2a}) for "
    "m_e >= 1, → -1 for m_e = 0; da/dt = κe^{-a} is solved by a(t) = log(e^{a_0} + κt)"
)


def claimed_coefficient(m: sp.Expr, m_e: sp.Expr, u: sp.Expr, u_e: sp.Expr) -> sp.Expr:
    """The claimed coefficient ``κ = u/m - u_e/m_e`` (``m, m_e >= 1``)."""
    return sp.sympify(u) / m - sp.sympify(u_e) / m_e


def claimed_solution(t: sp.Expr, a0: sp.Expr, kappa: sp.Expr) -> sp.Expr:
    """The claimed solution ``a(t) = log(e^{a_0} + κ t)``."""
    return sp.log(sp.exp(a0) + kappa * t)


def growth_rate(m: sp.Expr, m_e: sp.Expr, u: sp.Expr, u_e: sp.Expr, big_e: sp.Expr) -> sp.Expr:
    """``-∂ℓ/∂a = u/(mE + u) - u_e/(m_e E + u_e)`` with ``E = e^a``."""
    return u / (m * big_e + u) - u_e / (m_e * big_e + u_e)


def numeric_rate() -> Callable[..., float]:
    """The closed form lambdified: ``(a, m, m_e, u, u_e) ↦ -∂ℓ/∂a`` in float64 (numeric twin)."""
    a = sp.Symbol("a", positive=True)
    m, m_e, u, u_e = sp.symbols("m m_e u u_e", nonnegative=True)
    fn = sp.lambdify([a, m, m_e, u, u_e], growth_rate(m, m_e, u, u_e, sp.exp(a)),
                     modules="numpy")
    return lambda av, *counts: float(fn(float(av), *(float(c) for c in counts)))


def numeric_coefficient(*, coefficient: Coefficient = claimed_coefficient
                        ) -> Callable[..., float]:
    """The claimed ``κ`` lambdified: ``(m, m_e, u, u_e) ↦ κ`` in float64."""
    m, m_e, u, u_e = sp.symbols("m m_e u u_e", positive=True)
    fn = sp.lambdify([m, m_e, u, u_e], coefficient(m, m_e, u, u_e), modules="numpy")
    return lambda *counts: float(fn(*(float(c) for c in counts)))


def numeric_solution(*, solution: Solution = claimed_solution
                     ) -> Callable[[np.ndarray, float, float], np.ndarray]:
    """The claimed ``a(t)`` lambdified: ``(t (T,), a_0, κ) ↦ a(t) (T,)`` in float64."""
    t = sp.Symbol("t", nonnegative=True)
    a0 = sp.Symbol("a0", real=True)
    kappa = sp.Symbol("kappa", positive=True)
    fn = sp.lambdify([t, a0, kappa], solution(t, a0, kappa), modules="numpy")
    return lambda tv, av, kv: np.broadcast_to(
        np.asarray(fn(np.asarray(tv, dtype=np.float64), float(av), float(kv)), dtype=np.float64),
        np.shape(tv)).copy()


def _softmax_rate(sim: Sequence[int], hits: Sequence[int], big_e: sp.Symbol) -> sp.Expr:
    """``d/da log ŷ(e)`` differentiated by sympy from the softmax definition, ``e^a → E``."""
    a = sp.Symbol("a", real=True)
    weights = [sp.exp(a * s) for s in sim]  # (L,)
    y_e = sp.Add(*[h * w for h, w in zip(hits, weights)]) / sp.Add(*weights)
    return sp.diff(sp.log(y_e), a).xreplace({a: sp.log(big_e)})


def _solution_residuals(solution: Solution) -> list[sp.Expr]:
    t = sp.Symbol("t", nonnegative=True)
    a0 = sp.Symbol("a0", real=True)
    kappa = sp.Symbol("kappa", positive=True)
    big_a = sp.Symbol("A", positive=True)  # e^{a0}
    a_t = solution(t, a0, kappa)
    ode = (sp.diff(a_t, t) - kappa * sp.exp(-a_t)).xreplace({sp.exp(a0): big_a})
    initial = sp.expand_log(a_t.xreplace({t: 0}) - a0, force=False)
    asymptote = sp.limit(a_t - sp.log(t), t, sp.oo) - sp.log(kappa)
    return [rational_residual(ode, 0), sp.cancel(initial), sp.expand_log(asymptote)]


def verify(*, coefficient: Coefficient = claimed_coefficient,
           solution: Solution = claimed_solution, sizes: Sequence[int] = (2, 3, 4)
           ) -> LemmaResult:
    """Check Lemma 7 exactly; ``coefficient`` / ``solution`` may be replaced by wrong claims.

    Args:
        coefficient: ``(m, m_e, u, u_e) -> κ``, the claimed coefficient of ``e^{-a}``.
        solution: ``(t, a_0, κ) -> a(t)``, the claimed solution of ``da/dt = κ e^{-a}``.
        sizes: numbers of positions ``L`` to enumerate (each in 1..5).

    Returns:
        The frozen :class:`LemmaResult`.

    Raises:
        InductionHeadsError: when ``sizes`` is empty or out of range.
    """
    sizes = check_sizes(sizes, "sizes", 1, 5)
    residuals: list[sp.Expr] = []
    failed: list[str] = []
    m, m_e, u, u_e = sp.symbols("m m_e u u_e", positive=True)
    x = sp.Symbol("x", positive=True)  # e^{-a}
    rate = sp.together(growth_rate(m, m_e, u, u_e, 1 / x))
    series = sp.series(rate, x, 0, 2).removeO()
    kappa = sp.expand(series).coeff(x, 1)
    checks = {
        "coefficient": rational_residual(kappa, coefficient(m, m_e, u, u_e)),
        "series has no constant term": sp.cancel(sp.expand(series).coeff(x, 0)),
    }
    remainder = sp.limit((rate - kappa * x) / x ** 2, x, 0, "+")
    if remainder.is_finite is not True:
        checks["remainder O(e^(-2a))"] = sp.Symbol("undecided_remainder")
    a = sp.Symbol("a", real=True)
    checks["m_e = 0 limit"] = sp.limit(growth_rate(m, 0, u, u_e, sp.exp(a)), a, sp.oo) + 1
    ode, initial, asymptote = _solution_residuals(solution)
    checks["solution: ODE"] = ode
    checks["solution: a(0) = a0"] = initial
    checks["solution: a(t) - log t → log κ"] = asymptote
    for label, r in checks.items():
        residuals.append(r)
        if r != sp.S.Zero:
            failed.append(label)

    big_e = sp.Symbol("E", positive=True)
    n_patterns = 0
    for L in sizes:
        for sim in itertools.product((0, 1), repeat=L):
            for hits in itertools.product((0, 1), repeat=L):
                mm = sum(sim)
                me = sum(s * h for s, h in zip(sim, hits))
                uu, ue = L - mm, sum(hits) - me
                if mm == 0 or (me == 0 and ue == 0):
                    continue  # constant ŷ (no match) or infinite loss (target absent)
                pair = [rational_residual(_softmax_rate(sim, hits, big_e),
                                          growth_rate(mm, me, uu, ue, big_e))]
                if me >= 1:
                    at = {m: mm, m_e: me, u: uu, u_e: ue}
                    pair.append(rational_residual(kappa.xreplace(at),
                                                  coefficient(mm, me, uu, ue)))
                residuals.extend(pair)
                n_patterns += 1
                if any(r != sp.S.Zero for r in pair):
                    failed.append(f"L={L}: pattern s={sim}, hits={hits}")

    detail = (
        f"sympy diff of log ŷ(e) from the softmax at {n_patterns} (similarity, target) patterns "
        "= closed form; sp.series in x = e^(-a) to O(x^2) vs the claimed κ, finite limit of "
        "the remainder / x^2; sp.limit → -1 for m_e = 0; claimed a(t) substituted into "
        "da/dt = κe^(-a) (together+cancel), a(0) and a(t) - log t → log κ"
    )
    return conclude("classifier_growth", _STATEMENT, residuals=residuals, detail=detail,
                    failed=failed, sizes_checked=tuple(f"L={L}" for L in sizes))
