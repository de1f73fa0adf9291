"""Reference predictors at every position of a sequence, vectorised (numpy, float64).

The predictors of docs/theory.md §3.5 (and the GIH of §3.4), at every prefix of a sequence.

Tokens ``x`` have shape ``(n, T)`` (``tokens[:, t-1]`` is ``x_t``). At position ``l = 1..T`` the
model has seen ``x_1..x_l`` and predicts ``x_{l+1}``: the query is position ``l+1``, whose
context at offset ``h`` is ``x_{l+1-h}``. Every predictor here returns float64 ``(n, T, d)``;
``out[:, l-1]`` is the prediction of ``x_{l+1}``. At ``l = T`` it is the prediction of
:mod:`theory.predictors.reference` for the context ``x_1..x_T`` (to float64 round-off).

Valid positions. A set of offsets ``S`` needs the query's S-context, ``x_{l+1-h}`` for every
``h ∈ S``, i.e. ``l >= max(S)``; :func:`first_valid_position` is ``max(S)`` (1 for the empty set).
The true parents ``P`` likewise need ``l >= r = max(P)``. Rows at positions before the first
valid one are NaN. (At ``l = max(S)`` no key can match, ``m - max(S) >= 1`` fails for ``m <= l``,
and the GIH falls back to the unigram, exactly as :func:`theory.predictors.reference.gih_predict` does
for ``L = max(S)``.)

Counts. For the query ``l+1`` and a key ``m <= l`` the exact copier similarity is
``s_m = Π_{h∈S} 1{m-h >= 1 and x_{m-h} = x_{l+1-h}}`` (binary). :func:`match_counts` gives

    matched_l(e) = Σ_{m<=l} s_m 1{x_m = e},     seen_l(e) = Σ_{m<=l} 1{x_m = e},

built from an ``(n, T, T)`` query × key match tensor (chunked over sequences to bound memory;
there is no loop over positions). As ``s`` is binary, every predictor is a function of the counts:

- GIH at temperature ``a`` (:func:`gih_from_counts`): the softmax weights are 1 on matching
  keys and ``e^{-a}`` elsewhere when some key matches, all 1 when none does, so
  ``W(e) = matched(e) + e^{-a} (seen(e) - matched(e))`` (or ``seen(e)`` without a match) and
  ``ŷ = (W + β) / (Σ_e W(e) + dβ)``. With ``β = 0`` this is ``gih_predict``; ``a = ∞`` gives the
  empirical law over the matching keys. The additive smoothing ``β`` (default
  :data:`ADDITIVE_SMOOTHING` where a caller wants a full-support reference) adds ``β`` pseudo-counts
  per token, so the ``a = ∞`` head gives every token mass and its loss is finite.
- Bayes with the true parents: ``(matched_P(e) + α) / (Σ_e matched_P(e) + dα)``.
- In-context unigram: ``(seen(e) + β) / (l + dβ)``.
- Oracle: ``π_i(· | x_{l+1-p_1}, …, x_{l+1-p_k})``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from theory.errors import require
from theory.predictors.reference import (
    check_context,
    check_offsets,
    check_oracle_inputs,
    context_similarity,
)
from theory.sizes import FLOAT_BYTES, require_memory
from theory.validation import is_int, is_real

__all__ = [
    "ADDITIVE_SMOOTHING",
    "first_valid_position",
    "valid_positions",
    "match_counts",
    "last_match_counts",
    "gih_from_counts",
    "gih_predict_positions",
    "bayes_predict_positions",
    "unigram_predict_positions",
    "oracle_predict_positions",
]

ADDITIVE_SMOOTHING = 0.5
"""Pseudo-count ``β`` per token for the smoothed references (the Krichevsky–Trofimov choice):
``(count + 1/2) / (total + d/2)``, the standard add-constant estimator without prior knowledge."""

_CHUNK_ENTRIES = 1 << 22
"""Entries of one sequence chunk's ``(chunk, T, T)`` match tensor (32 MiB as float64)."""


def _check_temperature(a: Any) -> float:
    require(is_real(a)
            and not math.isnan(a) and a >= 0, "a", "a number >= 0 or inf", a)
    return float(a)


def _check_smoothing(smoothing: Any) -> float:
    require(is_real(smoothing) and math.isfinite(smoothing) and smoothing >= 0,
            "smoothing", "a finite number >= 0", smoothing)
    return float(smoothing)


def first_valid_position(offsets: Sequence[int]) -> int:
    """The first position ``l`` (1-based) whose query has the S-context: ``max(S)``, 1 if empty."""
    return max((int(h) for h in offsets), default=1)


def valid_positions(offsets: Sequence[int], length: int) -> np.ndarray:
    """Boolean ``(T,)``: entry ``l-1`` is ``l >= first_valid_position(offsets)``."""
    require(is_int(length)
            and length >= 1, "length", "an integer T >= 1", length)
    return np.arange(1, int(length) + 1) >= first_valid_position(offsets)


def _onehot(x: np.ndarray, d: int) -> np.ndarray:
    return (x[..., None] == np.arange(d)).astype(np.float64)  # x.shape + (d,)


def match_counts(tokens: Any, head_set: Sequence[int], *, vocab_size: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``(matched, seen)`` counts of the module docstring at every position.

    Args:
        tokens: integer ``(n, T)``, ``x_1..x_T``.
        head_set: the offsets ``S``, each in ``1..T``.
        vocab_size: ``d``.

    Returns:
        Two float64 ``(n, T, d)`` arrays of integer counts; row ``l-1`` is for the query ``l+1``.
        Rows before :func:`first_valid_position` count no match.
    """
    x = check_context(tokens, vocab_size)
    n, T = x.shape
    offsets = check_offsets(head_set, T, "head_set")
    d = int(vocab_size)
    chunk = max(1, _CHUNK_ENTRIES // (T * T))
    # onehot, seen and matched (n, T, d); a chunk's bool match tensor, its float copy and masks
    require_memory(FLOAT_BYTES * 3 * n * T * d + (FLOAT_BYTES + 3) * min(chunk, n) * T * T,
                   f"per-position counts of n={n} sequences of T={T} tokens over d={d}",
                   "pass fewer or shorter sequences")
    onehot = _onehot(x, d)  # (n, T, d)
    seen = np.cumsum(onehot, axis=1)  # (n, T, d)
    if not offsets:
        return seen.copy(), seen
    causal = np.tril(np.ones((T, T), dtype=bool))  # (T, T): key m <= query row l
    matched = np.empty((n, T, d))  # (n, T, d)
    for start in range(0, n, chunk):  # sequence chunks only, to bound memory
        xs = x[start: start + chunk]  # (c, T)
        c = xs.shape[0]
        sim = np.broadcast_to(causal, (c, T, T)).copy()  # (c, T, T) query row × key
        for h in offsets:
            # prev[:, p-1] = x_{p-h} for positions p = 1..T+1, -1 where p - h < 1
            prev = np.full((c, T + 1), -1, dtype=np.int64)  # (c, T+1)
            prev[:, h:] = xs[:, : T + 1 - h]
            keys = prev[:, None, :T]  # (c, 1, T): key m at column m-1
            sim &= (prev[:, 1:, None] == keys) & (keys >= 0)  # query l+1 at row l-1
        matched[start: start + c] = sim.astype(np.float64) @ onehot[start: start + c]
    return matched, seen


def last_match_counts(context: Any, head_set: Sequence[int], *, vocab_size: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``(matched, seen)`` for the query ``L+1`` only: context ``(n, L)`` → two ``(n, d)``.

    The last row of :func:`match_counts`, at O(n·L·|S|) cost instead of O(n·L²).
    """
    ctx = check_context(context, vocab_size)
    n, L = ctx.shape
    d = int(vocab_size)
    sim = context_similarity(ctx, head_set)  # (n, L)
    flat = (np.arange(n)[:, None] * d + ctx).ravel()  # (n·L,) index of (sequence, token)
    matched = np.bincount(flat, weights=sim.ravel(), minlength=n * d).reshape(n, d)
    seen = np.bincount(flat, minlength=n * d).astype(np.float64).reshape(n, d)
    return matched, seen


def gih_from_counts(matched: np.ndarray, seen: np.ndarray, a: float, *, smoothing: float = 0.0
                    ) -> np.ndarray:
    """The GIH at temperature ``a`` from its counts: ``(W + β) / (Σ_e W(e) + dβ)``.

    Args:
        matched: float ``(..., d)`` counts over the matching keys.
        seen: float ``(..., d)`` counts over all keys (same shape, every row non-empty).
        a: temperature ``>= 0`` or ``inf``.
        smoothing: ``β >= 0`` pseudo-counts per token (0: exactly the unsmoothed GIH).

    Returns:
        float64 of the counts' shape; rows sum to 1.
    """
    a = _check_temperature(a)
    beta = _check_smoothing(smoothing)
    matched = np.asarray(matched, dtype=np.float64)
    seen = np.asarray(seen, dtype=np.float64)
    require(matched.shape == seen.shape and matched.ndim >= 1, "counts",
            "matched and seen of one shape (..., d)", (matched.shape, seen.shape))
    any_match = matched.sum(axis=-1, keepdims=True) > 0  # (..., 1)
    # e^{-a} is exactly 1 at a = 0 and 0 at a = inf; integer counts keep W exact at a = 0
    weight = np.where(any_match, matched + math.exp(-a) * (seen - matched), seen)  # (..., d)
    d = weight.shape[-1]
    return (weight + beta) / (weight.sum(axis=-1, keepdims=True) + d * beta)


def _blank_invalid(out: np.ndarray, first: int) -> np.ndarray:
    out[:, : first - 1] = np.nan
    return out


def gih_predict_positions(tokens: Any, head_set: Sequence[int], a: float, *, vocab_size: int,
                          smoothing: float = 0.0) -> np.ndarray:
    """GIH_S at temperature ``a`` at every position: tokens ``(n, T)`` → float64 ``(n, T, d)``.

    Row ``l-1`` equals ``theory.predictors.reference.gih_predict(tokens[:, :l], S, a)`` for
    ``smoothing = 0`` (the smoothed head of :func:`gih_from_counts` otherwise); rows
    ``l < max(S)`` are NaN.
    """
    matched, seen = match_counts(tokens, head_set, vocab_size=vocab_size)
    out = gih_from_counts(matched, seen, a, smoothing=smoothing)  # (n, T, d)
    return _blank_invalid(out, first_valid_position(head_set))


def bayes_predict_positions(tokens: Any, parents: Sequence[int], alpha: float, *,
                            vocab_size: int) -> np.ndarray:
    """Dirichlet(α) posterior predictive with the true parents at every position, ``(n, T, d)``.

    Row ``l-1`` is ``(N(z*, e) + α) / (N(z*) + dα)`` counted over the transitions of
    ``x_1..x_l``, i.e. ``theory.predictors.reference.bayes_predict(tokens[:, :l], P, α)``; rows ``l < r``
    are NaN.
    """
    offsets = tuple(int(p) for p in parents)
    require(len(offsets) >= 1, "parents", "at least one parent offset", parents)
    require(is_real(alpha)
            and math.isfinite(alpha) and alpha > 0, "alpha", "a finite number > 0", alpha)
    matched, _ = match_counts(tokens, offsets, vocab_size=vocab_size)  # (n, T, d)
    out = (matched + alpha) / (matched.sum(axis=-1, keepdims=True) + vocab_size * alpha)
    return _blank_invalid(out, first_valid_position(offsets))


def unigram_predict_positions(tokens: Any, *, vocab_size: int,
                              smoothing: float = ADDITIVE_SMOOTHING) -> np.ndarray:
    """In-context unigram ``(seen_l(e) + β) / (l + dβ)`` at every position, ``(n, T, d)``.

    With ``smoothing = 0`` it is the GIH of the empty set (at any ``a``). Every position is valid.
    """
    x = check_context(tokens, vocab_size)
    beta = _check_smoothing(smoothing)
    seen = np.cumsum(_onehot(x, int(vocab_size)), axis=1)  # (n, T, d)
    total = np.arange(1, x.shape[1] + 1, dtype=np.float64)[None, :, None]  # (1, T, 1)
    return (seen + beta) / (total + vocab_size * beta)


def oracle_predict_positions(tokens: Any, parents: Sequence[int], kernels: Any) -> np.ndarray:
    """The oracle ``π_i(· | x_{l+1-p_1}, …, x_{l+1-p_k})`` at every position, ``(n, T, d)``.

    Args:
        tokens: integer ``(n, T)``.
        parents: ``P``, strictly increasing (the kernels' axis order), each in ``1..T``.
        kernels: float ``(n,) + (d,)*k + (d,)``, each sequence's own kernel.

    Returns:
        float64 ``(n, T, d)``; rows ``l < r`` are NaN.
    """
    x = check_context(tokens)
    n, T = x.shape
    offsets, kern = check_oracle_inputs(x, parents, kernels, "tokens")
    pos = np.arange(1, T + 1)  # (T,) positions l
    # the parent token of the query l+1 at offset p is x_{l+1-p} = column l-p (clamped if l < p)
    index = (np.arange(n)[:, None],) + tuple(x[:, np.maximum(pos - p, 0)] for p in offsets)
    out = kern[index].copy()  # (n, T, d)
    return _blank_invalid(out, first_valid_position(offsets))
