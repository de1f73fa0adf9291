"""The cost model that ranks the input forms of a fixed sample (docs/theory.md §2, input forms).

Every form computes the same model up to rounding; :func:`form_costs` estimates one step's time in
each, and :func:`input_form` picks the cheapest within the memory bounds below.
"""

from __future__ import annotations

from numerics.models.patterns import pattern_count, pattern_table_entries

__all__ = ["form_costs", "input_form", "MATCH_ENTRIES_MAX", "PATTERN_TABLE_MAX"]


PATTERN_TABLE_MAX = 2**22
"""Largest (query pattern × pattern) table, U·P' entries, the pattern forms build per head and
head set; above it only match tensors or value vectors are used."""

MATCH_ENTRIES_MAX = 2**26
"""Largest match tensors :func:`input_form` picks, ``2·n·L·M²`` entries (256 MiB in float32):
beyond it the value vectors, whose memory does not grow with M², are used even where they are
slower (an explicit ``form="matches"`` is still honoured)."""


def form_costs(sequences: int, seq_len: int, *, window: int, vocab_size: int, heads: int,
               sets: int) -> dict[str, float]:
    """Estimated nanoseconds of one step in each input form the sizes admit.

    A cost model fitted to full-batch steps on two CPU cores (n = 2000 and 9000, L = 100,
    d = 2..5, M = 3..16; within about 1.5× of every measured step), used only to rank the forms:
    match tensors ``n·L·(30 + 2|𝒮| + 0.3·H·M²)``; value vectors ``n·L·(60 + 2|𝒮| + 3·H·M·d)``;
    pattern ids ``10⁶ + T + 8·n·L``; counts ``10⁶ + T + 3·n·P'·d``, with
    ``T = U·P'·(H·(d + 4) + 2|𝒮|)`` for the per-step tables (U = min(n, d^M) query patterns).
    The pattern forms need ``U·P' <=`` :data:`PATTERN_TABLE_MAX`.
    """
    n, L, M, d, H = sequences, seq_len, window, vocab_size, heads
    costs = {"matches": n * L * (30 + 2 * sets + 0.3 * H * M * M),
             "vectors": n * L * (60 + 2 * sets + 3 * H * M * d)}
    entries = pattern_table_entries(n, M, d)
    if entries <= PATTERN_TABLE_MAX:
        tables = entries * (H * (d + 4) + 2 * sets)
        costs["positions"] = 1e6 + tables + 8 * n * L
        costs["counts"] = 1e6 + tables + 3 * n * pattern_count(M, d) * d
    return costs


def input_form(sequences: int, seq_len: int, *, window: int, vocab_size: int, heads: int,
               sets: int) -> str:
    """The input form a step on n sequences of L context tokens is prepared in by default.

    The cheapest of :func:`form_costs`, leaving out match tensors above
    :data:`MATCH_ENTRIES_MAX` entries.
    """
    costs = form_costs(sequences, seq_len, window=window, vocab_size=vocab_size, heads=heads,
                       sets=sets)
    if 2 * sequences * seq_len * window * window > MATCH_ENTRIES_MAX:
        del costs["matches"]
    return min(costs, key=costs.__getitem__)
