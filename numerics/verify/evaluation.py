"""Held-out scores of a trained model and of the reference predictors, side by side.

One implementation for the verification job, the transfer experiments and the notebooks:
:func:`model_probabilities` runs the model in chunks without autograd, :func:`heldout_losses`
scores it on held-out sequences together with the GIH on a head set (at the trained ``a``, at a
given ``a*`` and at ``a = ∞``), the Bayes posterior predictive of the source's prior
(:func:`theory.predictors.bayes.bayes_predict_prior`: closed form for Dirichlet, Fixed and one-component
mixture priors, a particle-filter estimate for mixtures of two or more components, which needs a
numpy ``rng``) and the oracle (the sequences' own kernels). A predictor that does not apply is
``None`` (JSON ``null``), never NaN.

The model is TF(M, H, d, D) (:class:`numerics.InductionHeadModel`), its full variant
(:class:`numerics.FullInductionHeadModel`), both mapping a context ``(n, L)`` to ``ŷ (n, d)``, or a
:class:`numerics.StandardTransformer`, read through its ``next_token_probs``. Only a model with a
classifier temperature ``a`` has a ``gih_trained_a`` column; for the others it is None.

Every loss is ``mean -log max(ŷ(target), LOSS_FLOOR)`` (:func:`theory.prediction_loss`). The
floor is reached whenever a predictor gives the target probability zero, e.g. a GIH whose
matching positions never hold the target; the mean is then dominated by ``-log LOSS_FLOOR ≈ 27.6``
nats per such sequence. ``floor_hits`` counts those sequences per predictor, so a reader can tell
a real loss from the floor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from theory.errors import require
from theory.predictors.bayes import bayes_predict_prior, needs_monte_carlo
from theory.predictors.probabilities import check_probabilities
from theory.predictors.reference import LOSS_FLOOR, gih_predict, oracle_predict, prediction_loss
from theory.sources.spec import Source

__all__ = ["EVAL_CHUNK", "LOSS_KEYS", "model_probabilities", "heldout_losses", "floor_hits"]

EVAL_CHUNK = 4096
"""Sequences per forward pass (bounds the copier's match tensors: O(chunk·L·M²) floats)."""

LOSS_KEYS = ("model", "gih_trained_a", "gih_a_star", "gih_inf", "bayes", "oracle")
"""The predictors :func:`heldout_losses` scores, in the order reports print them."""


def _next_token_fn(model: torch.nn.Module):
    """The callable ``context (B, L) -> ŷ (B, d)`` of a library model (module docstring)."""
    require(isinstance(model, torch.nn.Module), "model",
            "a library model (InductionHeadModel, FullInductionHeadModel, StandardTransformer)",
            type(model).__name__)
    return getattr(model, "next_token_probs", model)


def _device(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def model_probabilities(model: torch.nn.Module, context: torch.Tensor, *,
                        chunk: int = EVAL_CHUNK) -> np.ndarray:
    """``ŷ`` of ``model`` on ``context``, float64 numpy ``(n, d)``, without autograd.

    Args:
        model: a library model (module docstring; any device: the context is moved there
            chunk by chunk).
        context: int64 ``(n, L)``, ``x_1..x_L``.
        chunk: sequences per forward pass, >= 1.
    """
    require(isinstance(context, torch.Tensor) and context.dim() == 2 and context.shape[0] >= 1,
            "context", "an int64 tensor (n, L) with n >= 1", getattr(context, "shape", context))
    require(isinstance(chunk, int) and chunk >= 1, "chunk", "an integer >= 1", chunk)
    fn, device = _next_token_fn(model), _device(model)
    parts = []
    with torch.no_grad():
        for lo in range(0, context.shape[0], chunk):
            part = context[lo:lo + chunk].to(device)                       # (B, L)
            parts.append(fn(part).double().cpu().numpy())                  # (B, d)
    return np.concatenate(parts)                                           # (n, d)


def _floor_hits(probs: np.ndarray, targets: np.ndarray) -> int:
    """Sequences whose target probability is below the loss floor."""
    return int(np.sum(probs[np.arange(len(targets)), targets] < LOSS_FLOOR))


def floor_hits(model: torch.nn.Module, tokens: torch.Tensor) -> int:
    """Sequences of ``tokens`` (n, L+1) whose target the model gives less than ``LOSS_FLOOR``.

    The count to read beside a training loss: each such sequence adds ``-log LOSS_FLOOR`` nats.
    """
    require(isinstance(tokens, torch.Tensor) and tokens.dim() == 2 and tokens.shape[1] >= 2,
            "tokens", "an int64 tensor (n, L+1)", getattr(tokens, "shape", type(tokens)))
    probs = model_probabilities(model, tokens[:, :-1])                    # (n, d)
    return _floor_hits(probs, tokens[:, -1].cpu().numpy())


def _bayes(ctx: np.ndarray, source: Source, rng: Any, bayes: Any) -> np.ndarray | None:
    """The Bayes column's probabilities ``(n, d)``, or None (:func:`heldout_losses`)."""
    if bayes is not None:
        return check_probabilities(bayes, n=len(ctx), vocab_size=source.vocab_size,
                                   what="bayes")
    if needs_monte_carlo(source) and rng is None:
        return None
    return bayes_predict_prior(ctx, source, rng=rng)


def heldout_losses(model: torch.nn.Module, tokens: torch.Tensor, source: Source, *,
                   selected_set: Sequence[int], kernels: torch.Tensor | None = None,
                   a_star: float | None = None, rng: np.random.Generator | None = None,
                   bayes: Any = None, return_probabilities: bool = False
                   ) -> dict[str, Any] | tuple[dict[str, Any], dict[str, np.ndarray | None]]:
    """Mean held-out loss of the model and of every reference predictor on the same sequences.

    Args:
        model: the trained library model (module docstring), on ``source``'s vocabulary.
        tokens: int64 ``(n, L+1)``: context ``x_1..x_L`` then the target.
        source: the source the sequences came from (d, P, prior).
        selected_set: the head set ``S`` of the GIH columns (the learned or predicted ``S*``).
        kernels: ``(n,) + (d,)*k + (d,)``, the sequences' own kernels, for the oracle.
        a_star: a temperature for the ``gih_a_star`` column (e.g. ``a*(L)`` of the training
            sample), or None.
        rng: numpy generator of the Bayes column's particle filter, used only for a mixture
            prior of two or more components (:func:`theory.predictors.bayes.needs_monte_carlo`); without
            it (and without ``bayes``) that column is None.
        bayes: the Bayes predictive ``(n, d)`` of these contexts, already computed (e.g. the
            estimate the probe also reads); replaces the computation and ``rng``.
        return_probabilities: also return ``{key: (n, d) probabilities or None}``.

    Returns:
        ``{key: mean loss or None}`` for :data:`LOSS_KEYS`, plus ``trained_a`` (None for a
        model without ``a``), ``a_star``,
        ``sequences`` (n) and ``floor_hits`` (``{key: sequences at the floor}`` for the scored
        predictors); with ``return_probabilities``, ``(losses, probabilities)``.
    """
    _next_token_fn(model)
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    require(model.vocab_size == source.vocab_size, "model vocab_size",
            f"the source's d = {source.vocab_size}", model.vocab_size)
    require(isinstance(tokens, torch.Tensor) and tokens.dim() == 2 and tokens.shape[1] >= 2,
            "tokens", "an int64 tensor (n, L+1)", getattr(tokens, "shape", type(tokens)))
    d = source.vocab_size
    ctx = tokens[:, :-1].cpu().numpy()                                     # (n, L)
    y = tokens[:, -1].cpu().numpy()                                        # (n,)
    a = getattr(model, "a", None)
    trained_a = float(a.detach()) if isinstance(a, torch.Tensor) else None
    probs: dict[str, np.ndarray | None] = {
        "model": model_probabilities(model, tokens[:, :-1]),
        "gih_trained_a": (None if trained_a is None
                          else gih_predict(ctx, selected_set, max(trained_a, 0.0), vocab_size=d)),
        "gih_a_star": (None if a_star is None
                       else gih_predict(ctx, selected_set, float(a_star), vocab_size=d)),
        "gih_inf": gih_predict(ctx, selected_set, np.inf, vocab_size=d),
        "bayes": _bayes(ctx, source, rng, bayes),
        "oracle": (None if kernels is None
                   else oracle_predict(ctx, source.parents, kernels.double().cpu().numpy())),
    }                                                                      # each (n, d) or None
    out: dict[str, Any] = {k: (None if p is None else prediction_loss(p, y))
                           for k, p in probs.items()}
    out.update(trained_a=trained_a, a_star=None if a_star is None else float(a_star),
               sequences=int(len(y)),
               floor_hits={k: _floor_hits(p, y) for k, p in probs.items() if p is not None})
    return (out, probs) if return_probabilities else out
