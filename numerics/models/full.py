"""The full variant of TF(M, H, d, D) (docs/theory.md §7): content attention, values, LayerNorm.

Layers (shapes with paper symbols; n sequences, L context positions, query at L+1 holding 0):
    copier      head h attends from position l to ``l-i`` over the offsets ``i ∈ offsets``
                (``0..M`` with ``self_attention``, else ``1..M``; valid when ``l-i >= 1``) with
                logits ``w_{h,i} + e(x_l)^T A_h e(x_{l-i})`` and copies
                ``v_h(l) = Σ_i σ_h(l,i) V_h e(x_{l-i})``; ``v̄_h(l) = LN_h(v_h(l))`` (affine
                LayerNorm over the d features) or ``v_h(l)/||v_h(l)||`` (``normalization="l2"``);
                ``v̄_h(l) = 0`` where no offset is valid.
    selector    ``s_l = Σ_S c̃_S Π_{h∈S} k_h(l)``, ``k_h(l) = <v̄_h(L+1), v̄_h(l)>`` (through a
                ReLU with ``relu_similarity``), ``c̃ = C²/ΣC²`` as in docs/theory.md §2.
    classifier  ``ŷ = Σ_{l=1}^{L} softmax_l(a · s_l) e(x_l)``.

Cost O(n·L·H·(M+1)·d) per step: the copier gathers each position's window of M+1 tokens, no
(L+1)×(L+1) attention is built. With ``A_h = 0``, ``V_h = I``, ``self_attention=False`` and
``normalization="l2"`` the model is :class:`numerics.InductionHeadModel` (tested to 1e-10).

Named taps (``forward(..., return_taps=True)``), the names of the simplified model except the
copier's, whose attention is content dependent and so has its own name and layout:
    ``copier.position_attention`` (n, H, L+1, K)  σ_h(l, i): sequence, head, position
                                               l = 1..L+1, offset ``offsets[k]`` (K =
                                               len(offsets), offset 0 first with self
                                               attention); the simplified model's
                                               ``copier.attention`` (H, M) is one interior row
    ``copier.head_similarity`` (n, H, L)       k_h(l)
    ``selector.weights``       (|𝒮|,)          c̃_S in ``model.sets`` order
    ``classifier.similarity``  (n, L)          s_l
    ``classifier.attention``   (n, L)          softmax_l(a · s_l)
    ``output``                 (n, d)          ŷ
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from numerics.models.simplified import LOSS_KINDS
from theory.errors import require
from theory.predictors.reference import LOSS_FLOOR
from theory.sources.spec import ModelSpec
from theory.validation import is_int

__all__ = ["FullInductionHeadModel", "TrainableModel", "NORMALIZATIONS", "LN_EPS", "LIMIT_GAP",
           "OFFICIAL_FULL_OPTIONS"]

NORMALIZATIONS = ("layernorm", "l2")
"""``layernorm``: affine LayerNorm per head (the full variant); ``l2``: docs/theory.md §2's v/||v||."""

LN_EPS = 1e-5
"""The LayerNorm's variance offset, torch's ``nn.LayerNorm`` default."""

LIMIT_GAP = 1e3
"""Logit gap of :meth:`FullInductionHeadModel.at_limit`: e^-1000 underflows to 0 in float32/64."""

OFFICIAL_FULL_OPTIONS = {"normalization": "layernorm", "self_attention": True, "self_logit": 1e-6,
                         "content": "factorised", "content_init": 0.01, "value_init": 0.01,
                         "shared_layernorm": True, "relu_similarity": True, "ln_eps": 1e-5}
"""The constructor options of the authors' full model (their ``RPE/model.py``, appendix runs)."""


@runtime_checkable
class TrainableModel(Protocol):
    """What the stage-wise / joint trainer (``numerics.training.loop``) needs from a model.

    Implemented by :class:`numerics.InductionHeadModel` (docs/theory.md §2) and
    :class:`FullInductionHeadModel` (§7); the trainer also needs an ``nn.Module`` (``to``,
    ``state_dict``, ``train`` / ``eval``).

    Attributes:
        spec: sizes H, M, D and the initialisation.
        vocab_size: d.
        loss_kind: one of ``LOSS_KINDS``, the objective of :meth:`loss`.
        sets: the selector's head sets, the order of :meth:`selector_weights`.

    Methods:
        parameter_groups: ``{"C": [...], "w": [...], "a": [a]}``, the parameters each stage's
            names train: ``"C"`` the selector, ``"w"`` everything of the copier, ``"a"`` the
            classifier temperature, a single scalar parameter. Every parameter lies in
            exactly one group; the lists keep a fixed order (the optimizer state's order).
        prepare_inputs: ``(context (n, L)) -> inputs``, what :meth:`loss` accepts for a fixed
            sample, computed once (None: nothing to precompute).
        select_inputs: ``(inputs, idx (B,)) -> inputs`` of the sequences ``idx`` of a prepared
            sample (None for None).
        loss: ``(tokens (n, L+1), inputs) -> ()`` the mean objective at ``x_{L+1}``.
        loss_and_copier: ``(tokens (n, L+1), inputs) -> (loss (), attention (H, M))``: the
            loss and the copier's attention over the offsets 1..M that its forward pass used,
            at interior positions (all offsets valid) averaged over the n sequences. The
            trainer logs it as the copier's row of the history.
        selector_weights: c̃ (|𝒮|,).
        copier_attention: (H, M) attention over offsets 1..M (content-free for the full model).
    """

    spec: ModelSpec
    vocab_size: int
    loss_kind: str
    sets: tuple[tuple[int, ...], ...]

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]: ...

    def prepare_inputs(self, context: torch.Tensor) -> object: ...

    def select_inputs(self, inputs: object, idx: torch.Tensor) -> object: ...

    def loss(self, tokens: torch.Tensor, inputs: object = None) -> torch.Tensor: ...

    def loss_and_copier(self, tokens: torch.Tensor, inputs: object = None
                        ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def selector_weights(self) -> torch.Tensor: ...

    def copier_attention(self) -> torch.Tensor: ...


def _check_context(context: object, window: int, vocab_size: int) -> None:
    require(isinstance(context, torch.Tensor) and context.dim() == 2
            and not torch.is_floating_point(context), "context",
            "an integer tensor of shape (n, L)", getattr(context, "shape", type(context)))
    require(context.shape[1] > window, "context length L", f"L > M = {window}", context.shape[1])
    lo, hi = int(context.min()), int(context.max())
    require(lo >= 0 and hi < vocab_size, "context tokens", f"values in [0, {vocab_size})",
            (lo, hi))


TAP_LAYOUTS = {"copier.position_attention": "copier_positions", "classifier.attention": "query"}
"""Tap name -> layout of the full variant's attention taps."""


class FullInductionHeadModel(nn.Module):
    """The full variant of TF(M, H, d, D) (module docstring, docs/theory.md §7).

    Parameters: ``w`` (H, K) relative-position logits, column k for offset ``offsets[k]``
    (K = M+1 with ``self_attention``, else M); ``A`` (H, d, d) content forms, init 0; ``V``
    (H, d, d) values, init I; with LayerNorm ``ln_weight`` (H, d) init 1 and ``ln_bias`` (H, d)
    init 0; ``C`` (|𝒮|,); ``a`` (). Initial ``w``: ``w_plus`` at offset h for head h, ``w_minus``
    at every other offset, offset 0 included, so the initial attention restricted to offsets
    1..M and renormalised is the simplified model's.

    Args:
        spec: sizes and initialisation.
        vocab_size: d >= 2.
        loss: one of ``LOSS_KINDS``.
        normalization: one of :data:`NORMALIZATIONS`.
        self_attention: include offset 0 (the position itself) in the copier's window.
        relu_similarity: pass each ``k_h(l)`` through a ReLU (the official code's choice, §4).
        ln_eps: LayerNorm variance offset, >= 0.
        dtype: parameter and activation dtype (float64 for theory checks).
        device: torch device of the parameters.
    """

    kind: ClassVar[str] = "full"
    """The model kind's name in the registry (:data:`numerics.training.KINDS`)."""

    def __init__(self, spec: ModelSpec, vocab_size: int, *, loss: str = "nll",
                 normalization: str = "layernorm", self_attention: bool = True,
                 relu_similarity: bool = False, ln_eps: float = LN_EPS,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None):
        super().__init__()
        require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", spec)
        require(is_int(vocab_size) and vocab_size >= 2, "vocab_size",
                "an integer d >= 2", vocab_size)
        require(loss in LOSS_KINDS, "loss", f"one of {LOSS_KINDS}", loss)
        require(normalization in NORMALIZATIONS, "normalization", f"one of {NORMALIZATIONS}",
                normalization)
        require(isinstance(ln_eps, (int, float)) and ln_eps >= 0, "ln_eps", "a number >= 0",
                ln_eps)
        self.spec, self.vocab_size, self.loss_kind = spec, int(vocab_size), loss
        self.sets = spec.sets
        self.normalization, self.relu_similarity = normalization, bool(relu_similarity)
        self.ln_eps = float(ln_eps)
        self.offsets = tuple(range(0 if self_attention else 1, spec.window + 1))
        H, d, first = spec.heads, vocab_size, self.offsets[0]
        kw = {"dtype": dtype, "device": device}
        w = torch.full((H, len(self.offsets)), spec.w_minus, **kw)
        w[torch.arange(H), torch.arange(H) + 1 - first] = spec.w_plus
        self.w = nn.Parameter(w)                                            # (H, K)
        self.A = nn.Parameter(torch.zeros(H, d, d, **kw))                   # (H, d, d)
        self.V = nn.Parameter(torch.eye(d, **kw).repeat(H, 1, 1))           # (H, d, d)
        if normalization == "layernorm":
            self.ln_weight = nn.Parameter(torch.ones(H, d, **kw))           # (H, d)
            self.ln_bias = nn.Parameter(torch.zeros(H, d, **kw))            # (H, d)
        self.C = nn.Parameter(torch.full((len(self.sets),), spec.c_init, **kw))  # (|𝒮|,)
        self.a = nn.Parameter(torch.tensor(spec.a_init, **kw))             # ()

    @property
    def self_attention(self) -> bool:
        """Whether offset 0 (the position itself) is in the copier's window."""
        return self.offsets[0] == 0

    @classmethod
    def at_limit(cls, spec: ModelSpec, vocab_size: int, *, selected_set: tuple[int, ...],
                 a: float, offsets: Mapping[int, int] | None = None, gap: float = LIMIT_GAP,
                 **kwargs) -> FullInductionHeadModel:
        """The limiting model: hard copier heads, selector one-hot on ``selected_set``, given ``a``.

        A head h with an offset o gets ``w_h = -gap`` except 0 at o, so at every position with
        ``l - o >= 1`` it copies ``V_h e(x_{l-o})`` exactly (A = 0). At ``l <= o`` it spreads evenly
        over the remaining valid offsets (the simplified ``at_limit`` outputs 0 there).

        Args:
            spec: model sizes (heads without an offset keep the initialisation).
            vocab_size: d.
            selected_set: the head set S* (1-based heads), a member of ``spec.sets``.
            a: classifier temperature.
            offsets: head -> offset in 1..M it copies (default: h -> h for h in ``selected_set``).
            gap: the logit gap, > 0.
            **kwargs: passed to the constructor.
        """
        model = cls(spec, vocab_size, **kwargs)
        selected = tuple(sorted(selected_set))
        require(selected in spec.sets, "selected_set", f"one of the head sets {spec.sets}", selected)
        require(gap > 0, "gap", "a logit gap > 0", gap)
        offsets = dict(offsets) if offsets is not None else {h: h for h in selected}
        with torch.no_grad():
            for h, o in offsets.items():
                require(1 <= h <= spec.heads, "offsets head", f"a head in 1..{spec.heads}", h)
                require(1 <= o <= spec.window, "offsets offset", f"an offset in 1..{spec.window}",
                        o)
                model.w[h - 1].fill_(-gap)
                model.w[h - 1, model.offsets.index(o)] = 0.0
            model.C.zero_()
            model.C[spec.sets.index(selected)] = 1.0
            model.a.fill_(a)
        return model

    # --------------------------------------------------------------------- trainer interface
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``"C"``: [C]; ``"w"``: [w, A, V] (+ [ln_weight, ln_bias] with LayerNorm); ``"a"``: [a]."""
        copier = [self.w, self.A, self.V]
        if self.normalization == "layernorm":
            copier += [self.ln_weight, self.ln_bias]
        return {"C": [self.C], "w": copier, "a": [self.a]}

    def prepare_inputs(self, context: torch.Tensor) -> None:
        """Nothing to precompute for a fixed sample: the copier depends on the content."""
        return None

    def select_inputs(self, inputs: None, idx: torch.Tensor) -> None:
        """The prepared inputs of the sequences ``idx`` of a sample: None, as prepared."""
        require(inputs is None, "inputs", "None (the full model prepares nothing)",
                type(inputs).__name__)
        return None

    def loss_and_copier(self, tokens: torch.Tensor, inputs: None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`loss` on ``tokens`` (n, L+1) and ``copier_attention(tokens[:, :-1])`` (H, M).

        One forward pass gives both: the attention is the one the loss used, averaged over the
        sequences and the interior positions, so it weighs each offset as the copies that
        enter the similarities do (the simplified model's interior attention means the same).
        """
        self._check_loss_args(tokens, inputs)
        probs, taps = self(tokens[:, :-1], return_taps=True)
        loss = self.loss_from_probs(probs, tokens[:, -1].to(probs.device))
        return loss, self._interior(taps["copier.position_attention"], include_self=False)

    def selector_weights(self) -> torch.Tensor:
        """c̃ (|𝒮|,): ``C_S^2 / Σ_T C_T^2`` in ``self.sets`` order."""
        c = self.C.square()
        return c / c.sum()

    def copier_attention(self, context: torch.Tensor | None = None, *,
                         include_self: bool = False) -> torch.Tensor:
        """Copier attention by offset, (H, M) over offsets 1..M (H, K with ``include_self``).

        Without ``context``: ``softmax(w_h)`` over all offsets, the content-free attention. It is
        exactly σ_h(L+1, ·) at the query (whose embedding is 0, so its content term vanishes),
        and σ_h(l, ·) at every interior position while A = 0. With ``context`` (n, L): σ_h(l, ·)
        averaged over the n sequences and the interior positions l = M+1..L (all offsets valid).
        Without offset 0 a row sums to 1; with it, to 1 minus the mass on the position itself.
        """
        if context is None:
            sigma = torch.softmax(self.w, dim=-1)                          # (H, K)
            return sigma if include_self or not self.self_attention else sigma[:, 1:]
        _, taps = self(context, return_taps=True)
        return self._interior(taps["copier.position_attention"], include_self=include_self)

    def _interior(self, sigma: torch.Tensor, *, include_self: bool) -> torch.Tensor:
        """(H, M) or (H, K): the tap σ (n, H, L+1, K) averaged over n and l = M+1..L."""
        mean = sigma[:, :, self.spec.window:-1].mean(dim=(0, 2))           # (H, K)
        return mean if include_self or not self.self_attention else mean[:, 1:]

    # ------------------------------------------------------------------------------ forward
    def _normalise(self, v: torch.Tensor) -> torch.Tensor:
        """v̄ (n, H, L+1, d) from v (n, H, L+1, d): affine LayerNorm per head, or v/||v||."""
        if self.normalization == "l2":
            return v * torch.rsqrt((v * v).sum(-1, keepdim=True).clamp_min(1e-30))
        normed = F.layer_norm(v, (self.vocab_size,), eps=self.ln_eps)
        return normed * self.ln_weight[None, :, None, :] + self.ln_bias[None, :, None, :]

    def forward(self, context: torch.Tensor, *, return_taps: bool = False):
        """ŷ for the query position L+1.

        Args:
            context: (n, L) int64 tokens ``x_1..x_L``, L > M.
            return_taps: also return the dict of named taps (module docstring).

        Returns:
            ŷ (n, d), or ``(ŷ, taps)``.
        """
        _check_context(context, self.spec.window, self.vocab_size)
        n, L = context.shape
        M, d, dev = self.spec.window, self.vocab_size, self.w.device
        onehot = F.one_hot(context.to(dev), d).to(self.w.dtype)             # (n, L, d)
        emb = F.pad(onehot, (0, 0, 0, 1))                                   # (n, L+1, d), 0 at L+1
        padded = F.pad(emb, (0, 0, M, 0))                                   # (n, M+L+1, d)
        # keys[:, l-1, k] = e(x_{l-i}) for i = offsets[k] (0 where l-i < 1).
        keys = torch.stack([padded[:, M - i:M - i + L + 1] for i in self.offsets], dim=2)
        pos = torch.arange(1, L + 2, device=dev)
        valid = pos[:, None] - torch.tensor(self.offsets, device=dev)[None, :] >= 1  # (L+1, K)
        query = torch.einsum("nld,hde->nhle", emb, self.A)                  # (n, H, L+1, d)
        content = torch.einsum("nhle,nlke->nhlk", query, keys)              # (n, H, L+1, K)
        logits = (self.w[None, :, None, :] + content).masked_fill(
            ~valid, torch.finfo(self.w.dtype).min)
        sigma = torch.softmax(logits, dim=-1) * valid                       # (n, H, L+1, K)
        copied = torch.einsum("nhlk,nlkd->nhld", sigma, keys)               # (n, H, L+1, d)
        v = torch.einsum("hed,nhld->nhle", self.V, copied)                  # (n, H, L+1, d)
        v_bar = self._normalise(v) * valid.any(-1)[None, None, :, None]     # (n, H, L+1, d)
        head_sim = (v_bar[:, :, :L] * v_bar[:, :, L:]).sum(-1)              # (n, H, L)
        if self.relu_similarity:
            head_sim = head_sim.clamp_min(0.0)
        c_tilde = self.selector_weights()                                   # (|𝒮|,)
        sim = torch.zeros(n, L, dtype=self.w.dtype, device=dev)             # (n, L)
        for k, s in enumerate(self.sets):
            term = c_tilde[k].expand(n, L)
            for h in s:
                term = term * head_sim[:, h - 1]
            sim = sim + term
        attn = torch.softmax(self.a * sim, dim=-1)                          # (n, L)
        probs = torch.einsum("nl,nld->nd", attn, onehot)                    # (n, d)
        if not return_taps:
            return probs
        taps = {"copier.position_attention": sigma, "copier.head_similarity": head_sim,
                "selector.weights": c_tilde, "classifier.similarity": sim,
                "classifier.attention": attn, "output": probs}
        return probs, taps

    def loss_from_probs(self, probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss of ŷ (n, d) against targets (n,) under ``self.loss_kind``."""
        if self.loss_kind == "official_ce":
            return F.cross_entropy(probs, target)
        picked = probs.gather(1, target[:, None]).squeeze(1)               # (n,)
        return -picked.clamp_min(LOSS_FLOOR).log().mean()

    def loss(self, tokens: torch.Tensor, inputs: None = None) -> torch.Tensor:
        """Mean loss on sequences (n, L+1): context ``x_1..x_L``, target ``x_{L+1}``.

        Args:
            tokens: (n, L+1) int64.
            inputs: must be None (what :meth:`prepare_inputs` returns).
        """
        self._check_loss_args(tokens, inputs)
        probs = self(tokens[:, :-1])
        return self.loss_from_probs(probs, tokens[:, -1].to(probs.device))

    def _check_loss_args(self, tokens: object, inputs: object) -> None:
        require(isinstance(tokens, torch.Tensor) and tokens.dim() == 2, "tokens",
                "an integer tensor of shape (n, L+1)", getattr(tokens, "shape", type(tokens)))
        require(inputs is None, "inputs", "None (the full model prepares nothing)",
                type(inputs).__name__)

    def constructor_options(self) -> dict[str, object]:
        """The constructor's keywords beyond spec, d, loss, dtype and device (checkpoints)."""
        return {"normalization": self.normalization, "self_attention": self.self_attention,
                "relu_similarity": self.relu_similarity, "ln_eps": self.ln_eps}

    @classmethod
    def check_options(cls, options: object) -> dict[str, object]:
        """``options`` read back from a file (:meth:`constructor_options`), checked.

        Raises:
            InductionHeadsError: on other keys or a value the constructor would refuse.
        """
        keys = ("normalization", "self_attention", "relu_similarity", "ln_eps")
        require(isinstance(options, dict) and set(options) == set(keys), "model_options",
                f"a dict with keys {keys} (model kind 'full')",
                sorted(map(str, options)) if isinstance(options, dict)
                else type(options).__name__)
        checks = {"normalization": (lambda v: v in NORMALIZATIONS, f"one of {NORMALIZATIONS}"),
                  "self_attention": (lambda v: isinstance(v, bool), "a bool"),
                  "relu_similarity": (lambda v: isinstance(v, bool), "a bool"),
                  "ln_eps": (lambda v: isinstance(v, float) and v >= 0, "a float >= 0")}
        for key, (ok, wanted) in checks.items():
            require(ok(options[key]), f"model_options[{key!r}]", wanted, options[key])
        return dict(options)

    def default_taps(self) -> tuple[str, ...]:
        """The taps the probe reads by default: the copier's and the classifier's attention."""
        return tuple(TAP_LAYOUTS)

    def tap_layout(self, name: str) -> str:
        """The layout (:mod:`numerics.probing.attention`) of tap ``name``:
        ``copier.position_attention`` is ``"copier_positions"`` (n, H, L+1, K),
        ``classifier.attention`` ``"query"``."""
        return TAP_LAYOUTS.get(name, "auto")
