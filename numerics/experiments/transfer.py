"""Where a trained TF(M, H, d, D) transfers: its loss against GIH, Bayes and the oracle.

The model's parameters ``w`` (H, M), ``C`` (|𝒮|,) and ``a`` do not depend on the vocabulary, so a
model trained on ``d`` tokens runs unchanged on any other ``d`` (:func:`with_vocab`). For a test
source and context length ``L`` (n fresh sequences of ``L + 1`` tokens),
:func:`generalization_sweep` scores, with :func:`numerics.verify.heldout_losses` on the same
sequences, the columns :data:`PREDICTORS`:

    model          the trained transformer,
    gih_trained_a  the generalized induction head on the learned set at the model's own ``a``,
    gih_inf        the GIH at ``a = ∞`` (the predicted limit),
    bayes          the posterior predictive of the test source's prior
                   (:func:`theory.predictors.bayes.bayes_predict_prior`; for a mixture of two or more
                   components a particle-filter estimate drawn with ``rng``, None without it),
    oracle         ``π(·|z*)`` of each sequence's own kernel (a lower bound).
"""


from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from numerics.data import sample_sequences
from numerics.models.simplified import InductionHeadModel
from numerics.verify.evaluation import heldout_losses
from theory.errors import require
from theory.sources.spec import Source

__all__ = ["PREDICTORS", "with_vocab", "TransferRow", "generalization_sweep"]

PREDICTORS = ("model", "gih_trained_a", "gih_inf", "bayes", "oracle")
"""The loss columns of a :class:`TransferRow` (module docstring)."""


def with_vocab(model: InductionHeadModel, vocab_size: int) -> InductionHeadModel:
    """A copy of ``model`` (same spec, loss, dtype, device, options and parameters) on
    ``d = vocab_size``."""
    require(isinstance(model, InductionHeadModel), "model", "an InductionHeadModel",
            type(model).__name__)
    out = InductionHeadModel(model.spec, int(vocab_size), loss=model.loss_kind,
                             dtype=model.w.dtype, device=model.w.device,
                             **model.constructor_options())
    out.load_state_dict(model.state_dict())
    return out


@dataclass(frozen=True)
class TransferRow:
    """One test condition of :func:`generalization_sweep`.

    Attributes:
        name: the condition's name (a key of the ``sources`` mapping).
        source: the test source.
        seq_len: the context length ``L``.
        losses: ``{predictor: mean loss or None}`` over :data:`PREDICTORS`.
        floor_hits: ``{predictor: sequences whose target probability sat at the loss floor}``.
    """

    name: str
    source: Source
    seq_len: int
    losses: Mapping[str, float | None]
    floor_hits: Mapping[str, int]

    @property
    def excess_over_gih(self) -> float:
        """``loss(model) - loss(GIH at a = ∞)``: < 0 where the finite ``a`` helps."""
        return self.losses["model"] - self.losses["gih_inf"]


def generalization_sweep(model: InductionHeadModel, sources: Mapping[str, Source],
                         lengths: Sequence[int], *, selected_set: Sequence[int], n: int,
                         generator: torch.Generator, rng: np.random.Generator | None = None
                         ) -> list[TransferRow]:
    """Evaluate ``model`` on every (source, L) pair with ``n`` fresh sequences each.

    Args:
        model: the trained model.
        sources: named test sources (may differ in d, P and prior from the training source).
        lengths: context lengths ``L`` (each > max(M, max P)).
        selected_set: ``S*`` for the GIH columns.
        n: sequences per condition.
        generator: CPU torch generator of the sequences (conditions in the given order).
        rng: numpy generator of the Bayes column's particle filter, drawn from only for a
            mixture prior of two or more components (conditions in the given order); without
            it that column is None for such a source.

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
            scored = (model if model.vocab_size == src.vocab_size
                      else with_vocab(model, src.vocab_size))
            out = heldout_losses(scored, tokens, src, selected_set=selected_set, kernels=kernels,
                                 rng=rng)
            rows.append(TransferRow(name, src, int(seq_len), {k: out[k] for k in PREDICTORS},
                                    dict(out["floor_hits"])))
    return rows
