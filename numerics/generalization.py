"""Where a trained TF(M, H, d, D) transfers: its loss against GIH, Bayes and the oracle.

The model's parameters ``w`` (H, M), ``C`` (|𝒮|,) and ``a`` do not depend on the vocabulary, so a
model trained on ``d`` tokens runs unchanged on any other ``d`` (:func:`with_vocab`). For a test
source and context length ``L`` (n fresh sequences of ``L + 1`` tokens) :func:`evaluate_predictors`
reports the mean cross-entropy ``mean -log max(ŷ(x_{L+1}), LOSS_FLOOR)`` of

    model       the trained transformer,
    gih_a       the generalized induction head on ``S*`` at the model's own temperature ``a``,
    gih_inf     the GIH at ``a = ∞`` (the predicted limit),
    bayes       the Dirichlet posterior predictive with the true parents (Dirichlet priors only;
                NaN otherwise; the Bayes-optimal predictor for that prior),
    oracle      ``π(·|z*)`` of each sequence's own kernel (a lower bound),

all on the same sequences. :func:`generalization_sweep` runs it over named test sources and lengths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from numerics.data import sample_sequences
from numerics.model import InductionHeadModel
from theory.errors import require
from theory.predictors import bayes_predict, gih_predict, oracle_predict, prediction_loss
from theory.spec import Dirichlet, Source

__all__ = ["PREDICTORS", "with_vocab", "evaluate_predictors", "TransferRow",
           "generalization_sweep"]

PREDICTORS = ("model", "gih_a", "gih_inf", "bayes", "oracle")
"""Column names of :func:`evaluate_predictors` (module docstring)."""

_EVAL_CHUNK = 4096
"""Sequences per forward pass in :func:`evaluate_predictors` (bounds the match tensors' memory)."""


def with_vocab(model: InductionHeadModel, vocab_size: int) -> InductionHeadModel:
    """A copy of ``model`` (same spec, loss, dtype, device and parameters) on ``d = vocab_size``."""
    require(isinstance(model, InductionHeadModel), "model", "an InductionHeadModel",
            type(model).__name__)
    out = InductionHeadModel(model.spec, int(vocab_size), loss=model.loss_kind,
                             dtype=model.w.dtype, device=model.w.device)
    out.load_state_dict(model.state_dict())
    return out


def _model_probs(model: InductionHeadModel, context: torch.Tensor) -> np.ndarray:
    """ŷ (n, d) in float64 numpy, in chunks of :data:`_EVAL_CHUNK` sequences, no autograd."""
    parts = []
    with torch.no_grad():
        for lo in range(0, context.shape[0], _EVAL_CHUNK):
            parts.append(model(context[lo:lo + _EVAL_CHUNK]).double().cpu().numpy())
    return np.concatenate(parts)  # (n, d)


def evaluate_predictors(model: InductionHeadModel, tokens: torch.Tensor, source: Source, *,
                        selected: Sequence[int], kernels: torch.Tensor | None = None
                        ) -> dict[str, float]:
    """Mean loss of every predictor of :data:`PREDICTORS` on the same sequences.

    Args:
        model: the trained model; rebuilt on ``source.vocab_size`` when that differs.
        tokens: int64 ``(n, L+1)``: context ``x_1..x_L`` then the target.
        source: the source the sequences came from (d, P, prior).
        selected: ``S*``, the offsets of the GIH similarity (the model's selected set).
        kernels: ``(n,) + (d,)*k + (d,)`` the sequences' own kernels (for the oracle), or None.

    Returns:
        ``{name: mean loss}``; ``bayes`` is NaN for a non-Dirichlet prior, ``oracle`` NaN
        without kernels.
    """
    require(isinstance(tokens, torch.Tensor) and tokens.dim() == 2, "tokens",
            "an int64 tensor (n, L+1)", getattr(tokens, "shape", type(tokens)))
    if model.vocab_size != source.vocab_size:
        model = with_vocab(model, source.vocab_size)
    d = source.vocab_size
    context = tokens[:, :-1].to(model.w.device)  # (n, L)
    ctx_np = tokens[:, :-1].cpu().numpy()  # (n, L)
    y = tokens[:, -1].cpu().numpy()  # (n,)
    a = float(model.a.detach())
    out = {
        "model": prediction_loss(_model_probs(model, context), y),
        "gih_a": prediction_loss(gih_predict(ctx_np, selected, max(a, 0.0), vocab_size=d), y),
        "gih_inf": prediction_loss(gih_predict(ctx_np, selected, np.inf, vocab_size=d), y),
        "bayes": float("nan"),
        "oracle": float("nan"),
    }
    if isinstance(source.prior, Dirichlet):
        probs = bayes_predict(ctx_np, source.parents, source.prior.alpha, vocab_size=d)
        out["bayes"] = prediction_loss(probs, y)
    if kernels is not None:
        probs = oracle_predict(ctx_np, source.parents, kernels.double().cpu().numpy())
        out["oracle"] = prediction_loss(probs, y)
    return out


@dataclass(frozen=True)
class TransferRow:
    """One test condition of :func:`generalization_sweep`.

    Attributes:
        name: the condition's name (a key of the ``sources`` mapping).
        source: the test source.
        seq_len: the context length ``L``.
        losses: ``{predictor: mean loss}`` over :data:`PREDICTORS`.
    """

    name: str
    source: Source
    seq_len: int
    losses: Mapping[str, float]

    @property
    def excess_over_gih(self) -> float:
        """``loss(model) - loss(GIH at a = ∞)``: < 0 where the finite ``a`` helps."""
        return self.losses["model"] - self.losses["gih_inf"]


def generalization_sweep(model: InductionHeadModel, sources: Mapping[str, Source],
                         lengths: Sequence[int], *, selected: Sequence[int], n: int,
                         generator: torch.Generator) -> list[TransferRow]:
    """Evaluate ``model`` on every (source, L) pair with ``n`` fresh sequences each.

    Args:
        model: the trained model.
        sources: named test sources (may differ in d, P and prior from the training source).
        lengths: context lengths ``L`` (each > max(M, max P)).
        selected: ``S*`` for the GIH columns.
        n: sequences per condition.
        generator: CPU torch generator, the only randomness (conditions in the given order).

    Returns:
        One :class:`TransferRow` per (source, L), sources outer, lengths inner.
    """
    require(len(sources) >= 1 and len(lengths) >= 1, "sweep",
            "at least one source and one length", (list(sources), list(lengths)))
    rows = []
    for name, src in sources.items():
        for seq_len in lengths:
            tokens, kernels = sample_sequences(src, n, int(seq_len) + 1, generator=generator,
                                               return_kernels=True)
            losses = evaluate_predictors(model, tokens, src, selected=selected, kernels=kernels)
            rows.append(TransferRow(name, src, int(seq_len), losses))
    return rows
