"""What stage 1 sees on one training sample: its criterion and the selector it predicts.

Stage 1 of stage-wise training runs full-batch gradient descent on ``C`` over a *fixed* sample
of ``n`` sequences, with the copier and ``a`` frozen at their initialisation. To first order in
``a`` its gradient is the sample mean of the per-sequence stage-1 signal
(:func:`theory.criterion.estimates.stage1_signal`) at the initial copier attention,

    G_n(S; σ₀) = (1/n) Σ_i g_i(S; σ₀),

so the selector follows the replicator equation with ``G_n`` in place of the population
``G_L`` (docs/theory.md §3.7):

    c̃_S(t) = c̃_S(0) e^{4 a t G_n(S)/ΣC²} / Σ_T c̃_T(0) e^{4 a t G_n(T)/ΣC²},   t = lr · steps,

which :func:`selector_descent` follows step by step without holding ``ΣC²`` fixed.

Where two sets nearly tie on the sample, the next order in ``a`` moves the split. The loss of a
sequence with target ``e`` is ``-log Σ_{l∈A} e^{a s_l} + log Σ_l e^{a s_l}``, ``A = {l: x_l = e}``,
and the cumulant expansion of both terms gives (derived here; checked against real stage-1 runs
in tests/theory/criterion/test_adaptive.py)

    ℓ = ℓ₀ - a Σ_S c̃_S G_n(S) - (a²/2) Σ_{S,T} c̃_S c̃_T H_n(S, T) + O(a³),
    H_n(S, T) = (1/n) Σ_i [cov_A(K_S, K_T) - cov(K_S, K_T)],

covariances over positions (in ``A``, and over all L) of the head-set products ``K_S(l)``; a
sequence whose target never occurs in its context sits at the loss floor and adds nothing.
:func:`sample_curvature` computes ``H_n`` and :func:`selector_descent` takes both orders.

``G_n`` is a number of the sample, not an estimate: nothing here is random. Where the
population ranking is too close for ``n`` sequences to resolve (the prediction's
``margin_train_noise`` below the rule), this is the prediction for *this* training run; it
is computed from the tokens and the spec alone, without a torch model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from theory.criterion.estimates import signal_from_similarity
from theory.errors import require
from theory.predictors.copier import (
    check_attention,
    copier_attention,
    head_similarity,
    set_similarity,
)
from theory.sources.spec import ModelSpec
from theory.validation import as_int, is_real

__all__ = ["SampleSelection", "sample_criterion", "sample_curvature", "selector_descent",
           "stage1_on_sample"]


def _set_products(tokens: Any, sets: Any, attention: Any) -> tuple[np.ndarray, np.ndarray]:
    """Checked tokens and the head-set products ``K_S(l)`` (n_sets, n, L) of a sample."""
    tok = np.asarray(tokens)
    require(tok.ndim == 2 and np.issubdtype(tok.dtype, np.integer), "tokens",
            "an integer array (n, L+1)", f"{tok.dtype} array of shape {tok.shape}")
    att = check_attention(attention)
    require(tok.shape[1] - 1 > att.shape[1], "tokens", f"L + 1 tokens with L > M = {att.shape[1]}",
            tok.shape)
    sets = tuple(tuple(int(h) for h in s) for s in sets)
    require(len(sets) >= 1 and all(1 <= h <= att.shape[0] for s in sets for h in s), "sets",
            f"head sets with heads in 1..H = 1..{att.shape[0]}", sets)
    head_sim = head_similarity(tok[:, :-1], att)  # (n, H, L)
    return tok, np.stack([set_similarity(head_sim, s) for s in sets])  # (n_sets, n, L)


def _criterion(tok: np.ndarray, prods: np.ndarray) -> np.ndarray:
    """``G_n`` (n_sets,) from the tokens and the head-set products (n_sets, n, L)."""
    return np.array([signal_from_similarity(tok, k).mean() for k in prods])


def _curvature(tok: np.ndarray, prods: np.ndarray) -> np.ndarray:
    """``H_n`` (n_sets, n_sets) from the tokens and the head-set products (n_sets, n, L)."""
    hit = (tok[:, :-1] == tok[:, -1:]).astype(np.float64)  # (n, L): l ∈ A
    count = hit.sum(axis=1)  # (n,) |A|
    held = count > 0  # (n,) sequences off the loss floor
    prods, hit, count = prods[:, held], hit[held], count[held]
    L = hit.shape[1]
    mean_all = prods.mean(axis=2)  # (n_sets, n)
    mean_in = np.einsum("snl,nl->sn", prods, hit) / count  # (n_sets, n)
    second_all = np.einsum("snl,tnl->stn", prods, prods) / L  # (n_sets, n_sets, n)
    second_in = np.einsum("snl,tnl,nl->stn", prods, prods, hit) / count
    cov_all = second_all - mean_all[:, None] * mean_all[None, :]
    cov_in = second_in - mean_in[:, None] * mean_in[None, :]
    return (cov_in - cov_all).sum(axis=2) / tok.shape[0]


def sample_criterion(tokens: Any, sets: Any, attention: Any) -> np.ndarray:
    """``G_n(S; σ)`` of a given sample for every set: the mean stage-1 signal.

    Args:
        tokens: integer ``(n, L+1)``, contexts then targets; ``L > M``.
        sets: head sets (heads in ``1..H``).
        attention: ``(H, M)`` copier attention (:func:`theory.predictors.copier.check_attention`).

    Returns:
        float64 ``(n_sets,)``.
    """
    return _criterion(*_set_products(tokens, sets, attention))


def sample_curvature(tokens: Any, sets: Any, attention: Any) -> np.ndarray:
    """``H_n(S, T; σ)``, the second-order term of the stage-1 loss in ``a`` (module docstring).

    Args:
        tokens: integer ``(n, L+1)``, contexts then targets; ``L > M``.
        sets: head sets (heads in ``1..H``).
        attention: ``(H, M)`` copier attention.

    Returns:
        float64 ``(n_sets, n_sets)``, symmetric.
    """
    return _curvature(*_set_products(tokens, sets, attention))


@dataclass(frozen=True, eq=False)
class SampleSelection:
    """Stage 1 on one training sample, as the replicator predicts it.

    Attributes:
        sets: the head sets, :func:`theory.sources.spec.head_sets` order.
        criterion: ``(n_sets,)`` ``G_n`` of the sample at the initial copier.
        selected_set: ``argmax G_n``, the set the replicator tends to.
        runner_up: the second-best set.
        margin: ``G_n(selected) - G_n(runner_up)``.
        time: flow time ``lr · steps`` of stage 1.
        weights: ``(n_sets,)`` the replicator's ``c̃`` at the end of stage 1.
    """

    sets: tuple[tuple[int, ...], ...]
    criterion: np.ndarray
    selected_set: tuple[int, ...]
    runner_up: tuple[int, ...]
    margin: float
    time: float
    weights: np.ndarray

    @property
    def selected_weight(self) -> float:
        """The predicted ``c̃`` on :attr:`selected_set` at the end of stage 1."""
        return float(self.weights[self.sets.index(self.selected_set)])

    def settles(self, level: float) -> bool:
        """Whether the predicted selector has reached ``level`` on :attr:`selected_set`."""
        return self.selected_weight >= level

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"sets": [list(s) for s in self.sets], "criterion": self.criterion.tolist(),
                "selected_set": list(self.selected_set), "runner_up": list(self.runner_up),
                "margin": self.margin, "time": self.time, "weights": self.weights.tolist(),
                "selected_weight": self.selected_weight}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SampleSelection:
        """Rebuild a selection from :meth:`to_dict` (``selected_weight`` is derived, not read).

        Raises:
            InductionHeadsError: when keys are missing.
        """
        keys = ("sets", "criterion", "selected_set", "runner_up", "margin", "time", "weights")
        require(isinstance(data, Mapping) and all(k in data for k in keys), "training sample",
                f"a dict from SampleSelection.to_dict with keys {list(keys)}",
                sorted(data) if isinstance(data, Mapping) else type(data).__name__)
        sets = tuple(tuple(int(h) for h in s) for s in data["sets"])
        criterion, weights = (np.array(data[k], dtype=np.float64) for k in ("criterion", "weights"))
        for arr in (criterion, weights):
            arr.setflags(write=False)
        return cls(sets, criterion, tuple(int(h) for h in data["selected_set"]),
                   tuple(int(h) for h in data["runner_up"]), float(data["margin"]),
                   float(data["time"]), weights)


def selector_descent(criterion: np.ndarray, spec: ModelSpec, *, lr: float, steps: int,
                     curvature: np.ndarray | None = None) -> np.ndarray:
    """``c̃`` after ``steps`` of gradient descent on ``C`` against the expanded loss.

    To first order in ``a`` the loss is ``ℓ₀ - a Σ_S c̃_S G(S)`` with ``c̃_S = C_S²/ΣC²``, so
    a step is ``C_S ← C_S + lr · 2a C_S (f_S - Σ_T c̃_T f_T) / ΣC²`` with ``f = G``: the
    replicator of the module docstring without holding ``ΣC²`` at its initial value, step by
    step as the optimizer takes them (``C`` starts at ``c_init``, ``a`` frozen at ``a_init``).
    Given the second-order term ``H`` (:func:`sample_curvature`), ``f = G + a H c̃``.

    Returns:
        float64 ``(n_sets,)``.
    """
    g = np.asarray(criterion, dtype=np.float64)  # (n_sets,)
    h = None if curvature is None else np.asarray(curvature, dtype=np.float64)  # (n_sets, n_sets)
    c = np.full(g.shape, float(spec.c_init))  # (n_sets,)
    a = float(spec.a_init)
    scale = 2.0 * lr * a
    for _ in range(steps):  # |𝒮| (or |𝒮|²) numbers per step
        sq = c * c
        total = sq.sum()
        f = g if h is None else g + a * (h @ (sq / total))
        c = c + scale * c * (f - float(sq @ f) / total) / total
    sq = c * c
    return sq / sq.sum()


def stage1_on_sample(tokens: Any, spec: ModelSpec, *, lr: float, steps: int) -> SampleSelection:
    """The selector that stage 1 reaches on a training sample (module docstring).

    The initial copier, ``c̃(0)`` (uniform), ``ΣC² = |𝒮| c_init²`` and the frozen ``a = a_init``
    come from ``spec``.

    Args:
        tokens: integer ``(n, L+1)``, the training sample.
        spec: the model's spec.
        lr: stage 1's learning rate (full-batch gradient descent on ``C``), > 0.
        steps: stage 1's steps, >= 0.

    Returns:
        :class:`SampleSelection`.

    Raises:
        InductionHeadsError: on a bad spec, sample, rate or step count.
    """
    require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", type(spec).__name__)
    require(is_real(lr)
            and np.isfinite(lr) and lr > 0, "lr", "a finite number > 0", lr)
    steps = as_int(steps, "steps", minimum=0)
    sets = spec.sets
    tok, prods = _set_products(tokens, sets, copier_attention(spec))  # (n_sets, n, L)
    values, curvature = _criterion(tok, prods), _curvature(tok, prods)  # (n_sets,), (n_sets,)²
    order = sorted(range(len(sets)), key=lambda i: -values[i])
    best, second = order[0], order[1] if len(order) > 1 else order[0]
    time = float(lr) * steps
    weights = selector_descent(values, spec, lr=float(lr), steps=steps,
                               curvature=curvature)  # (n_sets,)
    for arr in (values, weights):
        arr.setflags(write=False)
    return SampleSelection(sets, values, sets[best], sets[second],
                           float(values[best] - values[second]), time, weights)
