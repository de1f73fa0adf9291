"""The full variant of TF(M, H, d, D) (docs/theory.md §7): content attention, values, LayerNorm.

Layers (shapes with paper symbols; n sequences, L context positions, query at L+1 holding 0):
    copier      head h attends from position l to ``l-i`` over the offsets ``i`` of its window
                (``spec.windows[h-1]``, plus offset 0 with ``self_attention``; valid when
                ``l-i >= 1``) with logits ``w_{h,i} + e(x_l)^T A_h e(x_{l-i})`` and copies
                ``v_h(l) = Σ_i σ_h(l,i) V_h e(x_{l-i})``; ``v̄_h(l) = LN_h(v_h(l))`` (affine
                LayerNorm over the d features) or ``v_h(l)/||v_h(l)||`` (``normalization="l2"``);
                ``v̄_h(l) = 0`` where no offset is valid. :meth:`FullInductionHeadModel.copier`
                gives these effective tensors (:class:`numerics.models.full_copier.FullCopier`),
                whatever the options that parametrise them (module
                :mod:`numerics.models.full_options`).
    selector    ``s_l = Σ_S c̃_S Π_{h∈S} k_h(l)``, ``k_h(l) = <v̄_h(L+1), v̄_h(l)>`` (through a
                ReLU with ``relu_similarity``), ``c̃ = C²/ΣC²`` as in docs/theory.md §2.
    classifier  ``ŷ = Σ_{l=1}^{L} softmax_l(a · s_l) e(x_l)``.

Cost O(n·L·H·(M+1)·d) per step: the copier gathers each position's window of M+1 tokens, no
(L+1)×(L+1) attention is built. With ``A_h = 0``, ``V_h = I``, ``self_attention=False`` and
``normalization="l2"`` the model is :class:`numerics.InductionHeadModel` (tested to 1e-10).
With :data:`OFFICIAL_FULL_OPTIONS` on :func:`numerics.experiments.official_full_spec` and the
loss ``"official_ce"`` it is the authors' full model (tests/numerics/models/test_authors_full.py).

Named taps (``forward(..., return_taps=True)``), the names of the simplified model except the
copier's, whose attention is content dependent and so has its own name and layout:
    ``copier.position_attention`` (n, H, L+1, K)  σ_h(l, i): sequence, head, position
                                               l = 1..L+1, offset ``offsets[k]`` (K =
                                               len(offsets), offset 0 first with self
                                               attention; 0 outside the head's window
                                               and where l - i < 1); the simplified model's
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

from numerics.models.full_copier import FullCopier
from numerics.models.full_forms import (
    copier_head_similarity,
    prepare_full_inputs,
    select_full_inputs,
)
from numerics.models.full_options import (
    CONTENT_FORMS,
    FULL_OPTION_DEFAULTS,
    LN_EPS,
    NORMALIZATIONS,
    OFFICIAL_FULL_OPTIONS,
    REQUIRED_OPTION_KEYS,
    check_full_options,
    first_move_ingredients,
)
from numerics.models.full_patterns import FullPatternInputs, pattern_similarity_table
from numerics.models.simplified import LOSS_KINDS
from theory.dynamics.first_move import FullIngredients
from theory.errors import require
from theory.predictors.reference import LOSS_FLOOR
from theory.sources.spec import ModelSpec
from theory.validation import is_int

__all__ = ["FullInductionHeadModel", "TrainableModel", "NORMALIZATIONS", "CONTENT_FORMS",
           "LN_EPS", "LIMIT_GAP", "OFFICIAL_FULL_OPTIONS", "FULL_OPTION_DEFAULTS"]

LIMIT_GAP = 1e3
"""Logit gap of :meth:`FullInductionHeadModel.at_limit`: e^-1000 underflows to 0 in float32/64."""


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

    Parameters (``parameter_groups``): ``w`` (H, K') relative-position logits, column k for
    offset ``logit_offsets[k]`` (every offset of :attr:`offsets`, offset 0 left out when its
    logit is fixed); the content term, ``A`` (H, d, d) or its factors ``Q``, ``K`` (H, d, d)
    with ``A_h = Q_h K_hᵀ``; ``V`` (H, d, d) values; with LayerNorm ``ln_weight`` and
    ``ln_bias``, (H, d) or (d,) shared, init 1 and 0; ``C`` (|𝒮|,); ``a`` (). Content or values
    that are not trained are buffers of the same names (in ``state_dict``, not in the groups).
    Initial ``w``: ``w_plus`` at offset h for head h, ``w_minus`` at every other offset, offset
    0 included (a trainable self logit), and at offsets outside the head's window, where it is
    never read. So with the default options the initial attention restricted to offsets 1..M and
    renormalised is the simplified model's.

    The keyword options ``normalization``, ``self_attention``, ``relu_similarity``, ``ln_eps``,
    ``self_logit``, ``content``, ``content_init``, ``value_init``, ``shared_layernorm``,
    ``train_content``, ``train_values`` and ``norm_offset`` are those of
    :mod:`numerics.models.full_options` (defaults: :data:`FULL_OPTION_DEFAULTS`; the authors'
    model: :data:`OFFICIAL_FULL_OPTIONS`).

    Args:
        spec: sizes, initialisation and the heads' windows (``spec.windows``).
        vocab_size: d >= 2.
        loss: one of ``LOSS_KINDS``.
        dtype: parameter and activation dtype (float64 for theory checks).
        device: torch device of the parameters.
    """

    kind: ClassVar[str] = "full"
    """The model kind's name in the registry (:data:`numerics.training.KINDS`)."""

    def __init__(self, spec: ModelSpec, vocab_size: int, *, loss: str = "nll",
                 normalization: str = "layernorm", self_attention: bool = True,
                 relu_similarity: bool = False, ln_eps: float = LN_EPS,
                 self_logit: float | None = None, content: str = "direct",
                 content_init: float = 0.0, value_init: float = 1.0,
                 shared_layernorm: bool = False, train_content: bool = True,
                 train_values: bool = True, norm_offset: float = 0.0,
                 dtype: torch.dtype = torch.float32, device: torch.device | str | None = None):
        super().__init__()
        require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", spec)
        require(is_int(vocab_size) and vocab_size >= 2, "vocab_size",
                "an integer d >= 2", vocab_size)
        require(loss in LOSS_KINDS, "loss", f"one of {LOSS_KINDS}", loss)
        options = check_full_options({
            "normalization": normalization, "self_attention": self_attention,
            "relu_similarity": relu_similarity, "ln_eps": ln_eps, "self_logit": self_logit,
            "content": content, "content_init": content_init, "value_init": value_init,
            "shared_layernorm": shared_layernorm, "train_content": train_content,
            "train_values": train_values, "norm_offset": norm_offset})
        self.spec, self.vocab_size, self.loss_kind = spec, int(vocab_size), loss
        self.sets = spec.sets
        self._options = options
        self.normalization, self.relu_similarity = normalization, bool(relu_similarity)
        self.ln_eps, self.norm_offset = options["ln_eps"], options["norm_offset"]
        self.self_logit, self.content = options["self_logit"], content
        self.offsets = tuple(range(0 if self_attention else 1, spec.window + 1))
        self.logit_offsets = self.offsets[1:] if self.self_logit is not None else self.offsets
        H, d = spec.heads, vocab_size
        kw = {"dtype": dtype, "device": device}
        mask = [[i == 0 or i in window for i in self.offsets] for window in spec.windows]
        self.register_buffer("window_mask", torch.tensor(mask, device=device),
                             persistent=False)                              # (H, K) bool
        w = torch.full((H, len(self.logit_offsets)), spec.w_minus, **kw)
        w[torch.arange(H), torch.arange(H) + 1 - self.logit_offsets[0]] = spec.w_plus
        self.w = nn.Parameter(w)                                            # (H, K')
        eye = torch.eye(d, **kw).repeat(H, 1, 1)                            # (H, d, d)
        names = ("A",) if content == "direct" else ("Q", "K")
        for name in names:
            self._hold(name, options["content_init"] * eye, train_content)  # (H, d, d)
        self._hold("V", options["value_init"] * eye, train_values)          # (H, d, d)
        if normalization == "layernorm":
            shape = (d,) if shared_layernorm else (H, d)
            self.ln_weight = nn.Parameter(torch.ones(shape, **kw))          # (H, d) or (d,)
            self.ln_bias = nn.Parameter(torch.zeros(shape, **kw))           # (H, d) or (d,)
        self.C = nn.Parameter(torch.full((len(self.sets),), spec.c_init, **kw))  # (|𝒮|,)
        self.a = nn.Parameter(torch.tensor(spec.a_init, **kw))             # ()

    def _hold(self, name: str, value: torch.Tensor, trained: bool) -> None:
        """``value`` as the parameter ``name``, or as a buffer of that name when not trained."""
        if trained:
            setattr(self, name, nn.Parameter(value))
        else:
            self.register_buffer(name, value)

    @property
    def self_attention(self) -> bool:
        """Whether offset 0 (the position itself) is in the copier's window."""
        return self.offsets[0] == 0

    def content_tensors(self) -> list[torch.Tensor]:
        """The content term's tensors: ``[A]`` or ``[Q, K]`` (parameters or buffers)."""
        return [self.A] if self.content == "direct" else [self.Q, self.K]

    @classmethod
    def at_limit(cls, spec: ModelSpec, vocab_size: int, *, selected_set: tuple[int, ...],
                 a: float, offsets: Mapping[int, int] | None = None, gap: float = LIMIT_GAP,
                 **kwargs) -> FullInductionHeadModel:
        """The limiting model: hard copier heads, selector one-hot on ``selected_set``, given ``a``.

        A head h with an offset o gets the logit ``b`` at o and ``b - gap`` at every other
        trainable offset (``b = 0``, or ``self_logit + gap`` when offset 0's logit is fixed, so
        that it too lies ``gap`` below), so at every position with ``l - o >= 1`` it copies
        ``V_h e(x_{l-o})`` exactly (a content term of the size of ``content_init²`` cannot close
        the gap). At ``l <= o`` it spreads evenly over the remaining valid offsets (the
        simplified ``at_limit`` outputs 0 there).

        Args:
            spec: model sizes (heads without an offset keep the initialisation).
            vocab_size: d.
            selected_set: the head set S* (1-based heads), a member of ``spec.sets``.
            a: classifier temperature.
            offsets: head -> offset it copies, in the head's window ``spec.windows[h-1]``
                (default: h -> h for h in ``selected_set``).
            gap: the logit gap, > 0.
            **kwargs: passed to the constructor.
        """
        model = cls(spec, vocab_size, **kwargs)
        selected = tuple(sorted(selected_set))
        require(selected in spec.sets, "selected_set", f"one of the head sets {spec.sets}", selected)
        require(gap > 0, "gap", "a logit gap > 0", gap)
        offsets = dict(offsets) if offsets is not None else {h: h for h in selected}
        top = 0.0 if model.self_logit is None else model.self_logit + gap
        with torch.no_grad():
            for h, o in offsets.items():
                require(1 <= h <= spec.heads, "offsets head", f"a head in 1..{spec.heads}", h)
                window = spec.windows[h - 1]
                require(o in window, "offsets offset",
                        f"an offset in head {h}'s window {window}", o)
                model.w[h - 1].fill_(top - gap)
                model.w[h - 1, model.logit_offsets.index(o)] = top
            model.C.zero_()
            model.C[spec.sets.index(selected)] = 1.0
            model.a.fill_(a)
        return model

    # --------------------------------------------------------------------- trainer interface
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``"C"``: [C]; ``"w"``: [w, A or Q, K, V] (those trained) + [ln_weight, ln_bias] with
        LayerNorm; ``"a"``: [a]."""
        copier = [self.w]
        if self._options["train_content"]:
            copier += self.content_tensors()
        if self._options["train_values"]:
            copier.append(self.V)
        if self.normalization == "layernorm":
            copier += [self.ln_weight, self.ln_bias]
        return {"C": [self.C], "w": copier, "a": [self.a]}

    def prepare_inputs(self, context: torch.Tensor) -> torch.Tensor | FullPatternInputs:
        """A fixed sample ``context`` (n, L) prepared once for the copier's cheapest form
        (:func:`numerics.models.full_forms.prepare_full_inputs`): its window-pattern ids, or
        the tokens themselves. Every form computes the same model up to rounding."""
        _check_context(context, self.spec.window, self.vocab_size)
        with torch.no_grad():
            return prepare_full_inputs(context.to(self.w.device), self.copier())

    def select_inputs(self, inputs: torch.Tensor | FullPatternInputs, idx: torch.Tensor
                      ) -> torch.Tensor | FullPatternInputs:
        """The prepared inputs of the sequences ``idx`` (B,) of a prepared sample."""
        return select_full_inputs(inputs, idx)

    def loss_and_copier(self, tokens: torch.Tensor,
                        inputs: torch.Tensor | FullPatternInputs | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`loss` on ``tokens`` (n, L+1) and ``copier_attention(tokens[:, :-1])`` (H, M).

        One forward pass gives both: the attention is the one the loss used, averaged over the
        sequences and the interior positions, so it weighs each offset as the copies that
        enter the similarities do (the simplified model's interior attention means the same).
        """
        self._check_loss_args(tokens, inputs)
        probs, taps = self(tokens[:, :-1] if inputs is None else inputs, return_taps=True)
        loss = self.loss_from_probs(probs, tokens[:, -1].to(probs.device))
        return loss, self._interior(taps["copier.position_attention"], include_self=False)

    def selector_weights(self) -> torch.Tensor:
        """c̃ (|𝒮|,): ``C_S^2 / Σ_T C_T^2`` in ``self.sets`` order."""
        c = self.C.square()
        return c / c.sum()

    def copier_attention(self, context: torch.Tensor | None = None, *,
                         include_self: bool = False) -> torch.Tensor:
        """Copier attention by offset, (H, M) over offsets 1..M (H, K with ``include_self``).

        Without ``context``: the softmax of the position logits over each head's window, the
        content-free attention. It is exactly σ_h(L+1, ·) at the query (whose embedding is 0,
        so its content term vanishes), and σ_h(l, ·) at every interior position while the
        content term is 0. With ``context`` (n, L): σ_h(l, ·) averaged over the n sequences and
        the interior positions l = M+1..L (all offsets valid). Offsets outside a head's window
        get 0. Without offset 0 a row sums to 1; with it, to 1 minus the mass on the position.
        """
        if context is None:
            copier = self.copier()
            logits = copier.logits.masked_fill(~copier.mask, torch.finfo(self.w.dtype).min)
            sigma = torch.softmax(logits, dim=-1) * copier.mask             # (H, K)
            return sigma if include_self or not self.self_attention else sigma[:, 1:]
        _, taps = self(context, return_taps=True)
        return self._interior(taps["copier.position_attention"], include_self=include_self)

    def _interior(self, sigma: torch.Tensor, *, include_self: bool) -> torch.Tensor:
        """(H, M) or (H, K): the tap σ (n, H, L+1, K) averaged over n and l = M+1..L."""
        mean = sigma[:, :, self.spec.window:-1].mean(dim=(0, 2))           # (H, K)
        return mean if include_self or not self.self_attention else mean[:, 1:]

    # ------------------------------------------------------------------------------ forward
    def copier(self) -> FullCopier:
        """The copier's effective tensors, built differentiably from the parameters.

        ``logits`` (H, K): ``w`` with the fixed self logit as column 0 when there is one;
        ``mask`` (H, K): each head's window (offset 0 included with self-attention);
        ``content``: ``A`` or ``Q_h K_hᵀ`` (H, d, d); ``values``: ``V``; a shared LayerNorm's
        gain and bias repeated for every head.
        """
        H = self.spec.heads
        logits = self.w                                                     # (H, K')
        if self.self_logit is not None:
            logits = torch.cat([self.w.new_full((H, 1), self.self_logit), self.w], dim=1)
        if self.content == "direct":
            content = self.A                                                # (H, d, d)
        else:
            content = torch.einsum("hij,hkj->hik", self.Q, self.K)          # (H, d, d) Q_h K_hᵀ
        ln_weight = ln_bias = None
        if self.normalization == "layernorm":
            ln_weight = self.ln_weight.expand(H, self.vocab_size)           # (H, d)
            ln_bias = self.ln_bias.expand(H, self.vocab_size)               # (H, d)
        return FullCopier(self.offsets, logits, self.window_mask, content, self.V, ln_weight,
                          ln_bias, self.ln_eps, self.norm_offset, self.relu_similarity)

    def forward(self, context: torch.Tensor | FullPatternInputs, *, return_taps: bool = False):
        """ŷ for the query position L+1.

        Args:
            context: (n, L) int64 tokens ``x_1..x_L``, L > M, or what :meth:`prepare_inputs`
                returned for them.
            return_taps: also return the dict of named taps (module docstring).

        Returns:
            ŷ (n, d), or ``(ŷ, taps)``.
        """
        dev = self.w.device
        prepared = context if isinstance(context, FullPatternInputs) else None
        tokens = prepared.context if prepared is not None else context
        _check_context(tokens, self.spec.window, self.vocab_size)
        n, L = tokens.shape
        tokens = tokens.to(dev)
        if prepared is not None and not return_taps:
            # The similarity of every (query window, pattern) cell, then one gather: the
            # selector's products run over the table, not over the n·L positions.
            _, table, _, _ = pattern_similarity_table(prepared, self.copier())  # (H, U, P)
            cells = prepared.cells.to(dev).reshape(-1)                      # (n·L,)
            sim = self._combine(table.unbind(0)).reshape(-1).gather(0, cells).view(n, L)
            head_sim = sigma = c_tilde = None
        else:
            copied = copier_head_similarity(prepared if prepared is not None else tokens,
                                            self.copier(), return_attention=return_taps)
            head_sim, sigma = copied if return_taps else (copied, None)     # (n, H, L)
            c_tilde = self.selector_weights()                               # (|𝒮|,)
            sim = self._combine(head_sim.unbind(1))                         # (n, L)
        attn = torch.softmax(self.a * sim, dim=-1)                          # (n, L)
        probs = attn.new_zeros(n, self.vocab_size).scatter_add(1, tokens, attn)  # (n, d)
        if not return_taps:
            return probs
        taps = {"copier.position_attention": sigma, "copier.head_similarity": head_sim,
                "selector.weights": c_tilde, "classifier.similarity": sim,
                "classifier.attention": attn, "output": probs}
        return probs, taps

    def _combine(self, heads: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """``s = Σ_S c̃_S Π_{h∈S} k_h`` from the per-head similarities ``heads`` (H × (...))."""
        c_tilde = self.selector_weights()                                   # (|𝒮|,)
        sim = None
        for k, s in enumerate(self.sets):
            term = c_tilde[k].expand(heads[0].shape)
            for h in s:
                term = term * heads[h - 1]
            sim = term if sim is None else sim + term
        return sim

    def loss_from_probs(self, probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss of ŷ (n, d) against targets (n,) under ``self.loss_kind``."""
        if self.loss_kind == "official_ce":
            return F.cross_entropy(probs, target)
        picked = probs.gather(1, target[:, None]).squeeze(1)               # (n,)
        return -picked.clamp_min(LOSS_FLOOR).log().mean()

    def loss(self, tokens: torch.Tensor,
             inputs: torch.Tensor | FullPatternInputs | None = None) -> torch.Tensor:
        """Mean loss on sequences (n, L+1): context ``x_1..x_L``, target ``x_{L+1}``.

        Args:
            tokens: (n, L+1) int64.
            inputs: what :meth:`prepare_inputs` returned for ``tokens[:, :-1]``, or None.
        """
        self._check_loss_args(tokens, inputs)
        probs = self(tokens[:, :-1] if inputs is None else inputs)
        return self.loss_from_probs(probs, tokens[:, -1].to(probs.device))

    def _check_loss_args(self, tokens: object, inputs: object) -> None:
        require(isinstance(tokens, torch.Tensor) and tokens.dim() == 2, "tokens",
                "an integer tensor of shape (n, L+1)", getattr(tokens, "shape", type(tokens)))
        prepared = inputs.context if isinstance(inputs, FullPatternInputs) else inputs
        require(prepared is None or (isinstance(prepared, torch.Tensor) and prepared.dim() == 2
                                     and prepared.shape[0] == tokens.shape[0]), "inputs",
                f"None or the prepared context of the n = {tokens.shape[0]} sequences",
                getattr(prepared, "shape", type(inputs).__name__))

    def first_move_ingredients(self) -> FullIngredients:
        """This model's options and loss as theory's first-move ingredients
        (:func:`numerics.models.first_move_ingredients`, :func:`theory.predict_first_move`)."""
        return first_move_ingredients(self.constructor_options(), self.loss_kind)

    def constructor_options(self) -> dict[str, object]:
        """The constructor's keywords beyond spec, d, loss, dtype and device (checkpoints):
        every option of :data:`FULL_OPTION_DEFAULTS`, in its order."""
        return dict(self._options)

    @classmethod
    def check_options(cls, options: object) -> dict[str, object]:
        """``options`` read back from a file (:meth:`constructor_options`), checked, the options
        a file lacks filled in with their defaults (files that hold only the first four).

        Raises:
            InductionHeadsError: on missing required keys, unknown keys or a value the
                constructor would refuse.
        """
        required = REQUIRED_OPTION_KEYS
        optional = tuple(k for k in FULL_OPTION_DEFAULTS if k not in required)
        require(isinstance(options, dict) and set(required) <= set(options)
                and set(options) <= set(FULL_OPTION_DEFAULTS), "model_options",
                f"a dict with keys {required} (model kind 'full'), optionally {optional}",
                sorted(map(str, options)) if isinstance(options, dict)
                else type(options).__name__)
        return check_full_options(options, where="model_options")

    def default_taps(self) -> tuple[str, ...]:
        """The taps the probe reads by default: the copier's and the classifier's attention."""
        return tuple(TAP_LAYOUTS)

    def tap_layout(self, name: str) -> str:
        """The layout (:mod:`numerics.probing.attention`) of tap ``name``:
        ``copier.position_attention`` is ``"copier_positions"`` (n, H, L+1, K),
        ``classifier.attention`` ``"query"``."""
        return TAP_LAYOUTS.get(name, "auto")
