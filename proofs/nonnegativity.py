"""Lemma 3 (non-negativity): every term of G is a χ² divergence, so G >= 0 and G(∅) = 0.

Statement. For probability vectors ``q, p`` on ``[d]`` (``Σ_e q_e = Σ_e p_e = 1``, ``p_e > 0``),

    Σ_e q_e^2 / p_e - 1  =  Σ_e (q_e - p_e)^2 / p_e  >=  0,

with equality iff ``q = p``. Taking ``q = μ(·|z)`` and ``p = μ(·)``, every term
``μ(z)^2 (Σ_e μ(e|z)^2/μ(e) - 1)`` of ``G(S)`` is ``μ(z)^2`` times a χ² divergence: it is
``>= 0``, and it vanishes iff the context ``z`` carries no information about the next token
(``μ(·|z) = μ(·)``). Consequences checked here:

* ``G = 0`` for an independent joint law ``μ(z, e) = μ(z) μ(e)`` (no information);
* ``G(∅) = 0``: the empty set has a single context with ``μ(z) = 1`` and ``μ(e|z) = μ(e)``.

Assumptions: ``p_e > 0``; both vectors normalised (the identity is false without it: the
residual of the free version is ``2Σq - Σp - 1``).

Supports docs/theory.md §3 (selection criterion): ``G(∅) = 0`` and every term of ``G`` is >= 0.

How it is checked, for every ``d`` in ``sizes`` (default 2..4):

1. the identity, with free symbols ``q_e`` (real) and ``p_e`` (positive): the residual is
   expanded (a polynomial after termwise cancellation) and the normalisation
   ``q_d = 1 - Σ_{e<d} q_e``, ``p_d = 1 - Σ_{e<d} p_e`` substituted; it must expand to 0;
2. non-negativity of the claimed right side by sympy's assumption system
   (``is_nonnegative`` with ``q`` real, ``p`` positive);
3. "equality iff q = p": the right side dominates each single term ``(q_e - p_e)^2/p_e``
   (assumption system on the difference), and that term's numerator vanishes only at
   ``q_e = p_e`` (``solve``); the right side at ``q = p`` is structurally zero;
4. ``G`` of an independent law and of the one-context law (``|S| = 0``), built with
   :func:`proofs.criterion_identity.claimed_criterion` from normalised symbolic laws.

The claimed right side ``(q, p) -> expr`` can be injected to show that a wrong one fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import sympy as sp

from proofs._result import (
    LemmaResult,
    check_sizes,
    conclude,
    rational_residual,
    termwise_residual,
)
from proofs.criterion_identity import claimed_criterion
from theory.errors import require

__all__ = ["claimed_divergence", "chi2_gap", "numeric_divergence", "verify"]

Claim = Callable[[Sequence[sp.Expr], Sequence[sp.Expr]], sp.Expr]
"""``(q, p) -> expr``: a claimed closed form of ``Σ_e q_e^2/p_e - 1``."""

_STATEMENT = (
    "Σ_e q_e^2/p_e - 1 = Σ_e (q_e - p_e)^2/p_e >= 0 for probability vectors q, p (p > 0), "
    "= 0 iff q = p; hence every term μ(z)^2(Σ_e μ(e|z)^2/μ(e) - 1) of G is >= 0, G = 0 for an "
    "independent law, and G(∅) = 0"
)


def chi2_gap(q: Sequence[sp.Expr], p: Sequence[sp.Expr]) -> sp.Expr:
    """The left side ``Σ_e q_e^2/p_e - 1`` (the bracket of one term of G)."""
    return sp.Add(*[qe ** 2 / pe for qe, pe in zip(q, p)]) - 1


def claimed_divergence(q: Sequence[sp.Expr], p: Sequence[sp.Expr]) -> sp.Expr:
    """The claimed right side, the χ² divergence ``Σ_e (q_e - p_e)^2 / p_e``."""
    return sp.Add(*[(qe - pe) ** 2 / pe for qe, pe in zip(q, p)])


def numeric_divergence(d: int, *, claim: Claim = claimed_divergence
                       ) -> Callable[[np.ndarray, np.ndarray], float]:
    """The claim, lambdified: float64 ``q, p`` of shape ``(d,)`` ``↦`` its value (numeric twin)."""
    require(isinstance(d, int) and not isinstance(d, bool) and d >= 2, "d", "an integer >= 2", d)
    q = sp.symbols(f"q1:{d + 1}", real=True)
    p = sp.symbols(f"p1:{d + 1}", positive=True)
    fn = sp.lambdify([q, p], claim(q, p), modules="numpy")
    return lambda qv, pv: float(fn(np.asarray(qv, dtype=np.float64),
                                   np.asarray(pv, dtype=np.float64)))


def _normalised_product_law(n_z: int, d: int) -> tuple[sp.Matrix, list, list]:
    """An independent law ``μ(z,e) = r_z p_e`` (normalised symbolic factors) and its marginals."""
    r = list(sp.symbols(f"r1:{n_z + 1}", positive=True))
    p = list(sp.symbols(f"p1:{d + 1}", positive=True))
    r[-1] = 1 - sp.Add(*r[:-1])
    p[-1] = 1 - sp.Add(*p[:-1])
    mu = sp.Matrix(n_z, d, lambda z, e: r[z] * p[e])  # (n_z, d)
    return mu, [sp.Add(*mu.row(z)) for z in range(n_z)], [sp.Add(*mu.col(e)) for e in range(d)]


def _one_context_law(d: int) -> tuple[sp.Matrix, list, list]:
    """The law of ``(z, e)`` for ``S = ∅``: one context, ``μ(∅, e) = p_e``, normalised."""
    p = list(sp.symbols(f"p1:{d + 1}", positive=True))
    p[-1] = 1 - sp.Add(*p[:-1])
    return sp.Matrix([p]), [sp.Add(*p)], p  # (1, d)


def verify(*, claim: Claim = claimed_divergence, sizes: Sequence[int] = (2, 3, 4)
           ) -> LemmaResult:
    """Check Lemma 3 exactly; ``claim`` may be replaced to show that a wrong formula fails.

    Args:
        claim: ``(q, p) -> expr``, the claimed closed form of ``Σ_e q_e^2/p_e - 1``.
        sizes: vocabulary sizes ``d`` (each in 2..6).

    Returns:
        The frozen :class:`LemmaResult`.

    Raises:
        InductionHeadsError: when ``sizes`` is empty or out of range.
    """
    sizes = check_sizes(sizes, "sizes", 2, 6)
    residuals: list[sp.Expr] = []
    failed: list[str] = []
    for d in sizes:
        q = sp.symbols(f"q1:{d + 1}", real=True)  # (d,)
        p = sp.symbols(f"p1:{d + 1}", positive=True)  # (d,)
        rhs = claim(q, p)
        norm = {q[-1]: 1 - sp.Add(*q[:-1]), p[-1]: 1 - sp.Add(*p[:-1])}
        free = termwise_residual(chi2_gap(q, p), rhs)
        identity = rational_residual(free.xreplace(norm), 0)
        residuals.append(identity)
        if identity != sp.S.Zero:
            failed.append(f"d={d}: identity under normalisation")

        if rhs.is_nonnegative is not True:
            residuals.append(sp.Symbol(f"undecided_nonnegative_d{d}"))
            failed.append(f"d={d}: claim not decided >= 0")
        for qe, pe in zip(q, p):
            term = (qe - pe) ** 2 / pe
            dominated = (rhs - term).is_nonnegative is True
            only_root = sp.solve(sp.numer(sp.together(term)), qe) == [pe]
            if not (dominated and only_root):
                residuals.append(sp.Symbol(f"undecided_equality_d{d}_{qe}"))
                failed.append(f"d={d}: equality iff q = p at {qe}")
        residuals.append(rational_residual(rhs.xreplace(dict(zip(q, p))), 0))

        for label, (mu, mu_z, mu_e) in (("independent", _normalised_product_law(2, d)),
                                        ("G(∅)", _one_context_law(d))):
            g = rational_residual(claimed_criterion(mu, mu_z, mu_e), 0)
            residuals.append(g)
            if g != sp.S.Zero:
                failed.append(f"d={d}: {label} G != 0")

    detail = (
        "identity: termwise cancel, normalisation substituted, expand to 0; >= 0 and "
        "'= 0 iff q = p' by sympy assumptions (q real, p positive) and solve; G = 0 for an "
        "independent law (n_z=2) and for S=∅ by together+cancel"
    )
    return conclude("nonnegativity", _STATEMENT, residuals=residuals, detail=detail,
                    failed=failed, sizes_checked=tuple(f"d={d}" for d in sizes))
