"""Reference predictors of ``x_{L+1}`` from a context ``x_1..x_L`` (numpy, float64; docs/theory.md §3).

Every predictor takes ``context`` of shape ``(n, L)``: row ``i`` holds ``x_1..x_L`` of sequence
``i`` (``context[:, l-1]`` is ``x_l``). The query position ``L+1`` holds no token; its context at
offset ``h`` is ``x_{L+1-h}`` = ``context[:, L-h]``. A predictor returns ``(n, d)`` probability
vectors ``ŷ`` over the vocabulary ``[d]``.

- :func:`gih_predict`: the generalized induction head at temperature ``a``,
  ``ŷ = Σ_{l=1}^{L} softmax_l(a·s_l) e(x_l)`` with the exact copier similarity
  ``s_l = Π_{h∈S} 1{l-h >= 1 and x_{l-h} = x_{L+1-h}}`` (empty ``S`` gives ``s_l = 1``).
- :func:`bayes_predict`: the Dirichlet posterior predictive ``(N(z*, e) + α)/(N(z*) + dα)``.
- :func:`oracle_predict`: ``π(·|z*)`` of each sequence's own kernel.

The loss is ``ℓ = mean_i -log max(ŷ_i(x_{L+1}), LOSS_FLOOR)``; the torch model of ``numerics``
uses the same floor. :func:`gih_loss_and_grad` gives ``ℓ(a)`` of the GIH and its exact derivative

    -∂ℓ/∂a = mean_i [ E_{p|x=y}[s] - E_p[s] ],   p_l = softmax_l(a·s_l),  y = x_{L+1},

where ``E_{p|x=y}`` averages ``s`` over the positions with ``x_l = y`` (weights ``p`` renormalised);
a sequence whose target never occurs in its context (or whose ``ŷ(y)`` sits at the floor)
contributes 0. :func:`optimal_temperature` minimises ``ℓ(a)`` over a bounded interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from theory.errors import require
from theory.predictors.probabilities import check_probabilities
from theory.validation import is_int, is_real

__all__ = [
    "LOSS_FLOOR",
    "TEMPERATURE_XATOL",
    "context_similarity",
    "gih_predict",
    "bayes_predict",
    "oracle_predict",
    "prediction_loss",
    "per_sequence_loss",
    "gih_objective",
    "gih_loss_and_grad",
    "optimal_temperature",
    "check_context",
    "check_offsets",
    "check_oracle_inputs",
    "check_targets",
]

LOSS_FLOOR = 1e-12
"""Floor inside ``-log max(ŷ(target), LOSS_FLOOR)``: ŷ(e) is exactly 0 when e never occurs."""

TEMPERATURE_XATOL = 1e-6
"""Absolute tolerance on ``a*`` in :func:`optimal_temperature` (far below its sampling noise)."""

_LOG_FLOOR = math.log(LOSS_FLOOR)


def check_context(context: Any, vocab_size: int | None = None) -> np.ndarray:
    """Validate ``context`` as an integer ``(n, L)`` array of tokens in ``0..d-1``."""
    arr = np.asarray(context)
    require(arr.ndim == 2 and arr.shape[0] >= 1 and arr.shape[1] >= 1, "context",
            "an integer array of shape (n, L) with n, L >= 1", getattr(arr, "shape", arr))
    require(np.issubdtype(arr.dtype, np.integer), "context", "an integer array of tokens",
            arr.dtype)
    if vocab_size is not None:
        require(is_int(vocab_size)
                and vocab_size >= 2, "vocab_size", "an integer d >= 2", vocab_size)
        lo, hi = int(arr.min()), int(arr.max())
        require(lo >= 0 and hi < vocab_size, "context",
                f"tokens in 0..{int(vocab_size) - 1}", f"tokens in {lo}..{hi}")
    return arr.astype(np.int64, copy=False)


def check_offsets(offsets: Any, seq_len: int, what: str = "parents") -> tuple[int, ...]:
    """Validate a (possibly empty) set of integer offsets, each in ``1..L`` (the query context
    exists). Floats, strings and bools are refused rather than truncated."""
    items = tuple(offsets) if isinstance(offsets, (tuple, list, np.ndarray, range)) else None
    require(items is not None and all(is_int(p) for p in items),
            what, "a sequence of integer offsets", offsets)
    out = tuple(int(p) for p in items)
    require(all(1 <= p <= seq_len for p in out), what,
            f"offsets in 1..L = 1..{seq_len} (x_(L+1-h) must exist)", offsets)
    require(len(set(out)) == len(out), what, "distinct offsets", offsets)
    return tuple(sorted(out))


def check_targets(targets: Any, n: int, vocab_size: int) -> np.ndarray:
    arr = np.asarray(targets)
    require(arr.shape == (n,) and np.issubdtype(arr.dtype, np.integer), "targets",
            f"an integer array of shape ({n},)", (arr.shape, str(arr.dtype)))
    require(bool(np.all((arr >= 0) & (arr < vocab_size))), "targets",
            f"tokens in 0..{vocab_size - 1}", f"tokens in {int(arr.min())}..{int(arr.max())}")
    return arr.astype(np.int64, copy=False)


def context_similarity(context: Any, head_set: Sequence[int]) -> np.ndarray:
    """Exact copier similarity of every position with the query, float64 ``(n, L)``.

    ``s_l = Π_{h∈S} 1{l-h >= 1 and x_{l-h} = x_{L+1-h}}`` for ``l = 1..L``; column ``l-1`` holds
    ``s_l``. The empty set gives all ones.

    Args:
        context: integer ``(n, L)``, ``x_1..x_L``.
        head_set: the offsets ``S`` (any order), each in ``1..L``.
    """
    ctx = check_context(context)
    n, L = ctx.shape
    offsets = check_offsets(head_set, L, "head_set")
    sim = np.ones((n, L), dtype=bool)  # (n, L)
    for h in offsets:
        match = np.zeros((n, L), dtype=bool)  # (n, L)
        # positions l = h+1..L compare x_{l-h} (columns 0..L-h-1) with x_{L+1-h} (column L-h)
        match[:, h:] = ctx[:, : L - h] == ctx[:, L - h: L - h + 1]
        sim &= match
    return sim.astype(np.float64)


def _mix_tokens(weights: np.ndarray, ctx: np.ndarray, d: int) -> np.ndarray:
    """``Σ_l w_l e(x_l)``: weights ``(n, L)``, context ``(n, L)`` → ``(n, d)``."""
    out = np.empty((ctx.shape[0], d))  # (n, d)
    for e in range(d):  # loop over the vocabulary only; vectorised over n and L
        out[:, e] = np.sum(weights * (ctx == e), axis=1)
    return out


def gih_predict(context: Any, head_set: Sequence[int], a: float, *, vocab_size: int
                ) -> np.ndarray:
    """Generalized induction head ``ŷ = Σ_l softmax_l(a·s_l) e(x_l)`` (docs/theory.md §3).

    Args:
        context: integer ``(n, L)``, ``x_1..x_L``.
        head_set: the offsets ``S`` the similarity compares (typically the selected set ``S*``).
        a: temperature ``>= 0``, or ``np.inf`` for the limit: the empirical law of ``x_l`` over
            the positions whose S-context equals the query's (uniform over all ``l`` when none
            does). Finite ``a`` is evaluated as ``exp(a(s_l - max s))``, stable for large ``a``.
        vocab_size: ``d``.

    Returns:
        float64 ``(n, d)``; rows sum to 1.
    """
    ctx = check_context(context, vocab_size)
    require(is_real(a)
            and not math.isnan(a) and a >= 0, "a", "a number >= 0 or inf", a)
    sim = context_similarity(ctx, head_set)  # (n, L)
    top = sim.max(axis=1, keepdims=True)  # (n, 1)
    if math.isinf(a):
        weights = (sim == top).astype(np.float64)  # (n, L)
    else:
        weights = np.exp(float(a) * (sim - top))  # (n, L), entries in (0, 1]
    weights /= weights.sum(axis=1, keepdims=True)
    return _mix_tokens(weights, ctx, int(vocab_size))


def bayes_predict(context: Any, parents: Sequence[int], alpha: float, *, vocab_size: int
                  ) -> np.ndarray:
    """Dirichlet(α) posterior predictive ``(N(z*, e) + α) / (N(z*) + dα)`` (docs/theory.md §3).

    ``z* = (x_{L+1-p})_{p∈P}`` is the query's parent context; ``N(z*, e)`` counts the transitions
    ``l = r+1..L`` (``r = max(P)``) with ``(x_{l-p})_{p∈P} = z*`` and ``x_l = e``, and
    ``N(z*) = Σ_e N(z*, e)``.

    Args:
        context: integer ``(n, L)``.
        parents: the true parent offsets ``P``, each in ``1..L``.
        alpha: Dirichlet concentration ``α > 0``.
        vocab_size: ``d``.

    Returns:
        float64 ``(n, d)``; rows sum to 1.
    """
    ctx = check_context(context, vocab_size)
    require(is_real(alpha)
            and math.isfinite(alpha) and alpha > 0, "alpha", "a finite number > 0", alpha)
    # s_l = 1 exactly for the transitions l > r whose parent context is z*
    counts = _mix_tokens(context_similarity(ctx, parents), ctx, int(vocab_size))  # (n, d)
    return (counts + alpha) / (counts.sum(axis=1, keepdims=True) + vocab_size * alpha)


def oracle_predict(context: Any, parents: Sequence[int], kernels: Any) -> np.ndarray:
    """The oracle ``π_i(· | z*_i)`` from each sequence's own kernel (a lower bound on the loss).

    Args:
        context: integer ``(n, L)``.
        parents: ``P = (p_1 < ... < p_k)``, the kernels' parent offsets, each in ``1..L``.
        kernels: float ``(n,) + (d,)*k + (d,)``, axis ``j+1`` the token at offset ``p_{j+1}``.

    Returns:
        float64 ``(n, d)``: row ``i`` is ``kernels[i, x_{L+1-p_1}, ..., x_{L+1-p_k}]``.
    """
    ctx = check_context(context)
    n, L = ctx.shape
    offsets, kern = check_oracle_inputs(ctx, parents, kernels, "context")
    index = (np.arange(n),) + tuple(ctx[:, L - p] for p in offsets)
    return kern[index]  # (n, d)


def check_oracle_inputs(ctx: np.ndarray, parents: Any, kernels: Any, what: str
                         ) -> tuple[tuple[int, ...], np.ndarray]:
    """Parents (strictly increasing, each within the length of ``ctx`` (n, T)) and float64
    kernels ``(n,) + (d,)*k + (d,)`` covering the tokens of ``ctx``."""
    n, length = ctx.shape
    offsets = check_offsets(parents, length)
    require(len(offsets) >= 1 and list(offsets) == [int(p) for p in parents], "parents",
            "strictly increasing offsets (the kernel's axis order)", parents)
    kern = np.asarray(kernels, dtype=np.float64)
    k = len(offsets)
    require(kern.ndim == k + 2 and kern.shape[0] == n and len(set(kern.shape[1:])) == 1,
            "kernels", f"shape ({n},) + (d,)*{k} + (d,)", kern.shape)
    d = kern.shape[-1]
    require(int(ctx.max()) < d, what, f"tokens in 0..{d - 1}", int(ctx.max()))
    return offsets, kern


def per_sequence_loss(probs: Any, targets: Any) -> np.ndarray:
    """``-log max(ŷ_i(y_i), LOSS_FLOOR)`` per sequence: probs ``(n, d)``, targets ``(n,)`` → ``(n,)``."""
    n = np.shape(targets)[0] if np.ndim(targets) == 1 else None
    p = check_probabilities(probs, n=n, what="probs")  # (n, d): refuses logits, negatives, NaN
    y = check_targets(targets, p.shape[0], p.shape[1])
    picked = p[np.arange(p.shape[0]), y]  # (n,)
    return -np.log(np.maximum(picked, LOSS_FLOOR))


def prediction_loss(probs: Any, targets: Any) -> float:
    """Mean cross-entropy ``mean_i -log max(ŷ_i(y_i), LOSS_FLOOR)`` of probability vectors."""
    return float(np.mean(per_sequence_loss(probs, targets)))


def gih_objective(context: Any, targets: Any, head_set: Sequence[int], *, vocab_size: int
                  ) -> Callable[[float], tuple[float, float]]:
    """Precompute the sample and return ``a ↦ (ℓ(a), ∂ℓ/∂a)`` of the GIH at finite ``a``.

    With ``p_l = softmax_l(a s_l)`` and ``y`` the target,
    ``log ŷ(y) = logsumexp_{l: x_l=y}(a s_l) - logsumexp_l(a s_l)`` and
    ``∂ log ŷ(y)/∂a = E_{p|x=y}[s] - E_p[s]``. Where ``ŷ(y) <= LOSS_FLOOR`` (including a target
    that never occurs) the loss is ``-log LOSS_FLOOR`` and the derivative 0.

    Args:
        context: integer ``(n, L)``.
        targets: integer ``(n,)``, ``x_{L+1}``.
        head_set: offsets ``S`` of the exact copier similarity.
        vocab_size: ``d``.

    Returns:
        A function of ``a`` (finite float) returning ``(loss, dloss_da)`` as floats.
    """
    ctx = check_context(context, vocab_size)
    y = check_targets(targets, ctx.shape[0], int(vocab_size))
    sim = context_similarity(ctx, head_set)  # (n, L)
    hit = ctx == y[:, None]  # (n, L): positions holding the target token
    present = hit.any(axis=1)  # (n,)
    sim_hit = np.where(hit, sim, -np.inf)  # (n, L)
    top_all = sim.max(axis=1, keepdims=True)  # (n, 1)
    top_hit = np.where(present, sim_hit.max(axis=1), 0.0)[:, None]  # (n, 1)

    def objective(a: float) -> tuple[float, float]:
        require(isinstance(a, (int, float, np.floating, np.integer)) and math.isfinite(a),
                "a", "a finite number", a)
        w_all = np.exp(a * (sim - top_all))  # (n, L)
        # off-target entries exponentiate 0 (no overflow) and are then zeroed by the mask
        w_hit = np.exp(a * np.where(hit, sim - top_hit, 0.0)) * hit  # (n, L)
        z_all = w_all.sum(axis=1)  # (n,)
        z_hit = w_hit.sum(axis=1)  # (n,)
        log_hit = np.log(np.where(present, z_hit, 1.0)) + a * top_hit[:, 0]  # (n,)
        log_yhat = np.where(present, log_hit - np.log(z_all) - a * top_all[:, 0], -np.inf)
        active = log_yhat > _LOG_FLOOR  # (n,)
        loss = -np.maximum(log_yhat, _LOG_FLOOR)  # (n,)
        mean_all = (w_all * sim).sum(axis=1) / z_all  # (n,) E_p[s]
        mean_hit = (w_hit * sim).sum(axis=1) / np.where(present, z_hit, 1.0)  # (n,) E_{p|y}[s]
        dlog = np.where(active, mean_hit - mean_all, 0.0)  # (n,) ∂ log ŷ(y) / ∂a
        return float(loss.mean()), float(-dlog.mean())

    return objective


def gih_loss_and_grad(context: Any, targets: Any, head_set: Sequence[int], a: float, *,
                      vocab_size: int) -> tuple[float, float]:
    """``(ℓ(a), ∂ℓ/∂a)`` of the GIH on a sample; see :func:`gih_objective`."""
    return gih_objective(context, targets, head_set, vocab_size=vocab_size)(a)


def optimal_temperature(context: Any, targets: Any, head_set: Sequence[int], *, vocab_size: int,
                        bounds: tuple[float, float] = (0.0, 60.0)) -> float:
    """``a*(L) = argmin_{a ∈ bounds} ℓ(a)`` of the GIH loss on the sample (bounded Brent).

    On a finite sample ``ℓ(a)`` grows linearly in ``a`` for large ``a`` whenever some target
    occurs only at non-matching positions, so the minimiser is finite; it grows with ``L`` as
    the matching counts become reliable. A value at the upper bound means the loss was still
    decreasing there.

    Args:
        context: integer ``(n, L)``.
        targets: integer ``(n,)``.
        head_set: offsets ``S`` of the similarity.
        vocab_size: ``d``.
        bounds: ``(lo, hi)`` with ``0 <= lo < hi`` finite.

    Returns:
        ``a*`` as a float, to :data:`TEMPERATURE_XATOL`.
    """
    lo, hi = (float(b) for b in bounds)
    require(math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi, "bounds",
            "finite (lo, hi) with 0 <= lo < hi", bounds)
    objective = gih_objective(context, targets, head_set, vocab_size=vocab_size)
    result = minimize_scalar(lambda a: objective(a)[0], bounds=(lo, hi), method="bounded",
                             options={"xatol": TEMPERATURE_XATOL})
    return float(result.x)
