"""Held-out losses and the best-GIH loss: views of the probe's query table.

The probe's query table (:func:`numerics.probing.score_query`, the ``last`` table of a
:class:`numerics.ProbeReport`) is the one place a model and the reference predictors are scored
on held-out sequences; this module reads it into the loss dictionaries reports and figures
show:

- :func:`losses_view`: the model, the GIH on one head set at the trained ``a``, at a given
  ``a*`` and at ``a = ∞`` (unsmoothed), the Bayes predictive of the source's prior and the
  oracle, keyed by :data:`LOSS_KEYS`;
- :func:`best_gih_view`: the GIH of every head set at the temperature best on another sample;
- :func:`heldout_losses`: runs the model and the scorer and returns :func:`losses_view`, for
  callers that have a model and sequences but no probe report.

:func:`gih_at_temperatures` says which GIH rows to ask the scorer for so that the views find
them. A predictor that does not apply is ``None`` (JSON ``null``), never NaN.

Every loss is ``mean -log max(ŷ(target), LOSS_FLOOR)`` (:func:`theory.prediction_loss`). The
floor is reached whenever a predictor gives the target probability zero, e.g. a GIH whose
matching positions never hold the target; the mean is then dominated by ``-log LOSS_FLOOR ≈
27.6`` nats per such sequence. ``floor_hits`` counts those sequences per predictor, so a reader
can tell a real loss from the floor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from numerics.devices import module_device
from numerics.probing import ProbeReport, ScoreTable, score_query
from numerics.training.reports import settled_step
from theory.errors import require
from theory.notation import head_set_label
from theory.predictors.bayes import bayes_predict_prior, needs_monte_carlo
from theory.predictors.probabilities import check_probabilities
from theory.predictors.reference import (
    LOSS_FLOOR,
    optimal_temperature,
)
from theory.sources.spec import Source
from theory.validation import is_int

__all__ = ["EVAL_CHUNK", "LOSS_KEYS", "FITTED_PREFIX", "model_probabilities", "heldout_losses",
           "floor_hits", "gih_at_temperatures", "fitted_temperatures", "losses_view",
           "best_gih_view", "probe_summary"]

EVAL_CHUNK = 4096
"""Sequences per forward pass (bounds the copier's match tensors: O(chunk·L·M²) floats)."""

LOSS_KEYS = ("model", "gih_trained_a", "gih_a_star", "gih_inf", "bayes", "oracle")
"""The predictors :func:`losses_view` reads, in the order reports print them."""

FITTED_PREFIX = "gih_fitted"
"""Name prefix of the scorer's rows of a GIH at a temperature fitted on another sample
(``gih_fitted(1, 2)``), which :func:`best_gih_view` reads."""


def _next_token_fn(model: torch.nn.Module):
    """The callable ``context (B, L) -> ŷ (B, d)`` of a library model."""
    require(isinstance(model, torch.nn.Module), "model",
            "a library model (InductionHeadModel, FullInductionHeadModel, StandardTransformer)",
            type(model).__name__)
    return getattr(model, "next_token_probs", model)


def model_probabilities(model: torch.nn.Module, context: torch.Tensor, *,
                        chunk: int = EVAL_CHUNK) -> np.ndarray:
    """``ŷ`` of ``model`` on ``context``, float64 numpy ``(n, d)``, without autograd.

    Args:
        model: a library model (any device: the context is moved there chunk by chunk).
        context: int64 ``(n, L)``, ``x_1..x_L``.
        chunk: sequences per forward pass, >= 1.
    """
    require(isinstance(context, torch.Tensor) and context.dim() == 2 and context.shape[0] >= 1,
            "context", "an int64 tensor (n, L) with n >= 1", getattr(context, "shape", context))
    require(is_int(chunk) and chunk >= 1, "chunk", "an integer >= 1", chunk)
    fn, device = _next_token_fn(model), module_device(model)
    parts = []
    with torch.no_grad():
        for lo in range(0, context.shape[0], chunk):
            part = context[lo:lo + chunk].to(device)                       # (B, L)
            parts.append(fn(part).double().cpu().numpy())                  # (B, d)
    return np.concatenate(parts)                                           # (n, d)


def floor_hits(model: torch.nn.Module, tokens: torch.Tensor) -> int:
    """Sequences of ``tokens`` (n, L+1) whose target the model gives less than ``LOSS_FLOOR``.

    The count to read beside a training loss: each such sequence adds ``-log LOSS_FLOOR`` nats.
    """
    require(isinstance(tokens, torch.Tensor) and tokens.dim() == 2 and tokens.shape[1] >= 2,
            "tokens", "an int64 tensor (n, L+1)", getattr(tokens, "shape", type(tokens)))
    probs = model_probabilities(model, tokens[:, :-1])                    # (n, d)
    targets = tokens[:, -1].cpu().numpy()                                 # (n,)
    return int(np.sum(probs[np.arange(len(targets)), targets] < LOSS_FLOOR))


def trained_temperature(model: torch.nn.Module) -> float | None:
    """The model's classifier temperature ``a``, or None for a model without one."""
    a = getattr(model, "a", None)
    return float(a.detach()) if isinstance(a, torch.Tensor) else None


def gih_at_temperatures(head_set: Sequence[int], *, trained_a: float | None,
                        a_star: float | None) -> dict[str, tuple[tuple[int, ...], float]]:
    """The scorer's ``gih_at`` rows :func:`losses_view` reads: the GIH on ``head_set`` at the
    trained ``a`` (clipped at 0), at ``a*`` and at ``a = ∞`` (those given)."""
    s = tuple(head_set)
    rows = {"gih_trained_a": None if trained_a is None else (s, max(float(trained_a), 0.0)),
            "gih_a_star": None if a_star is None else (s, float(a_star)),
            "gih_inf": (s, math.inf)}
    return {k: v for k, v in rows.items() if v is not None}


def fitted_temperatures(fit: np.ndarray, sets: Sequence[Sequence[int]], *, vocab_size: int
                        ) -> dict[str, tuple[tuple[int, ...], float]]:
    """The scorer's ``gih_at`` rows :func:`best_gih_view` reads: every head set at the
    temperature ``a*_S`` minimising the GIH loss on ``fit`` (int ``(n_f, L+1)``, a sample the
    model trained on or its evaluation batch, so that the scored sequences do not also choose
    ``a``)."""
    fit = np.asarray(fit)
    require(fit.ndim == 2 and fit.shape[1] >= 2, "fit", "int sequences (n, L+1)", fit.shape)
    return {f"{FITTED_PREFIX}{head_set_label(s)}":
            (tuple(s), optimal_temperature(fit[:, :-1], fit[:, -1], tuple(s),
                                           vocab_size=vocab_size))
            for s in sets}


def losses_view(table: ScoreTable, *, trained_a: float | None, a_star: float | None,
                sequences: int) -> dict[str, Any]:
    """The loss dictionary of a query table scored with :func:`gih_at_temperatures` rows.

    Returns:
        ``{key: mean loss or None}`` for :data:`LOSS_KEYS`, plus ``trained_a``, ``a_star``,
        ``sequences`` and ``floor_hits`` (``{key: sequences at the floor}`` for the present
        predictors).
    """
    names = {s.name: s for s in table.scores}
    out: dict[str, Any] = {"model": table.model_loss}
    hits = {"model": table.model_floor_hits}
    for key in LOSS_KEYS[1:]:
        score = names.get(key)
        out[key] = None if score is None else score.loss
        if score is not None:
            hits[key] = score.floor_hits
    out.update(trained_a=trained_a, a_star=None if a_star is None else float(a_star),
               sequences=int(sequences), floor_hits=hits)
    return out


def best_gih_view(table: ScoreTable) -> dict[str, Any]:
    """The GIH of every head set at its fitted temperature (:func:`fitted_temperatures` rows).

    Returns:
        ``{"by_set": {label: {"a": a*_S, "loss": loss}}, "best_set": [offsets], "best": loss}``
        (ties to the earlier set).
    """
    rows = [s for s in table.scores if s.kind == "gih_at" and s.name.startswith(FITTED_PREFIX)]
    require(bool(rows), "score table", f"rows named {FITTED_PREFIX}(S) (fitted_temperatures)",
            [s.name for s in table.scores])
    best = min(rows, key=lambda s: s.loss)
    return {"by_set": {head_set_label(s.head_set): {"a": s.temperature, "loss": s.loss}
                       for s in rows},
            "best_set": list(best.head_set), "best": best.loss}


def heldout_losses(model: torch.nn.Module, tokens: torch.Tensor, source: Source, *,
                   selected_set: Sequence[int], kernels: torch.Tensor | None = None,
                   a_star: float | None = None, rng: np.random.Generator | None = None,
                   bayes: Any = None) -> dict[str, Any]:
    """Mean held-out loss of the model and of every reference predictor on the same sequences.

    Runs the model (:func:`model_probabilities`), scores it with the probe's scorer
    (:func:`numerics.probing.score_query`) and reads :func:`losses_view`.

    Args:
        model: the trained library model, on ``source``'s vocabulary.
        tokens: int64 ``(n, L+1)``: context ``x_1..x_L`` then the target.
        source: the source the sequences came from (d, P, prior).
        selected_set: the head set ``S`` of the GIH columns (the learned or predicted ``S*``).
        kernels: ``(n,) + (d,)*k + (d,)``, the sequences' own kernels, for the oracle.
        a_star: a temperature for the ``gih_a_star`` column (e.g. ``a*(L)`` of the training
            sample), or None.
        rng: numpy generator of the Bayes column's particle filter, used only for a mixture
            prior of two or more components (:func:`theory.predictors.bayes.needs_monte_carlo`); without
            it (and without ``bayes``) that column is None.
        bayes: the Bayes predictive ``(n, d)`` of these contexts, already computed; replaces
            the computation and ``rng``.

    Returns:
        :func:`losses_view` of the scored table.
    """
    _next_token_fn(model)
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    require(model.vocab_size == source.vocab_size, "model vocab_size",
            f"the source's d = {source.vocab_size}", model.vocab_size)
    require(isinstance(tokens, torch.Tensor) and tokens.dim() == 2 and tokens.shape[1] >= 2,
            "tokens", "an int64 tensor (n, L+1)", getattr(tokens, "shape", type(tokens)))
    d, head_set = source.vocab_size, tuple(int(h) for h in selected_set)
    toks = tokens.cpu().numpy().astype(np.int64)                           # (n, L+1)
    if bayes is not None:
        bayes = check_probabilities(bayes, n=len(toks), vocab_size=d, what="bayes")
    elif rng is not None or not needs_monte_carlo(source):
        bayes = bayes_predict_prior(toks[:, :-1], source, rng=rng)         # (n, d)
    probs = model_probabilities(model, tokens[:, :-1])                     # (n, d)
    probs = probs / probs.sum(axis=1, keepdims=True)
    trained_a = trained_temperature(model)
    table = score_query(probs, toks, source, (head_set,),
                        kernels=None if kernels is None else kernels.double().cpu().numpy(),
                        bayes=bayes, gih_at=tuple(
                            (name, s, a) for name, (s, a) in gih_at_temperatures(
                                head_set, trained_a=trained_a, a_star=a_star).items()))
    return losses_view(table, trained_a=trained_a, a_star=a_star, sequences=len(toks))


def probe_summary(report: ProbeReport, first_layer_tap: str, reports: tuple[Any, ...] = (),
                  steps: Any = ()) -> dict[str, Any]:
    """The ``learned`` fields a probe adds to a verify report.

    Args:
        report: the final probe.
        first_layer_tap: the attention tap that is the model's first layer (its kind's
            :attr:`numerics.training.ModelKind.first_layer_tap`).
        reports: the history's per-row probe reports (for ``settled_step``), or empty.
        steps: the history's steps, aligned with ``reports``.

    Returns:
        ``effective_set`` (the decided set, None when undecided or no GIH fits),
        ``effective_verdict``, ``effective_within_reach``, ``effective_closest`` (the closest
        set whatever the verdict), ``effective_kl``, ``effective_runner_up``,
        ``effective_margin_se``, ``settled_step`` (first logged step from which the decided
        effective set stays at its final value, None without per-step probes or a final
        decision) and ``first_layer`` (``{"head h": [peak offset, mean attention there]}``,
        heads from 1).
    """
    eff = report.last.effective
    first = {f"head {p.head}": [p.peak_offset, float(p.profile[p.peak_offset - 1])]
             for p in report.offsets if p.name == first_layer_tap}
    decided = eff.decided_set
    return {"effective_set": None if decided is None else list(decided),
            "effective_verdict": eff.verdict,
            "effective_within_reach": [list(s) for s in eff.within_reach],
            "effective_closest": list(eff.head_set), "effective_kl": eff.kl,
            "effective_runner_up": None if eff.runner_up is None else list(eff.runner_up),
            "effective_margin_se": eff.margin_se,
            "settled_step": settled_step(steps, reports),
            "first_layer": first}
