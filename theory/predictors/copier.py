"""TF's copier at a given attention, in numpy: the similarity stage 1 of training sees.

Head ``h`` of the copier attends to the offsets ``i = 1..M`` of its window with weights ``σ_h(i)``
(docs/theory.md §2; ``σ_h(i) = 0`` outside the window). At position ``l`` only the offsets with
``l - i >= 1`` exist; the model takes the softmax of ``w_h`` over those of its window, which is
``σ_h`` restricted to them and renormalised. The copy
is normalised, ``v̄_h(l) = v_h(l) / ||v_h(l)||``, so the renormalisation does not change it and

    v_h(l) = Σ_{i valid at l} σ_h(i) e(x_{l-i}),   v̄_h(l) = v_h(l)/||v_h(l)||  (0 when v_h(l) = 0),
    k_h(l) = <v̄_h(L+1), v̄_h(l)>,                  s_l = Π_{h∈S} k_h(l)          (1 for S = ∅),

for ``l = 1..L`` (the query ``L+1`` copies too). With one-hot inputs the inner products are
quadratic forms of ``σ_h`` over token matches,
``<v_h(L+1), v_h(l)> = Σ_{i,j} σ_h(i) σ_h(j) 1{x_{L+1-i} = x_{l-j}}`` over valid offsets, so no
vocabulary-sized array is built. When ``σ_h`` is one-hot on offset ``h`` (the exact copier),
``k_h(l) = 1{l-h >= 1 and x_{l-h} = x_{L+1-h}}`` and ``s_l`` is
:func:`theory.predictors.reference.context_similarity`; an exact zero in ``σ_h`` can leave ``v_h(l) = 0``
at early positions, and ``k_h(l)`` is 0 there, as in the model's fixed-offset heads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from theory.errors import require
from theory.predictors.reference import check_context
from theory.sources.spec import ModelSpec
from theory.validation import as_float_array, as_int, is_int

__all__ = [
    "ATTENTION_SUM_ATOL",
    "copier_attention",
    "exact_attention",
    "check_attention",
    "head_similarity",
    "set_similarity",
    "soft_context_similarity",
]

ATTENTION_SUM_ATOL = 1e-6
"""How far a row of a given attention may sum from 1: a float32 softmax read back as float64
sums to 1 within a few 1e-8 per row (the copy is normalised, so the row's scale does not matter)."""


def copier_attention(spec: ModelSpec) -> np.ndarray:
    """The copier attention ``σ`` at the spec's initialisation, float64 ``(H, M)``.

    Head ``h`` has logit ``w_plus`` at offset ``h`` and ``w_minus`` at every other offset of its
    window ``spec.windows[h-1]`` (the initialisation of ``numerics.InductionHeadModel``), so
    ``σ_h`` is the softmax of ``w_h`` over the window, exactly 0 outside it:
    ``e^{w_+} / (e^{w_+} + (|W_h| - 1) e^{w_-})`` on its own offset, ``|W_h|`` the window's size
    (M without ``head_windows``).

    Raises:
        InductionHeadsError: when ``spec`` is not a :class:`theory.ModelSpec`.
    """
    require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", type(spec).__name__)
    H = spec.heads
    inside = np.array(spec.window_mask(), dtype=bool)  # (H, M)
    logits = np.where(inside, spec.w_minus, -np.inf)  # (H, M)
    logits[np.arange(H), np.arange(H)] = spec.w_plus  # offset h lies in head h's window
    logits -= logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)  # (H, M), exactly 0 outside the window
    return weights / weights.sum(axis=1, keepdims=True)


def exact_attention(heads: int, window: int) -> np.ndarray:
    """The exact copier of the limit: head ``h`` one-hot on offset ``h``, float64 ``(H, M)``.

    Raises:
        InductionHeadsError: unless ``1 <= H <= M`` are integers.
    """
    H = as_int(heads, "heads", minimum=1, symbol="H")
    M = as_int(window, "window", minimum=H, symbol="M")
    return np.eye(H, M)


def check_attention(attention: Any, heads: int | None = None) -> np.ndarray:
    """Validate a copier attention: ``(H, M)`` rows that are distributions; returns float64.

    Args:
        attention: ``(H, M)`` array-like, finite entries >= 0, each row summing to 1 within
            :data:`ATTENTION_SUM_ATOL`.
        heads: the number of rows required, or None for any ``H >= 1``.

    Raises:
        InductionHeadsError: on another shape, a negative or non-finite entry, or a row that
            is not a distribution.
    """
    att = as_float_array(attention, "attention")
    require(att.ndim == 2 and att.shape[0] >= 1 and att.shape[1] >= 1, "attention",
            "an array of shape (H, M) with H, M >= 1", att.shape)
    if heads is not None:
        require(att.shape[0] == heads, "attention", f"{heads} rows (one per head)", att.shape)
    require(bool(np.all(np.isfinite(att))) and bool(np.all(att >= 0)), "attention",
            "finite entries >= 0", att)
    sums = att.sum(axis=1)  # (H,)
    require(bool(np.all(np.abs(sums - 1.0) <= ATTENTION_SUM_ATOL)), "attention",
            f"rows summing to 1 (within {ATTENTION_SUM_ATOL:g})", sums)
    return att


def _shifted(ctx: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Tokens ``x_{l-i}`` for ``l = 1..L+1``, ``i = 1..M`` and whether each exists.

    Returns:
        ``(n, L+1, M)`` int64 tokens (-1 where ``l - i < 1``) and ``(L+1, M)`` bool ``l - i >= 1``.
    """
    n, L = ctx.shape
    pos = np.arange(1, L + 2)[:, None] - np.arange(1, window + 1)[None, :]  # (L+1, M): l - i
    valid = pos >= 1  # (L+1, M)
    padded = np.concatenate([np.full((n, 1), -1, dtype=np.int64), ctx], axis=1)  # (n, L+1)
    return padded[:, np.where(valid, pos, 0)], valid  # (n, L+1, M), (L+1, M)


def head_similarity(context: Any, attention: Any) -> np.ndarray:
    """``k_h(l) = <v̄_h(L+1), v̄_h(l)>`` for every head and position, float64 ``(n, H, L)``.

    Vectorised over sequences, positions and heads; the only Python loop runs over the ``M``
    offsets (module docstring). The layout matches the model's ``copier.head_similarity`` tap.

    Args:
        context: integer ``(n, L)``, ``x_1..x_L``.
        attention: ``(H, M)`` copier attention (:func:`check_attention`).

    Returns:
        ``(n, H, L)``; column ``l-1`` holds ``k_h(l)``.
    """
    ctx = check_context(context)
    att = check_attention(attention)
    n, L = ctx.shape
    H, M = att.shape
    tokens, valid = _shifted(ctx, M)  # (n, L+1, M), (L+1, M)
    inner = np.zeros((n, L, H))  # (n, L, H): <v_h(L+1), v_h(l)>
    sq_norm = np.zeros((n, L + 1, H))  # (n, L+1, H): ||v_h(l)||^2
    for i in range(M):
        if valid[L, i]:  # the query's offset i exists: Σ_j σ_h(j) 1{x_{L+1-i} = x_{l-j}}
            match = (tokens[:, :L, :] == tokens[:, L, i][:, None, None]) & valid[:L]
            inner += att[:, i] * np.einsum("nlj,hj->nlh", match.astype(np.float64), att)
        # Σ_k σ_h(k) 1{x_{l-i} = x_{l-k}} over the offsets k valid at l, for l with i valid
        same = (tokens == tokens[:, :, i:i + 1]) & valid & valid[:, i:i + 1]  # (n, L+1, M)
        sq_norm += att[:, i] * np.einsum("nlk,hk->nlh", same.astype(np.float64), att)
    denom = np.sqrt(sq_norm[:, :L] * sq_norm[:, L:])  # (n, L, H)
    sim = np.divide(inner, denom, out=np.zeros_like(inner), where=denom > 0)  # (n, L, H)
    return np.ascontiguousarray(sim.transpose(0, 2, 1))  # (n, H, L)


def _check_heads(head_set: Any, heads: int) -> tuple[int, ...]:
    items = tuple(head_set) if isinstance(head_set, (tuple, list, np.ndarray, range)) else None
    require(items is not None and all(is_int(h) for h in items),
            "head_set", "a sequence of integer heads", head_set)
    out = tuple(int(h) for h in items)
    require(all(1 <= h <= heads for h in out) and len(set(out)) == len(out), "head_set",
            f"distinct heads in 1..H = 1..{heads}", head_set)
    return tuple(sorted(out))


def set_similarity(head_sim: np.ndarray, head_set: Any) -> np.ndarray:
    """``s_l = Π_{h∈S} k_h(l)`` from :func:`head_similarity`'s ``(n, H, L)``, float64 ``(n, L)``.

    The empty set gives all ones; heads are multiplied in increasing order.

    Raises:
        InductionHeadsError: on a head outside ``1..H`` or a repeated head.
    """
    require(isinstance(head_sim, np.ndarray) and head_sim.ndim == 3, "head_sim",
            "an array of shape (n, H, L)", getattr(head_sim, "shape", type(head_sim).__name__))
    sim = np.ones((head_sim.shape[0], head_sim.shape[2]))  # (n, L)
    for h in _check_heads(head_set, head_sim.shape[1]):
        sim = sim * head_sim[:, h - 1, :]
    return sim


def soft_context_similarity(context: Any, head_set: Any, attention: Any) -> np.ndarray:
    """Similarity ``s_l = Π_{h∈S} <v̄_h(L+1), v̄_h(l)>`` at a copier attention, float64 ``(n, L)``.

    Equals :func:`theory.predictors.reference.context_similarity` when ``attention`` is
    :func:`exact_attention`.

    Args:
        context: integer ``(n, L)``, ``x_1..x_L``.
        head_set: the heads ``S`` (1-based, any order, each in ``1..H``).
        attention: ``(H, M)`` copier attention (:func:`check_attention`).

    Returns:
        ``(n, L)``; column ``l-1`` holds ``s_l``.
    """
    att = check_attention(attention)
    _check_heads(head_set, att.shape[0])
    return set_similarity(head_similarity(context, att), head_set)
