"""Hugging Face and TransformerLens language models as probe models, attention included.

:func:`from_hf` wraps a Hugging Face causal LM (any module whose ``forward(input_ids=...)``
returns an object with ``.logits`` ``(n, L, V)``), :func:`from_lens` a TransformerLens
``HookedTransformer`` (3.x) or ``TransformerBridge`` (its 4.x replacement; ``model(tokens)``
returns logits ``(n, L, V)`` for both). Either adapter is what
:func:`numerics.probe` takes as its model: called on tokens ``(n, L)`` (numpy or torch) it returns
the float64 next-token probabilities ``(n, d)`` of ``x_{L+1}``, the softmax of the logits at the
last position ``l = L``. The wrapped model is called

- on int64 torch tensors on its own device (its first parameter's; TransformerLens: ``cfg.device``),
- in eval mode (its training flag is restored after the call) and under ``torch.no_grad()``,
- on at most ``batch_size`` sequences at a time, so memory stays bounded for any ``n``.

:meth:`ExternalModel.logits` gives the logits ``(n, L, V)`` with their graph instead, in the
model's own mode: the one call a training loop needs, whichever library the model comes from.

Vocabulary: the model has ``V`` token ids (``vocab_size`` of the HF config, ``d_vocab`` of the
TransformerLens config), the probed source ``d``. With ``vocab_size=None`` the adapter returns all
``V`` probabilities and the probe refuses them unless ``V = d``. With ``vocab_size=d <= V`` it
keeps the first ``d`` token ids (the library's tokens ``0..d-1``) and takes the softmax over
their logits alone: the model's distribution restricted to them and renormalised, its mass on
the ids ``d..V-1`` dropped.

Attention: with ``attention=True`` (the default) the adapter declares its taps as the library's
models do (``default_taps()``, ``tap_layout(name)``), one per layer ``l = 0..layers-1``, named
``blocks.{l}.attn.hook_pattern`` (TransformerLens's own names, and those of
:class:`numerics.StandardTransformer`), each a ``"pattern"`` ``(n, heads, L, L)`` (query × key)
of :mod:`numerics.probing.attention`. :func:`numerics.probe` with ``attention=None`` then reads
every layer's offset profile and match read-out per head (:func:`default_attention`); the heads
are numbered by the probe, in the model's own head order. Hugging Face models return their
attentions with ``output_attentions=True`` only under an implementation that computes the
weights (``attn_implementation="eager"``); fused ones (``"sdpa"``, flash) return none, which
the adapter refuses, naming the option.

Tested with transformers 5.25.0 and transformer-lens 3.9.0 (the extras ``[hf]`` and ``[lens]``
allow transformers 4.40 to 5.x and transformer-lens 3.x), and :func:`from_lens` on a
``TransformerBridge`` with transformer-lens 4.3.0 as well (outside the extras: 4.x has no
``HookedTransformer``); neither library is imported by this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from numerics.devices import module_device
from numerics.probing.adapters import TapsAdapter, attention_taps
from theory.errors import InductionHeadsError, require
from theory.validation import is_int

__all__ = ["DEFAULT_BATCH_SIZE", "ExternalModel", "HFModel", "LensModel", "from_hf",
           "from_lens", "default_attention"]

DEFAULT_BATCH_SIZE = 256
"""Sequences per forward pass: at ``L = 100`` and float32, the attention weights of one layer
and head of a batch take 256·100·100·4 bytes ≈ 10 MB."""

_PATTERN = "blocks.{}.attn.hook_pattern"


class ExternalModel:
    """A language model of another library, called as a probe model (module docstring).

    Subclasses say how to run the wrapped model (:meth:`_forward`) and how many layers and
    token ids it has.

    Attributes:
        model: the wrapped ``torch.nn.Module``.
        vocab_size: the ``d`` first token ids kept, or None for the model's whole vocabulary.
        attention: whether the probe reads its attention patterns by default.
        batch_size: sequences per forward pass.
    """

    layers: int
    vocab: int | None
    max_len: int | None

    def __init__(self, model: Any, *, vocab_size: int | None, attention: bool,
                 batch_size: int):
        require(isinstance(model, torch.nn.Module), "model", "a torch.nn.Module",
                type(model).__name__)
        require(vocab_size is None or (is_int(vocab_size) and vocab_size >= 1), "vocab_size",
                "None or an integer d >= 1", vocab_size)
        require(self.vocab is None or vocab_size is None or vocab_size <= self.vocab,
                "vocab_size", f"d <= the model's vocabulary V = {self.vocab}", vocab_size)
        require(isinstance(attention, bool), "attention", "True or False", attention)
        require(is_int(batch_size) and batch_size >= 1, "batch_size", "an integer >= 1",
                batch_size)
        self.model, self.vocab_size = model, vocab_size
        self.attention, self.batch_size = attention, int(batch_size)

    # --- what a subclass provides -------------------------------------------------------
    def _forward(self, tokens: torch.Tensor, patterns: bool
                 ) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """``(logits (m, L, V), per-layer patterns (m, heads, L, L) or None)``."""
        raise NotImplementedError

    def device(self) -> torch.device:
        """Where the wrapped model's inputs go: its first parameter's or buffer's device."""
        return module_device(self.model)

    # --- the taps, declared as the library's models declare theirs -----------------------
    def tap_names(self) -> tuple[str, ...]:
        """Every layer's pattern, ``blocks.{l}.attn.hook_pattern`` for ``l = 0..layers-1``."""
        return tuple(_PATTERN.format(i) for i in range(self.layers))

    def default_taps(self) -> tuple[str, ...]:
        """The taps :func:`numerics.probing.attention_taps` reads by default: every layer."""
        return self.tap_names()

    def tap_layout(self, name: str) -> str:
        """``"pattern"``: every tap is a full causal pattern ``(n, heads, L, L)``."""
        require(name in self.tap_names(), "tap name", f"one of {self.tap_names()}", name)
        return "pattern"

    # --- training -----------------------------------------------------------------------
    def logits(self, tokens: Any) -> torch.Tensor:
        """The wrapped model's logits ``(n, L, V)`` (``(n, L, d)`` with ``vocab_size=d``) for
        tokens ``(n, L)``, with their autograd graph: what a training loop's loss reads.

        Unlike :meth:`__call__` it leaves the model's mode alone, runs no ``torch.no_grad()``
        and does not batch, so a loop trains any wrapped model the same way whether it returns
        logits (TransformerLens) or an object holding them (Hugging Face).
        """
        logits, _ = self._forward(self._tokens(tokens), False)  # (n, L, V)
        if self.vocab_size is None:
            return logits
        require(self.vocab_size <= logits.shape[-1], "vocab_size",
                f"d <= the model's vocabulary V = {logits.shape[-1]}", self.vocab_size)
        return logits[..., :self.vocab_size]  # (n, L, d): the library's tokens 0..d-1

    # --- the call ------------------------------------------------------------------------
    def _tokens(self, tokens: Any) -> torch.Tensor:
        arr = tokens if isinstance(tokens, torch.Tensor) else torch.as_tensor(np.asarray(tokens))
        require(arr.ndim == 2 and not arr.is_floating_point() and not arr.is_complex(), "tokens",
                "an integer array of shape (n, L)", f"{arr.dtype} of shape {tuple(arr.shape)}")
        L = arr.shape[1]
        require(self.max_len is None or L <= self.max_len, "tokens",
                f"a context L <= the model's {self.max_len} positions", L)
        return arr.to(device=self.device(), dtype=torch.int64)

    def _probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Softmax at the last position over the kept token ids: ``(m, L, V) -> (m, d)``."""
        last = logits[:, -1].to(torch.float64)  # (m, V)
        if self.vocab_size is not None:
            require(self.vocab_size <= last.shape[-1], "vocab_size",
                    f"d <= the model's vocabulary V = {last.shape[-1]}", self.vocab_size)
            last = last[:, :self.vocab_size]  # (m, d): the library's tokens 0..d-1
        return torch.softmax(last, dim=-1).cpu()

    def __call__(self, tokens: Any, return_taps: bool = False) -> Any:
        """Probabilities ``(n, d)`` of ``x_{L+1}``; with ``return_taps`` the pair
        ``(probabilities, {tap name: pattern (n, heads, L, L)})`` (module docstring)."""
        ids = self._tokens(tokens)  # (n, L)
        probs, patterns = [], []
        training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for start in range(0, ids.shape[0], self.batch_size):
                    logits, layers = self._forward(ids[start:start + self.batch_size],
                                                   return_taps)
                    probs.append(self._probabilities(logits))
                    if return_taps:
                        patterns.append([p.detach().cpu() for p in layers])
        finally:
            self.model.train(training)
        out = torch.cat(probs, dim=0)  # (n, d)
        if not return_taps:
            return out
        taps = {name: torch.cat([batch[i] for batch in patterns], dim=0)  # (n, heads, L, L)
                for i, name in enumerate(self.tap_names())}
        return out, taps


class HFModel(ExternalModel):
    """A Hugging Face causal LM as a probe model (module docstring); built by :func:`from_hf`."""

    def __init__(self, model: Any, **options: Any):
        config = getattr(model, "config", None)
        self.layers = int(getattr(config, "num_hidden_layers", 0) or 0)
        vocab = getattr(config, "vocab_size", None)
        self.vocab = int(vocab) if is_int(vocab) else None
        limit = getattr(config, "max_position_embeddings", None)
        self.max_len = int(limit) if is_int(limit) else None
        super().__init__(model, **options)
        require(not self.attention or self.layers >= 1, "model.config.num_hidden_layers",
                "the number of layers (for the attention taps; or pass attention=False)",
                getattr(config, "num_hidden_layers", None))

    def _forward(self, tokens: torch.Tensor, patterns: bool
                 ) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        out = self.model(input_ids=tokens, output_attentions=True) if patterns else \
            self.model(input_ids=tokens)
        logits = getattr(out, "logits", None)
        require(isinstance(logits, torch.Tensor) and logits.ndim == 3, "model(input_ids=...)",
                "an output with .logits (n, L, V)", type(logits).__name__)
        if not patterns:
            return logits, None
        layers = getattr(out, "attentions", None)
        if not layers or any(a is None for a in layers):
            implementation = getattr(getattr(self.model, "config", None),
                                     "_attn_implementation", None)
            raise InductionHeadsError(
                "model(input_ids=..., output_attentions=True): expected per-layer attention "
                f"weights (n, heads, L, L), received {layers!r} under the attention "
                f"implementation {implementation!r}; build the model with "
                'attn_implementation="eager" (or call model.set_attn_implementation("eager")), '
                "or pass from_hf(model, attention=False) to probe without attention")
        require(len(layers) == self.layers, "model attentions",
                f"one per layer ({self.layers})", len(layers))
        return logits, list(layers)


class LensModel(ExternalModel):
    """A TransformerLens model as a probe model (module docstring); built by :func:`from_lens`.

    The 3.x ``HookedTransformer`` and the ``TransformerBridge`` (4.x's replacement, shipped by
    3.9 as well) offer the same four things, and the adapter uses only those, so one code path
    reads both whatever the installed version:

    - ``model.cfg`` with ``n_layers``, ``d_vocab``, ``n_ctx`` (the positions, or None) and
      ``device`` (or None),
    - ``model(tokens, return_type="logits")``: the logits ``(n, L, V)``,
    - ``model.run_with_cache(tokens, names_filter=..., return_type="logits")``: the logits and
      a cache holding the hooks ``blocks.{l}.attn.hook_pattern`` ``(n, heads, L, L)``,
    - ``train``/``eval`` (a bridge passes them on to the module it wraps).
    """

    def __init__(self, model: Any, **options: Any):
        cfg = getattr(model, "cfg", None)
        require(cfg is not None and callable(getattr(model, "run_with_cache", None)), "model",
                "a TransformerLens HookedTransformer or TransformerBridge (cfg and "
                "run_with_cache)", type(model).__name__)
        layers, vocab, limit = (getattr(cfg, key, None) for key in ("n_layers", "d_vocab",
                                                                    "n_ctx"))
        require(is_int(layers) and layers >= 1 and is_int(vocab), "model.cfg",
                "n_layers >= 1 and d_vocab integers", f"n_layers={layers!r}, d_vocab={vocab!r}")
        self.layers, self.vocab = int(layers), int(vocab)
        self.max_len = int(limit) if is_int(limit) else None
        super().__init__(model, **options)

    def device(self) -> torch.device:
        """The configured device (``cfg.device``), else the first parameter's."""
        configured = getattr(self.model.cfg, "device", None)
        return torch.device(configured) if configured is not None else super().device()

    def _forward(self, tokens: torch.Tensor, patterns: bool
                 ) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        if not patterns:
            return self._checked(self.model(tokens, return_type="logits")), None
        names = self.tap_names()
        logits, cache = self.model.run_with_cache(tokens, names_filter=lambda s: s in names,
                                                  return_type="logits")
        missing = [s for s in names if s not in cache]
        if missing:
            raise InductionHeadsError(
                f"model.run_with_cache: expected the hooks {list(names)} (n, heads, L, L), "
                f"the cache lacks {missing}; pass from_lens(model, attention=False) to probe "
                "without attention")
        return self._checked(logits), [cache[s] for s in names]

    @staticmethod
    def _checked(logits: Any) -> torch.Tensor:
        require(isinstance(logits, torch.Tensor) and logits.ndim == 3, "model(tokens)",
                "logits (n, L, V)", type(logits).__name__)
        return logits


def from_hf(model: Any, *, vocab_size: int | None = None, attention: bool = True,
            batch_size: int = DEFAULT_BATCH_SIZE) -> HFModel:
    """A Hugging Face causal LM as a probe model (module docstring).

    Args:
        model: a module whose ``forward(input_ids=...)`` returns an object with ``.logits``
            ``(n, L, V)`` (e.g. ``GPT2LMHeadModel``); for attention, built with
            ``attn_implementation="eager"``.
        vocab_size: keep the first ``d`` token ids and renormalise over them; None for all ``V``
            (the probe then needs ``V = d``).
        attention: whether :func:`numerics.probe` reads every layer's attention by default.
        batch_size: sequences per forward pass.

    Example::

        report = probe(from_hf(gpt2, vocab_size=3), PAPER_SOURCE, PAPER_MODEL, n=500,
                       seq_len=100, generator=torch.Generator().manual_seed(0),
                       rng=np.random.default_rng(0))
        report.offsets  # per layer and head: the attention by offset
    """
    return HFModel(model, vocab_size=vocab_size, attention=attention, batch_size=batch_size)


def from_lens(model: Any, *, vocab_size: int | None = None, attention: bool = True,
              batch_size: int = DEFAULT_BATCH_SIZE) -> LensModel:
    """A TransformerLens ``HookedTransformer`` or ``TransformerBridge`` as a probe model
    (module docstring).

    Logits from ``model(tokens)``, attention patterns from ``model.run_with_cache`` (the hooks
    ``blocks.{l}.attn.hook_pattern``), the API both classes share (:class:`LensModel`). Tested
    with transformer-lens 3.9.0 (``HookedTransformer`` and ``TransformerBridge``) and 4.3.0
    (``TransformerBridge``; 4.x has no ``HookedTransformer``), on bridges built locally, with
    and without ``enable_compatibility_mode()``: ``TransformerBridge.boot_native(config)``
    around a TransformerLens-native model, and
    ``transformer_lens.model_bridge.sources.build_bridge_from_module(hf_model,
    "GPT2LMHeadModel", hf_config=hf_model.config)`` around a Hugging Face model built from a
    config (``TransformerBridge.boot_transformers(name, hf_model=...)`` loads the tokenizer of
    ``name`` from the Hub unless given ``tokenizer=``).

    Args:
        model: a ``HookedTransformer`` or ``TransformerBridge``.
        vocab_size: keep the first ``d`` token ids and renormalise over them; None for all
            ``d_vocab`` (the probe then needs ``d_vocab = d``).
        attention: whether :func:`numerics.probe` reads every layer's attention by default.
        batch_size: sequences per forward pass.
    """
    return LensModel(model, vocab_size=vocab_size, attention=attention, batch_size=batch_size)


def default_attention(model: Callable[..., Any]) -> TapsAdapter | None:
    """The attention :func:`numerics.probe` reads when given none: every layer's pattern of a
    :func:`from_hf` or :func:`from_lens` model built with ``attention=True``, else None."""
    if isinstance(model, ExternalModel) and model.attention:
        return attention_taps(model)
    return None
