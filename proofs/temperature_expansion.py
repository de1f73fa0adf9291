"""Lemma 8 (temperature expansion): the GIH loss to second order in ``a``.

Statement. For one context with similarities in ``{0, 1}``: ``m`` matching positions of
``L = m + u``; of the ``N_e >= 1`` positions holding the target ``e``, ``m_e`` match. With
``α = m_e/N_e`` and ``β = m/L`` (the means of the similarity over the positions holding ``e``
and over all), the loss ``ℓ(a) = -log ŷ(e)``, ``ŷ(e) = (m_e e^a + u_e)/(m e^a + u)``, is
analytic at ``a = 0`` and

    ℓ(a) = -log(N_e/L) - a (α - β) - (a²/2) (α(1-α) - β(1-β)) + O(a³),

the cumulant expansion of ``log Σ_{l: x_l = e} e^{a s_l}`` minus that of ``log Σ_l e^{a s_l}``
(the variance of a 0/1 similarity is ``α(1-α)``). The first coefficient averaged over sequences
is ``G_L``; the second decides where two sets of equal ``G_L`` part.

Under the official code's loss ``ℓ = -ŷ_y + log Σ_e exp ŷ_e`` with
``ŷ_e = (M_e e^a + N_e - M_e)/(m e^a + u)`` (``M_e`` matching positions holding ``e``,
``m = Σ_e M_e``), writing ``π_e = N_e/L``, ``δ_e = M_e/L - π_e β`` and ``q = softmax(π)``:

    ℓ(a) = ℓ(0) - a (δ_y - <q, δ>) + a² ((1/2 - β)(<q, δ> - δ_y) + Var_q(δ)/2) + O(a³).

Assumptions: ``m_e, u_e, m, u >= 0`` with ``N_e = m_e + u_e >= 1`` and ``L >= 1`` (the loss is
then finite and analytic in ``a``); for the official loss, any counts with ``L >= 1``.

Supports docs/theory.md §3 (selection at finite temperature).

How it is checked: (1) with positive symbolic counts, sympy differentiates ``ℓ`` twice at
``a = 0`` (``ℓ`` is analytic there, so these are the Taylor coefficients) and the results equal
the claimed coefficients by ``together`` + ``cancel``; (2) for every ``L`` in ``sizes`` and
every similarity and target pattern with a target present, the same derivatives of the loss
written from the softmax over positions equal the claim at that pattern's ``α, β``; (3) for
``d`` in ``vocab_sizes`` with symbolic ``M_e, N_e``, the official loss's first two Taylor
coefficients equal the claim, with ``exp(π_e)`` replaced by positive symbols so that the residual
is rational: the identity then holds for independent ``E_e`` in place of ``exp(π_e)``, which is
stronger than needed, and a non-zero value at a rational point shows a claim's residual is not
identically zero in them without cancelling the whole residual. Both claims can be injected.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import sympy as sp

from proofs._result import LemmaResult, check_sizes, conclude, exact_witness, rational_residual

__all__ = [
    "claimed_nll",
    "claimed_official",
    "numeric_nll",
    "numeric_official",
    "verify",
]

NllClaim = Callable[[sp.Expr, sp.Expr], tuple[sp.Expr, sp.Expr]]
"""``(α, β) -> (c1, c2)``: the claimed coefficients of ``ℓ = ℓ(0) - a c1 + a² c2``."""

OfficialClaim = Callable[[Sequence[sp.Expr], Sequence[sp.Expr], int], tuple[sp.Expr, sp.Expr]]
"""``(M (d,), N (d,), y) -> (c1, c2)`` for the official loss, ``q = softmax(N/L)`` inside."""

_STATEMENT = (
    "ℓ(a) = -log(N_e/L) - a(α - β) - (a²/2)(α(1-α) - β(1-β)) + O(a³) for the GIH with 0/1 "
    "similarity (α, β: mean similarity over the target's positions and over all); under "
    "CE-on-ŷ, c1 = δ_y - <q,δ>, c2 = (1/2 - β)(<q,δ> - δ_y) + Var_q(δ)/2"
)


def claimed_nll(alpha: sp.Expr, beta: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """``c1 = α - β``, ``c2 = -(α(1-α) - β(1-β))/2``."""
    return alpha - beta, -(alpha * (1 - alpha) - beta * (1 - beta)) / 2


def claimed_official(match: Sequence[sp.Expr], count: Sequence[sp.Expr], y: int
                     ) -> tuple[sp.Expr, sp.Expr]:
    """The official loss's ``(c1, c2)`` from the counts (module docstring)."""
    length = sp.Add(*count)
    beta = sp.Add(*match) / length
    pi = [n / length for n in count]
    delta = [mm / length - p * beta for mm, p in zip(match, pi)]
    weights = [sp.exp(p) for p in pi]
    total = sp.Add(*weights)
    mean = sp.Add(*[w * x for w, x in zip(weights, delta)]) / total
    second = sp.Add(*[w * x * x for w, x in zip(weights, delta)]) / total
    return (delta[y] - mean,
            (sp.Rational(1, 2) - beta) * (mean - delta[y]) + (second - mean**2) / 2)


def _nll_loss(m_e: sp.Expr, u_e: sp.Expr, m: sp.Expr, u: sp.Expr, a: sp.Symbol) -> sp.Expr:
    return -sp.log((m_e * sp.exp(a) + u_e) / (m * sp.exp(a) + u))


def _taylor(loss: sp.Expr, a: sp.Symbol) -> tuple[sp.Expr, sp.Expr]:
    """``(c1, c2)`` of ``ℓ = ℓ(0) - a c1 + a² c2``: ``-ℓ'(0)`` and ``ℓ''(0)/2``."""
    first = sp.diff(loss, a)
    return -first.subs(a, 0), sp.diff(first, a).subs(a, 0) / 2


def _official_loss(match: Sequence[sp.Expr], count: Sequence[sp.Expr], y: int,
                   a: sp.Symbol) -> sp.Expr:
    m = sp.Add(*match)
    u = sp.Add(*count) - m
    y_hat = [(mm * sp.exp(a) + n - mm) / (m * sp.exp(a) + u) for mm, n in zip(match, count)]
    return -y_hat[y] + sp.log(sp.Add(*[sp.exp(v) for v in y_hat]))


def _opaque_exponentials(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every ``exp(·)`` replaced by a positive symbol (one per argument), so that
    a residual in the counts and those exponentials is decided as a rational function."""
    atoms = sorted(expr.atoms(sp.exp), key=sp.default_sort_key)
    return expr.xreplace({e: sp.Symbol(f"E{i}", positive=True) for i, e in enumerate(atoms)})


def numeric_nll(*, claim: NllClaim = claimed_nll) -> Callable[..., tuple[float, float]]:
    """The claimed ``(c1, c2)`` lambdified: ``(α, β) ↦ (c1, c2)`` in float64 (numeric twin)."""
    alpha, beta = sp.symbols("alpha beta", nonnegative=True)
    fn = sp.lambdify([alpha, beta], list(claim(alpha, beta)), modules="numpy")
    return lambda al, be: tuple(np.asarray(v, dtype=np.float64) for v in fn(al, be))


def numeric_official(vocab_size: int, *, claim: OfficialClaim = claimed_official
                     ) -> Callable[..., tuple[float, float]]:
    """The claimed official ``(c1, c2)`` lambdified for one ``d``:
    ``(M (d,), N (d,), y) ↦ (c1, c2)`` in float64 (numeric twin)."""
    match = sp.symbols(f"M0:{vocab_size}", nonnegative=True)
    count = sp.symbols(f"N0:{vocab_size}", nonnegative=True)
    fns = [sp.lambdify([match, count], list(claim(match, count, y)), modules="numpy")
           for y in range(vocab_size)]
    return lambda mv, nv, y: tuple(float(v) for v in fns[int(y)](list(mv), list(nv)))


def verify(*, nll_claim: NllClaim = claimed_nll, official_claim: OfficialClaim = claimed_official,
           sizes: Sequence[int] = (2, 3, 4), vocab_sizes: Sequence[int] = (2, 3)
           ) -> LemmaResult:
    """Check Lemma 8 exactly; the claims may be replaced by wrong ones.

    Args:
        nll_claim: ``(α, β) -> (c1, c2)``.
        official_claim: ``(M, N, y) -> (c1, c2)`` for the official loss.
        sizes: numbers of positions ``L`` to enumerate (each in 1..5).
        vocab_sizes: vocabularies ``d`` of the symbolic official check (each in 2..3).

    Returns:
        The frozen :class:`LemmaResult`.
    """
    sizes = check_sizes(sizes, "sizes", 1, 5)
    vocab_sizes = check_sizes(vocab_sizes, "vocab_sizes", 2, 3)
    a = sp.Symbol("a", real=True)
    residuals: list[sp.Expr] = []
    failed: list[str] = []

    m_e, u_e, m, u = sp.symbols("m_e u_e m u", positive=True)
    got = _taylor(_nll_loss(m_e, u_e, m, u, a), a)
    want = nll_claim(m_e / (m_e + u_e), m / (m + u))
    for order, (g, w) in enumerate(zip(got, want), start=1):
        r = rational_residual(g, w)
        residuals.append(r)
        if r != sp.S.Zero:
            failed.append(f"nll symbolic c{order}")

    patterns = 0
    for L in sizes:
        for sim in itertools.product((0, 1), repeat=L):
            for hits in itertools.product((0, 1), repeat=L):
                if not any(hits):
                    continue  # the target is absent: the loss sits at the floor
                numer = sp.Add(*[h * sp.exp(a * s) for h, s in zip(hits, sim)])
                loss = -sp.log(numer / sp.Add(*[sp.exp(a * s) for s in sim]))
                alpha = sp.Rational(sum(s * h for s, h in zip(sim, hits)), sum(hits))
                pair = [rational_residual(g, w) for g, w in
                        zip(_taylor(loss, a), nll_claim(alpha, sp.Rational(sum(sim), L)))]
                residuals.extend(pair)
                patterns += 1
                if any(r != sp.S.Zero for r in pair):
                    failed.append(f"L={L}: pattern s={sim}, hits={hits}")

    for d in vocab_sizes:
        match = sp.symbols(f"M0:{d}", positive=True)
        count = sp.symbols(f"N0:{d}", positive=True)
        for y in range(d):
            got = _taylor(_official_loss(match, count, y, a), a)
            want = official_claim(match, count, y)
            for order, (g, w) in enumerate(zip(got, want), start=1):
                diff = _opaque_exponentials(sp.expand(g - w))
                witness = exact_witness(diff, sorted(diff.free_symbols, key=sp.default_sort_key))
                r = witness if witness is not None else rational_residual(diff, 0)
                residuals.append(r)
                if r != sp.S.Zero:
                    failed.append(f"official d={d}, y={y}: c{order}")

    detail = (
        "sympy ℓ'(0), ℓ''(0)/2 of -log ŷ(e) with symbolic counts = claimed (together+cancel); "
        f"the same from the softmax at {patterns} (similarity, target) patterns; CE-on-ŷ "
        "coefficients with symbolic M_e, N_e, exp(π_e) as opaque symbols"
    )
    return conclude("temperature_expansion", _STATEMENT, residuals=residuals, detail=detail,
                    failed=failed,
                    sizes_checked=tuple(f"L={L}" for L in sizes)
                    + tuple(f"d={d}" for d in vocab_sizes))

