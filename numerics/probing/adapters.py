"""Calling any next-token model the same way: the calling convention, batching, outputs, logits,
taps.

A model is any callable ``tokens (n, L) int64 -> (n, d)`` next-token probabilities for the
position ``L+1`` (per-position callables return ``(n, L, d)``). What the probe hands it:

- ``"torch"``: an int64 ``torch.Tensor`` on the model's device (the device of its first
  parameter or buffer; the CPU when it has none), under ``torch.no_grad()``;
- ``"numpy"``: an int64 ``numpy`` array.

``call_with="auto"`` picks ``"torch"`` for a ``torch.nn.Module`` (and for :func:`from_logits` or
:func:`attention_taps` around one) and ``"numpy"`` for any other callable. Outputs may be numpy
arrays or torch tensors (detached, moved to the CPU, cast to float64).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy.special import softmax

from numerics.probing.attention import ATTENTION_LAYOUTS
from theory.errors import InductionHeadsError, require
from theory.validation import is_int

__all__ = ["CALL_CONVENTIONS", "LogitsAdapter", "TapsAdapter", "from_logits", "attention_taps",
           "call_convention", "call_model", "call_once", "to_numpy"]

CALL_CONVENTIONS = ("auto", "torch", "numpy")
"""What a model is called with: chosen by its type, a torch tensor, or a numpy array."""


def _inner(model: Any) -> Any:
    return model.model if isinstance(model, (LogitsAdapter, TapsAdapter)) else model


def call_convention(model: Any, call_with: str = "auto") -> str:
    """``"torch"`` or ``"numpy"`` for ``model`` (module docstring)."""
    require(call_with in CALL_CONVENTIONS, "call_with", f"one of {CALL_CONVENTIONS}", call_with)
    if call_with != "auto":
        return call_with
    if isinstance(model, (LogitsAdapter, TapsAdapter)):
        return call_convention(model.model, model.call_with)
    return "torch" if isinstance(model, torch.nn.Module) else "numpy"


def _device(model: Any) -> torch.device:
    inner = _inner(model)
    if isinstance(inner, (LogitsAdapter, TapsAdapter)):
        return _device(inner)
    if isinstance(inner, torch.nn.Module):
        for tensor in list(inner.parameters()) + list(inner.buffers()):
            return tensor.device
    return torch.device("cpu")


def to_numpy(value: Any, what: str) -> np.ndarray:
    """A model output as float64 numpy (torch tensors detached and moved to the CPU)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64).numpy()
    require(not isinstance(value, (tuple, list, dict, str)) and value is not None, what,
            "an array or tensor (use attention_taps for models that also return taps)",
            type(value).__name__)
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InductionHeadsError(
            f"{what}: expected a float array, received {type(value).__name__} ({err})") from None


class LogitsAdapter:
    """A model returning logits, seen as one returning probabilities (softmax over the last axis).

    Built by :func:`from_logits`. The softmax is taken in float64: ``torch.softmax`` for a
    tensor output, ``scipy.special.softmax`` for an array.

    Attributes:
        model: the wrapped callable.
        call_with: its calling convention (``"auto"`` resolves on the wrapped callable).
    """

    def __init__(self, model: Callable[..., Any], call_with: str = "auto"):
        require(callable(model), "model", "a callable returning logits", type(model).__name__)
        require(call_with in CALL_CONVENTIONS, "call_with", f"one of {CALL_CONVENTIONS}", call_with)
        self.model, self.call_with = model, call_with

    def __call__(self, tokens: Any) -> Any:
        logits = self.model(tokens)
        if isinstance(logits, torch.Tensor):
            return torch.softmax(logits.detach().to(torch.float64), dim=-1)
        return softmax(to_numpy(logits, "logits"), axis=-1)


def from_logits(model: Callable[..., Any], *, call_with: str = "auto") -> LogitsAdapter:
    """Wrap a callable returning logits ``(n, d)`` or ``(n, L, d)`` so it returns probabilities.

    Example::

        report = probe(from_logits(my_transformer), source, spec, ...)
    """
    return LogitsAdapter(model, call_with)


class TapsAdapter:
    """The attention taps of a model called with ``return_taps=True``, as a mapping callable.

    Built by :func:`attention_taps`; calling it returns ``{name: (taps[name], layout)}`` for its
    names, the entries :func:`numerics.probing.attention.summarise_attention` reads.

    Attributes:
        model: a model whose ``model(tokens, return_taps=True)`` returns ``(output, taps)``.
        names: the taps to keep.
        layouts: ``name -> layout`` for every name, one of
            :data:`numerics.probing.attention.ATTENTION_LAYOUTS` (``"auto"``: read by shape).
        call_with: the model's calling convention.
    """

    def __init__(self, model: Callable[..., Any], names: Sequence[str], call_with: str = "auto", *,
                 layouts: Mapping[str, str] | None = None):
        require(callable(model), "model", "a callable accepting return_taps=True",
                type(model).__name__)
        names = tuple(names)
        require(len(names) >= 1 and all(isinstance(s, str) for s in names), "names",
                "one or more tap names", names)
        require(len(set(names)) == len(names), "names", "distinct tap names", names)
        require(call_with in CALL_CONVENTIONS, "call_with", f"one of {CALL_CONVENTIONS}", call_with)
        layouts = {} if layouts is None else dict(layouts)
        unknown = [s for s in layouts if s not in names]
        require(not unknown, "layouts", f"names among the taps {names}", unknown)
        bad = {s: v for s, v in layouts.items() if v not in ATTENTION_LAYOUTS}
        require(not bad, "layouts", f"layouts among {ATTENTION_LAYOUTS}", bad)
        self.model, self.names, self.call_with = model, names, call_with
        self.layouts = {s: layouts.get(s, "auto") for s in names}

    def __call__(self, tokens: Any) -> dict[str, tuple[Any, str]]:
        result = self.model(tokens, return_taps=True)
        require(isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], Mapping),
                "model(tokens, return_taps=True)", "a pair (output, taps mapping)",
                type(result).__name__)
        taps = result[1]
        missing = [s for s in self.names if s not in taps]
        require(not missing, "tap names", f"names among {sorted(taps)}", missing)
        return {s: (taps[s], self.layouts[s]) for s in self.names}


def _library_taps(model: Any) -> tuple[tuple[str, ...], Callable[[str], str]] | None:
    """Default tap names and the layout of a tap name for a model that declares its own
    (``default_taps()`` and ``tap_layout(name)``, as the library's models do), else None."""
    defaults, layout = getattr(model, "default_taps", None), getattr(model, "tap_layout", None)
    if not (callable(defaults) and callable(layout)):
        return None
    return tuple(defaults()), layout


def attention_taps(model: Callable[..., Any], names: Sequence[str] | None = None, *,
                   layouts: Mapping[str, str] | None = None,
                   call_with: str = "auto") -> TapsAdapter:
    """Attention taps of a model for the probe, each with its layout declared.

    Defaults for the library models, which declare them (``default_taps()`` and
    ``tap_layout(name)``; names, then layouts of :mod:`numerics.probing.attention`):

    - :class:`numerics.InductionHeadModel`: ``copier.attention`` (``"copier"``, (H, M)) and
      ``classifier.attention`` (``"query"``, (n, L));
    - :class:`numerics.FullInductionHeadModel`: ``copier.position_attention``
      (``"copier_positions"``,
      (n, H, L+1, K), offset 0 first when the model has self attention) and
      ``classifier.attention`` (``"query"``);
    - :class:`numerics.StandardTransformer`: ``blocks.0.attn.hook_pattern`` (the first layer:
      offset profiles, which parent each head copies) and ``blocks.{n_layers-1}.attn.
      hook_pattern`` (the last layer: the match read-out of its last query row), both
      ``"pattern"``; one name for a one-layer model. Its output is logits at every position,
      so probe ``model.next_token_probs`` with these taps.

    Explicit ``names`` of a library model keep the layout of the taps above (every
    ``blocks.{i}.attn.hook_pattern`` is a ``"pattern"``); any other tap, and every tap of
    another model, is ``"auto"`` (read by shape) unless ``layouts`` says otherwise.

    Args:
        model: a callable with ``model(tokens, return_taps=True) -> (output, taps)``.
        names: the taps to read; required for a model that is not one of the above.
        layouts: ``name -> layout`` overriding the defaults.
        call_with: what the model is called with (:data:`CALL_CONVENTIONS`).

    Returns:
        The :class:`TapsAdapter` to pass as ``probe(..., attention=...)``.

    Example::

        report = probe(model.next_token_probs, source, spec, tokens=held_out, limit=limit,
                       attention=attention_taps(model))
    """
    require(call_with in CALL_CONVENTIONS, "call_with", f"one of {CALL_CONVENTIONS}", call_with)
    library = _library_taps(model)
    if names is None:
        require(library is not None, "names",
                "tap names for a model that does not declare its own (default_taps(), as "
                "InductionHeadModel, FullInductionHeadModel and StandardTransformer do)",
                type(model).__name__)
        names = library[0]
    require(not isinstance(names, str), "names", "a sequence of tap names, not one string",
            names)
    names = tuple(names)
    listed = getattr(model, "tap_names", None)
    if callable(listed):
        available = listed()
        missing = [s for s in names if s not in available]
        require(not missing, "tap names", f"names among {available}", missing)
    declared = {} if library is None else {s: library[1](s) for s in names}
    declared.update({} if layouts is None else dict(layouts))
    return TapsAdapter(model, names, call_with, layouts=declared)


def _prepare(tokens: np.ndarray, kind: str, device: torch.device) -> Any:
    if kind == "torch":
        return torch.as_tensor(tokens, dtype=torch.int64, device=device)
    return np.ascontiguousarray(tokens, dtype=np.int64)


def call_model(model: Any, tokens: np.ndarray, *, call_with: str = "auto",
               batch_size: int | None = None,
               check: Callable[[np.ndarray, int, str], np.ndarray]) -> np.ndarray:
    """Call ``model`` on ``tokens`` (n, L) in batches and validate every batch's output.

    Args:
        model: the callable.
        tokens: int64 ``(n, L)``.
        call_with: one of :data:`CALL_CONVENTIONS`.
        batch_size: sequences per call, or None for one call.
        check: ``(output, batch n, what) -> float64 array``, the output validator.

    Returns:
        The validated outputs concatenated along the sequence axis.
    """
    require(callable(model), "model", "a callable tokens (n, L) -> probabilities",
            type(model).__name__)
    n = tokens.shape[0]
    if batch_size is not None:
        require(is_int(batch_size)
                and batch_size >= 1, "batch_size", "None or an integer >= 1", batch_size)
    size = n if batch_size is None else int(batch_size)
    kind = call_convention(model, call_with)
    device = _device(model) if kind == "torch" else torch.device("cpu")
    parts = []
    with torch.no_grad():
        for start in range(0, n, size):
            stop = min(start + size, n)
            what = "model output" if size >= n else f"model output (sequences {start}..{stop - 1})"
            out = model(_prepare(tokens[start:stop], kind, device))
            parts.append(check(to_numpy(out, what), stop - start, what))
    return np.concatenate(parts, axis=0)


def call_once(fn: Any, tokens: np.ndarray, *, call_with: str = "auto") -> Any:
    """Call ``fn`` once on all of ``tokens`` (for attention callables, which are not batched)."""
    require(callable(fn), "attention", "a mapping or a callable returning one",
            type(fn).__name__)
    kind = call_convention(fn, call_with)
    device = _device(fn) if kind == "torch" else torch.device("cpu")
    with torch.no_grad():
        return fn(_prepare(tokens, kind, device))
