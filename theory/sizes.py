"""Size limits of ``theory``'s dense computations and the memory estimates checked against them.

``theory`` is dense: a kernel batch is ``(n,) + (d,)*(k+1)`` floats, the stationary window law
solves one ``d^r x d^r`` system per kernel (:mod:`theory.sources.stationary`), a window law holds ``d^K``
entries per kernel, a sequence sample ``n x T`` tokens. Every entry point that allocates such
arrays first estimates the bytes of the largest arrays it will hold at once (the functions
below, in Python integers, so astronomically large requests are estimated without overflow) and
refuses the request, before allocating anything, when the estimate exceeds the memory limit
(docs/theory.md §6):

    limit = $INDUCTION_HEADS_MEMORY_LIMIT_GIB GiB when that variable is set, else
            DEFAULT_MEMORY_LIMIT_GIB = 2.0 GiB.

The stationary solves run in chunks of kernels (:data:`SOLVE_CHUNK_BYTES` of working set each),
so a many-kernel request at a moderate state count needs one chunk's matrices, not all of them.

Two limits are counts, not bytes: :data:`MAX_HEAD_SETS` bounds the enumerated head sets
``{S ⊆ [H] : |S| <= D}`` and :data:`MAX_EXACT_STATES` the states of an exact (rational) solve,
whose cost is time, growing like ``N^3`` with unbounded rationals.
"""

from __future__ import annotations

import math
import os

from theory.errors import InductionHeadsError, require

__all__ = [
    "MEMORY_LIMIT_ENV",
    "DEFAULT_MEMORY_LIMIT_GIB",
    "MAX_HEAD_SETS",
    "MAX_EXACT_STATES",
    "SOLVE_CHUNK_BYTES",
    "SOLVE_MATRICES",
    "FLOAT_BYTES",
    "KERNEL_SAMPLING_COPIES",
    "LAW_COPIES",
    "SIGNAL_ARRAYS",
    "COPIER_HEAD_ARRAYS",
    "COPIER_OFFSET_ARRAYS",
    "LAW_CHUNK_ENTRIES",
    "memory_limit_bytes",
    "format_bytes",
    "require_memory",
    "kernel_bytes",
    "kernel_sampling_bytes",
    "solve_bytes_per_kernel",
    "solve_chunk",
    "window_law_bytes",
    "sequence_bytes",
    "prediction_bytes",
    "require_head_sets",
    "require_exact_states",
]

MEMORY_LIMIT_ENV = "INDUCTION_HEADS_MEMORY_LIMIT_GIB"
"""Environment variable overriding the memory limit, in GiB (a positive number, e.g. ``16``)."""

DEFAULT_MEMORY_LIMIT_GIB = 2.0
"""Memory limit when :data:`MEMORY_LIMIT_ENV` is unset: a laptop-safe default. Every request in
the project's tests, notebooks and CLIs is estimated well under it; the largest, the full-size
scale notebook's prediction (d=5, P=(1,3), H=4, D=3, 4000 samples, L=400), at about 330 MiB,
most of it one :data:`SOLVE_CHUNK_BYTES` chunk of solves."""

MAX_HEAD_SETS = 100_000
"""Most head sets ``|{S ⊆ [H] : |S| <= D}|`` enumerated: every per-set array and the selector's
weights have one entry per set, and the criterion is estimated set by set (H=24, D=24 would be
16.7 M sets). 100 000 admits e.g. H=20, D=5 (21 700 sets) and H=16, D=16 (65 536)."""

MAX_EXACT_STATES = 512
"""Most states ``d^r`` of an exact (rational) stationary solve: the LU solve grows like ``N^3``
(and its rationals grow), so beyond 512 states it takes minutes (timings in docs/results.md §7)."""

SOLVE_CHUNK_BYTES = 256 * 2**20
"""Working set of one chunk of float stationary solves (256 MiB; capped at half the limit)."""

FLOAT_BYTES = 8
"""float64 and int64 entries."""

SOLVE_MATRICES = 6
"""float64 ``d^r x d^r`` matrices held per kernel during the stationary solve: the transition
matrix, ``I - T + E``, its inverse, LAPACK's copy and a temporary (the primitivity check and the
GTH elimination need as many); an upper bound of the peak (docs/results.md §7)."""

KERNEL_SAMPLING_COPIES = 3.5
"""Kernel-sized float64 arrays held while drawing a batch of kernels: the gamma and the uniform
draws of a Dirichlet prior, the sum and one component's two draws of a mixture, with room to
spare (peaks in docs/results.md §7)."""

LAW_COPIES = 2
"""Window-law-sized arrays held while a window law is extended factor by factor (the last two)."""

SIGNAL_ARRAYS = 6
"""``(n, L)`` float64 arrays held while one head set's stage-1 signal is computed (the
similarity, the match indicator, the target hits, the centred similarity and temporaries)."""

COPIER_HEAD_ARRAYS = 5
"""``(n, L+1)`` float64 arrays held per head while the similarities at a copier attention are
computed (:func:`theory.predictors.copier.head_similarity`: inner products, squared norms, a contraction,
the ratio and its transposed copy)."""

COPIER_OFFSET_ARRAYS = 2
"""``(n, L+1)`` 8-byte arrays held per offset by the same computation (the shifted tokens and a
match indicator); with :data:`COPIER_HEAD_ARRAYS` the bound ``5H + 2M`` covers the peak
(docs/results.md §7)."""

LAW_CHUNK_ENTRIES = 1 << 22
"""Most float64 window-law entries (32 MiB) the criterion holds at once: its kernels are
processed in chunks of ``max(1, LAW_CHUNK_ENTRIES // d^K)``."""

_GIB = 2**30


def memory_limit_bytes() -> int:
    """The memory limit in bytes: :data:`MEMORY_LIMIT_ENV` GiB if set, else the default.

    Raises:
        InductionHeadsError: when the variable is set but not a positive finite number.
    """
    raw = os.environ.get(MEMORY_LIMIT_ENV)
    if raw is None or raw.strip() == "":
        return int(DEFAULT_MEMORY_LIMIT_GIB * _GIB)
    try:
        gib = float(raw)
    except ValueError:
        gib = math.nan
    require(math.isfinite(gib) and gib > 0, MEMORY_LIMIT_ENV,
            "a positive number of GiB, e.g. 16", raw)
    return int(gib * _GIB)


def format_bytes(n_bytes: int) -> str:
    """``n_bytes`` in binary units with one decimal, e.g. ``"8.0 GiB"``; huge values as the power
    of ten below them, e.g. ``"10^24 bytes"`` (messages put "about" before every estimate)."""
    if n_bytes >= 2**70:
        return f"10^{len(str(n_bytes)) - 1} bytes"
    for unit, size in (("EiB", 2**60), ("PiB", 2**50), ("TiB", 2**40), ("GiB", _GIB),
                       ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f} {unit}"
    return f"{n_bytes} B"


def require_memory(estimate: int, request: str, hint: str) -> None:
    """Refuse ``request`` when its memory ``estimate`` (bytes) exceeds the limit.

    Args:
        estimate: bytes of the largest arrays the request holds at once.
        request: what is asked for, e.g. ``"window law for d=4, r=5 (1024 states) over 1000
            kernels"``.
        hint: what the caller can shrink, e.g. ``"pass fewer kernels"``.

    Raises:
        InductionHeadsError: e.g. ``window law for d=4, r=5 (1024 states) ...: expected a
            request within the memory limit of 2.0 GiB (set INDUCTION_HEADS_MEMORY_LIMIT_GIB or
            pass fewer kernels), received one that needs about 8.0 GiB``.
    """
    limit = memory_limit_bytes()
    if estimate > limit:
        raise InductionHeadsError(
            f"{request}: expected a request within the memory limit of {format_bytes(limit)} "
            f"(set {MEMORY_LIMIT_ENV} or {hint}), received one that needs about "
            f"{format_bytes(estimate)}")


def kernel_bytes(n: int, d: int, k: int) -> int:
    """Bytes of a float64 kernel batch ``(n,) + (d,)*k + (d,)``."""
    return n * d ** (k + 1) * FLOAT_BYTES


def kernel_sampling_bytes(n: int, d: int, k: int) -> int:
    """Peak bytes of drawing ``n`` kernels (:func:`theory.sources.kernels.sample_kernels`)."""
    return math.ceil(KERNEL_SAMPLING_COPIES * kernel_bytes(n, d, k))


def solve_bytes_per_kernel(d: int, r: int) -> int:
    """Bytes of one kernel's stationary solve: :data:`SOLVE_MATRICES` ``d^r x d^r`` matrices."""
    return SOLVE_MATRICES * d ** (2 * r) * FLOAT_BYTES


def solve_chunk(n: int, d: int, r: int) -> int:
    """Kernels per chunk of stationary solves: ``SOLVE_CHUNK_BYTES`` (or half the limit) each."""
    budget = min(SOLVE_CHUNK_BYTES, memory_limit_bytes() // 2)
    return max(1, min(n, budget // solve_bytes_per_kernel(d, r)))


def window_law_bytes(n: int, d: int, r: int, window: int) -> int:
    """Peak bytes of :func:`theory.sources.stationary.window_law` for ``n`` kernels (beyond its input).

    One chunk of solves (:func:`solve_chunk` kernels), the ``(n, d^r)`` r-window laws and
    :data:`LAW_COPIES` arrays of ``n d^K`` entries while the law is extended to ``K = window``.
    """
    chunk = solve_chunk(n, d, r)
    return (chunk * solve_bytes_per_kernel(d, r) + n * d**r * FLOAT_BYTES
            + LAW_COPIES * n * d**window * FLOAT_BYTES)


def sequence_bytes(n: int, d: int, k: int, r: int, total: int, length: int, *,
                   stationary_start: bool) -> int:
    """Peak bytes of :func:`theory.sources.sequences.sample_sequences_np`.

    Args:
        n: sequences.
        d, k, r: vocabulary, number of parents, ``max(P)``.
        total: chain steps kept in memory, ``B + T`` (burn-in plus length).
        length: tokens returned per sequence, ``T``.
        stationary_start: whether the start tokens come from the stationary window law.

    Returns:
        The largest of: drawing the kernels; kernels, tokens and the start's window law; kernels,
        their cumulative rows, tokens ``(n, B+T)``, uniforms ``(n, B+T-r)`` and the returned
        ``(n, T)`` copy.
    """
    kern = kernel_bytes(n, d, k)
    tokens = n * total * FLOAT_BYTES
    start = window_law_bytes(n, d, r, r + 1) if stationary_start else n * r * FLOAT_BYTES
    chain = 2 * kern + tokens + n * (total - r) * FLOAT_BYTES + n * length * FLOAT_BYTES
    return max(kernel_sampling_bytes(n, d, k), kern + tokens + start, chain)


def prediction_bytes(d: int, k: int, r: int, heads: int, n_sets: int, samples: int,
                     seq_len: int | None, *, fixed: bool, window: int | None = None,
                     kernels: int | None = None) -> int:
    """Peak bytes of predicting the limit (:func:`theory.limit.prediction.predict_limit`).

    The ``G`` stage draws ``samples`` kernels (one for a Fixed prior), floors a copy, and solves
    window laws of ``K = max(H, r) + 1`` tokens in chunks of ``LAW_CHUNK_ENTRIES // d^K``
    kernels, keeping ``(samples, n_sets)`` values; the ``G_L`` stage (when ``seq_len`` is
    given) samples ``samples`` sequences of ``L + 1`` tokens and holds :data:`SIGNAL_ARRAYS`
    ``(samples, L)`` float arrays per head set while the stage-1 signals are computed; the
    initial-copier stage (also when ``seq_len`` is given) samples again and holds
    ``5H + 2M`` (:data:`COPIER_HEAD_ARRAYS`, :data:`COPIER_OFFSET_ARRAYS`) ``(samples, L+1)``
    arrays, then the ``H`` head similarities beside the signal arrays. The stages run one after
    the other, so the peak is the largest one.

    Args:
        d, k, r: vocabulary, number of parents, ``max(P)``.
        heads: ``H``.
        n_sets: the number of head sets ranked.
        samples: Monte Carlo kernels / sequences.
        seq_len: ``L`` or None.
        fixed: whether the prior is Fixed (one exact kernel).
        window: the copier's ``M`` (None: ``M = H``).
        kernels: the kernels behind ``G`` (None: 1 for a Fixed prior, else ``samples``); a
            prior with finitely many kernels passes their number.
    """
    offsets = heads if window is None else window
    window = max(heads, r) + 1
    n = (1 if fixed else samples) if kernels is None else kernels
    values = 3 * n * n_sets * FLOAT_BYTES  # per-sample values, their copy and deviations
    chunk = max(1, min(n, LAW_CHUNK_ENTRIES // d**window))
    draw = kernel_bytes(1, d, k) if fixed else kernel_sampling_bytes(n, d, k)
    solve = 2 * kernel_bytes(n, d, k) + values + window_law_bytes(chunk, d, r, window)
    g_stage = max(draw, solve)
    if seq_len is None:
        return g_stage
    tokens = samples * (seq_len + 1) * FLOAT_BYTES
    signals = tokens + SIGNAL_ARRAYS * samples * seq_len * FLOAT_BYTES + 3 * samples * n_sets * (
        FLOAT_BYTES)
    sampling = sequence_bytes(samples, d, k, r, seq_len + 1, seq_len + 1, stationary_start=False)
    unit = samples * (seq_len + 1) * FLOAT_BYTES
    copier = tokens + 3 * samples * n_sets * FLOAT_BYTES + unit * max(
        COPIER_HEAD_ARRAYS * heads + COPIER_OFFSET_ARRAYS * offsets, heads + SIGNAL_ARRAYS)
    return max(g_stage, sampling, signals, copier)


def require_head_sets(heads: int, degree: int) -> int:
    """The number ``Σ_{j <= D} C(H, j)`` of head sets of ``(H, D)``; refuse more than
    :data:`MAX_HEAD_SETS` (the sum stops as soon as it passes the maximum).

    Raises:
        InductionHeadsError: e.g. ``head sets of H=24, D=24: expected at most 100000 sets
            (MAX_HEAD_SETS; ...), received a request for 16777216 sets``.
    """
    total = 0
    for size in range(degree + 1):
        total += math.comb(heads, size)
        if total > MAX_HEAD_SETS:
            break
    if total > MAX_HEAD_SETS:
        shown = (f"{sum(math.comb(heads, j) for j in range(degree + 1))} sets" if heads <= 64
                 else f"more than {MAX_HEAD_SETS} sets")
        raise InductionHeadsError(
            f"head sets of H={heads}, D={degree}: expected at most {MAX_HEAD_SETS} sets "
            f"(MAX_HEAD_SETS; every set gets its own selector weight and criterion value), "
            f"received a request for {shown}")
    return total


def require_exact_states(d: int, r: int) -> None:
    """Refuse an exact or symbolic solve on more than :data:`MAX_EXACT_STATES` states ``d^r``."""
    n_states = d**r
    require(n_states <= MAX_EXACT_STATES, f"exact window law for d={d}, r={r}",
            f"at most MAX_EXACT_STATES = {MAX_EXACT_STATES} states d^r (an exact LU solve "
            "grows like N^3; use the float window_law)", f"{n_states} states")
