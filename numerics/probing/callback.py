"""A training callback that probes the model at every logged step, whatever the model is.

A trainer calls ``callback(model, step)`` at every logged step, with the model in eval mode under
``torch.no_grad()`` (:func:`numerics.train` with a :class:`numerics.training.standard.StandardTrainConfig`), and stores the JSON
mapping it returns. :func:`probe_callback` builds one that runs :func:`numerics.probe` on fixed
held-out sequences. What the probe reads as the prediction of ``x_{L+1}``
(:func:`next_token_model`):

    ``StandardTransformer``      ``model.next_token_probs``: context (n, L) -> (n, d)
    ``InductionHeadModel``,      the module itself: context (n, L) -> ŷ (n, d)
    ``FullInductionHeadModel``
    any other callable           itself, the probe's model convention

With ``attention=True`` the probe also reads the model's attention taps through
:func:`numerics.probing.attention_taps` ``(model)``, which names the taps of each library model
and declares how to read them: the first and the last block's ``hook_pattern`` of a
``StandardTransformer`` (n, heads, L, L); ``copier.attention`` and ``classifier.attention`` of
``InductionHeadModel`` ((H, M) and (n, L)); ``copier.position_attention`` and
``classifier.attention`` of ``FullInductionHeadModel`` ((n, H, L+1, K) per position, and
(n, L)). A sequence of tap names instead of ``True`` picks the taps of any
model whose ``model(tokens, return_taps=True)`` returns ``(output, taps)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from numerics.probing.adapters import attention_taps
from numerics.probing.measure import probe
from theory.errors import require
from theory.sources.spec import Source

__all__ = ["probe_callback", "next_token_model", "ProbeCallback"]

ProbeCallback = Callable[[Any, int], dict[str, Any]]
"""``callback(model, step) -> ProbeReport.to_dict()``."""


def next_token_model(model: Any) -> Callable[[Any], Any]:
    """The callable the probe reads for ``model``: context ``(n, L)`` -> ``(n, d)`` of ``x_{L+1}``.

    Args:
        model: a :class:`StandardTransformer`, a library TF model, or any callable (module
            docstring).

    Raises:
        InductionHeadsError: when ``model`` is not callable.
    """
    reader = getattr(model, "next_token_probs", None)
    if callable(reader):  # a model whose forward returns more than x_(L+1)'s probabilities
        return reader
    require(callable(model), "model", "a StandardTransformer, a library TF model or a callable "
            "context (n, L) -> probabilities (n, d)", type(model).__name__)
    return model


def _check_attention(attention: Any) -> bool | tuple[str, ...]:
    if isinstance(attention, bool):
        return attention
    names = tuple(attention) if isinstance(attention, Sequence) and not isinstance(
        attention, str) else None
    require(names is not None and len(names) >= 1 and all(isinstance(s, str) for s in names),
            "attention", "True, False or a sequence of one or more tap names",
            attention if not isinstance(attention, Mapping) else type(attention).__name__)
    return names


def probe_callback(source: Source, spec: Any, *, tokens: Any, kernels: Any = None,
                   structures: Any = None, limit: Any, attention: bool | Sequence[str] = False,
                   **probe_kwargs: Any) -> ProbeCallback:
    """A callback that probes the model on fixed held-out sequences at every logged step.

    Args:
        source: the source of ``tokens``.
        spec: the ``theory.ModelSpec`` whose sizes (H, M, D) give the scored head sets.
        tokens: held-out sequences ``(n, L+1)``, the same at every step.
        kernels: their kernels (for the oracle reference), or None.
        structures: their structures (for the oracle-structure reference of a prior with two
            or more structures), or None.
        limit: ``theory.predict_limit(source, spec, seq_len=L, ...)``, computed once.
        attention: True to hand the probe the model's attention taps (those
            :func:`numerics.probing.attention_taps` names for it), a sequence of tap names to
            pick them, False for none.
        **probe_kwargs: further keywords of :func:`numerics.probe` (e.g. ``sets``).

    Returns:
        ``callback(model, step) -> ProbeReport.to_dict()`` for any model of the module
        docstring (e.g. for :func:`numerics.train`).

    Raises:
        InductionHeadsError: on a bad ``attention`` here; in the callback, on a model that is not
            callable, ``attention=True`` for a model that is none of the library models, or tap
            names the model does not have.
    """
    taps = _check_attention(attention)

    def callback(model: Any, step: int) -> dict[str, Any]:
        reads = None
        if taps:
            reads = attention_taps(model, None if taps is True else taps)
        report = probe(next_token_model(model), source, spec, tokens=tokens, kernels=kernels,
                       structures=structures, limit=limit, attention=reads, **probe_kwargs)
        return report.to_dict()

    return callback
