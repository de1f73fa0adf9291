"""The full copier's forms: one entry point, the cost model that picks among them, prepared inputs.

Every form in :data:`FULL_FORMS` computes the same ``k_h(l)`` (n, H, L) of a
:class:`numerics.models.full_copier.FullCopier` up to rounding (tests/numerics/models/
test_full_copier.py, float64): ``gather`` gathers each position's K one-hot keys
(O(n·L·H·K·d), the reference), ``lookup`` looks the content logits up by token ids and
scatters σ into d bins (O(n·L·H·K)), ``patterns`` builds tables over window patterns and gathers one entry per
(sequence, head, position) (:mod:`numerics.models.full_patterns`).

A model prepares a fixed sample once with :func:`prepare_full_inputs` (pattern ids when the
cost model picks ``patterns``, else the context itself), takes minibatches with
:func:`select_full_inputs` and computes with :func:`copier_head_similarity`.
"""

from __future__ import annotations

import torch

from numerics.models.costs import PATTERN_TABLE_MAX
from numerics.models.full_copier import (
    FullCopier,
    gather_head_similarity,
    lookup_head_similarity,
    max_offset,
)
from numerics.models.full_patterns import (
    FullPatternInputs,
    full_pattern_entries,
    patterns_head_similarity,
    prepare_full_patterns,
    select_full_patterns,
)
from numerics.models.inputs import check_tokens, is_token_tensor, shape_or_type
from numerics.models.patterns import pattern_count
from theory.errors import require

__all__ = ["FULL_FORMS", "FullInputs", "full_form_costs", "full_input_form",
           "prepare_full_inputs", "select_full_inputs", "copier_head_similarity"]

FULL_FORMS = ("gather", "lookup", "patterns")
"""The forms of :func:`copier_head_similarity` (module docstring)."""

FullInputs = torch.Tensor | FullPatternInputs
"""What :func:`prepare_full_inputs` returns: the context (n, L) or its pattern ids."""

_FORMS = {"gather": gather_head_similarity, "lookup": lookup_head_similarity,
          "patterns": patterns_head_similarity}


def full_form_costs(sequences: int, seq_len: int, *, window: int, offsets: int, vocab_size: int,
                    heads: int, prepared: bool = False) -> dict[str, float]:
    """Estimated nanoseconds of one forward and backward pass of each form the sizes admit.

    A cost model fitted to one-thread CPU passes at the authors' sizes (d = 3, H = 3, K = 6,
    M = 5; n = 10..3000, L = 20 and 100; within about 2× of every measured pass), used only
    to rank the forms: ``gather`` ``10⁶ + 90·n·L·H·K·d``; ``lookup`` ``10⁶ + 45·n·L·H·K``;
    ``patterns`` ``5·10⁶ + 100·P·H·K + 2·U·P·H·d + 12·n·L·H`` with P position patterns and
    U <= min(n, d^M) query windows, plus ``70·n·L`` to compute the pattern ids unless
    ``prepared``. ``patterns`` needs ``U·P <=`` :data:`numerics.models.costs.PATTERN_TABLE_MAX`.

    Args:
        sequences: n.
        seq_len: L.
        window: M, the copier's largest offset.
        offsets: K, the number of offsets.
        vocab_size: d.
        heads: H.
        prepared: whether the pattern ids are computed already (a fixed sample).
    """
    n, L, M, K, d, H = sequences, seq_len, window, offsets, vocab_size, heads
    costs = {"gather": 1e6 + 90.0 * n * L * H * K * d, "lookup": 1e6 + 45.0 * n * L * H * K}
    entries = full_pattern_entries(n, M, d) if M >= 1 else PATTERN_TABLE_MAX + 1
    if entries <= PATTERN_TABLE_MAX:
        patterns = pattern_count(M, d) * d                                 # P
        costs["patterns"] = (5e6 + 100.0 * patterns * H * K + 2.0 * entries * H * d
                             + 12.0 * n * L * H + (0.0 if prepared else 70.0 * n * L))
    return costs


def full_input_form(sequences: int, seq_len: int, *, window: int, offsets: int,
                    vocab_size: int, heads: int, prepared: bool = False) -> str:
    """The cheapest form of :func:`full_form_costs` for these sizes."""
    costs = full_form_costs(sequences, seq_len, window=window, offsets=offsets,
                            vocab_size=vocab_size, heads=heads, prepared=prepared)
    return min(costs, key=costs.__getitem__)


def _check_context(context: object, window: int, vocab_size: int) -> None:
    require(is_token_tensor(context, 2), "context", "an integer tensor of shape (n, L)",
            shape_or_type(context))
    require(context.shape[0] >= 1, "context sequences n", "n >= 1", context.shape[0])
    require(context.shape[1] > window, "context length L", f"L > max offset = {window}",
            context.shape[1])
    check_tokens(context, "context tokens", vocab_size)


def prepare_full_inputs(context: torch.Tensor, copier: FullCopier, *, form: str = "auto"
                        ) -> FullInputs:
    """A fixed sample ``context`` (n, L) prepared for ``copier``'s sizes in ``form``.

    ``"auto"``: :func:`full_input_form` with ``prepared=True`` (the ids are computed once).
    ``patterns``: :class:`numerics.models.full_patterns.FullPatternInputs`; the other forms
    need nothing beyond the context, returned as it is (after the checks).

    Raises:
        InductionHeadsError: on a bad context (integer (n, L), n >= 1, L > max offset, tokens
            in ``0..d-1``), an unknown form, or ``patterns`` for a table above
            :data:`numerics.models.costs.PATTERN_TABLE_MAX` entries.
    """
    require(form == "auto" or form in FULL_FORMS, "form", f"'auto' or one of {FULL_FORMS}", form)
    top, d = max_offset(copier), copier.content.shape[-1]
    _check_context(context, top, d)
    if form == "auto":
        n, L = context.shape
        form = full_input_form(n, L, window=top, offsets=len(copier.offsets), vocab_size=d,
                               heads=copier.logits.shape[0], prepared=True)
    return prepare_full_patterns(context, top, d) if form == "patterns" else context


def select_full_inputs(inputs: FullInputs, idx: torch.Tensor) -> FullInputs:
    """The prepared inputs of the sequences ``idx`` (B,) of a sample.

    Raises:
        InductionHeadsError: on inputs :func:`prepare_full_inputs` does not return.
    """
    require(isinstance(inputs, (torch.Tensor, FullPatternInputs)), "inputs",
            "the tokens or the FullPatternInputs prepare_full_inputs returned",
            type(inputs).__name__)
    if isinstance(inputs, FullPatternInputs):
        return select_full_patterns(inputs, idx)
    return inputs[idx]


def copier_head_similarity(context: FullInputs, copier: FullCopier, *, form: str = "auto",
                           return_attention: bool = False):
    """``k_h(l)`` (n, H, L) of ``copier`` on ``context`` in one of :data:`FULL_FORMS`.

    Args:
        context: (n, L) int64 tokens on the copier's device, or what
            :func:`prepare_full_inputs` returned.
        copier: the effective parameters.
        form: one of :data:`FULL_FORMS`, or ``"auto"``: ``patterns`` on prepared pattern ids,
            else the cheapest by :func:`full_form_costs` (pattern ids computed in the call).
        return_attention: also return σ (n, H, L+1, K).

    Returns:
        ``head_sim`` (n, H, L), or ``(head_sim, sigma)``.

    Raises:
        InductionHeadsError: on an unknown form, a bad context, or a pattern table too large.
    """
    require(form == "auto" or form in FULL_FORMS, "form", f"'auto' or one of {FULL_FORMS}", form)
    if isinstance(context, FullPatternInputs):
        if form in ("auto", "patterns"):
            return patterns_head_similarity(context, copier, return_attention=return_attention)
        context = context.context
    else:
        _check_context(context, max_offset(copier), copier.content.shape[-1])
    if form == "auto":
        n, L = context.shape
        form = full_input_form(n, L, window=max_offset(copier), offsets=len(copier.offsets),
                               vocab_size=copier.content.shape[-1],
                               heads=copier.logits.shape[0])
    return _FORMS[form](context, copier, return_attention=return_attention)
