"""Lemma 5 (copier limit): a dominant logit makes a head an exact copier, and similarities indicators.

Statement. (a) Head ``h`` has logits ``w ∈ R^M``; write the gap ``g = w_h - max_{i≠h} w_i > 0``
and ``δ_i = max_{j≠h} w_j - w_i >= 0``. Then

    σ_h = softmax(w)_h = 1 / (1 + Σ_{i≠h} e^{-g-δ_i}) → 1,   σ_i → 0   as g → ∞,

with the explicit bounds ``1 - σ_h <= (M-1) e^{-g}`` and ``σ_i <= e^{-g}`` (uniform in ``δ``).

(b) In the limit the copy ``v_h(l) = Σ_i σ_i e(x_{l-i})`` is the one-hot ``e(x_{l-h})`` (unit
norm, so ``v̄_h = v_h``), and the selector's kernel for a set ``S`` is

    K_S(l) = Π_{h∈S} <v̄_h(L+1), v̄_h(l)>  =  Π_{h∈S} 1{x_{l-h} = x_{L+1-h}}.

(c) The bridge: at a finite gap the normalised similarity ``<v̄_h(L+1), v̄_h(l)>`` of two
windows tends to ``1{x_{l-h} = x_{L+1-h}}`` as ``g → ∞``.

Assumptions: every offset valid (``l - M >= 1``); one-hot token embeddings.

Supports docs/theory.md §3 (copier limit): ``σ_h → one-hot on offset h``; and (classifier
limit): ``s_l → Π_{h∈S*} 1{x_{l-h} = x_{L+1-h}}`` once ``c̃`` sits on ``S*``.

How it is checked: (a) for ``M`` in ``sizes`` (default 2..4) by ``sp.limit`` in ``g`` with
symbolic ``δ_i >= 0``, and the bounds by a coefficient-sign certificate after writing
``e^{-g} = x > 0`` and ``e^{-δ_i} = 1/(1+v_i)``, ``v_i >= 0``
(:func:`proofs._result.nonnegative_certificate`); (b) exhaustively over all query and key
windows for ``d`` in ``vocab_sizes`` (default 2, 3) and ``|S| = 1..3``, inner products of sympy
one-hot vectors against the claim; (c) by ``sp.limit`` as ``e^{-g} → 0+`` for every pair of
windows at ``d = 2`` with ``M = 2, 3`` and every head. The claimed limit kernel
``(query window, key window) -> expr`` can be injected.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import sympy as sp

from proofs._result import LemmaResult, check_sizes, conclude, nonnegative_certificate
from theory.errors import require

__all__ = ["claimed_kernel", "numeric_kernel", "numeric_softmax_gap", "verify"]

Claim = Callable[[Sequence[int], Sequence[int]], sp.Expr]
"""``(query tokens (x_{L+1-h})_{h∈S}, key tokens (x_{l-h})_{h∈S}) -> the claimed K_S(l)``."""

_STATEMENT = (
    "σ_h = 1/(1 + Σ_{i≠h} e^{-g-δ_i}) → 1 and σ_{i≠h} → 0 as the gap g = w_h - max_{i≠h} w_i → ∞, "
    "with 1 - σ_h <= (M-1)e^{-g}, σ_i <= e^{-g}; with one-hot copies Π_{h∈S}<v̄_h(L+1), v̄_h(l)> "
    "= Π_{h∈S} 1{x_{l-h} = x_{L+1-h}}, and the finite-gap similarity tends to it"
)


def claimed_kernel(query: Sequence[int], key: Sequence[int]) -> sp.Expr:
    """The claimed limit kernel ``Π_{h∈S} 1{x_{l-h} = x_{L+1-h}}`` as a sympy integer."""
    return sp.Mul(*[sp.Integer(int(q == k)) for q, k in zip(query, key)])


def numeric_kernel(*, claim: Claim = claimed_kernel) -> Callable[[np.ndarray, np.ndarray], float]:
    """The claim as a float function of integer windows (its numeric twin)."""
    return lambda query, key: float(claim(tuple(int(v) for v in query),
                                          tuple(int(v) for v in key)))


def numeric_softmax_gap(m: int) -> Callable[[float, np.ndarray], float]:
    """``1 - σ_h`` as a function of the gap ``g`` and ``δ (M-1,)``, lambdified from sympy."""
    require(isinstance(m, int) and not isinstance(m, bool) and m >= 2, "m", "an integer >= 2", m)
    g = sp.Symbol("g", positive=True)
    delta = sp.symbols(f"delta1:{m}", nonnegative=True)
    sigma_h, _ = _softmax(g, delta)
    fn = sp.lambdify([g, delta], 1 - sigma_h, modules="numpy")
    return lambda gap, dv: float(fn(float(gap), np.asarray(dv, dtype=np.float64)))


def _softmax(g: sp.Expr, delta: Sequence[sp.Expr]) -> tuple[sp.Expr, list[sp.Expr]]:
    """``σ_h`` and ``σ_i (i ≠ h)`` for logits ``w_h = 0``, ``w_i = -g - δ_i``."""
    others = [sp.exp(-g - di) for di in delta]  # (M-1,) unnormalised weights; w_h's is 1
    total = 1 + sp.Add(*others)
    return 1 / total, [w / total for w in others]


def _concentration(m: int) -> tuple[list[sp.Expr], list[str]]:
    """Limits and bounds of part (a) for window ``M = m``."""
    g = sp.Symbol("g", positive=True)
    delta = sp.symbols(f"delta1:{m}", nonnegative=True)
    sigma_h, sigma_rest = _softmax(g, delta)
    residuals = [sp.limit(sigma_h, g, sp.oo) - 1] + [sp.limit(s, g, sp.oo) for s in sigma_rest]
    failed = [f"M={m}: limit" for r in residuals if r != sp.S.Zero]
    x = sp.Symbol("x", positive=True)  # e^{-g}
    v = sp.symbols(f"v1:{m}", positive=True)  # e^{-δ_i} = 1/(1+v_i)
    sub = {sp.exp(-g - di): x / (1 + vi) for di, vi in zip(delta, v)}
    bounds = [(m - 1) * x - (1 - sigma_h.xreplace(sub))]
    bounds += [x - s.xreplace(sub) for s in sigma_rest]
    for i, b in enumerate(bounds):
        if not nonnegative_certificate(b, [x, *v]):
            residuals.append(sp.Symbol(f"undecided_bound_M{m}_{i}"))
            failed.append(f"M={m}: bound {i}")
    return residuals, failed


def _finite_gap_similarity(m: int, d: int, head: int, query: Sequence[int],
                           key: Sequence[int], x: sp.Symbol) -> sp.Expr:
    """``<v̄_h(L+1), v̄_h(l)>`` for windows ``(x_{·-1}, …, x_{·-M})`` and σ with gap ``-log x``."""
    weights = [sp.S.One if i == head else x for i in range(m)]  # e^{w_i - w_h}, δ = 0
    total = sp.Add(*weights)
    eye = sp.eye(d)
    vq = sum((w / total * eye.col(t) for w, t in zip(weights, query)), sp.zeros(d, 1))
    vk = sum((w / total * eye.col(t) for w, t in zip(weights, key)), sp.zeros(d, 1))
    return vq.dot(vk) / sp.sqrt(vq.dot(vq) * vk.dot(vk))


def verify(*, claim: Claim = claimed_kernel, sizes: Sequence[int] = (2, 3, 4),
           vocab_sizes: Sequence[int] = (2, 3), bridge_windows: Sequence[int] = (2, 3)
           ) -> LemmaResult:
    """Check Lemma 5 exactly; ``claim`` may be replaced to show that a wrong kernel fails.

    Args:
        claim: ``(query, key) -> expr``, the claimed limit kernel of two token windows.
        sizes: windows ``M`` for the concentration limits and bounds (each in 2..6).
        vocab_sizes: ``d`` for the exhaustive one-hot check (each in 2..3).
        bridge_windows: ``M`` for the finite-gap limit at ``d = 2`` (each in 2..3).

    Returns:
        The frozen :class:`LemmaResult`.

    Raises:
        InductionHeadsError: when a size sequence is empty or out of range.
    """
    sizes = check_sizes(sizes, "sizes", 2, 6)
    vocab_sizes = check_sizes(vocab_sizes, "vocab_sizes", 2, 3)
    bridge_windows = check_sizes(bridge_windows, "bridge_windows", 2, 3)
    residuals: list[sp.Expr] = []
    failed: list[str] = []
    for m in sizes:
        r, f = _concentration(m)
        residuals.extend(r)
        failed.extend(f)

    n_onehot = 0
    for d in vocab_sizes:
        eye = sp.eye(d)
        for size in (1, 2, 3):
            for query in itertools.product(range(d), repeat=size):
                for key in itertools.product(range(d), repeat=size):
                    exact = sp.Mul(*[eye.col(q).dot(eye.col(k)) for q, k in zip(query, key)])
                    r = sp.expand(exact - claim(query, key))
                    residuals.append(r)
                    n_onehot += 1
                    if r != sp.S.Zero:
                        failed.append(f"d={d}: one-hot {query} vs {key}")

    x = sp.Symbol("x", positive=True)
    n_bridge = 0
    for m in bridge_windows:
        for query in itertools.product(range(2), repeat=m):
            for key in itertools.product(range(2), repeat=m):
                for head in range(m):
                    sim = _finite_gap_similarity(m, 2, head, query, key, x)
                    r = sp.limit(sim, x, 0, "+") - claim((query[head],), (key[head],))
                    residuals.append(r)
                    n_bridge += 1
                    if r != sp.S.Zero:
                        failed.append(f"M={m}: finite-gap limit {query} vs {key}, head {head + 1}")

    detail = (
        f"sp.limit g → ∞ of σ with symbolic δ >= 0 and coefficient-sign certificates of "
        f"1 - σ_h <= (M-1)e^(-g), σ_i <= e^(-g); {n_onehot} one-hot window pairs (|S| = 1..3); "
        f"{n_bridge} finite-gap similarity limits e^(-g) → 0+ at d=2"
    )
    return conclude("copier_limit", _STATEMENT, residuals=residuals, detail=detail,
                    failed=failed, sizes_checked=(
                        tuple(f"M={m}" for m in sizes) + tuple(f"d={d}" for d in vocab_sizes)
                        + tuple(f"bridge M={m},d=2" for m in bridge_windows)))
