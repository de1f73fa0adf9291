"""Calling any next-token model the same way: the calling convention, batching, outputs, logits,
taps.

A model is any callable ``tokens (n, L) int64 -> (n, d)`` next-token probabilities for the
position ``L+1`` (per-position callables return ``(n, L, d)``). What the probe hands it:

- ``"torch"``: an int64 ``torch.Tensor`` on the model's device (the device of its first
  parameter or buffer; the CPU when it has none), under ``torch.no_grad()``;
- ``"numpy"``: an int64 ``numpy`` array.

``call_with="auto"`` picks ``"torch"`` for a callable that is or wraps a ``torch.nn.Module``
(:func:`wrapped_module`: the module itself, :func:`from_logits`, :func:`attention_taps` or
:func:`numerics.from_hf` around one, a bound method of one, a ``functools.partial`` over one, a
function whose closure or referenced globals hold one) and ``"numpy"`` for any other callable.
A model that raises when called is re-raised as an :class:`InductionHeadsError` naming what it
was handed (array type, dtype, shape, device) and the ``call_with`` value that hands the other. Outputs may be numpy
arrays or torch tensors (detached, moved to the CPU, cast to float64); complex outputs are
refused, and half-precision ones (float16, bfloat16) are checked at the looser row-sum tolerance
of :data:`HALF_PRECISION_ATOL`.

The model receives a fresh copy of its input on every call, never the probe's own context
buffer, and the probe compares that copy with the context after the call: a model that writes
into its input is refused, since the outputs it returned may have been computed from tokens the
probe no longer scores against.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy.special import softmax

from numerics.devices import module_device
from numerics.probing.attention import ATTENTION_LAYOUTS
from theory.errors import InductionHeadsError, require
from theory.validation import is_int

__all__ = ["CALL_CONVENTIONS", "HALF_PRECISION_ATOL", "LogitsAdapter", "TapsAdapter", "from_logits", "attention_taps",
           "call_convention", "call_model", "call_once", "output_atol", "to_numpy", "wrapped_module"]

CALL_CONVENTIONS = ("auto", "torch", "numpy")
"""What a model is called with: chosen by its type, a torch tensor, or a numpy array."""

HALF_PRECISION_ATOL = {"float16": 2.0**-9, "bfloat16": 2.0**-6}
"""Accepted ``|row sum - 1|`` of half-precision outputs, by dtype name: twice the dtype's machine
epsilon (``2^-10`` for float16, ``2^-7`` for bfloat16). Rounding a normalised row entry by entry
to such a dtype moves each entry by at most half an epsilon of its value, so the row sum by at
most half an epsilon; summing or renormalising in that precision adds as much again. The
float32 tolerance (:data:`theory.predictors.probabilities.PROB_SUM_ATOL`, 1e-4) is below one
float16 epsilon and would refuse correct half-precision probabilities; an unnormalised row
(logits, scores) is still off by far more than these."""


_WRAP_DEPTH = 3
"""How many wrappers deep :func:`wrapped_module` looks (a partial of a closure of a method...)."""


def _candidates(obj: Any) -> list[Any]:
    """What a callable may call: the objects :func:`wrapped_module` looks through."""
    if isinstance(obj, functools.partial):
        return [obj.func, *obj.args, *obj.keywords.values()]
    if inspect.ismethod(obj):
        return [obj.__self__]
    if inspect.isfunction(obj):
        found = []
        for cell in obj.__closure__ or ():
            try:
                found.append(cell.cell_contents)
            except ValueError:  # a cell not yet filled
                continue
        names = obj.__code__.co_names
        return found + [obj.__globals__[s] for s in names if s in obj.__globals__]
    inner = getattr(obj, "model", None)  # the library's adapters, and any object wrapping .model
    return [] if inner is None or not callable(obj) else [inner]


def wrapped_module(model: Any) -> torch.nn.Module | None:
    """The ``torch.nn.Module`` that ``model`` is or wraps, else None (module docstring).

    Looks through bound methods, ``functools.partial``, a function's closure cells and the
    globals its code names, and callables holding the module as ``.model``, up to three levels
    deep; the first module found is the one whose device the probe hands tensors on.
    """
    seen: set[int] = set()

    def find(obj: Any, depth: int) -> torch.nn.Module | None:
        if isinstance(obj, torch.nn.Module):
            return obj
        if depth >= _WRAP_DEPTH or id(obj) in seen:
            return None
        seen.add(id(obj))
        for candidate in _candidates(obj):
            if isinstance(candidate, torch.nn.Module) or callable(candidate):
                found = find(candidate, depth + 1)
                if found is not None:
                    return found
        return None

    return find(model, 0)


def call_convention(model: Any, call_with: str = "auto") -> str:
    """``"torch"`` or ``"numpy"`` for ``model`` (module docstring)."""
    require(call_with in CALL_CONVENTIONS, "call_with", f"one of {CALL_CONVENTIONS}", call_with)
    if call_with != "auto":
        return call_with
    if isinstance(model, (LogitsAdapter, TapsAdapter)) and model.call_with != "auto":
        return model.call_with
    return "torch" if wrapped_module(model) is not None else "numpy"


def _device(model: Any) -> torch.device:
    inner = wrapped_module(model)
    return torch.device("cpu") if inner is None else module_device(inner)


def _handed(value: Any) -> str:
    """What a model was called with, in words."""
    if isinstance(value, torch.Tensor):
        return f"a torch.Tensor ({value.dtype}, shape {tuple(value.shape)}, on {value.device})"
    return f"a numpy.ndarray ({value.dtype}, shape {value.shape})"


def _call(model: Any, handed: Any, kind: str, call_with: str, what: str) -> Any:
    """``model(handed)``, its exceptions re-raised naming the calling convention."""
    try:
        return model(handed)
    except InductionHeadsError:
        raise
    except Exception as err:
        other = "numpy" if kind == "torch" else "torch"
        chosen = (f'call_with="{kind}"' if call_with != "auto" else
                  f'call_with="auto" chose "{kind}": the callable '
                  + ("is or wraps a torch.nn.Module" if kind == "torch"
                     else "is not and wraps no torch.nn.Module"))
        raise InductionHeadsError(
            f"{what}: the model raised {type(err).__name__} ({err}) when called with "
            f"{_handed(handed)} ({chosen}); pass call_with=\"{other}\" to probe (or to "
            f"from_logits / attention_taps) to hand it "
            + ("an int64 numpy array" if other == "numpy"
               else "an int64 torch.Tensor on the device of the module it wraps")) from err


def _refuse_complex(dtype: Any, what: str) -> None:
    raise InductionHeadsError(
        f"{what}: expected a real float array, received complex entries ({dtype}); "
        "probabilities are real (take the real part or the modulus yourself if that is meant)")


def to_numpy(value: Any, what: str) -> np.ndarray:
    """A model output as float64 numpy (torch tensors detached and moved to the CPU).

    Raises:
        InductionHeadsError: on complex entries (casting them to float would drop the imaginary
            part silently) and on anything that is not a float array.
    """
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            _refuse_complex(value.dtype, what)
        return value.detach().to("cpu", torch.float64).numpy()
    require(not isinstance(value, (tuple, list, dict, str)) and value is not None, what,
            "an array or tensor (use attention_taps for models that also return taps)",
            type(value).__name__)
    try:
        arr = np.asarray(value)
        if np.iscomplexobj(arr):
            _refuse_complex(arr.dtype, what)
        return np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError) as err:
        if isinstance(err, InductionHeadsError):
            raise
        raise InductionHeadsError(
            f"{what}: expected a float array, received {type(value).__name__} ({err})") from None


def output_atol(value: Any, atol: float) -> float:
    """The row-sum tolerance for the output ``value``: ``atol``, or for a float16 / bfloat16
    output at least :data:`HALF_PRECISION_ATOL` of its dtype."""
    dtype = getattr(value, "dtype", None)
    name = str(dtype).removeprefix("torch.") if dtype is not None else ""
    return max(atol, HALF_PRECISION_ATOL.get(name, 0.0))


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

    Both shapes are probed: :func:`numerics.probe` reads ``x_{L+1}`` from an ``(n, d)`` output,
    or from the last row ``l = L`` of an ``(n, L, d)`` one (a causal language model's logits at
    every position), and ``per_position=`` takes the ``(n, L, d)`` rows in full.

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
    """A fresh int64 copy of ``tokens`` for the model: it shares no memory with the probe's."""
    if kind == "torch":
        return torch.tensor(tokens, dtype=torch.int64, device=device)
    return np.array(tokens, dtype=np.int64, order="C", copy=True)


def _require_unchanged(handed: Any, kept: np.ndarray, what: str) -> None:
    """Refuse a call that wrote into its input (module docstring)."""
    seen = handed.detach().cpu().numpy() if isinstance(handed, torch.Tensor) else handed
    if not (isinstance(seen, np.ndarray) and np.array_equal(seen, kept)):
        raise InductionHeadsError(
            f"{what}: expected a model that leaves its input tokens unchanged, received one "
            "that wrote into them (its outputs may not belong to the probed sequences; copy "
            "the input inside the model before changing it)")


def call_model(model: Any, tokens: np.ndarray, *, call_with: str = "auto",
               batch_size: int | None = None, atol: float,
               check: Callable[[np.ndarray, int, str, float], np.ndarray]) -> np.ndarray:
    """Call ``model`` on ``tokens`` (n, L) in batches and validate every batch's output.

    Args:
        model: the callable.
        tokens: int64 ``(n, L)``.
        call_with: one of :data:`CALL_CONVENTIONS`.
        batch_size: sequences per call, or None for one call.
        atol: accepted ``|row sum - 1|`` of float32 and float64 outputs (half-precision ones get
            :func:`output_atol`).
        check: ``(output, batch n, what, atol) -> float64 array``, the output validator.

    Raises:
        InductionHeadsError: when a call writes into its input, or ``check`` refuses an output.

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
            handed = _prepare(tokens[start:stop], kind, device)
            out = _call(model, handed, kind, call_with, what)
            _require_unchanged(handed, tokens[start:stop], what)
            parts.append(check(to_numpy(out, what), stop - start, what, output_atol(out, atol)))
    return np.concatenate(parts, axis=0)


def call_once(fn: Any, tokens: np.ndarray, *, call_with: str = "auto") -> Any:
    """Call ``fn`` once on all of ``tokens`` (for attention callables, which are not batched)."""
    require(callable(fn), "attention", "a mapping or a callable returning one",
            type(fn).__name__)
    kind = call_convention(fn, call_with)
    device = _device(fn) if kind == "torch" else torch.device("cpu")
    with torch.no_grad():
        handed = _prepare(tokens, kind, device)
        out = _call(fn, handed, kind, call_with, "attention")
    _require_unchanged(handed, tokens, "attention")
    return out
