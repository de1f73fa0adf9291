"""The full model's copier on window patterns: per-pattern tables instead of per-position work.

Position l's copier output depends only on its *window pattern*: its own token ``x_l`` (the
content logits' query side and the key at offset 0), the tokens ``x_{l-1}, ..., x_{l-M}`` of its
window (M the largest offset) and how many offsets are valid (``min(l-1, M)``, fewer only at
l <= M). The query L+1 holds the zero vector, so its content logits are 0 and its σ is the same
for every sequence; its pattern is its window alone. So σ, ``v̄_h`` and ``k_h(l) =
<v̄_h(L+1), v̄_h(l)>`` are entries of tables over patterns:

* P = d·P' position patterns, ``P' = d^M + (d^M - 1)/(d - 1)`` windows numbered as in
  :mod:`numerics.models.patterns` (interior windows first, then the shorter boundary windows),
  pattern id ``window id · d + x_l``;
* U <= min(n, d^M) distinct query windows of the sample.

A step builds σ (H, P, K), ``v̄`` (H, P, d) and (H, U, d), the table ``k`` (H, U, P), and gathers
``k_h(l)`` for every sequence and position: O(H·P·K·d + H·U·P·d) for the tables, O(n·H·L) for
the gather, whatever the window's size does to a position's work. A fixed sample's pattern ids
are computed once (:func:`prepare_full_patterns`), a minibatch takes rows of them
(:func:`select_full_patterns`).

At the authors' sizes (d = 3, M = 5, L = 100) a sequence holds L = 100 positions and P = 1092
patterns exist, so per-sequence pattern counts (the simplified model's ``counts`` form) would
be larger than the positions they summarise; the gather over positions is the cheaper of the two.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from numerics.models.costs import PATTERN_TABLE_MAX
from numerics.models.full_copier import FullCopier, max_offset, normalise
from numerics.models.inputs import check_tokens, is_token_tensor, shape_or_type
from numerics.models.patterns import pattern_count, prepare_patterns
from theory.errors import require
from theory.validation import is_int

__all__ = ["FullPatternInputs", "full_pattern_entries", "prepare_full_patterns",
           "select_full_patterns", "patterns_head_similarity", "pattern_similarity_table"]


class FullPatternInputs(NamedTuple):
    """A fixed sample as the full copier's pattern ids (module docstring).

    Attributes:
        context: (n, L) int64 tokens ``x_1..x_L``.
        positions: (n, L) pattern id of every position l = 1..L, in ``0..P-1``.
        query_index: (n,) index of the sequence's query window in ``queries``.
        queries: (U,) distinct window ids of the query positions L+1 (interior windows).
        cells: (n, L) ``query_index · P + positions``, the entry of the (U, P) table.
        digits: (P', M) token of each window at offsets 1..M (0 past its valid offsets).
        lengths: (P',) valid offsets ``min(l-1, M)`` of each window.
        vocab_size: d.
    """

    context: torch.Tensor
    positions: torch.Tensor
    query_index: torch.Tensor
    queries: torch.Tensor
    cells: torch.Tensor
    digits: torch.Tensor
    lengths: torch.Tensor
    vocab_size: int

    @property
    def window(self) -> int:
        """M, the largest offset the patterns cover."""
        return self.digits.shape[1]


def full_pattern_entries(sequences: int, window: int, vocab_size: int) -> int:
    """U·P, the largest (query window × pattern) table of n sequences: U <= min(n, d^M)."""
    return min(sequences, vocab_size ** window) * pattern_count(window, vocab_size) * vocab_size


def prepare_full_patterns(context: torch.Tensor, window: int, vocab_size: int
                          ) -> FullPatternInputs:
    """The pattern ids of ``context`` (n, L) for a copier whose largest offset is ``window``.

    Raises:
        InductionHeadsError: on a context that is not an integer (n, L) tensor with n >= 1,
            L > M and tokens in ``0..d-1``, a window M < 1, d < 2, or a (U, P) table above
            :data:`numerics.models.costs.PATTERN_TABLE_MAX` entries (checked before any
            table is built).
    """
    require(is_token_tensor(context, 2), "context", "an integer tensor of shape (n, L)",
            shape_or_type(context))
    require(is_int(window) and window >= 1, "window", "an integer M >= 1", window)
    require(is_int(vocab_size) and vocab_size >= 2, "vocab_size", "an integer d >= 2",
            vocab_size)
    n, L = context.shape
    require(n >= 1, "context sequences n", "n >= 1", n)
    require(L > window, "context length L", f"L > M = {window}", L)
    entries = full_pattern_entries(n, window, vocab_size)
    require(entries <= PATTERN_TABLE_MAX, "window patterns",
            f"U·P <= {PATTERN_TABLE_MAX} (n = {n}, M = {window}, d = {vocab_size}; the "
            f"'lookup' and 'gather' forms have no such bound)", entries)
    check_tokens(context, "context tokens", vocab_size)
    tokens = context.long()
    windows = prepare_patterns(tokens, window, vocab_size, torch.float32, counts=False)
    positions = windows.positions * vocab_size + tokens                    # (n, L)
    size = pattern_count(window, vocab_size) * vocab_size                  # P
    cells = windows.query_index[:, None] * size + positions                # (n, L)
    return FullPatternInputs(tokens, positions, windows.query_index, windows.queries, cells,
                             windows.digits, windows.lengths, int(vocab_size))


def select_full_patterns(inputs: FullPatternInputs, idx: torch.Tensor) -> FullPatternInputs:
    """The prepared inputs of the sequences ``idx`` (B,) of a sample (the query windows kept)."""
    return inputs._replace(context=inputs.context[idx], positions=inputs.positions[idx],
                           query_index=inputs.query_index[idx], cells=inputs.cells[idx])


def _pattern_keys(inputs: FullPatternInputs, offsets: tuple[int, ...]
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Key tokens (P, K), own tokens (P,) and valid offsets (P, K) of every position pattern."""
    d = inputs.vocab_size
    size = inputs.digits.shape[0] * d                                       # P
    ids = torch.arange(size, device=inputs.digits.device)
    own, window = ids % d, ids // d                                         # (P,), (P,)
    keys = torch.stack([own if i == 0 else inputs.digits[window, i - 1] for i in offsets],
                       dim=1)                                               # (P, K)
    offset = torch.tensor(offsets, device=ids.device)
    valid = offset[None, :] <= inputs.lengths[window][:, None]              # (P, K)
    return keys, own, valid


def pattern_similarity_table(context: torch.Tensor | FullPatternInputs, copier: FullCopier
                             ) -> tuple[FullPatternInputs, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The (H, U, P) table of ``k_h`` per (query window, position pattern) of the module
    docstring, with what it was computed from.

    Args:
        context: (n, L) int64 tokens (its patterns are computed here) or a sample prepared by
            :func:`prepare_full_patterns` with a window >= the copier's largest offset.
        copier: the effective parameters.

    Returns:
        ``(inputs, table, sigma, query_sigma)``: the prepared sample, the table (H, U, P)
        (through the ReLU when the copier has one), σ per pattern (H, P, K) and at the query
        (H, K).
    """
    logits, d = copier.logits, copier.content.shape[-1]
    dev, dtype = logits.device, logits.dtype
    top = max_offset(copier)
    if isinstance(context, FullPatternInputs):
        inputs = context
        require(inputs.window >= top and inputs.vocab_size == d, "prepared patterns",
                f"window >= {top} and d = {d} (the copier's)", (inputs.window, inputs.vocab_size))
    else:
        inputs = prepare_full_patterns(context, top, d)
    keys, own, valid = _pattern_keys(inputs, copier.offsets)                # (P, K) each but own
    keys, own, valid = keys.to(dev), own.to(dev), valid.to(dev)
    allowed = valid[None] & copier.mask[:, None, :]                         # (H, P, K)
    content = copier.content[:, own[:, None], keys]                         # (H, P, K)
    scores = (logits[:, None, :] + content).masked_fill(~allowed, torch.finfo(dtype).min)
    sigma = torch.softmax(scores, dim=-1) * allowed                         # (H, P, K)
    copied = torch.einsum("hpk,pkd->hpd", sigma, F.one_hot(keys, d).to(dtype))  # (H, P, d)
    v = torch.einsum("hed,hpd->hpe", copier.values, copied)                 # (H, P, d)
    v_bar = normalise(copier, v) * allowed.any(-1)[..., None]               # (H, P, d)
    # The query: content 0, every offset valid, the key at offset 0 the zero vector.
    query_sigma = torch.softmax(logits.masked_fill(~copier.mask, torch.finfo(dtype).min),
                                dim=-1) * copier.mask                       # (H, K)
    query_keys = torch.stack([torch.full_like(inputs.queries, d) if i == 0
                              else inputs.digits[inputs.queries, i - 1]
                              for i in copier.offsets], dim=1).to(dev)      # (U, K)
    query_onehot = F.one_hot(query_keys, d + 1)[..., :d].to(dtype)          # (U, K, d)
    query_copied = torch.einsum("hk,ukd->hud", query_sigma, query_onehot)   # (H, U, d)
    query_v = torch.einsum("hed,hud->hue", copier.values, query_copied)     # (H, U, d)
    query_bar = normalise(copier, query_v) * copier.mask.any(-1)[:, None, None]  # (H, U, d)
    table = torch.bmm(query_bar, v_bar.transpose(1, 2))                     # (H, U, P)
    if copier.relu:
        table = table.clamp_min(0.0)
    return inputs, table, sigma, query_sigma


def patterns_head_similarity(context: torch.Tensor | FullPatternInputs, copier: FullCopier, *,
                             return_attention: bool = False):
    """``k_h(l)`` (n, H, L) as :func:`numerics.models.full_copier.gather_head_similarity`, from
    the (H, U, P) table of the module docstring.

    Args:
        context: (n, L) int64 tokens (its patterns are computed here) or a sample prepared by
            :func:`prepare_full_patterns` with a window >= the copier's largest offset.
        copier: the effective parameters.
        return_attention: also return σ (n, H, L+1, K), 0 at masked or invalid offsets.

    Returns:
        ``head_sim`` (n, H, L), or ``(head_sim, sigma)``.
    """
    inputs, table, sigma, query_sigma = pattern_similarity_table(context, copier)
    dev = table.device
    H = table.shape[0]
    n, L = inputs.positions.shape
    cells = inputs.cells.to(dev).reshape(1, n * L).expand(H, n * L)         # (H, n·L)
    head_sim = table.reshape(H, -1).gather(1, cells).view(H, n, L).transpose(0, 1)  # (n, H, L)
    if not return_attention:
        return head_sim
    positions = sigma[:, inputs.positions.to(dev)]                          # (H, n, L, K)
    query = query_sigma[:, None, None, :].expand(H, n, 1, query_sigma.shape[1])
    return head_sim, torch.cat([positions, query], dim=2).permute(1, 0, 2, 3)
