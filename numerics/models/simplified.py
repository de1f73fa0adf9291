"""The paper's transformer TF(M, H, d, D) of docs/theory.md §2, vectorised over sequences and positions.

Layers (shapes with paper symbols; n sequences, L context positions, query at L+1):
    copier      head h has logits ``w_h ∈ R^M`` over offsets ``i = 1..M``; at position l it attends to
                ``l-i`` for the valid offsets of its window (``spec.windows[h-1]``, ``l-i >= 1``):
                ``σ_h(l, i) = softmax_valid(w_h)_i``, exactly 0 outside the window, and
                ``v_h(l) = Σ_i σ_h(l, i) e(x_{l-i})``, then ``v̄_h(l) = v_h(l)/(||v_h(l)|| + ε)``
                (ε = ``norm_offset``, 0 by default; ``v̄ = 0`` if no offset is valid). The query
                position L+1 holds the zero vector but copies too.
    selector    sets ``S ⊆ [H]``, ``|S| <= D`` (empty set included) with ``c_S = C_S^2``,
                ``c̃ = c / Σc``: ``s_l = Σ_S c̃_S Π_{h∈S} <v̄_h(L+1), v̄_h(l)>``.
    classifier  ``ŷ = Σ_{l=1}^{L} softmax_l(a · s_l) e(x_l)``, a probability vector over ``[d]``.

No dense (L+1)×(L+1) attention is built. A fixed sample is prepared once
(:mod:`numerics.models.inputs`) in one of its ``INPUT_FORMS`` (docs/theory.md §2, input forms),
the cheapest by the cost model of :mod:`numerics.models.costs`: match tensors
(``CopierInputs``: the copier's inner products and norms as quadratic forms of
σ over data-only token matches, (L, n, M·M)), value vectors
(:class:`numerics.models.vectors.VectorInputs`, memory O(n·L·H·d)), or window-pattern ids and
(pattern, next token) counts (:class:`numerics.models.patterns.PatternInputs`, a step that does
not grow with M², or with L). ``numerics.models.reference`` keeps the dense construction for
the tests.

Named taps (``forward(..., return_taps=True)``), stable names:
    ``copier.attention``      (H, M)   σ_h(l, i), head × offset i = 1..M, at an interior position
                                       (all offsets valid, 0 outside the head's window; the same
                                       at every such position; the
                                       full model's per-position tap is
                                       ``copier.position_attention``)
    ``copier.head_similarity`` (n, H, L) <v̄_h(L+1), v̄_h(l)>
    ``selector.weights``      (|𝒮|,)   c̃_S in ``model.sets`` order
    ``classifier.similarity`` (n, L)   s_l
    ``classifier.attention``  (n, L)   softmax_l(a · s_l)
    ``output``                (n, d)   ŷ
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from numerics.devices import resolve_device
from numerics.models.copy_norm import copy_cosine
from numerics.models.costs import form_costs, input_form
from numerics.models.inputs import (
    INPUT_FORMS,
    STAGE_CACHE_MAX_BYTES,
    CopierInputs,
    PreparedInputs,
    StageInputs,
    check_tokens,
    is_token_tensor,
    prepare_inputs,
    resolve_dtype,
    shape_or_type,
)
from numerics.models.patterns import (
    PatternInputs,
    pattern_classify,
    pattern_head_similarity,
    pattern_rows,
)
from numerics.models.vectors import VectorInputs, vector_head_similarity
from theory.dynamics.first_move import FullIngredients
from theory.errors import require
from theory.predictors.reference import LOSS_FLOOR
from theory.sources.spec import ModelSpec
from theory.validation import is_int, is_real

__all__ = ["InductionHeadModel", "LOSS_FLOOR", "LOSS_KINDS"]

LOSS_KINDS = ("nll", "official_ce")
"""``nll``: ``-log max(ŷ(target), LOSS_FLOOR)`` (docs/theory.md §2). ``official_ce``: the
official code's ``nn.CrossEntropyLoss`` applied to ŷ as if it were logits (only to reproduce its
figures)."""


TAP_LAYOUTS = {"copier.attention": "copier", "classifier.attention": "query"}
"""Tap name -> layout of TF's attention taps (:meth:`InductionHeadModel.tap_layout`)."""


class InductionHeadModel(nn.Module):
    """TF(M, H, d, D) with trainable copier logits ``w`` (H, M), selector ``C`` (|𝒮|,) and ``a``.

    The heads' windows (``spec.windows``) are a structural mask, the buffer ``window_mask``
    (H, M) bool: the logits outside a head's window stay in ``w`` but are never read, so their
    gradient is 0.

    Args:
        spec: sizes, windows and initialisation (``w_plus`` at offset h for head h, ``w_minus``
            elsewhere, ``C_S = c_init``, ``a = a_init``).
        vocab_size: d >= 2 (a Python or numpy integer).
        loss: one of :data:`LOSS_KINDS`.
        dtype: parameter and activation dtype: ``torch.float32``, ``torch.float64`` or their
            names ``"float32"``, ``"float64"`` (float64 for theory checks).
        device: where the parameters live: a name of :func:`numerics.devices.resolve_device`
            (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``), a ``torch.device``, or None (CPU).
        inputs: how :meth:`prepare_inputs` prepares a context by default: one of
            :data:`INPUT_FORMS`, or ``"auto"`` for the cheapest (:func:`input_form`). Every form
            computes the same model up to rounding, so it is a speed setting, not part of the
            model (checkpoints do not record it).
        norm_offset: ``ε >= 0`` of the copy's normalisation ``v̄ = v / (||v|| + ε)``; the
            authors' code uses 1e-7 (docs/theory.md §4). Part of the model: a checkpoint records
            it (:meth:`constructor_options`) when it is not 0.

    Raises:
        InductionHeadsError: on a bad spec, vocabulary, loss kind, dtype, input form, norm
            offset, or a device that is not spelled as above or does not exist on this machine.
    """

    kind: ClassVar[str] = "simplified"
    """The model kind's name in the registry (:data:`numerics.training.KINDS`)."""

    def __init__(self, spec: ModelSpec, vocab_size: int, *, loss: str = "nll",
                 dtype: torch.dtype | str = torch.float32,
                 device: torch.device | str | None = None, inputs: str = "auto",
                 norm_offset: float = 0.0):
        super().__init__()
        require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", spec)
        require(is_int(vocab_size) and vocab_size >= 2, "vocab_size",
                "an integer d >= 2", vocab_size)
        require(isinstance(loss, str) and loss in LOSS_KINDS, "loss", f"one of {LOSS_KINDS}",
                loss)
        require(isinstance(inputs, str) and (inputs == "auto" or inputs in INPUT_FORMS),
                "inputs", f"'auto' or one of {INPUT_FORMS}", inputs)
        require(is_real(norm_offset) and math.isfinite(float(norm_offset))
                and float(norm_offset) >= 0, "norm_offset", "a finite real number >= 0",
                norm_offset)
        self.norm_offset = float(norm_offset)
        dtype, device = resolve_dtype(dtype), resolve_device(device)
        self.spec, self.vocab_size, self.loss_kind = spec, int(vocab_size), loss
        self.input_setting = inputs
        self.sets = spec.sets
        H, M = spec.heads, spec.window
        kw = {"dtype": dtype, "device": device}
        w = torch.full((H, M), spec.w_minus, **kw)
        w[torch.arange(H), torch.arange(H)] = spec.w_plus
        self.w = nn.Parameter(w)                                           # (H, M)
        self.C = nn.Parameter(torch.full((len(self.sets),), spec.c_init, **kw))  # (|𝒮|,)
        self.a = nn.Parameter(torch.tensor(spec.a_init, **kw))            # ()
        # Heads with a fixed one-hot copier (offset index), -1 for trainable softmax heads.
        self.register_buffer("fixed_offsets", torch.full((H,), -1, dtype=torch.long,
                                                         device=device))
        # Derived from the spec, so not part of the state a checkpoint holds.
        self.register_buffer("window_mask", torch.tensor(spec.window_mask(), dtype=torch.bool,
                                                         device=device), persistent=False)

    # ----------------------------------------------------------------------------- constructors
    @classmethod
    def at_limit(cls, spec: ModelSpec, vocab_size: int, *, selected_set: tuple[int, ...],
                 a: float, offsets: Mapping[int, int] | None = None, **kwargs) -> InductionHeadModel:
        """The limiting model: exact one-hot copier, selector one-hot on ``selected_set``, given ``a``.

        Args:
            spec: model sizes (the initialisation is kept for heads without a fixed offset).
            vocab_size: d.
            selected_set: the head set S* (1-based heads), a member of ``spec.sets``.
            a: classifier temperature, a finite real number >= 0. The limit ``a = ∞`` itself is
                the generalized induction head, :func:`theory.gih_predict` with ``a=math.inf``.
            offsets: head -> offset it copies exactly (default: h -> h for h in ``selected_set``),
                an offset of the head's window (``spec.windows``). A fixed head outputs
                ``e(x_{l-offset})``, or 0 where ``l - offset < 1``.
            **kwargs: passed to the constructor (``dtype``, ``device``, ``loss``).

        Raises:
            InductionHeadsError: on a bad selected set, offsets or temperature (nan, ±inf,
                negative, or not a real number), or a bad constructor argument.
        """
        require(is_real(a) and math.isfinite(float(a))
                and float(a) >= 0, "a",
                "a finite real number >= 0 (a = inf is theory.gih_predict(..., a=math.inf))", a)
        require(isinstance(selected_set, (tuple, list)) and all(is_int(h) for h in selected_set),
                "selected_set", "a tuple of 1-based head indices", selected_set)
        model = cls(spec, vocab_size, **kwargs)
        selected = tuple(sorted(int(h) for h in selected_set))
        require(selected in spec.sets, "selected_set", f"one of the head sets {spec.sets}", selected)
        require(offsets is None or isinstance(offsets, Mapping), "offsets",
                "None or a mapping head -> offset", offsets)
        offsets = dict(offsets) if offsets is not None else {h: h for h in selected}
        for h, o in offsets.items():
            require(is_int(h) and 1 <= h <= spec.heads, "offsets head",
                    f"a head in 1..{spec.heads}", h)
            require(is_int(o) and 1 <= o <= spec.window, "offsets offset",
                    f"an offset in 1..{spec.window}", o)
            require(int(o) in spec.windows[int(h) - 1], f"offsets offset of head {int(h)}",
                    f"an offset of the head's window {spec.windows[int(h) - 1]}", o)
            model.fixed_offsets[int(h) - 1] = int(o) - 1
        with torch.no_grad():
            model.C.zero_()
            model.C[spec.sets.index(selected)] = 1.0
            model.a.fill_(float(a))
        return model

    # ---------------------------------------------------------------------------- read-outs
    def copier_attention(self, valid: torch.Tensor | None = None) -> torch.Tensor:
        """σ_h(l, i) for every position: (H, L+1, M) given ``valid`` (L+1, M), else (H, M) interior.

        The softmax runs over the offsets that are valid and in the head's window; σ is exactly 0
        elsewhere, and 0 at every offset of a position where the head has none.
        """
        H, M = self.w.shape
        if valid is None:
            valid = torch.ones(1, M, dtype=torch.bool, device=self.w.device)
        allowed = valid[None, :, :] & self.window_mask[:, None, :]        # (H, L+1, M)
        logits = self.w[:, None, :].masked_fill(~allowed, torch.finfo(self.w.dtype).min)
        sigma = torch.softmax(logits, dim=-1) * allowed                   # (H, L+1, M)
        fixed = self.fixed_offsets >= 0
        if bool(fixed.any()):
            hard = F.one_hot(self.fixed_offsets.clamp_min(0), M).to(sigma.dtype)  # (H, M)
            sigma = torch.where(fixed[:, None, None], hard[:, None, :] * allowed, sigma)
        return sigma if valid.shape[0] > 1 else sigma[:, 0, :]

    def selector_weights(self) -> torch.Tensor:
        """c̃ (|𝒮|,): ``C_S^2 / Σ_T C_T^2`` in ``self.sets`` order."""
        c = self.C.square()
        return c / c.sum()

    # --------------------------------------------------------------------- trainer interface
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """The trainer's groups (``numerics.models.full.TrainableModel``): C, w and a."""
        return {"C": [self.C], "w": [self.w], "a": [self.a]}

    def prepare_inputs(self, context: torch.Tensor, *, form: str | None = None) -> PreparedInputs:
        """:func:`prepare_inputs` of ``context`` (n, L) for this model's M, d and dtype.

        ``form``: one of :data:`INPUT_FORMS`, ``"auto"`` for :func:`input_form`'s choice, or
        None for the model's ``inputs`` setting.
        """
        form = self.input_setting if form is None else form
        require(isinstance(form, str) and (form == "auto" or form in INPUT_FORMS), "form",
                f"'auto' or one of {INPUT_FORMS}", form)
        if form == "auto" and is_token_tensor(context, 2):
            form = self.cheapest_form(*context.shape)
        return prepare_inputs(context, self.spec.window, self.vocab_size, self.w.dtype,
                              form="matches" if form == "auto" else form)

    def input_costs(self, sequences: int, seq_len: int) -> dict[str, float]:
        """:func:`form_costs` of this model's sizes for n sequences of L context tokens."""
        return form_costs(sequences, seq_len, window=self.spec.window,
                          vocab_size=self.vocab_size, heads=self.spec.heads, sets=len(self.sets))

    def cheapest_form(self, sequences: int, seq_len: int) -> str:
        """:func:`input_form`'s choice for this model's sizes, n sequences of L context tokens."""
        return input_form(sequences, seq_len, window=self.spec.window,
                          vocab_size=self.vocab_size, heads=self.spec.heads, sets=len(self.sets))

    def select_inputs(self, inputs: PreparedInputs, idx: torch.Tensor) -> PreparedInputs:
        """The prepared inputs of the sequences ``idx`` (B,) of a prepared sample."""
        if isinstance(inputs, VectorInputs):
            return VectorInputs(inputs.onehot[idx])
        if isinstance(inputs, PatternInputs):
            counts = None if inputs.counts is None else inputs.counts[idx]
            log_present = None if inputs.log_present is None else inputs.log_present[idx]
            return inputs._replace(onehot=inputs.onehot[idx], positions=inputs.positions[idx],
                                   query_index=inputs.query_index[idx], counts=counts,
                                   log_present=log_present)
        return CopierInputs(inputs.onehot[idx], inputs.cross[:, :, idx], inputs.gram[:, :, idx])

    def first_move_ingredients(self) -> FullIngredients:
        """This model as theory's first-move ingredients (:func:`theory.predict_first_move`):
        the full model's copier with no self offset, no content term, identity values and the
        l2 normalisation (with this model's ``norm_offset``), on this model's loss."""
        return FullIngredients(self_offset=False, content_scale=0.0, value_scale=1.0,
                               normalization="l2", norm_offset=self.norm_offset, relu=False,
                               loss=self.loss_kind)

    def constructor_options(self) -> dict[str, object]:
        """The constructor's keywords beyond spec, d, loss, dtype and device (checkpoints).

        ``{}`` at the default ``norm_offset = 0``, else ``{"norm_offset": ε}``.
        """
        return {"norm_offset": self.norm_offset} if self.norm_offset != 0.0 else {}

    @classmethod
    def check_options(cls, options: object) -> dict[str, object]:
        """``options`` read back from a file (:meth:`constructor_options`), checked.

        Raises:
            InductionHeadsError: on other keys or a ``norm_offset`` that is not a finite
                float >= 0.
        """
        require(isinstance(options, dict) and set(options) <= {"norm_offset"}, "model_options",
                "{} or {'norm_offset': a float >= 0} (the simplified model's only option)",
                options if isinstance(options, (dict, type(None))) else type(options).__name__)
        if "norm_offset" in options:
            value = options["norm_offset"]
            require(isinstance(value, float) and math.isfinite(value) and value >= 0,
                    "model_options['norm_offset']", "a finite float >= 0", value)
        return dict(options)

    def default_taps(self) -> tuple[str, ...]:
        """The taps the probe reads by default: the copier's and the classifier's attention."""
        return tuple(TAP_LAYOUTS)

    def tap_layout(self, name: str) -> str:
        """The layout (:mod:`numerics.probing.attention`) of tap ``name``: ``copier.attention``
        is ``"copier"`` (H, M), ``classifier.attention`` ``"query"`` (n, L)."""
        return TAP_LAYOUTS.get(name, "auto")

    def loss_and_copier(self, tokens: torch.Tensor, inputs: CopierInputs | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`loss` on ``tokens`` (n, L+1) and the copier attention (H, M) it used.

        The copier does not read the content, so the attention is :meth:`copier_attention` at an
        interior position whatever the tokens.
        """
        return self.loss(tokens, inputs), self.copier_attention()

    # ------------------------------------------------------------------------------ forward
    def forward(self, context: torch.Tensor | PreparedInputs, *, return_taps: bool = False):
        """ŷ for the query position L+1.

        Args:
            context: (n, L) integer tokens in ``0..d-1`` on the model's device, n >= 1,
                L > M (prepared in the form :func:`input_form` picks); or inputs prepared for
                this model (window, vocabulary, dtype and device) by :meth:`prepare_inputs`.
            return_taps: also return the dict of named taps (module docstring).

        Returns:
            ŷ (n, d), or ``(ŷ, taps)``.

        Raises:
            InductionHeadsError: on a context that fails those conditions.
        """
        cached = context if isinstance(context, StageInputs) else None
        if cached is not None:
            context = cached.base
        if not isinstance(context, PreparedInputs):
            require(not isinstance(context, torch.Tensor) or context.device == self.w.device,
                    "context device", f"the model's device {self.w.device}",
                    getattr(context, "device", None))
            context = self.prepare_inputs(context)
        if cached is not None and not return_taps:
            if cached.similarity is not None:
                return self._classify(cached.similarity, context)
            if cached.products is not None:
                shape = tuple(cached.products.shape[1:])
                return self._classify(self._combine(cached.products, shape), context)
        head_sim = self._head_similarity(context)              # (L, H, n) or (U, H, P')
        shape = (head_sim.shape[0], head_sim.shape[2])
        sim = self._combine(self._products(head_sim), shape)   # (L, n) or (U, P')
        if not return_taps:
            return self._classify(sim, context)
        if isinstance(context, PatternInputs):
            n, L = context.positions.shape
            head_rows = head_sim.index_select(0, context.query_index)     # (n, H, P')
            index = context.positions[:, None, :].expand(n, head_rows.shape[1], L)
            head_nhl = head_rows.gather(2, index)                         # (n, H, L)
            sim_nl = pattern_rows(sim, context).gather(1, context.positions)  # (n, L)
        else:
            head_nhl, sim_nl = head_sim.permute(2, 1, 0), sim.transpose(0, 1)
        attn = torch.softmax(self.a * sim_nl, dim=-1)                      # (n, L)
        probs = torch.bmm(attn[:, None, :], context.onehot).squeeze(1)     # (n, d)
        taps = {"copier.attention": self.copier_attention(),
                "copier.head_similarity": head_nhl,
                "selector.weights": self.selector_weights(), "classifier.similarity": sim_nl,
                "classifier.attention": attn, "output": probs}
        return probs, taps

    def _check_prepared(self, onehot: torch.Tensor) -> None:
        """Prepared inputs match this model's vocabulary, dtype and device."""
        require(onehot.shape[0] >= 1 and onehot.shape[2] == self.vocab_size, "prepared inputs",
                f"n >= 1 sequences over d = {self.vocab_size} tokens", tuple(onehot.shape))
        require(onehot.dtype == self.w.dtype and onehot.device == self.w.device,
                "prepared inputs", f"dtype {self.w.dtype} on {self.w.device}",
                f"{onehot.dtype} on {onehot.device}")

    def _position_attention(self, length: int) -> torch.Tensor:
        """σ_h(l, i) (H, L+1, M) for l = 1..L+1 with L = ``length``."""
        M = self.spec.window
        pos = torch.arange(1, length + 2, device=self.w.device)
        valid = pos[:, None] - torch.arange(1, M + 1, device=self.w.device)[None, :] >= 1
        return self.copier_attention(valid)                               # (H, L+1, M)

    def _head_similarity(self, context: PreparedInputs) -> torch.Tensor:
        """``<v̄_h(L+1), v̄_h(l)>`` from prepared inputs (checked here).

        Match tensors and value vectors give it per position, (L, H, n); window patterns per
        (query pattern, pattern), (U, H, P').
        """
        M = self.spec.window
        if isinstance(context, PatternInputs):
            require(context.digits.shape[1] == M, "prepared window", f"M = {M}",
                    context.digits.shape[1])
            self._check_prepared(context.onehot)
            # Positions l = 1..M+1 have k = l - 1 = 0..M valid offsets: one row per length.
            return pattern_head_similarity(self._position_attention(M), context,
                                           self.norm_offset)
        if isinstance(context, VectorInputs):
            self._check_prepared(context.onehot)
            sigma = self._position_attention(context.onehot.shape[1])     # (H, L+1, M)
            return vector_head_similarity(sigma, context, self.norm_offset)
        onehot, cross, gram = context                   # (n,L,d), (L,M·M,n), (L+1,M·M,n)
        L = onehot.shape[1]
        require(cross.shape[1] == M * M, "prepared window", f"M·M = {M * M}", cross.shape[1])
        self._check_prepared(onehot)
        sigma = self._position_attention(L)                               # (H, L+1, M)
        sigma_l = sigma.transpose(0, 1)                                   # (L+1, H, M)
        # Quadratic-form weights: σ_h(L+1,i)σ_h(l,j) and σ_h(l,j)σ_h(l,k), flattened to M·M.
        w_cross = (sigma_l[L][None, :, :, None] * sigma_l[:L, :, None, :]).flatten(2)  # (L,H,M·M)
        w_gram = (sigma_l[:, :, :, None] * sigma_l[:, :, None, :]).flatten(2)         # (L+1,H,M·M)
        inner = torch.bmm(w_cross, cross)                                  # (L, H, n)
        sq_norm = torch.bmm(w_gram, gram)                                  # (L+1, H, n)
        return copy_cosine(inner, sq_norm[:L], sq_norm[L], self.norm_offset)  # (L, H, n)

    def _products(self, head_sim: torch.Tensor) -> list[torch.Tensor | None]:
        """Per set ``Π_{h∈S} head_sim[:, h-1]`` (L, n) from ``head_sim`` (L, H, n); None for ∅."""
        # One unbind, not a select per use: each select's backward fills a zero tensor of the
        # whole (L, H, n) shape, which took three quarters of a copier-stage step.
        heads = head_sim.unbind(1)                                         # H × (L, n)
        out: list[torch.Tensor | None] = []
        for s in self.sets:
            if not s:
                out.append(None)
                continue
            term = heads[s[0] - 1]                                         # (L, n)
            for h in s[1:]:
                term = term * heads[h - 1]
            out.append(term)
        return out

    def _combine(self, products: Sequence[torch.Tensor | None] | torch.Tensor,
                 shape: tuple[int, int]) -> torch.Tensor:
        """``s_l = Σ_S c̃_S Π_{h∈S} <v̄_h(L+1), v̄_h(l)>`` (L, n): a short loop over the sets.

        ``products``: per set its product (L, n); the entry of ∅ is ignored (None, or ones
        from a cache). ``shape``: ``(L, n)``.
        """
        c_tilde = self.selector_weights()                                  # (|𝒮|,)
        sim = None
        for k, s in enumerate(self.sets):
            term = c_tilde[k] * products[k] if s else c_tilde[k].expand(*shape)
            sim = term if sim is None else sim + term                      # (L, n)
        return sim

    def _classify(self, sim: torch.Tensor, context: PreparedInputs) -> torch.Tensor:
        """ŷ (n, d) from the similarity (L, n), or its pattern table (U, P'), and the inputs."""
        if isinstance(context, PatternInputs):
            return pattern_classify(sim, self.a, context)
        attn = torch.softmax(self.a * sim.transpose(0, 1), dim=-1)       # (n, L)
        return torch.bmm(attn[:, None, :], context.onehot).squeeze(1)     # (n, d)

    def stage_inputs(self, inputs: PreparedInputs, trained: tuple[str, ...]
                     ) -> PreparedInputs | StageInputs:
        """``inputs`` with the part of the forward a stage training ``trained`` cannot change.

        ``("C",)``: the head-set products (when they fit :data:`STAGE_CACHE_MAX_BYTES`);
        ``("a",)``: the similarity; otherwise ``inputs`` unchanged. Valid only while the other
        parameters stay where they are (:class:`StageInputs`).
        """
        trained = tuple(trained)
        if trained not in (("C",), ("a",)):
            return inputs
        with torch.no_grad():
            head_sim = self._head_similarity(inputs)           # (L, H, n) or (U, H, P')
            shape = (head_sim.shape[0], head_sim.shape[2])
            products = self._products(head_sim)
            if trained == ("a",):
                return StageInputs(inputs, None, self._combine(products, shape))
            if len(self.sets) * shape[0] * shape[1] * head_sim.element_size() > STAGE_CACHE_MAX_BYTES:
                return inputs
            ones = head_sim.new_ones(shape)
            stacked = torch.stack([ones if p is None else p for p in products])  # (|𝒮|, ...)
        return StageInputs(inputs, stacked, None)

    def loss_from_probs(self, probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss of ŷ (n, d) against targets (n,) in ``0..d-1`` under ``self.loss_kind``.

        ``nll`` is ``mean -log max(ŷ(target), LOSS_FLOOR)`` with the floor of
        :data:`theory.predictors.reference.LOSS_FLOOR` (docs/theory.md §6.2).

        Raises:
            InductionHeadsError: when the shapes disagree or a target lies outside ``0..d-1``.
        """
        require(isinstance(probs, torch.Tensor) and probs.dim() == 2
                and probs.shape[1] == self.vocab_size, "probs",
                f"a tensor of shape (n, d = {self.vocab_size})", shape_or_type(probs))
        require(is_token_tensor(target, 1) and target.shape[0] == probs.shape[0], "target",
                f"an integer tensor of shape (n = {probs.shape[0]},)", shape_or_type(target))
        check_tokens(target, "target tokens", self.vocab_size)
        target = target.long()
        if self.loss_kind == "official_ce":
            return F.cross_entropy(probs, target)
        picked = probs.gather(1, target[:, None]).squeeze(1)              # (n,)
        return -picked.clamp_min(LOSS_FLOOR).log().mean()

    def loss(self, tokens: torch.Tensor, inputs: CopierInputs | None = None) -> torch.Tensor:
        """Mean loss on sequences (n, L+1): context ``x_1..x_L``, target ``x_{L+1}``.

        Args:
            tokens: (n, L+1) integer tokens in ``0..d-1``.
            inputs: the prepared context of ``tokens[:, :-1]`` (skips re-preparing a fixed sample).

        Raises:
            InductionHeadsError: on tokens that are not an integer (n, L+1) tensor, prepared
                inputs of another n, or a token (context or target) outside ``0..d-1``.
        """
        require(is_token_tensor(tokens, 2) and tokens.shape[1] >= 2, "tokens",
                "an integer tensor of shape (n, L+1)", shape_or_type(tokens))
        prepared = (CopierInputs, VectorInputs, PatternInputs, StageInputs)
        require(inputs is None or (isinstance(inputs, prepared)
                                   and inputs.onehot.shape[0] == tokens.shape[0]), "inputs",
                f"None or CopierInputs of the n = {tokens.shape[0]} sequences of tokens",
                shape_or_type(inputs.onehot) if isinstance(inputs, prepared) else inputs)
        probs = self(inputs if inputs is not None else tokens[:, :-1])
        return self.loss_from_probs(probs, tokens[:, -1])


