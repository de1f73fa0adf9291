"""Lemma 2 (criterion identity): the averaged first-order signal is the modified χ² information.

Statement. For a joint law ``μ(z, e) > 0`` over contexts ``z ∈ [n_z]`` and next tokens
``e ∈ [d]``, with marginals ``μ(z) = Σ_e μ(z, e)``, ``μ(e) = Σ_z μ(z, e)`` and conditional
``μ(e|z) = μ(z, e)/μ(z)``,

    Σ_{z,e} μ(z,e) (μ(z,e)/μ(e) - μ(z))  =  Σ_z μ(z)^2 (Σ_e μ(e|z)^2/μ(e) - 1)
                                          =  Σ_{z,e} μ(z,e)^2/μ(e) - Σ_z μ(z)^2.

The left side is the expectation, over the query's ``(z*, e) ~ μ``, of the L → ∞ first-order
coefficient ``μ(z*, e)/μ(e) - μ(z*)`` of Lemma 1; the middle is ``G(S)`` of docs/theory.md §3
for one kernel (before the average over the prior); the right is its equivalent form. The
ordinary χ² mutual information ``Σ_z μ(z) (Σ_e μ(e|z)^2/μ(e) - 1)`` weights by ``μ(z)`` instead of ``μ(z)^2``; it is
*not* equal to the left side (the tests show the check fails for it).

Assumptions: all entries positive (so every marginal is non-zero). Normalisation
``Σ μ = 1`` is *not needed*: both sides agree as rational functions of free positive entries,
which is the stronger statement and is what is checked on every shape. The normalised case is
then a specialisation; it is also checked directly (last entry ``1 - Σ others``) on small shapes.

Supports docs/theory.md §3 (selection criterion, the modified χ² mutual information): the
L → ∞ stage-1 signal, averaged over the query, is ``G(S)`` in both of its forms.

How it is checked: for every shape ``(n_z, d)`` (default: ``n_z = d^|S|`` for ``|S| ∈ {0, 1}``
and ``d = 2..4``, ``|S| = 2`` at ``d = 2``, plus shapes where ``n_z`` is not a power of d), the
marginals ``μ(z)``, ``μ(e)`` enter as opaque positive symbols, so ``μ(z)^2 μ(e|z)^2`` cancels
structurally; the difference of the two sides is expanded as a Laurent polynomial, its terms are
grouped by denominator, and in each numerator the marginals are replaced by their sums and
expanded: the identity holds when every numerator is the zero polynomial
(:func:`proofs._result.marginal_residual`). A wrong claim is refuted by an exact non-zero value
of the residual at a rational point. Both sides are built from the joint's entries and these
marginals only, so an injected claim is a function ``(μ, μ(z), μ(e)) -> expr``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import sympy as sp

from proofs._result import LemmaResult, conclude, marginal_residual
from theory.errors import require

__all__ = [
    "DEFAULT_SHAPES",
    "NORMALISED_SHAPES",
    "claimed_criterion",
    "ordinary_chi2",
    "symbolic_joint",
    "marginal_placeholders",
    "numeric_criterion",
    "verify",
]

Claim = Callable[[sp.Matrix, Sequence[sp.Expr], Sequence[sp.Expr]], sp.Expr]
"""``(μ, μ(z), μ(e)) -> expr``: a claimed right side in terms of the joint and its marginals."""

DEFAULT_SHAPES: tuple[tuple[int, int], ...] = (
    (1, 2), (2, 2), (4, 2), (3, 2), (1, 3), (3, 3), (2, 3), (1, 4), (4, 4),
)
"""(n_z, d) pairs checked with free entries: n_z = d^|S| for |S| = 0, 1 (and 2 at d = 2), plus
shapes where n_z is not a power of d (a generic joint law)."""

NORMALISED_SHAPES: tuple[tuple[int, int], ...] = ((2, 2), (2, 3), (3, 2))
"""Small shapes also checked with the normalisation imposed (last entry ``1 - Σ others``)."""

_STATEMENT = (
    "Σ_{z,e} μ(z,e)(μ(z,e)/μ(e) - μ(z)) = Σ_z μ(z)^2 (Σ_e μ(e|z)^2/μ(e) - 1) "
    "= Σ_{z,e} μ(z,e)^2/μ(e) - Σ_z μ(z)^2 for a joint law with positive entries "
    "(normalisation not needed)"
)


def symbolic_joint(n_z: int, d: int, *, normalised: bool = False) -> sp.Matrix:
    """A symbolic joint law ``μ`` of shape ``(n_z, d)`` with positive symbols ``m{z}_{e}``.

    With ``normalised=True`` the last entry is ``1 - Σ_{others}`` instead of a free symbol.
    """
    require(isinstance(n_z, int) and n_z >= 1, "n_z", "an integer >= 1", n_z)
    require(isinstance(d, int) and d >= 2, "d", "an integer >= 2", d)
    entries = [[sp.Symbol(f"m{z}_{e}", positive=True) for e in range(d)] for z in range(n_z)]
    if normalised:
        free = [x for row in entries for x in row][:-1]
        entries[-1][-1] = 1 - sp.Add(*free)
    return sp.Matrix(entries)  # (n_z, d)


def marginal_placeholders(mu: sp.Matrix) -> tuple[list[sp.Symbol], list[sp.Symbol], dict]:
    """Opaque positive symbols ``M{z}``, ``N{e}`` for ``μ(z)``, ``μ(e)`` and their definitions."""
    n_z, d = mu.shape
    mu_z = [sp.Symbol(f"M{z}", positive=True) for z in range(n_z)]  # (n_z,)
    mu_e = [sp.Symbol(f"N{e}", positive=True) for e in range(d)]  # (d,)
    sums = {m: sp.Add(*mu.row(z)) for z, m in enumerate(mu_z)}
    sums.update({m: sp.Add(*mu.col(e)) for e, m in enumerate(mu_e)})
    return mu_z, mu_e, sums


def _lhs(mu: sp.Matrix, mu_z: Sequence[sp.Expr], mu_e: Sequence[sp.Expr]) -> sp.Expr:
    """``Σ_{z,e} μ(z,e)(μ(z,e)/μ(e) - μ(z))``."""
    n_z, d = mu.shape
    return sp.Add(*[mu[z, e] * (mu[z, e] / mu_e[e] - mu_z[z])
                    for z in range(n_z) for e in range(d)])


def _weighted(mu: sp.Matrix, mu_z: Sequence[sp.Expr], mu_e: Sequence[sp.Expr], power: int
              ) -> sp.Expr:
    n_z, d = mu.shape
    return sp.Add(*[
        mu_z[z] ** power * (sp.Add(*[(mu[z, e] / mu_z[z]) ** 2 / mu_e[e] for e in range(d)]) - 1)
        for z in range(n_z)
    ])


def claimed_criterion(mu: sp.Matrix, mu_z: Sequence[sp.Expr], mu_e: Sequence[sp.Expr]
                      ) -> sp.Expr:
    """The claimed right side, G of one kernel: ``Σ_z μ(z)^2 (Σ_e μ(e|z)^2/μ(e) - 1)``."""
    return _weighted(mu, mu_z, mu_e, 2)


def ordinary_chi2(mu: sp.Matrix, mu_z: Sequence[sp.Expr], mu_e: Sequence[sp.Expr]) -> sp.Expr:
    """The ordinary χ² mutual information ``Σ_z μ(z) (Σ_e μ(e|z)^2/μ(e) - 1)`` (a wrong claim)."""
    return _weighted(mu, mu_z, mu_e, 1)


def _alternative_form(mu: sp.Matrix, mu_z: Sequence[sp.Expr], mu_e: Sequence[sp.Expr]
                      ) -> sp.Expr:
    """The equivalent form of G, ``Σ_{z,e} μ(z,e)^2/μ(e) - Σ_z μ(z)^2``."""
    n_z, d = mu.shape
    return (sp.Add(*[mu[z, e] ** 2 / mu_e[e] for z in range(n_z) for e in range(d)])
            - sp.Add(*[m ** 2 for m in mu_z]))


def numeric_criterion(n_z: int, d: int, *, claim: Claim = claimed_criterion
                      ) -> Callable[[np.ndarray], float]:
    """The claim, lambdified: a float64 ``(n_z, d)`` joint law ``↦`` its value (a numeric twin)."""
    mu = symbolic_joint(n_z, d)
    mu_z = [sp.Add(*mu.row(z)) for z in range(n_z)]
    mu_e = [sp.Add(*mu.col(e)) for e in range(d)]
    fn = sp.lambdify(list(mu), claim(mu, mu_z, mu_e), modules="numpy")
    return lambda joint: float(fn(*np.asarray(joint, dtype=np.float64).reshape(-1)))


def _check_shapes(shapes: Sequence[tuple[int, int]], what: str) -> None:
    for shape in shapes:
        require(
            isinstance(shape, tuple) and len(shape) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in shape)
            and 1 <= shape[0] <= 4 and 2 <= shape[1] <= 4,
            what, "(n_z, d) pairs with 1 <= n_z <= 4 and 2 <= d <= 4", shapes,
        )


def verify(
    *,
    claim: Claim = claimed_criterion,
    shapes: Sequence[tuple[int, int]] = DEFAULT_SHAPES,
    normalised_shapes: Sequence[tuple[int, int]] = NORMALISED_SHAPES,
) -> LemmaResult:
    """Check Lemma 2 exactly; ``claim`` may be replaced to show that a wrong formula fails.

    Args:
        claim: ``μ -> expr``, the claimed right side for a symbolic joint law ``μ`` (n_z, d);
            e.g. :func:`ordinary_chi2` fails.
        shapes: ``(n_z, d)`` shapes checked with free positive entries
            (``1 <= n_z <= 4``, ``2 <= d <= 4``).
        normalised_shapes: shapes also checked with ``Σ μ = 1`` imposed (may be empty).

    Returns:
        The frozen :class:`LemmaResult`.
    """
    require(len(shapes) > 0, "shapes", "a non-empty sequence of (n_z, d) pairs", shapes)
    _check_shapes(shapes, "shapes")
    _check_shapes(normalised_shapes, "normalised_shapes")
    residuals: list[sp.Expr] = []
    notes: list[str] = []
    cases = [(shape, False) for shape in shapes] + [(s, True) for s in normalised_shapes]
    for (n_z, d), normalised in cases:
        mu = symbolic_joint(n_z, d, normalised=normalised)
        free = sorted(mu.free_symbols, key=str)
        mu_z, mu_e, sums = marginal_placeholders(mu)
        lhs = _lhs(mu, mu_z, mu_e)
        for rhs, label in ((claim(mu, mu_z, mu_e), "claim"),
                           (_alternative_form(mu, mu_z, mu_e), "alternative")):
            r, how = marginal_residual(lhs - rhs, sums, free)
            residuals.append(r)
            if r != sp.S.Zero:
                notes.append(f"n_z={n_z},d={d}{' normalised' if normalised else ''} {label}: {how}")
    detail = (
        "LHS - claim and LHS - alternative form with μ(z), μ(e) as opaque positive symbols: "
        "Laurent expansion, terms grouped by denominator, marginals substituted into each "
        f"numerator and expanded to the zero polynomial; {len(shapes)} joint laws with "
        f"free positive entries and {len(normalised_shapes)} "
        "normalised ones"
    )
    return conclude("criterion_identity", _STATEMENT, residuals=residuals, detail=detail,
                    failed=notes, sizes_checked=(
                        tuple(f"n_z={n_z},d={d}" for n_z, d in shapes)
                        + tuple(f"n_z={n_z},d={d},normalised" for n_z, d in normalised_shapes)))
