"""Lemma 1 (first-order expansion in a): the stage-1 signal is linear in c̃ with coefficient G.

Statement. For one context of L positions with similarities ``s_1..s_L`` and target token e,
let ``1_l = 1{x_l = e}`` and ``m_e = Σ_l 1_l >= 1``. The classifier's loss is
``ℓ(a) = -log ŷ(e)``, ``ŷ(e) = Σ_l softmax_l(a s_l) 1_l``. Then

    -dℓ/da |_{a=0} = Σ_l 1_l (s_l - s̄) / m_e,        s̄ = (1/L) Σ_l s_l.

Consequences checked here:

* Linearity in c̃. With ``s_l = Σ_S c̃_S K_S(l)`` (docs/theory.md §2,
  ``K_S(l) = Π_{h∈S} <v̄_h(L+1), v̄_h(l)>``),
  ``-dℓ/da|_0 = Σ_S c̃_S g_S`` with ``g_S = Σ_l 1_l (K_S(l) - K̄_S) / m_e``; so near a = 0,
  ``ℓ(a) = ℓ(0) - a Σ_S c̃_S g_S + O(a^2)`` and the stage-1 loss is linear in c̃ with one
  coefficient per head set.
* Counting form. When ``K_S(l) = 1{z_l = z*}`` (the copier limit, Lemma 5), with ``N(z*)``
  positions whose S-context equals the query's and ``N(z*, e)`` of them holding e,
  ``g_S = N(z*, e)/N(e) - N(z*)/L``. By ergodicity ``N(z*, e)/L → μ(z*, e)``, ``N(e)/L → μ(e)``,
  ``N(z*)/L → μ(z*)``, so ``g_S → μ(z*, e)/μ(e) - μ(z*)``; averaging over the query's
  ``(z*, e) ~ μ`` and over the prior gives ``G(S)`` in the form of Lemma 2.

Assumptions: ``m_e >= 1`` (otherwise ŷ(e) = 0 and the loss is infinite); s_l real symbols.

Supports docs/theory.md §3 (selection criterion): G(S) is the L → ∞ limit of ``-∂ℓ/∂a`` at
a = 0.

How it is checked: exact symbolic derivative of ``log ŷ(e)`` at a = 0 for every L in
``lengths`` (default 2..5) and every non-empty indicator pattern ``1_l``, with symbolic real
``s_l``; linearity for ``n_sets`` head sets with symbolic ``c̃_S``, ``K_S(l)``; the counting
form for every binary ``K`` and indicator pattern, in exact rationals.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import sympy as sp

from proofs._result import LemmaResult, check_sizes, conclude, rational_residual
from theory.errors import require

__all__ = ["claimed_gradient", "numeric_gradient", "verify"]

Claim = Callable[[Sequence[sp.Expr], Sequence[int]], sp.Expr]

_STATEMENT = (
    "-d/da[-log Σ_l softmax_l(a s_l) 1{x_l=e}] at a=0 = Σ_l 1{x_l=e}(s_l - s̄)/Σ_l 1{x_l=e}; "
    "with s_l = Σ_S c̃_S K_S(l) it equals Σ_S c̃_S g_S (linear in c̃), and for K_S(l) = "
    "1{z_l = z*} g_S = N(z*,e)/N(e) - N(z*)/L → μ(z*,e)/μ(e) - μ(z*)"
)


def claimed_gradient(s: Sequence[sp.Expr], hits: Sequence[int]) -> sp.Expr:
    """The claimed ``-dℓ/da`` at a = 0: ``Σ_l 1_l (s_l - s̄) / Σ_l 1_l``.

    Args:
        s: similarities ``s_1..s_L`` (length L).
        hits: indicators ``1{x_l = e}`` in {0, 1} (length L, at least one 1).
    """
    L = len(s)
    s_bar = sp.Add(*s) / L
    m_e = sum(hits)
    return sp.Add(*[h * (s_l - s_bar) for h, s_l in zip(hits, s)]) / m_e


def numeric_gradient(hits: Sequence[int], *, claim: Claim = claimed_gradient
                     ) -> Callable[[np.ndarray], float]:
    """The claim lambdified for a fixed indicator pattern: ``s (L,) ↦ -dℓ/da|_0`` (numeric twin).

    Raises:
        InductionHeadsError: when ``hits`` is not a 0/1 pattern with at least one 1.
    """
    hits = tuple(int(h) for h in hits)
    require(len(hits) >= 1 and set(hits) <= {0, 1} and any(hits), "hits",
            "a non-empty 0/1 pattern with at least one 1", hits)
    s = sp.symbols(f"s1:{len(hits) + 1}", real=True)  # (L,)
    fn = sp.lambdify([s], claim(s, hits), modules="numpy")
    return lambda sv: float(fn(np.asarray(sv, dtype=np.float64)))


def _exact_gradient(s: Sequence[sp.Expr], hits: Sequence[int]) -> sp.Expr:
    """``d/da log ŷ(e)`` at a = 0, differentiated by sympy from the softmax definition."""
    a = sp.Symbol("a", real=True)
    weights = [sp.exp(a * s_l) for s_l in s]  # (L,) unnormalised softmax weights
    y_e = sp.Add(*[h * w for h, w in zip(hits, weights)]) / sp.Add(*weights)
    return sp.diff(sp.log(y_e), a).subs(a, 0)


def _hit_patterns(L: int) -> list[tuple[int, ...]]:
    """Every indicator pattern in {0,1}^L with at least one hit."""
    return [p for p in itertools.product((0, 1), repeat=L) if any(p)]


def verify(
    *,
    claim: Claim = claimed_gradient,
    lengths: Sequence[int] = (2, 3, 4, 5),
    n_sets: Sequence[int] = (1, 2, 3),
) -> LemmaResult:
    """Check Lemma 1 exactly; ``claim`` may be replaced to show that a wrong formula fails.

    Args:
        claim: ``(s, hits) -> expr``, the claimed first-order coefficient.
        lengths: numbers of positions L to enumerate (each in 1..6).
        n_sets: numbers of head sets for the linearity check (each in 1..4), at L = 3.

    Returns:
        The frozen :class:`LemmaResult` (``residual`` is the first non-zero residual).
    """
    lengths = check_sizes(lengths, "lengths", 1, 6)
    n_sets = check_sizes(n_sets, "n_sets", 1, 4)
    residuals: list[sp.Expr] = []
    n_derivative = 0
    for L in lengths:
        s = sp.symbols(f"s1:{L + 1}", real=True)  # (L,)
        for hits in _hit_patterns(L):
            residuals.append(rational_residual(_exact_gradient(s, hits), claim(s, hits)))
            n_derivative += 1

    L_lin = 3
    n_linear = 0
    for K in n_sets:
        c = sp.symbols(f"c1:{K + 1}", nonnegative=True)  # (K,) normalised weights c̃_S
        k = sp.Matrix(K, L_lin, lambda i, j: sp.Symbol(f"k{i + 1}_{j + 1}", real=True))  # (K, L)
        s = [sp.Add(*[c[i] * k[i, j] for i in range(K)]) for j in range(L_lin)]  # (L,)
        for hits in _hit_patterns(L_lin):
            per_set = sp.Add(*[c[i] * claim(list(k.row(i)), hits) for i in range(K)])
            residuals.append(rational_residual(_exact_gradient(s, hits), per_set))
            n_linear += 1

    n_count = 0
    for L in lengths:
        for K_pattern in itertools.product((0, 1), repeat=L):
            n_z = sum(K_pattern)
            for hits in _hit_patterns(L):
                n_ze = sum(kk * h for kk, h in zip(K_pattern, hits))
                counts = sp.Rational(n_ze, sum(hits)) - sp.Rational(n_z, L)
                g = claim([sp.Integer(kk) for kk in K_pattern], hits)
                residuals.append(rational_residual(g, counts))
                n_count += 1

    detail = (
        f"sympy diff of log ŷ(e) at a=0 minus the claim, together+cancel: {n_derivative} "
        f"(L, indicator) cases; linearity in c̃ with symbolic K_S(l) at L={L_lin}: {n_linear} "
        f"cases; counting form N(z*,e)/N(e) - N(z*)/L for binary K: {n_count} exact rational cases"
    )
    sections = (("derivative", 0, n_derivative), ("linearity", n_derivative, n_linear),
                ("counting form", n_derivative + n_linear, n_count))
    failed = [f"{label}: {sum(r != sp.S.Zero for r in residuals[start:start + n])}/{n} cases"
              for label, start, n in sections
              if any(r != sp.S.Zero for r in residuals[start:start + n])]
    return conclude("first_order", _STATEMENT, residuals=residuals, detail=detail,
                    failed=failed, sizes_checked=(tuple(f"L={L}" for L in lengths)
                                                  + tuple(f"sets={K}" for K in n_sets)))
