"""Reference losses of a source: the cross-entropy of every reference predictor of ``x_{L+1}``.

:func:`reference_losses` draws held-out sequences ``x_1..x_{L+1}`` with
:func:`theory.sources.sequences.sample_sequences_np` (each with its own kernel) and scores, on
the context ``x_1..x_L``, the prediction of ``x_{L+1}`` (mean cross-entropy in nats, floored
as in :data:`theory.predictors.reference.LOSS_FLOOR`, with its standard error over sequences):

- ``uniform``: ``1/d``; its loss is ``log d`` exactly, standard error 0;
- ``unigram``: the in-context token frequencies ``(N(e) + α) / (L + dα)``;
- ``ngram(S)`` for every non-empty subset ``S`` of the source's parents (for a Switching
  source the union of its parent sets), spelled with :func:`theory.notation.head_set_label`:
  the add-α n-gram estimator on the offsets ``S``, ``(N_S(z*_S, e) + α) / (N_S(z*_S) + dα)``
  (:func:`theory.predictors.reference.bayes_predict` with parents ``S``), the Bayes predictive
  of a Dirichlet(α) prior whose parents were ``S``. The unigram is its empty set. It differs
  from the probe's ``gih_inf(S)`` (the GIH at ``a = ∞``, :mod:`numerics.probing`) where no
  position matches the query: the n-gram estimator predicts uniformly there, the GIH the
  in-context unigram;
- ``bayes``: the posterior predictive of the source's prior
  (:func:`theory.predictors.bayes.bayes_predict_prior`, conditional on the start tokens);
- ``oracle``: each sequence's own kernel at the query (:func:`theory.predictors.reference.oracle_predict`).

``α`` is the smoothing of :func:`reference_smoothing`: the prior's concentration when it has
one, else :data:`theory.predictors.positional.ADDITIVE_SMOOTHING`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from theory.errors import require
from theory.notation import head_set_label, json_float
from theory.predictors.bayes import bayes_predict_prior
from theory.predictors.positional import ADDITIVE_SMOOTHING
from theory.predictors.reference import bayes_predict, oracle_predict, per_sequence_loss
from theory.sizes import FLOAT_BYTES, MAX_HEAD_SETS, require_memory
from theory.sources.presets import Preset
from theory.sources.priors import Dirichlet, FiniteMixture, Mixture, Switching
from theory.sources.sequences import START_MODES, sample_sequences_np
from theory.sources.spec import Source
from theory.validation import as_float, as_generator, as_int

__all__ = ["ReferenceLoss", "ReferenceLosses", "reference_losses", "reference_smoothing",
           "ngram_name", "ngram_sets"]


@dataclass(frozen=True)
class ReferenceLoss:
    """One reference's mean cross-entropy of ``x_{L+1}`` (nats) and its standard error."""

    loss: float
    se: float

    def to_dict(self) -> dict[str, Any]:
        return {"loss": json_float(self.loss), "se": json_float(self.se)}


@dataclass(frozen=True)
class ReferenceLosses:
    """The reference losses of one source at one context length.

    Attributes:
        source: the source the sequences were drawn from.
        seq_len: ``L``, the context length.
        start: the start mode of the sequences.
        sequences: ``n``, the held-out sequences.
        smoothing: ``α`` of ``unigram`` and the ``ngram(S)`` references.
        losses: name -> :class:`ReferenceLoss`, in the order ``uniform``, ``unigram``,
            ``ngram(S)`` (by size, then lexicographic), ``bayes`` (when computed), ``oracle``.
    """

    source: Source
    seq_len: int
    start: str
    sequences: int
    smoothing: float
    losses: dict[str, ReferenceLoss]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``source``, ``seq_len``, ``start``, ``sequences``, ``smoothing`` and
        ``references`` (name -> ``{"loss", "se"}``)."""
        return {"source": self.source.to_dict(), "seq_len": self.seq_len, "start": self.start,
                "sequences": self.sequences, "smoothing": self.smoothing,
                "references": {name: ref.to_dict() for name, ref in self.losses.items()}}


def ngram_name(head_set: tuple[int, ...]) -> str:
    """``"ngram(1, 2)"``: the name of the add-α n-gram reference on the offsets ``S``."""
    return f"ngram{head_set_label(head_set)}"


def ngram_sets(source: Source) -> tuple[tuple[int, ...], ...]:
    """The non-empty subsets of the source's parents, by size then lexicographic.

    For a Switching source the parents are the union of its parent sets (the source's ``P``).
    """
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    parents = source.parents
    require(2 ** len(parents) - 1 <= MAX_HEAD_SETS, "parents",
            f"at most {MAX_HEAD_SETS} non-empty subsets", parents)
    return tuple(s for size in range(1, len(parents) + 1)
                 for s in itertools.combinations(parents, size))


def reference_smoothing(source: Source) -> float:
    """``α`` of the count references: the prior's concentration when it has a single one.

    Dirichlet(α): α; a Mixture or Switching whose components share one α (every Switching
    component Dirichlet): that α; a FiniteMixture drawn from Dirichlet(α) rows: α. Otherwise
    (a Fixed kernel, unequal concentrations, fixed kernels): the add-constant
    :data:`theory.predictors.positional.ADDITIVE_SMOOTHING`.
    """
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    prior = source.prior
    if isinstance(prior, Dirichlet):
        return prior.alpha
    if isinstance(prior, (Mixture, Switching)):
        alphas = {c.alpha for c in prior.components}
        if len(alphas) == 1 and None not in alphas:
            return float(alphas.pop())
    if isinstance(prior, FiniteMixture) and prior.drawn is not None:
        return float(prior.drawn[0])
    return ADDITIVE_SMOOTHING


def _summary(losses: np.ndarray) -> ReferenceLoss:
    n = losses.size
    return ReferenceLoss(float(losses.mean()), float(losses.std(ddof=1) / math.sqrt(n)))


def reference_losses(preset_or_source: Preset | Source, seq_len: int | None = None, *,
                     sequences: int, rng: np.random.Generator, start: str | None = None,
                     smoothing: float | None = None, bayes: bool = True) -> ReferenceLosses:
    """The cross-entropy of every reference predictor of ``x_{L+1}`` (module docstring).

    Args:
        preset_or_source: a :class:`theory.sources.presets.Preset` (its source, ``L`` and start
            mode are the defaults) or a :class:`theory.sources.spec.Source`.
        seq_len: ``L > max(P)``; required with a source, a preset's ``L`` by default.
        sequences: ``n >= 2`` held-out sequences.
        rng: numpy generator (keyword-only): the sequences first, then, for a mixture prior of
            two or more components, the Bayes predictive's particle filter.
        start: ``"uniform"`` or ``"stationary"``; a preset's start mode by default, else
            ``"uniform"``.
        smoothing: ``α`` of the count references (default :func:`reference_smoothing`).
        bayes: whether to compute ``bayes`` (a particle filter for a mixture of two or more
            components, the slowest reference there).

    Returns:
        :class:`ReferenceLosses`.

    Raises:
        InductionHeadsError: on a bad source, length, count, start or smoothing, or a request
            over the memory limit of :mod:`theory.sizes`.
    """
    if isinstance(preset_or_source, Preset):
        source = preset_or_source.source
        seq_len = preset_or_source.seq_len if seq_len is None else seq_len
        start = preset_or_source.start if start is None else start
    else:
        source = preset_or_source
        require(isinstance(source, Source), "preset_or_source", "a theory.Preset or a "
                "theory.Source", type(source).__name__)
        require(seq_len is not None, "seq_len", "L for a source (a preset carries its own)",
                seq_len)
    start = "uniform" if start is None else start
    require(isinstance(start, str) and start in START_MODES, "start", f"one of {START_MODES}",
            start)
    d, r = source.vocab_size, source.max_parent
    L = as_int(seq_len, "seq_len", minimum=r + 1, symbol="L")
    n = as_int(sequences, "sequences", minimum=2)
    rng = as_generator(rng, needed_for="the held-out sequences are drawn at random")
    alpha = reference_smoothing(source) if smoothing is None else as_float(
        smoothing, "smoothing", positive=True)
    sets = ngram_sets(source)
    # held at once: tokens, kernels, the similarity and two (n, L) temporaries, the predictions
    held = n * ((L + 1) + d ** (source.order + 1) + 3 * L + (len(sets) + 4) * d)
    require_memory(FLOAT_BYTES * held, f"the reference losses of n={n} sequences of L={L} "
                   f"tokens (d={d}, {len(sets)} n-gram set(s))", "pass fewer sequences")
    tokens, kernels = sample_sequences_np(source, n, L + 1, rng=rng, start=start,
                                          return_kernels=True)  # (n, L+1), (n,)+(d,)*k+(d,)
    context, target = tokens[:, :L], tokens[:, L]  # (n, L), (n,)
    losses = {"uniform": ReferenceLoss(math.log(d), 0.0)}  # -log(1/d) for every sequence
    losses["unigram"] = _summary(per_sequence_loss(bayes_predict(context, (), alpha,
                                                                 vocab_size=d), target))
    for s in sets:
        probs = bayes_predict(context, s, alpha, vocab_size=d)  # (n, d)
        losses[ngram_name(s)] = _summary(per_sequence_loss(probs, target))
    oracle = _summary(per_sequence_loss(oracle_predict(context, source.parents, kernels),
                                        target))
    if bayes:
        losses["bayes"] = _summary(per_sequence_loss(
            bayes_predict_prior(context, source, rng=rng), target))
    losses["oracle"] = oracle
    return ReferenceLosses(source, L, start, n, alpha, losses)
