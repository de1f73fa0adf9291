"""TF(M, H, d, D) on window patterns: a step whose cost does not grow with M·M per position.

The copier at position l reads only the tokens of its window, ``(x_{l-1}, ..., x_{l-M})``, with
weights that depend on l only through how many offsets are valid (``min(l-1, M)``). So ``v_h(l)``
is a function of the *window pattern* at l alone: an interior position (``l > M``) has one of
``d^M`` patterns, a boundary position ``l <= M`` one of the ``d^(l-1)`` patterns of its shorter
window (its own patterns: a boundary window is never confused with an interior one). With
``P' = d^M + (d^M - 1)/(d - 1)`` patterns in all, the head similarity ``<v̄_h(L+1), v̄_h(l)>`` is
an entry of a table indexed by (query pattern, position pattern), and so are the head-set
products and ``s_l``. A fixed sample reduces to pattern ids, once:

* ``positions`` form: the pattern id of every position (n, L); a step builds the (U, P')
  tables (U distinct query patterns of the sample), gathers ``s_l`` (n, L) and takes the
  classifier's softmax over positions. Cost O(U·P'·(H·d + |𝒮|) + n·L·d), whatever M is.
* ``counts`` form: per sequence the count of every (pattern, next token) pair (n, d, P'), so
  ``ŷ(e) = Σ_p N(p, e) exp(a s(p)) / Σ_p N(p) exp(a s(p))``; a step costs O(n·P'·d) whatever L is.

Both are the same model as :class:`numerics.InductionHeadModel`'s match-tensor form, equal to it
and to the dense reference up to rounding (tests/numerics/models/test_input_forms.py, float64).
Pattern id of a window with k valid offsets and tokens ``t_1..t_k`` (``t_i = x_{l-i}``):
``Σ_i t_i d^(i-1)`` for k = M, and ``d^M + (d^k - 1)/(d - 1) + Σ_i t_i d^(i-1)`` for k < M.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from numerics.models.copy_norm import copy_cosine

__all__ = ["PatternInputs", "SHARED_SHIFT_MAX_A", "pattern_count", "pattern_table_entries",
           "pattern_windows", "prepare_patterns", "pattern_head_similarity", "pattern_classify",
           "pattern_rows"]


class PatternInputs(NamedTuple):
    """A fixed sample as window-pattern ids (module docstring).

    Attributes:
        onehot: (n, L, d) ``e(x_l)`` for l = 1..L.
        positions: (n, L) pattern id of each position l = 1..L, in ``0..P'-1``.
        query_index: (n,) index of the sequence's query pattern in ``queries``.
        queries: (U,) distinct interior pattern ids of the query position L+1.
        digits: (P', M) token ``t_i`` of each pattern at offset i (0 past its valid offsets).
        lengths: (P',) valid offsets k of each pattern.
        counts: (n, d, P') per sequence the number of positions l with pattern p and
            ``x_l = e`` (the ``counts`` form), or None (the ``positions`` form).
        log_present: (n, P') 0 where the pattern occurs in the sequence, ``-inf`` where it does not
            (``counts`` form), or None.
    """

    onehot: torch.Tensor
    positions: torch.Tensor
    query_index: torch.Tensor
    queries: torch.Tensor
    digits: torch.Tensor
    lengths: torch.Tensor
    counts: torch.Tensor | None
    log_present: torch.Tensor | None


SHARED_SHIFT_MAX_A = 80.0
"""Largest ``|a|`` at which the counts form shifts its softmax once per query pattern: every
``s`` lies in [0, 1] (cosines of non-negative vectors, mixed by weights summing to 1), so a
pattern a sequence holds keeps a weight of at least ``e^{-80} ≈ 1.8e-35``, above float32's
smallest normal number (1.2e-38)."""


def pattern_count(window: int, vocab_size: int) -> int:
    """P' = d^M interior plus ``(d^M - 1)/(d - 1)`` boundary patterns."""
    interior = vocab_size ** window
    return interior + (interior - 1) // (vocab_size - 1)


def pattern_windows(window: int, vocab_size: int, device: torch.device | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits (P', M) and valid lengths (P',) of every pattern id (module docstring's numbering)."""
    M, d = window, vocab_size
    powers = d ** torch.arange(M, device=device)                           # (M,)
    digits, lengths = [], []
    for k in [M] + list(range(M)):
        ids = torch.arange(d ** k, device=device)                         # (d^k,)
        tok = (ids[:, None] // powers[None, :k]) % d                       # (d^k, k)
        digits.append(F.pad(tok, (0, M - k)))                              # (d^k, M)
        lengths.append(torch.full((d ** k,), k, dtype=torch.long, device=device))
    return torch.cat(digits), torch.cat(lengths)


def pattern_table_entries(sequences: int, window: int, vocab_size: int) -> int:
    """U·P', the largest (query pattern × pattern) table of n sequences: U <= min(n, d^M)."""
    return min(sequences, vocab_size ** window) * pattern_count(window, vocab_size)


def _position_ids(context: torch.Tensor, window: int, vocab_size: int) -> torch.Tensor:
    """Pattern id (n, L+1) of every position l = 1..L+1 of ``context`` (n, L)."""
    M, d = window, vocab_size
    n, L = context.shape
    tokens = context.long()
    padded = F.pad(tokens, (M, 0))                                         # (n, L+M)
    powers = d ** torch.arange(M, device=context.device)                   # (M,)
    # Window of position l = j+1 is padded[j .. j+M-1]; its element M-i is x_{l-i}.
    windows = padded.unfold(1, M, 1).flip(-1)                              # (n, L+1, M)
    ids = (windows * powers).sum(-1)                                       # (n, L+1)
    valid = torch.arange(L + 1, device=context.device).clamp_max(M)         # (L+1,) k = min(l-1, M)
    # Boundary windows: tokens past the valid offsets are padding zeros, so the same sum is the
    # id inside its length class; add the class's start.
    starts = d ** M + (d ** valid - 1) // (d - 1)                          # (L+1,)
    return torch.where(valid == M, ids, ids + starts)                      # (n, L+1)


def prepare_patterns(context: torch.Tensor, window: int, vocab_size: int,
                     dtype: torch.dtype, *, counts: bool) -> PatternInputs:
    """Pattern ids of a checked context (n, L), L > M (see :class:`PatternInputs`).

    Args:
        context: (n, L) integer tokens in ``0..d-1``.
        window: M >= 1.
        vocab_size: d >= 2.
        dtype: float dtype of ``onehot`` and ``counts``.
        counts: also count (pattern, next token) pairs per sequence (the ``counts`` form).
    """
    n, L = context.shape
    ids = _position_ids(context, window, vocab_size)                      # (n, L+1)
    positions = ids[:, :L].contiguous()                                   # (n, L)
    queries, query_index = torch.unique(ids[:, L], return_inverse=True)   # (U,), (n,)
    onehot = F.one_hot(context.long(), vocab_size).to(dtype)              # (n, L, d)
    digits, lengths = pattern_windows(window, vocab_size, context.device)
    table = log_present = None
    if counts:
        size = pattern_count(window, vocab_size)
        flat = positions * vocab_size + context.long()                     # (n, L)
        table = onehot.new_zeros(n, size * vocab_size)
        table.scatter_add_(1, flat, torch.ones_like(flat, dtype=dtype))
        table = table.view(n, size, vocab_size).transpose(1, 2).contiguous()  # (n, d, P')
        log_present = torch.where(table.sum(1) > 0, 0.0, float("-inf")).to(dtype)  # (n, P')
    return PatternInputs(onehot, positions, query_index, queries, digits, lengths, table,
                         log_present)


def pattern_head_similarity(sigma: torch.Tensor, inputs: PatternInputs,
                            norm_offset: float = 0.0) -> torch.Tensor:
    """``<v̄_h(q), v̄_h(p)>`` (U, H, P') for every query pattern q of the sample and pattern p.

    Args:
        sigma: (H, M+1, M) the copier's weights with k = 0..M valid offsets (row k: offsets
            ``1..k``; zero past them).
        inputs: the sample's :class:`PatternInputs`.
        norm_offset: ``ε`` of ``v̄ = v / (||v|| + ε)`` (:func:`numerics.models.copy_norm.copy_cosine`).
    """
    d = inputs.onehot.shape[2]
    per_pattern = sigma[:, inputs.lengths]                                 # (H, P', M)
    tokens = F.one_hot(inputs.digits, d).to(sigma.dtype)                   # (P', M, d)
    values = torch.einsum("hpm,pmd->hpd", per_pattern, tokens)             # (H, P', d) v_h(p)
    sq_norm = values.square().sum(-1)                                      # (H, P')
    query = values[:, inputs.queries]                                      # (H, U, d)
    inner = torch.bmm(query, values.transpose(1, 2))                       # (H, U, P')
    cosine = copy_cosine(inner, sq_norm[:, inputs.queries, None], sq_norm[:, None, :],
                         norm_offset)                                      # (H, U, P')
    return cosine.transpose(0, 1)                                          # (U, H, P')


def pattern_rows(table: torch.Tensor, inputs: PatternInputs) -> torch.Tensor:
    """Each sequence's row of a (U, P') table: (n, P')."""
    return table.index_select(0, inputs.query_index)


def pattern_classify(table: torch.Tensor, a: torch.Tensor, inputs: PatternInputs) -> torch.Tensor:
    """ŷ (n, d) from the similarity table ``s`` (U, P') and the temperature ``a`` ().

    ``positions`` form: ``s_l`` gathered per position, softmax over l. ``counts`` form: the same
    softmax summed per (pattern, next token) pair. Its weights ``exp(a s - shift)`` need a shift
    (a constant of the softmax, hence detached): while ``|a| <=`` :data:`SHARED_SHIFT_MAX_A`, one
    per query pattern, the largest ``a s`` of its table row, so the weights are computed on the
    (U, P') table; beyond, one per sequence, its largest ``a s`` among the patterns it holds
    (absent patterns get weight 0 before the exponential, so they cannot overflow).
    """
    if inputs.counts is None:
        sim = pattern_rows(table, inputs).gather(1, inputs.positions)      # (n, L)
        attn = torch.softmax(a * sim, dim=-1)                              # (n, L)
        return torch.bmm(attn[:, None, :], inputs.onehot).squeeze(1)       # (n, d)
    if abs(float(a.detach())) <= SHARED_SHIFT_MAX_A:
        logits = a * table                                                 # (U, P')
        weights = torch.exp(logits - logits.detach().amax(1, keepdim=True))  # (U, P')
        rows = pattern_rows(weights, inputs)                               # (n, P')
    else:
        logits = a * pattern_rows(table, inputs) + inputs.log_present      # (n, P')
        rows = torch.exp(logits - logits.detach().amax(1, keepdim=True))   # (n, P')
    mass = (inputs.counts * rows[:, None, :]).sum(-1)                      # (n, d)
    return mass / mass.sum(-1, keepdim=True)                               # (n, d)
