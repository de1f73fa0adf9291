"""An ordinary GPT-style causal transformer, to ask whether a real transformer learns the GIH.

The simplified model of ``docs/theory.md §2`` hard-wires the copier, the selector and the
classifier. :class:`StandardTransformer` wires nothing: a learned token embedding, ``n_layers``
blocks of multi-head causal self-attention with full query / key / value / output projections
(optionally an MLP and pre-LayerNorm), a residual stream and a learned unembedding. Whether its
prediction of ``x_{L+1}`` reads as the generalized induction head of the selected set
(``docs/theory.md §3.4``) is then a measurement (:func:`numerics.probe`), not a construction.

Positions (``positional``):
    ``"relative"``  every head of every layer adds a learned bias ``b_h(q - k)`` to its attention
                    score of query ``q`` on key ``k <= q``, one per offset ``0 .. max_len-1``
                    (the copier of ``docs/theory.md §2`` is a relative-position head); no
                    positional embedding enters the residual stream.
    ``"absolute"``  a learned embedding of the position ``t = 1 .. max_len`` is added to the
                    token embedding; no score bias.

A block with ``layer_norm`` is pre-norm: ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))`` when
``mlp``; a final LayerNorm precedes the unembedding. Scores are ``q·k / sqrt(d_head)`` plus the
relative bias, with the keys after the query masked out (causal).

Named taps (``forward(tokens, return_taps=True)``; TransformerLens names; ``n`` sequences, ``T``
positions, ``D`` = ``d_model``, ``heads`` the layer's head count, ``d`` the vocabulary):
    ``hook_embed``                   (n, T, D)          token embedding ``W_E[x_t]``
    ``hook_pos_embed``               (n, T, D)          position embedding (``"absolute"`` only)
    ``blocks.{i}.hook_resid_pre``    (n, T, D)          residual stream entering block i
    ``blocks.{i}.ln1.hook_normalized`` (n, T, D)        attention input (``layer_norm`` only)
    ``blocks.{i}.attn.hook_scores``  (n, heads, T, T)   query × key scores, ``-inf`` above the
                                                        diagonal (keys after the query)
    ``blocks.{i}.attn.hook_pattern`` (n, heads, T, T)   softmax of the scores over keys
    ``blocks.{i}.hook_attn_out``     (n, T, D)          attention output added to the stream
    ``blocks.{i}.hook_resid_mid``    (n, T, D)          stream between attention and MLP (``mlp``)
    ``blocks.{i}.ln2.hook_normalized`` (n, T, D)        MLP input (``mlp`` and ``layer_norm``)
    ``blocks.{i}.hook_mlp_out``      (n, T, D)          MLP output (``mlp`` only)
    ``blocks.{i}.hook_resid_post``   (n, T, D)          residual stream leaving block i
    ``ln_final.hook_normalized``     (n, T, D)          unembedding input (``layer_norm`` only)

Row ``t-1`` of every ``(n, T, ·)`` tap and of the logits belongs to position ``t`` (it sees
``x_1 .. x_t``; the logits there predict ``x_{t+1}``). The pattern taps have the shape the probe
reads as full causal patterns (``numerics.probing.attention``).

Reading it with the probe (``limit`` from :func:`theory.predict_limit` at the same ``L``)::

    report = numerics.probe(model.next_token_probs, source, spec, tokens=held_out, limit=limit,
                            per_position=model.position_probs,
                            attention=numerics.attention_taps(
                                model, ("blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern")))

Initialisation is drawn in float64 on the CPU from an explicit ``torch.Generator`` and then cast,
so one seed gives the same model for every dtype and device: weights ``N(0, init_std²)``, the
output projections of attention and MLP scaled by ``1/sqrt(2·n_layers)``, biases, relative
biases and LayerNorm shifts 0, LayerNorm scales 1.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from theory.errors import require
from theory.sizes import FLOAT_BYTES, require_memory
from theory.validation import is_int, is_real

__all__ = ["StandardSpec", "StandardTransformer", "POSITIONAL_KINDS", "DEFAULT_HEADS",
           "MODEL_COPIES", "standard_parameter_count", "standard_model_bytes"]

DEFAULT_HEADS = 3
"""H, first-layer heads by default: the paper's copier heads (``PAPER_MODEL.heads``)."""

POSITIONAL_KINDS = ("relative", "absolute")
"""``relative``: a learned score bias per head and offset; ``absolute``: learned embeddings."""

_SPEC_KEYS = ("d_model", "n_layers", "heads", "n_heads", "layer_norm", "mlp", "mlp_ratio",
              "positional", "max_len", "init_std")


def _positive_int(value: Any, what: str, expected: str = "an integer >= 1") -> int:
    require(is_int(value) and value >= 1, what, expected, value)
    return int(value)


@dataclass(frozen=True)
class StandardSpec:
    """Sizes and switches of a :class:`StandardTransformer` (the vocabulary comes from the source).

    Attributes:
        d_model: D, width of the residual stream; divisible by every layer's head count.
        n_layers: number of blocks, >= 1.
        heads: H, heads of the first layer: None means :data:`DEFAULT_HEADS` (or ``n_heads[0]``
            when ``n_heads`` is given; an explicit H must then equal it). Stored resolved.
        n_heads: heads per layer; None gives ``(H, 1, …, 1)`` (H heads in the first layer, one
            in every later one: the copier heads, then the classifier head). Stored resolved.
        layer_norm: pre-LayerNorm blocks and a final LayerNorm.
        mlp: an MLP (``D → mlp_ratio·D → D``, GELU) after the attention of every block. On by
            default: it plays the selector's part (a product of matches, ``docs/theory.md §2``,
            which one attention score, a sum of matches, cannot form); on the paper's source it
            roughly halves the final gap to GIH(1, 2) (docs/results.md §11).
        mlp_ratio: hidden width of the MLP in units of D.
        positional: one of :data:`POSITIONAL_KINDS`.
        max_len: the longest input ``T`` the model accepts (size of the positional tables).
        init_std: standard deviation of the initial weights. 0.1, not GPT-2's 0.02: with 0.02
            the query-key products start 25 times smaller and the model stays on the unigram
            plateau far longer (docs/results.md §11).
    """

    d_model: int = 48
    n_layers: int = 2
    heads: int | None = None
    n_heads: tuple[int, ...] | None = None
    layer_norm: bool = True
    mlp: bool = True
    mlp_ratio: int = 4
    positional: str = "relative"
    max_len: int = 128
    init_std: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "d_model", _positive_int(self.d_model, "d_model"))
        layers = _positive_int(self.n_layers, "n_layers")
        object.__setattr__(self, "n_layers", layers)
        heads = self.heads
        if heads is not None:
            heads = _positive_int(heads, "heads", "None or an integer H >= 1")
        n_heads = self.n_heads
        if n_heads is None:
            n_heads = (DEFAULT_HEADS if heads is None else heads,) + (1,) * (layers - 1)
        require(isinstance(n_heads, (tuple, list)) and len(n_heads) == layers
                and all(is_int(h) and h >= 1 for h in n_heads), "n_heads",
                f"None or {layers} integers >= 1 (one per layer)", n_heads)
        n_heads = tuple(int(h) for h in n_heads)
        require(heads is None or heads == n_heads[0], "heads",
                f"None or the first layer's head count n_heads[0] = {n_heads[0]}", heads)
        object.__setattr__(self, "n_heads", n_heads)
        object.__setattr__(self, "heads", n_heads[0])
        bad = [h for h in n_heads if self.d_model % h]
        require(not bad, "d_model", f"a multiple of every layer's head count {n_heads}",
                self.d_model)
        for name in ("layer_norm", "mlp"):
            require(isinstance(getattr(self, name), bool), name, "a bool", getattr(self, name))
        object.__setattr__(self, "mlp_ratio", _positive_int(self.mlp_ratio, "mlp_ratio"))
        require(self.positional in POSITIONAL_KINDS, "positional", f"one of {POSITIONAL_KINDS}",
                self.positional)
        object.__setattr__(self, "max_len", _positive_int(self.max_len, "max_len",
                                                          "an integer T_max >= 1"))
        std = self.init_std
        require(is_real(std)
                and math.isfinite(std) and std > 0, "init_std", "a finite number > 0", std)
        object.__setattr__(self, "init_std", float(std))

    def d_head(self, layer: int) -> int:
        """Width of one head of block ``layer`` (0-based): ``d_model / n_heads[layer]``."""
        return self.d_model // self.n_heads[layer]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; :meth:`from_dict` inverts it."""
        return {k: (list(getattr(self, k)) if k == "n_heads" else getattr(self, k))
                for k in _SPEC_KEYS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StandardSpec:
        """Inverse of :meth:`to_dict` (missing keys take their defaults)."""
        require(isinstance(data, dict) and set(data) <= set(_SPEC_KEYS), "standard spec",
                f"a dict with keys among {_SPEC_KEYS}",
                sorted(data) if isinstance(data, dict) else data)
        data = dict(data)
        if data.get("n_heads") is not None:
            data["n_heads"] = tuple(data["n_heads"])
        return cls(**data)


MODEL_COPIES = 4
"""float64-sized copies of every parameter a model costs at its peak: the weights are drawn in
float64 and then cast, and training holds the weights, their gradients and the optimiser's two
moments (Adam's, in the model's dtype, at most float64)."""


def standard_parameter_count(spec: StandardSpec, vocab_size: int) -> int:
    """Parameters of a :class:`StandardTransformer` of ``spec`` over ``d = vocab_size`` tokens, in
    Python integers (no overflow for any spec): embeddings ``d·D`` and unembedding ``D·d + d``,
    the absolute positions ``T_max·D``, and per block the four ``D x D`` attention maps, the
    relative biases ``heads·T_max``, the LayerNorms ``2D`` each and the MLP
    ``2·ratio·D^2 + ratio·D + D``."""
    D, d, T = spec.d_model, int(vocab_size), spec.max_len
    total = d * D + D * d + d + (T * D if spec.positional == "absolute" else 0)
    total += 2 * D if spec.layer_norm else 0
    for heads in spec.n_heads:
        total += 4 * D * D + (heads * T if spec.positional == "relative" else 0)
        total += 2 * D if spec.layer_norm else 0
        if spec.mlp:
            hidden = spec.mlp_ratio * D
            total += 2 * D * hidden + hidden + D + (2 * D if spec.layer_norm else 0)
    return total


def standard_model_bytes(spec: StandardSpec, vocab_size: int) -> int:
    """Peak bytes of building and training the model: :data:`MODEL_COPIES` float64 copies of
    :func:`standard_parameter_count` parameters (activations depend on the batch and are not
    counted)."""
    return MODEL_COPIES * FLOAT_BYTES * standard_parameter_count(spec, vocab_size)


def _tap(taps: dict[str, torch.Tensor] | None, name: str, value: torch.Tensor) -> None:
    if taps is not None:
        taps[name] = value


class _Attention(nn.Module):
    """Causal multi-head self-attention of one block (shapes in the module docstring)."""

    def __init__(self, spec: StandardSpec, layer: int) -> None:
        super().__init__()
        D, heads, dh = spec.d_model, spec.n_heads[layer], spec.d_head(layer)
        self.heads, self.d_head = heads, dh
        self.W_Q = nn.Parameter(torch.empty(D, heads * dh, dtype=torch.float64))
        self.W_K = nn.Parameter(torch.empty(D, heads * dh, dtype=torch.float64))
        self.W_V = nn.Parameter(torch.empty(D, heads * dh, dtype=torch.float64))
        self.W_O = nn.Parameter(torch.empty(heads * dh, D, dtype=torch.float64))
        self.rel_bias = (nn.Parameter(torch.zeros(heads, spec.max_len, dtype=torch.float64))
                         if spec.positional == "relative" else None)  # (heads, T_max)

    def forward(self, x: torch.Tensor, taps: dict[str, torch.Tensor] | None,
                prefix: str) -> torch.Tensor:
        n, T, _ = x.shape
        q = (x @ self.W_Q).view(n, T, self.heads, self.d_head).transpose(1, 2)  # (n,heads,T,dh)
        k = (x @ self.W_K).view(n, T, self.heads, self.d_head).transpose(1, 2)  # (n,heads,T,dh)
        v = (x @ self.W_V).view(n, T, self.heads, self.d_head).transpose(1, 2)  # (n,heads,T,dh)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_head)          # (n, heads, T, T)
        pos = torch.arange(T, device=x.device)
        offset = pos[:, None] - pos[None, :]                                # (T, T) q - k
        if self.rel_bias is not None:
            scores = scores + self.rel_bias[:, offset.clamp_min(0)]         # (heads, T, T) bias
        scores = scores.masked_fill(offset < 0, -math.inf)                  # causal mask
        pattern = torch.softmax(scores, dim=-1)                             # (n, heads, T, T)
        _tap(taps, prefix + "hook_scores", scores)
        _tap(taps, prefix + "hook_pattern", pattern)
        z = (pattern @ v).transpose(1, 2).reshape(n, T, self.heads * self.d_head)  # (n,T,H·dh)
        return z @ self.W_O                                                 # (n, T, D)


class _Block(nn.Module):
    """Residual block: attention, then optionally an MLP, each pre-normalised when asked."""

    def __init__(self, spec: StandardSpec, layer: int) -> None:
        super().__init__()
        D = spec.d_model
        kw = {"dtype": torch.float64}
        self.ln1 = nn.LayerNorm(D, **kw) if spec.layer_norm else None
        self.attn = _Attention(spec, layer)
        self.ln2 = nn.LayerNorm(D, **kw) if spec.layer_norm and spec.mlp else None
        self.mlp = (nn.Sequential(nn.Linear(D, spec.mlp_ratio * D, **kw), nn.GELU(),
                                  nn.Linear(spec.mlp_ratio * D, D, **kw))
                    if spec.mlp else None)

    def forward(self, x: torch.Tensor, taps: dict[str, torch.Tensor] | None,
                prefix: str) -> torch.Tensor:
        _tap(taps, prefix + "hook_resid_pre", x)
        h = x
        if self.ln1 is not None:
            h = self.ln1(x)
            _tap(taps, prefix + "ln1.hook_normalized", h)
        out = self.attn(h, taps, prefix + "attn.")                          # (n, T, D)
        _tap(taps, prefix + "hook_attn_out", out)
        x = x + out
        if self.mlp is not None:
            _tap(taps, prefix + "hook_resid_mid", x)
            h = x
            if self.ln2 is not None:
                h = self.ln2(x)
                _tap(taps, prefix + "ln2.hook_normalized", h)
            out = self.mlp(h)                                               # (n, T, D)
            _tap(taps, prefix + "hook_mlp_out", out)
            x = x + out
        _tap(taps, prefix + "hook_resid_post", x)
        return x


_PATTERN_TAP = re.compile(r"blocks\.\d+\.attn\.hook_pattern")
"""An attention pattern tap (``(n, heads, L, L)``, query × key)."""


class StandardTransformer(nn.Module):
    """GPT-style causal transformer over the vocabulary ``[d]`` (module docstring).

    Args:
        spec: sizes and switches.
        vocab_size: d >= 2 (the source's vocabulary).
        generator: CPU ``torch.Generator`` of the initial weights (keyword-only; the only
            randomness).
        dtype: parameter dtype (float32 or float64).
        device: where the parameters live.

    Raises:
        InductionHeadsError: on a bad spec, vocabulary, generator or dtype, or a model whose
            parameters exceed the memory limit (:func:`standard_model_bytes` against
            :func:`theory.sizes.memory_limit_bytes`), refused before any weight is allocated.
    """

    kind: ClassVar[str] = "standard"
    """The model kind's name in the registry (:data:`numerics.training.KINDS`)."""

    def __init__(self, spec: StandardSpec, vocab_size: int, *, generator: torch.Generator,
                 dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        require(isinstance(spec, StandardSpec), "spec", "a StandardSpec", type(spec).__name__)
        require(is_int(vocab_size) and vocab_size >= 2, "vocab_size", "an integer d >= 2",
                vocab_size)
        require(isinstance(generator, torch.Generator) and generator.device.type == "cpu",
                "generator", "a CPU torch.Generator (weights are drawn on the CPU)",
                getattr(generator, "device", type(generator).__name__))
        require(dtype in (torch.float32, torch.float64), "dtype", "torch.float32 or "
                "torch.float64", dtype)
        require_memory(standard_model_bytes(spec, vocab_size),
                       f"standard transformer with {spec.n_layers} layers, d_model="
                       f"{spec.d_model}, max_len={spec.max_len} "
                       f"({standard_parameter_count(spec, vocab_size)} parameters)",
                       "pass fewer layers, a narrower d_model or a smaller max_len")
        self.spec, self.vocab_size = spec, int(vocab_size)
        D, kw = spec.d_model, {"dtype": torch.float64}
        self.W_E = nn.Parameter(torch.empty(self.vocab_size, D, **kw))      # (d, D)
        self.W_pos = (nn.Parameter(torch.empty(spec.max_len, D, **kw))      # (T_max, D)
                      if spec.positional == "absolute" else None)
        self.blocks = nn.ModuleList(_Block(spec, i) for i in range(spec.n_layers))
        self.ln_final = nn.LayerNorm(D, **kw) if spec.layer_norm else None
        self.W_U = nn.Parameter(torch.empty(D, self.vocab_size, **kw))      # (D, d)
        self.b_U = nn.Parameter(torch.zeros(self.vocab_size, **kw))         # (d,)
        self._init_weights(generator)
        self.to(device=device, dtype=dtype)

    def _init_weights(self, generator: torch.Generator) -> None:
        """Module docstring's initialisation, in parameter registration order (deterministic)."""
        std = self.spec.init_std
        out_std = std / math.sqrt(2 * self.spec.n_layers)
        norms = {id(m.weight) for m in self.modules() if isinstance(m, nn.LayerNorm)}
        with torch.no_grad():
            for name, p in self.named_parameters():
                if id(p) in norms:
                    p.fill_(1.0)                                            # LayerNorm scale
                elif name.endswith(("attn.W_O", "mlp.2.weight")):
                    nn.init.normal_(p, 0.0, out_std, generator=generator)
                elif name.endswith(("W_E", "W_pos", "W_U", "W_Q", "W_K", "W_V", "weight")):
                    nn.init.normal_(p, 0.0, std, generator=generator)
                else:                                       # biases, shifts, relative biases
                    p.zero_()

    # ------------------------------------------------------------------------------- inputs
    @property
    def device(self) -> torch.device:
        """The parameters' device."""
        return self.W_E.device

    def _tokens(self, tokens: Any) -> torch.Tensor:
        """Validated int64 ``(n, T)`` tokens on the model's device (numpy accepted)."""
        if isinstance(tokens, np.ndarray):
            require(tokens.dtype.kind in "iu", "tokens", "an integer array of shape (n, T)",
                    f"{tokens.dtype} array of shape {tokens.shape}")
            tokens = torch.from_numpy(np.ascontiguousarray(tokens, dtype=np.int64))
        require(isinstance(tokens, torch.Tensor) and tokens.dim() == 2
                and not torch.is_floating_point(tokens) and not torch.is_complex(tokens)
                and tokens.dtype != torch.bool, "tokens", "an integer tensor of shape (n, T)",
                getattr(tokens, "shape", type(tokens).__name__) if not isinstance(
                    tokens, torch.Tensor) else f"{tokens.dtype} of shape {tuple(tokens.shape)}")
        n, T = tokens.shape
        require(n >= 1 and 1 <= T <= self.spec.max_len, "tokens shape",
                f"(n >= 1, 1 <= T <= max_len = {self.spec.max_len})", tuple(tokens.shape))
        lo, hi = int(tokens.min()), int(tokens.max())
        require(lo >= 0 and hi < self.vocab_size, "tokens",
                f"values in 0..{self.vocab_size - 1}", f"values in {lo}..{hi}")
        return tokens.to(device=self.device, dtype=torch.int64)

    # ------------------------------------------------------------------------------ forward
    def forward(self, tokens: Any, *, return_taps: bool = False):
        """Next-token logits at every position.

        Args:
            tokens: int64 ``(n, T)`` (a torch tensor on any device, or a numpy array),
                ``T <= max_len``; column ``t-1`` holds ``x_t``.
            return_taps: also return the named taps (module docstring).

        Returns:
            logits ``(n, T, d)`` (row ``t-1`` predicts ``x_{t+1}``), or ``(logits, taps)``.

        Raises:
            InductionHeadsError: on tokens of the wrong type, shape or range.
        """
        tokens = self._tokens(tokens)
        n, T = tokens.shape
        taps: dict[str, torch.Tensor] | None = {} if return_taps else None
        x = self.W_E[tokens]                                                # (n, T, D)
        _tap(taps, "hook_embed", x)
        if self.W_pos is not None:
            pos = self.W_pos[:T].expand(n, T, -1)                           # (n, T, D)
            _tap(taps, "hook_pos_embed", pos)
            x = x + pos
        for i, block in enumerate(self.blocks):
            x = block(x, taps, f"blocks.{i}.")
        if self.ln_final is not None:
            x = self.ln_final(x)
            _tap(taps, "ln_final.hook_normalized", x)
        logits = x @ self.W_U + self.b_U                                    # (n, T, d)
        return (logits, taps) if return_taps else logits

    def position_probs(self, tokens: Any) -> torch.Tensor:
        """Next-token probabilities at every position: ``(n, L) -> (n, L, d)``.

        Row ``l-1`` is the law of ``x_{l+1}`` given ``x_1 .. x_l`` (the probe's per-position
        convention). Computed in float64 from the logits.
        """
        return torch.softmax(self(tokens).double(), dim=-1)                  # (n, L, d)

    def next_token_probs(self, context: Any) -> torch.Tensor:
        """Probabilities of ``x_{L+1}`` given the context ``x_1 .. x_L``: ``(n, L) -> (n, d)``.

        The callable the probe reads (``numerics.probe(model.next_token_probs, ...)``);
        numpy or torch input on any device, float64 output on the model's device.
        """
        return torch.softmax(self(context)[:, -1].double(), dim=-1)          # (n, d)

    def loss(self, tokens: torch.Tensor, *, positions: str = "all") -> torch.Tensor:
        """Mean next-token cross-entropy on sequences ``x_1 .. x_{L+1}`` ``(n, L+1)``.

        Args:
            tokens: int64 ``(n, L+1)`` with ``L + 1 >= 2``; the model reads ``x_1 .. x_L``.
            positions: ``"all"`` averages over the predictions of ``x_2 .. x_{L+1}``;
                ``"last"`` takes only the prediction of ``x_{L+1}`` (the ICL target).
        """
        require(positions in ("all", "last"), "positions", "'all' or 'last'", positions)
        require(isinstance(tokens, torch.Tensor) and tokens.dim() == 2 and tokens.shape[1] >= 2,
                "tokens", "an integer tensor of shape (n, L+1) with L >= 1",
                getattr(tokens, "shape", type(tokens).__name__))
        logits = self(tokens[:, :-1])                                        # (n, L, d)
        targets = tokens[:, 1:].to(logits.device)                            # (n, L)
        if positions == "last":
            return F.cross_entropy(logits[:, -1], targets[:, -1])
        return F.cross_entropy(logits.reshape(-1, self.vocab_size), targets.reshape(-1))

    def constructor_options(self) -> dict[str, object]:
        """The constructor's keywords beyond its spec, d, generator, dtype and device: none (its
        sizes are its spec, the architecture)."""
        return {}

    def default_taps(self) -> tuple[str, ...]:
        """The taps the probe reads by default: the first layer's attention pattern (which
        parent each head copies) and the last layer's (the match read-out of its last query
        row); one name for a one-layer model."""
        last = self.spec.n_layers - 1
        return tuple(dict.fromkeys(f"blocks.{i}.attn.hook_pattern" for i in (0, last)))

    def tap_layout(self, name: str) -> str:
        """The layout (:mod:`numerics.probing.attention`) of tap ``name``: every
        ``blocks.{i}.attn.hook_pattern`` is a ``"pattern"`` (n, heads, L, L); others ``"auto"``."""
        return "pattern" if _PATTERN_TAP.fullmatch(name) else "auto"

    def tap_names(self) -> tuple[str, ...]:
        """The names ``forward(..., return_taps=True)`` returns for this spec, in order."""
        spec = self.spec
        names = ["hook_embed"] + (["hook_pos_embed"] if spec.positional == "absolute" else [])
        for i in range(spec.n_layers):
            p = f"blocks.{i}."
            names += [p + "hook_resid_pre"] + ([p + "ln1.hook_normalized"]
                                               if spec.layer_norm else [])
            names += [p + "attn.hook_scores", p + "attn.hook_pattern", p + "hook_attn_out"]
            if spec.mlp:
                names += [p + "hook_resid_mid"] + ([p + "ln2.hook_normalized"]
                                                   if spec.layer_norm else [])
                names += [p + "hook_mlp_out"]
            names += [p + "hook_resid_post"]
        return tuple(names + (["ln_final.hook_normalized"] if spec.layer_norm else []))

