"""The first move of the full model's selector: ``r_S = -∂ℓ/∂C_S`` at initialisation (docs/theory.md §7).

At initialisation every ``C_S`` equals ``c_init``, so ``c̃`` is uniform and the replicator of
:mod:`theory.dynamics.replicator` reads the selector's first move off the gradient: ``c̃_S``
grows at first exactly where ``r_S`` exceeds the mean over sets, which is 0 (below). This module
computes ``r_S`` for the full model of §7 with any combination of its ingredients
(:class:`FullIngredients`), exactly per sequence, and its mean by Monte Carlo over the source.

**The model at initialisation.** Head ``h`` attends from position ``l = 1..L+1`` (the query
``L+1`` holds the zero vector) to the offsets of its window (``spec.windows``), plus offset 0
(the position itself) with ``self_offset``, valid where ``l - i >= 1``, with logits
``w_{h,i} + κ 1{x_l = x_{l-i}}`` (``A_h = κ I``; 0 at the query), ``w_{h,h} = w_+``, ``w_-`` at
the other offsets of the window and the self logit at 0. ``σ_h(l, ·)`` is the softmax over the
valid offsets, ``v_h(l) = ν Σ_i σ_h(l, i) e(x_{l-i})`` (``V_h = ν I``), ``v̄_h`` its LayerNorm
(gain 1, bias 0, ``ε``) or ``v/(||v|| + norm_offset)``, 0 where no offset is valid,
``k_h(l) = <v̄_h(L+1), v̄_h(l)>`` (through a ReLU with ``relu``), ``K_S(l) = Π_{h∈S} k_h(l)``
(``K_∅ = 1``), ``s_l = Σ_S c̃_S K_S(l)``, ``p = softmax(a s)`` over ``l = 1..L`` and
``ŷ = Σ_l p_l e(x_l)``. None of the copier depends on ``C``.

**Derivation.** With ``c̃_T = C_T²/ΣC²``, ``∂c̃_T/∂C_S = (2C_S/ΣC²)(δ_TS - c̃_T)``, so

    ∂s_m/∂C_S = (2C_S/ΣC²) (K_S(m) - s_m).

With ``g_j = ∂ℓ/∂ŷ_j`` and ``∂ŷ_j/∂s_m = a p_m (1{x_m = j} - ŷ_j)``,

    ∂ℓ/∂s_m = a p_m (g_{x_m} - Σ_j g_j ŷ_j),
    r_S = -∂ℓ/∂C_S = -(2C_S/ΣC²) Σ_m ∂ℓ/∂s_m (K_S(m) - s_m),

where for ``nll`` (``ℓ = -log max(ŷ_e, LOSS_FLOOR)``, ``e = x_{L+1}``) ``g_j = -δ_je/ŷ_e``, and
``g = 0`` when ``ŷ_e`` is under the floor (then ``e`` never occurs in the context), and for
``official_ce`` (cross-entropy on ``ŷ`` as logits) ``g = softmax(ŷ) - e(e)``. At
initialisation ``C_S/ΣC² = 1/(|𝒮| c_init)`` and ``s_m = mean_T K_T(m)``, so
``Σ_S r_S = 0`` for every sequence, and ``dc̃_S/dt = (2c_init/ΣC²) r_S``: the selector moves
first toward the set of largest ``r_S`` (for ``c_init > 0``). Everything above is exact per
sequence; only the mean over the source is Monte Carlo.

**Small a.** At ``a → 0`` with the ``nll`` loss, ``p_m → 1/L`` and
``r_S = (2a/(|𝒮| c_init)) (g_S - mean_T g_T) + O(a²)``, ``g_S`` the stage-1 signal
(:func:`theory.criterion.estimates.signal_from_similarity`) with similarity ``K_S``: the
replicator's ``G_S - Ḡ`` at the model's own copier.

The mean of ``r_S`` over sequences is estimated on ``samples`` sequences shared by every set
(paired standard errors) and extended, ``samples`` more at a time, while the leader's margin
over the runner-up is short of :data:`theory.criterion.estimates.DECIDABLE_Z` paired standard
errors and the budget ``max_samples`` allows (:func:`theory.criterion.estimates.sample_until_decided`),
as :func:`theory.limit.prediction.predict_limit` does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from theory.criterion.estimates import DECIDABLE_Z, CriterionEstimate, sample_until_decided
from theory.errors import require
from theory.notation import head_set_label, json_float
from theory.predictors.reference import LOSS_FLOOR
from theory.sizes import FLOAT_BYTES, require_memory
from theory.sources.sequences import sample_sequences_np
from theory.sources.spec import ModelSpec, Source
from theory.validation import as_float, as_int
from theory.work import require_time

__all__ = [
    "FIRST_MOVE_KIND",
    "FIRST_MOVE_ARRAYS",
    "FIRST_MOVE_UNIT_S",
    "LOSS_KINDS",
    "NORMALIZATIONS",
    "FullIngredients",
    "OFFICIAL_FULL_INGREDIENTS",
    "LIBRARY_FULL_INGREDIENTS",
    "FirstMove",
    "full_head_similarity",
    "first_move_signal",
    "predict_first_move",
]

LOSS_KINDS = ("nll", "official_ce")
"""The losses, as :data:`numerics.LOSS_KINDS` names them: ``-log max(ŷ_e, LOSS_FLOOR)``, and
cross-entropy applied to ``ŷ`` as logits."""

NORMALIZATIONS = ("layernorm", "l2")
"""The copy's normalisations, as :data:`numerics.models.full.NORMALIZATIONS` names them."""

FIRST_MOVE_KIND = "first_move"
"""The ``kind`` of the :class:`~theory.criterion.estimates.CriterionEstimate` of ``r_S``."""

FIRST_MOVE_ARRAYS = 6
"""float64 values per sequence position, head and ``K + d`` held at once in one draw (scores,
attention, copy, normalised copy and their temporaries; measured peak about 4.6 at H = 3,
K = 6, d = 3)."""

FIRST_MOVE_UNIT_S = 6e-8
"""Seconds per sequence position, head, offset and token of one draw on the reference CPU of
:mod:`theory.work` (the copy's einsum over ``(n, H, L+1, K, d)`` dominates; measured 3e-8 to
8e-8 at H = 3, K = 4..6, d = 3)."""


@dataclass(frozen=True)
class FullIngredients:
    """What the full model's copier and loss are made of, beyond the spec's sizes and logits.

    Attributes:
        self_offset: whether head h also attends to offset 0 (the position itself).
        self_logit: the logit of offset 0; None for the spec's ``w_-`` (a trained self logit
            initialised with the other offsets). At initialisation a fixed and a trained self
            logit are both just this value.
        content_scale: ``κ`` of the content term ``A_h = κ I`` (the authors' ``Q = K = 0.01 I``
            give ``1e-4``).
        value_scale: ``ν`` of ``V_h = ν I``.
        normalization: one of :data:`NORMALIZATIONS`.
        ln_eps: the LayerNorm's variance offset ``ε``.
        norm_offset: added to the norm of the l2 normalisation.
        relu: whether ``k_h(l)`` passes through a ReLU.
        loss: one of :data:`LOSS_KINDS`.
    """

    self_offset: bool = True
    self_logit: float | None = None
    content_scale: float = 0.0
    value_scale: float = 1.0
    normalization: str = "layernorm"
    ln_eps: float = 1e-5
    norm_offset: float = 0.0
    relu: bool = False
    loss: str = "nll"

    def __post_init__(self) -> None:
        require(isinstance(self.self_offset, bool), "self_offset", "True or False",
                self.self_offset)
        require(isinstance(self.relu, bool), "relu", "True or False", self.relu)
        if self.self_logit is not None:
            object.__setattr__(self, "self_logit", as_float(self.self_logit, "self_logit"))
        for name in ("content_scale", "value_scale", "ln_eps", "norm_offset"):
            object.__setattr__(self, name, as_float(getattr(self, name), name))
        require(self.value_scale != 0.0, "value_scale", "ν != 0 (V = 0 copies nothing)",
                self.value_scale)
        require(self.ln_eps >= 0 and self.norm_offset >= 0, "ln_eps, norm_offset",
                "numbers >= 0", (self.ln_eps, self.norm_offset))
        require(self.normalization in NORMALIZATIONS, "normalization",
                f"one of {NORMALIZATIONS}", self.normalization)
        require(self.loss in LOSS_KINDS, "loss", f"one of {LOSS_KINDS}", self.loss)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)


OFFICIAL_FULL_INGREDIENTS = FullIngredients(
    self_offset=True, self_logit=1e-6, content_scale=1e-4, value_scale=0.01,
    normalization="layernorm", relu=True, loss="official_ce")
"""The authors' full model: a fixed self logit ``1e-6``, ``A = Q Kᵀ = 1e-4 I``, ``V = 0.01 I``,
per-head LayerNorm, the ReLU on ``k_h`` and cross-entropy on ``ŷ`` as logits (use it with
:meth:`theory.ModelSpec.band`)."""

LIBRARY_FULL_INGREDIENTS = FullIngredients()
""":class:`numerics.FullInductionHeadModel`'s defaults: a trained self logit starting at ``w_-``,
``A = 0``, ``V = I``, per-head LayerNorm, no ReLU, ``nll``."""


def _offset_logits(spec: ModelSpec, ing: FullIngredients) -> tuple[tuple[int, ...], np.ndarray]:
    """The offsets ``0..M`` (``1..M`` without self offset) and the logits (H, K), -inf off the
    head's window."""
    offsets = tuple(range(0 if ing.self_offset else 1, spec.window + 1))
    logits = np.full((spec.heads, len(offsets)), -np.inf)  # (H, K)
    for h, window in enumerate(spec.windows, start=1):
        for i in window:
            logits[h - 1, offsets.index(i)] = spec.w_plus if i == h else spec.w_minus
        if ing.self_offset:
            logits[h - 1, 0] = spec.w_minus if ing.self_logit is None else ing.self_logit
    return offsets, logits


def _check_tokens(tokens: Any, what: str, extra: int, spec: ModelSpec, vocab_size: int
                  ) -> np.ndarray:
    """``tokens`` as an integer (n, L + extra) array with ``L > M`` and values in ``[0, d)``."""
    tok = np.asarray(tokens)
    shape = "(n, L+1)" if extra else "(n, L)"
    require(tok.ndim == 2 and tok.shape[0] >= 1 and np.issubdtype(tok.dtype, np.integer), what,
            f"an integer array {shape}", (tok.shape, str(tok.dtype)))
    require(tok.shape[1] - extra > spec.window, what, f"{shape} with L > M = {spec.window}",
            tok.shape)
    require(int(tok.min()) >= 0 and int(tok.max()) < vocab_size, what,
            f"values in [0, {vocab_size})", (int(tok.min()), int(tok.max())))
    return tok


def full_head_similarity(context: Any, spec: ModelSpec, ingredients: FullIngredients, *,
                         vocab_size: int) -> np.ndarray:
    """``k_h(l)`` of the full model at initialisation (module docstring), float64 (n, H, L).

    Args:
        context: integer (n, L) tokens ``x_1..x_L``, ``L > M``.
        spec: sizes, windows and the logits ``w_±``.
        ingredients: the copier's ingredients.
        vocab_size: d.
    """
    require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", type(spec).__name__)
    require(isinstance(ingredients, FullIngredients), "ingredients", "a FullIngredients",
            type(ingredients).__name__)
    d = as_int(vocab_size, "vocab_size", minimum=2, symbol="d")
    ctx = _check_tokens(context, "context", 0, spec, d)
    n, L = ctx.shape
    offsets, logits = _offset_logits(spec, ingredients)
    top = offsets[-1]
    ext = np.concatenate([ctx, np.full((n, 1), -1)], axis=1)  # (n, L+1), -1: the query's 0
    padded = np.concatenate([np.full((n, top), -2), ext], axis=1)  # (n, top+L+1), -2: invalid
    keys = np.stack([padded[:, top - i:top - i + L + 1] for i in offsets], axis=2)  # (n, L+1, K)
    pos = np.arange(1, L + 2)
    in_range = pos[:, None] - np.array(offsets)[None, :] >= 1  # (L+1, K)
    valid = in_range[None, :, :] & np.isfinite(logits)[:, None, :]  # (H, L+1, K)
    same = (keys == ext[:, :, None]) & (ext[:, :, None] >= 0)  # (n, L+1, K)
    scores = logits[None, :, None, :] + ingredients.content_scale * same[:, None]  # (n,H,L+1,K)
    scores = np.where(valid[None], scores, -np.inf)
    any_valid = valid.any(axis=-1)  # (H, L+1)
    top_score = np.where(any_valid[None, :, :, None], scores.max(axis=-1, keepdims=True), 0.0)
    weights = np.where(valid[None], np.exp(scores - top_score), 0.0)  # (n, H, L+1, K)
    total = weights.sum(axis=-1, keepdims=True)
    sigma = np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)
    key_onehot = (keys[..., None] == np.arange(d)).astype(np.float64)  # (n, L+1, K, d)
    v = ingredients.value_scale * np.einsum("nhlk,nlkd->nhld", sigma, key_onehot)  # (n,H,L+1,d)
    if ingredients.normalization == "layernorm":
        centred = v - v.mean(axis=-1, keepdims=True)
        v_bar = centred / np.sqrt((centred * centred).mean(axis=-1, keepdims=True)
                                  + ingredients.ln_eps)
    else:
        norm = np.sqrt(np.maximum((v * v).sum(axis=-1, keepdims=True), 1e-60))
        v_bar = v / np.maximum(norm + ingredients.norm_offset, 1e-30)
    v_bar = v_bar * any_valid[None, :, :, None]  # (n, H, L+1, d)
    sim = np.einsum("nhld,nhd->nhl", v_bar[:, :, :L], v_bar[:, :, L])  # (n, H, L)
    return np.maximum(sim, 0.0) if ingredients.relu else sim


def first_move_signal(tokens: Any, spec: ModelSpec, ingredients: FullIngredients, *,
                      vocab_size: int) -> np.ndarray:
    """Per-sequence ``r_S = -∂ℓ/∂C_S`` at initialisation for every set of ``spec.sets``.

    Exact (module docstring): ``ℓ`` is the loss of one sequence, so the mean over sequences of
    the returned rows is ``-∂/∂C_S`` of the mean loss.

    Args:
        tokens: integer (n, L+1): context ``x_1..x_L`` (``L > M``), then the target ``x_{L+1}``.
        spec: sizes, windows and the initialisation (``w_±``, ``c_init``, ``a_init``).
        ingredients: the model's ingredients.
        vocab_size: d.

    Returns:
        float64 (n, |𝒮|), columns in ``spec.sets`` order; each row sums to 0 up to round-off.
    """
    require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", type(spec).__name__)
    d = as_int(vocab_size, "vocab_size", minimum=2, symbol="d")
    tok = _check_tokens(tokens, "tokens", 1, spec, d)
    ctx, target = tok[:, :-1], tok[:, -1]
    head_sim = full_head_similarity(ctx, spec, ingredients, vocab_size=d)  # (n, H, L)
    sets = spec.sets
    prods = np.stack([np.prod(head_sim[:, [h - 1 for h in s]], axis=1) if s
                      else np.ones(ctx.shape) for s in sets], axis=1)  # (n, |𝒮|, L)
    s_l = prods.mean(axis=1)  # (n, L): c̃ uniform
    a = spec.a_init
    z = a * s_l
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)  # (n, L)
    hit = (ctx[..., None] == np.arange(d)).astype(np.float64)  # (n, L, d)
    y_hat = np.einsum("nl,nld->nd", p, hit)  # (n, d)
    target_hot = (target[:, None] == np.arange(d)).astype(np.float64)  # (n, d)
    if ingredients.loss == "nll":
        y_e = (y_hat * target_hot).sum(axis=1)  # (n,)
        inv = np.divide(1.0, y_e, out=np.zeros_like(y_e), where=y_e > LOSS_FLOOR)
        grad_y = -target_hot * inv[:, None]  # (n, d)
    else:
        q = np.exp(y_hat - y_hat.max(axis=1, keepdims=True))
        grad_y = q / q.sum(axis=1, keepdims=True) - target_hot  # (n, d)
    at_token = np.einsum("nld,nd->nl", hit, grad_y)  # (n, L): g_{x_m}
    dl_ds = a * p * (at_token - (grad_y * y_hat).sum(axis=1, keepdims=True))  # (n, L)
    scale = 2.0 / (len(sets) * spec.c_init)  # 2 C_S / ΣC² at uniform C
    return -scale * np.einsum("nl,nsl->ns", dl_ds, prods - s_l[:, None, :])  # (n, |𝒮|)


@dataclass(frozen=True, eq=False)
class FirstMove:
    """Which set the full model's selector moves to first, and how sure that is.

    Attributes:
        source: the source.
        spec: the model's spec (sizes, windows, initialisation).
        ingredients: the model's ingredients.
        seq_len: ``L``.
        estimate: ``r_S`` per set: means, standard errors and per-sequence values
            (kind :data:`FIRST_MOVE_KIND`, sets in ``spec.sets`` order).
        first_set: the set of largest mean ``r_S``, where ``c̃`` grows fastest.
        runner_up: the second set.
        margin: ``r(first_set) - r(runner_up)``.
        margin_se: the margin in standard errors of the paired difference.
        decidable: ``margin_se >= DECIDABLE_Z``.
        max_samples: the adaptive budget.
    """

    source: Source
    spec: ModelSpec
    ingredients: FullIngredients
    seq_len: int
    estimate: CriterionEstimate
    first_set: tuple[int, ...]
    runner_up: tuple[int, ...]
    margin: float
    margin_se: float
    decidable: bool
    max_samples: int

    @property
    def samples(self) -> int:
        """Sequences behind the estimate."""
        return int(self.estimate.samples)

    @property
    def rates(self) -> Mapping[tuple[int, ...], float]:
        """Set → mean ``r_S``."""
        return dict(zip(self.estimate.sets, map(float, self.estimate.values)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (sets as labels; an infinite margin as its JSON string)."""
        est = self.estimate
        return {"source": self.source.to_dict(), "spec": self.spec.to_dict(),
                "ingredients": self.ingredients.to_dict(), "seq_len": self.seq_len,
                "rates": {head_set_label(s): float(v) for s, v in zip(est.sets, est.values)},
                "stderr": {head_set_label(s): float(v) for s, v in zip(est.sets, est.stderr)},
                "first_set": list(self.first_set), "runner_up": list(self.runner_up),
                "margin": self.margin, "margin_se": json_float(self.margin_se),
                "decidable": self.decidable, "decidable_threshold": DECIDABLE_Z,
                "samples": self.samples, "max_samples": self.max_samples}


def _estimate(sets: tuple[tuple[int, ...], ...], per: np.ndarray) -> CriterionEstimate:
    m = per.shape[0]
    per.setflags(write=False)
    return CriterionEstimate(sets, per.mean(axis=0), per.std(axis=0, ddof=1) / math.sqrt(m), m,
                             FIRST_MOVE_KIND, per)


def _draw(source: Source, spec: ModelSpec, ingredients: FullIngredients, seq_len: int,
          count: int, rng: np.random.Generator) -> CriterionEstimate:
    tokens = sample_sequences_np(source, count, seq_len + 1, rng=rng)  # (n, L+1)
    per = first_move_signal(tokens, spec, ingredients, vocab_size=source.vocab_size)
    return _estimate(spec.sets, per)


def predict_first_move(source: Source, spec: ModelSpec, ingredients: FullIngredients, *,
                       seq_len: int, samples: int = 2000, max_samples: int | None = None,
                       rng: np.random.Generator, time_limit_s: float | None = None
                       ) -> FirstMove:
    """The set the full model's selector moves to first, by Monte Carlo over the source.

    Args:
        source: the source (d, P, prior).
        spec: sizes, windows and the initialisation, ``c_init > 0``.
        ingredients: the model's ingredients (:data:`OFFICIAL_FULL_INGREDIENTS`,
            :data:`LIBRARY_FULL_INGREDIENTS` or any other).
        seq_len: ``L > max(M, max P)``.
        samples: sequences of each draw, >= 2, shared by every set.
        max_samples: adaptive budget (module docstring); None for ``samples``.
        rng: numpy generator, the only randomness.
        time_limit_s: the most estimated seconds accepted (:mod:`theory.work`); None for the
            environment's or the default limit.

    Returns:
        The :class:`FirstMove`.

    Raises:
        InductionHeadsError: on bad arguments, or a request over the memory or the time limit
            (checked before any sampling).
    """
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", type(spec).__name__)
    require(isinstance(ingredients, FullIngredients), "ingredients", "a FullIngredients",
            type(ingredients).__name__)
    require(isinstance(rng, np.random.Generator), "rng", "a numpy.random.Generator",
            type(rng).__name__)
    require(spec.c_init > 0, "spec.c_init", "C > 0 (c̃_S then grows with r_S)", spec.c_init)
    seq_len = as_int(seq_len, "seq_len", minimum=max(spec.window, source.max_parent) + 1,
                     symbol="L")
    samples = as_int(samples, "samples", minimum=2)
    max_samples = samples if max_samples is None else as_int(
        max_samples, f"max_samples (at least samples = {samples})", minimum=samples)
    d, H, K = source.vocab_size, spec.heads, spec.window + 1
    request = (f"first move for d={d}, H={H}, M={spec.window}, D={spec.degree} at L={seq_len} "
               f"over {samples} sequences a draw (budget {max_samples})")
    require_memory(FIRST_MOVE_ARRAYS * samples * (seq_len + 1) * H * (K + d) * FLOAT_BYTES,
                   request, "pass fewer samples")
    require_time(FIRST_MOVE_UNIT_S * max_samples * (seq_len + 1) * H * K * d, request,
                 "pass fewer samples or a smaller max_samples", limit_s=time_limit_s)
    est = _draw(source, spec, ingredients, seq_len, samples, rng)
    est = sample_until_decided(
        est, lambda k: _draw(source, spec, ingredients, seq_len, k, rng),
        chunk=samples, budget=max_samples, z=DECIDABLE_Z)
    values = np.asarray(est.values)
    order = np.argsort(-values, kind="stable")
    best, second = int(order[0]), int(order[1])
    margin = float(values[best] - values[second])
    unit = est.difference_stderr(best, second)
    margin_se = margin / unit if unit > 0 else (math.inf if margin > 0 else 0.0)
    return FirstMove(source=source, spec=spec, ingredients=ingredients, seq_len=seq_len,
                     estimate=est, first_set=spec.sets[best], runner_up=spec.sets[second],
                     margin=margin, margin_se=margin_se, decidable=margin_se >= DECIDABLE_Z,
                     max_samples=max_samples)
