"""Torch sampler of in-context n-gram Markov sequences (docs/theory.md §1), on CPU or CUDA.

Every sequence ``i = 1..n`` draws its structure (the parent set or chain of a Switching or
FiniteMixture prior, :func:`draw_structures`), its own kernel ``π_i`` from the source's prior
given that structure, then
``x_1..x_r`` (``r = max(P)``) uniform i.i.d., then ``x_l ~ π_i(· | x_{l-p_1}, …, x_{l-p_k})`` for
``l = r+1 … T``. The model sees ``x_1..x_L`` and predicts ``x_{L+1}``: sample ``T = L + 1`` tokens
and cut them with :func:`split_context`.

Randomness comes only from the ``torch.Generator`` passed in, in this fixed order: the
structures (priors with two or more only), the kernels (component by component for a mixture or
a switching prior), the ``r`` start tokens, then one uniform per generated
token. All of it is drawn in float64 whatever the ``dtype`` of the returned kernels, so the same
seed gives the same tokens for every ``dtype``. The generator must live on the sampling device
(``torch.Generator(device="cuda")`` for CUDA); bitwise equality across devices is not promised.

Dirichlet rows use Gamma variates drawn with that generator (``torch.distributions`` takes none):
Marsaglia–Tsang for ``Gamma(α+1)``, the boost ``Gamma(α) = Gamma(α+1)·U^{1/α}`` in log space (no
underflow for ``α = 0.05``), and the row is ``softmax`` of the log-gammas.

Every draw is estimated first (:func:`sample_bytes`) and refused, before anything is allocated,
above the memory limit that ``theory`` uses (:func:`theory.sizes.memory_limit_bytes`, set with
``INDUCTION_HEADS_MEMORY_LIMIT_GIB``).
"""

from __future__ import annotations

import math

import torch

from numerics.devices import resolve_device
from theory.errors import require
from theory.sizes import format_bytes, kernel_bytes, require_memory, sequence_bytes
from theory.sources.kernels import check_structures
from theory.sources.priors import structure_weights
from theory.sources.sequences import START_MODES as THEORY_START_MODES
from theory.sources.spec import Dirichlet, FiniteMixture, Fixed, Mixture, Source, Switching
from theory.sources.stationary import window_law
from theory.validation import is_int

__all__ = ["sample_sequences", "draw_kernels", "draw_structures", "split_context", "START_MODES",
           "TORCH_KERNEL_SAMPLING_COPIES", "sample_bytes", "require_sample_fits"]

START_MODES = THEORY_START_MODES
"""How ``x_1..x_r`` are drawn, as in :mod:`theory.sources.sequences`: ``uniform`` (i.i.d. uniform on
``[d]``) or ``stationary`` (from each sequence's own stationary r-window law,
:func:`theory.window_law`; needs every drawn kernel to give a primitive chain). Independently,
``burn_in`` extra steps may be run first and dropped."""

_MAX_GAMMA_ROUNDS = 64
"""Rejection rounds of Marsaglia–Tsang; each accepts >= 95 % (shape >= 1), so 64 never run out."""



def _resolve_device(device: torch.device | str | None, generator: torch.Generator
                    ) -> torch.device:
    """The sampling device: CPU for ``None``; must match the generator's device."""
    dev = resolve_device(device)
    gen_dev = generator.device
    require(dev.type == gen_dev.type and (dev.index is None or dev.index == gen_dev.index),
            "generator device", f"a generator on the sampling device {dev}", gen_dev)
    return gen_dev if dev.index is None and dev.type != "cpu" else dev


def _log_gamma(alpha: float, shape: tuple[int, ...], *, generator: torch.Generator,
               device: torch.device) -> torch.Tensor:
    """``log G`` for ``G ~ Gamma(alpha, 1)`` i.i.d., float64 tensor of shape ``shape``.

    Marsaglia–Tsang for ``a = alpha + 1 >= 1``: with ``b = a - 1/3``, ``c = 1/sqrt(9b)``,
    ``X ~ N(0,1)``, ``V = (1 + cX)^3``, accept when ``V > 0`` and
    ``log U < X²/2 + b - bV + b log V``; then ``bV ~ Gamma(a)``. Vectorised: each round redraws
    only the still-rejected entries. Then ``log Gamma(alpha) = log Gamma(alpha+1) + log(U')/alpha``
    with ``U' ∈ (0, 1]``.
    """
    a = alpha + 1.0
    b = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * b)
    total = math.prod(shape)
    kw = {"generator": generator, "dtype": torch.float64, "device": device}
    out = torch.empty(total, dtype=torch.float64, device=device)          # (N,)
    pending = torch.arange(total, device=device)                         # (m,) unfilled indices
    for _ in range(_MAX_GAMMA_ROUNDS):
        m = pending.numel()
        if m == 0:
            break
        x = torch.randn(m, **kw)                                          # (m,)
        u = torch.rand(m, **kw)                                           # (m,)
        t = 1.0 + c * x                                                   # (m,)
        log_v = 3.0 * torch.log(t.clamp_min(1e-300))                      # (m,) log V
        accept = (t > 0) & (torch.log(u) < 0.5 * x * x + b - b * torch.exp(log_v) + b * log_v)
        out[pending[accept]] = math.log(b) + log_v[accept]
        pending = pending[~accept]
    if pending.numel():
        raise RuntimeError(f"Marsaglia–Tsang left {pending.numel()} variates unaccepted after "
                           f"{_MAX_GAMMA_ROUNDS} rounds (shape {a})")
    boost = torch.log1p(-torch.rand(total, **kw)) / alpha                # (N,) log U'/alpha
    return (out + boost).reshape(shape)


def _dirichlet_rows(alpha: float, shape: tuple[int, ...], d: int, *,
                    generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Rows i.i.d. ``Dirichlet(alpha·1_d)``: float64, shape ``shape + (d,)``, rows sum to 1."""
    log_g = _log_gamma(alpha, shape + (d,), generator=generator, device=device)
    return torch.softmax(log_g, dim=-1)                                   # shape + (d,)


def _expand_component(rows: torch.Tensor, component_parents: tuple[int, ...],
                      parents: tuple[int, ...]) -> torch.Tensor:
    """Broadcast ``(n,) + (d,)*k_j + (d,)`` over ``P_j ⊆ P`` to ``(n,) + (d,)*k + (d,)``.

    Same layout rule as :func:`theory.sources.kernels.expand_component`: singleton axes for the parents of
    ``P`` outside ``P_j`` (both in increasing-offset order, so a reshape suffices), then expand.
    """
    n, d = rows.shape[0], rows.shape[-1]
    shape = [n] + [1] * len(parents) + [d]
    for p in component_parents:
        shape[1 + parents.index(p)] = d
    return rows.reshape(shape).expand((n,) + (d,) * (len(parents) + 1))


TORCH_KERNEL_SAMPLING_COPIES = 10
"""Kernel-sized float64 arrays held at the peak of a torch kernel draw: the Gamma variates of
every row come from Marsaglia–Tsang's rejection loop (normal and uniform proposals, the
candidate, the acceptance mask and the accepted values), then the boost's uniforms and logs and
the softmax; about nine kernels at once, one more for room. numpy's gamma sampler
(:data:`theory.sizes.KERNEL_SAMPLING_COPIES`) holds fewer."""


def sample_bytes(source: Source, n: int, length: int, *, start: str = "uniform",
                 burn_in: int = 0) -> int:
    """Peak bytes of :func:`sample_sequences` (``n`` sequences of ``length`` tokens), in Python
    integers (no overflow for any request): the larger of drawing the kernels
    (:data:`TORCH_KERNEL_SAMPLING_COPIES` kernel batches) and the chain of
    :func:`theory.sizes.sequence_bytes` (kernels, their cumulative rows, ``(n, B+T)`` tokens and
    the uniforms)."""
    d, k, r = source.vocab_size, len(source.parents), source.max_parent
    draw = TORCH_KERNEL_SAMPLING_COPIES * kernel_bytes(n, d, k)
    chain = sequence_bytes(n, d, k, r, burn_in + length, length,
                           stationary_start=start == "stationary")
    return max(draw, chain)


def require_sample_fits(source: Source, n: int, length: int, *, start: str = "uniform",
                        burn_in: int = 0, what: str = "sequence sample",
                        hint: str = "pass fewer sequences or shorter ones") -> int:
    """Refuse, before allocating, a draw of ``n`` sequences of ``length`` tokens over the limit.

    Args:
        source: the source (d, P, prior).
        n, length: sequences and tokens per sequence.
        start, burn_in: as :func:`sample_sequences`.
        what: the request's name in the message, e.g. ``"training sample"``.
        hint: what the caller can shrink (a CLI names its flags).

    Returns:
        The estimate in bytes.

    Raises:
        InductionHeadsError: e.g. ``training sample of n=3000000 sequences of T=101 tokens
            (d=3, P=(1, 2)): expected a request within the memory limit of 2.0 GiB (...),
            received one that needs about 9.0 GiB``.
    """
    estimate = sample_bytes(source, n, length, start=start, burn_in=burn_in)
    require_memory(estimate, f"{what} of n={n} sequences of T={length} tokens "
                   f"(d={source.vocab_size}, P={source.parents}, tokens alone "
                   f"{format_bytes(n * length * 8)})", hint)
    return estimate


def draw_structures(source: Source, n: int, *, generator: torch.Generator,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """Each sequence's structure: the index ``j`` of its parent set or chain, drawn w.p. ``w_j``.

    A prior with one structure draws nothing and gives zeros (so the other draws of a seed do
    not move).

    Returns:
        int64 ``(n,)`` in ``0..J-1``, ``J = len(theory.structure_weights(source.prior))``.
    """
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    require(is_int(n) and n >= 1, "n", "an integer >= 1", n)
    require(isinstance(generator, torch.Generator), "generator", "a torch.Generator",
            type(generator).__name__)
    dev = _resolve_device(device, generator)
    return _draw_structures(source, int(n), generator=generator, device=dev)


def _draw_structures(source: Source, n: int, *, generator: torch.Generator,
                     device: torch.device) -> torch.Tensor:
    """:func:`draw_structures` without validation: inverse CDF of float64 uniforms, ``(n,)``."""
    weights = structure_weights(source.prior)                             # (J,)
    if len(weights) == 1:
        return torch.zeros(n, dtype=torch.int64, device=device)
    cdf = torch.as_tensor(weights, device=device).cumsum(0)               # (J,)
    cdf[-1] = math.inf  # round-off: the last structure takes the rest
    u = torch.rand(n, generator=generator, dtype=torch.float64, device=device)  # (n,)
    return torch.searchsorted(cdf, u, right=True)                         # (n,)


def draw_kernels(source: Source, n: int, *, generator: torch.Generator,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float64,
                 structures: torch.Tensor | None = None) -> torch.Tensor:
    """Draw ``n`` kernels i.i.d. from the source's prior, with a torch generator.

    ``Dirichlet(α)``: every row i.i.d. ``Dir(α·1_d)``. ``Fixed(π)``: ``π`` repeated.
    ``Mixture``: ``Σ_j w_j π_j(· | z restricted to P_j)``, rows of ``π_j`` i.i.d. ``Dir(α_j)``.
    ``Switching``: the kernel of the sequence's parent set ``P_j`` (Dirichlet rows or fixed),
    constant along the other parents' axes. ``FiniteMixture``: the sequence's chain.

    Args:
        source: the source spec (d, P, prior).
        n: number of kernels, >= 1.
        generator: torch generator on ``device`` (the only randomness used).
        device: sampling device; ``None`` is the CPU.
        dtype: float dtype of the result (drawn in float64, then cast).
        structures: int64 ``(n,)`` structure of each kernel (:func:`draw_structures`), or None
            to draw them first. Ignored by priors with one structure.

    Returns:
        Tensor of shape ``(n,) + (d,)*k + (d,)``; each row (last axis) sums to 1.
    """
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    require(is_int(n) and n >= 1, "n", "an integer >= 1", n)
    require(isinstance(generator, torch.Generator), "generator", "a torch.Generator",
            type(generator).__name__)
    require(isinstance(dtype, torch.dtype) and dtype.is_floating_point, "dtype",
            "a floating torch.dtype", dtype)
    dev = _resolve_device(device, generator)
    require_memory(TORCH_KERNEL_SAMPLING_COPIES * kernel_bytes(int(n), source.vocab_size,
                                                               len(source.parents)),
                   f"kernel draw of n={n} kernels (d={source.vocab_size}, P={source.parents})",
                   "pass fewer kernels")
    if structures is None:
        structures = _draw_structures(source, int(n), generator=generator, device=dev)
    else:
        checked = check_structures(torch.as_tensor(structures).cpu().numpy(), source, int(n))
        structures = torch.as_tensor(checked, device=dev)
    return _draw_kernels(source, int(n), generator=generator, device=dev,
                         structures=structures).to(dtype)


def _draw_kernels(source: Source, n: int, *, generator: torch.Generator,
                  device: torch.device, structures: torch.Tensor) -> torch.Tensor:
    """:func:`draw_kernels` without validation, float64, shape ``(n,) + (d,)*k + (d,)``."""
    d, parents = source.vocab_size, source.parents
    k = len(parents)
    prior = source.prior
    if isinstance(prior, FiniteMixture):
        table = torch.as_tensor(prior.kernels.copy(), dtype=torch.float64, device=device)
        return table[structures]                                          # (n,)+(d,)*k+(d,)
    if isinstance(prior, Switching):
        out = torch.empty((n,) + (d,) * (k + 1), dtype=torch.float64, device=device)
        for j, comp in enumerate(prior.components):
            rows_of = torch.nonzero(structures == j).squeeze(1)           # (n_j,)
            m = int(rows_of.numel())
            if m == 0:
                continue
            if comp.kernel is not None:
                own = torch.as_tensor(comp.kernel.copy(), dtype=torch.float64, device=device)
                own = own.expand((m,) + own.shape)                        # (n_j,)+(d,)*k_j+(d,)
            else:
                own = _dirichlet_rows(comp.alpha, (m,) + (d,) * len(comp.parents), d,
                                      generator=generator, device=device)
            out[rows_of] = _expand_component(own, comp.parents, parents)
        return out
    if isinstance(prior, Fixed):
        table = torch.as_tensor(prior.kernel.copy(), dtype=torch.float64, device=device)
        return table.expand((n,) + table.shape).contiguous()              # (n,)+(d,)*k+(d,)
    if isinstance(prior, Dirichlet):
        return _dirichlet_rows(prior.alpha, (n,) + (d,) * k, d, generator=generator,
                               device=device)
    require(isinstance(prior, Mixture), "prior", "a Dirichlet, Fixed or Mixture prior", prior)
    out = torch.zeros((n,) + (d,) * (k + 1), dtype=torch.float64, device=device)
    for comp in prior.components:
        rows = _dirichlet_rows(comp.alpha, (n,) + (d,) * len(comp.parents), d,
                               generator=generator, device=device)
        out += comp.weight * _expand_component(rows, comp.parents, parents)
    return out


def sample_sequences(source: Source, n: int, length: int, *, generator: torch.Generator,
                     device: torch.device | str | None = None, start: str = "uniform",
                     burn_in: int = 0, return_kernels: bool = False,
                     return_structures: bool = False, dtype: torch.dtype = torch.float32):
    """Sample ``n`` in-context Markov sequences ``x_1..x_T`` (``T = length``), one kernel each.

    Inverse-CDF sampling from pre-drawn uniforms ``U (n, T')``: with the row
    ``π_i(· | z_l)`` and its cumulative sums ``F_e = Σ_{e' <= e} π_i(e' | z_l)``,
    ``x_l = #{e < d-1 : F_e <= U_l}``. The loop runs over positions only; every step is
    vectorised over the n sequences. Cost O(n·T·(k + d)).

    Args:
        source: the source spec (d, P with ``r = max(P)``, prior).
        n: number of sequences, >= 1.
        length: T, tokens per returned sequence, > r (use ``L + 1`` to get context and target).
        generator: ``torch.Generator`` on the sampling device (keyword-only; the only randomness).
        device: sampling device; ``None`` is the CPU.
        start: one of :data:`START_MODES`.
        burn_in: B >= 0 extra steps run after the start and dropped.
        return_kernels: also return each sequence's kernel.
        return_structures: also return each sequence's structure (:func:`draw_structures`).
        dtype: float dtype of the returned kernels (sampling itself is float64).

    Returns:
        int64 tokens of shape ``(n, T)`` (``tokens[:, t-1]`` is ``x_t``) on ``device``; with
        ``return_kernels`` and/or ``return_structures`` a tuple ``(tokens, kernels, structures)``
        holding the requested ones in that order: kernels of shape ``(n,) + (d,)*k + (d,)`` in
        ``dtype``, structures int64 ``(n,)``.

    Raises:
        InductionHeadsError: on a bad source, n, length, start, burn_in, generator, device or
            dtype, or a draw over the memory limit (:func:`require_sample_fits`, checked before
            anything is allocated).

    Determinism (docs/theory.md §6.1): the same seed gives bit-identical tokens and kernels on
    the CPU for the same thread count, and also across thread counts: everything is drawn and
    accumulated in float64 row by row, and 1 and 2 threads gave identical tokens and kernels
    (tests/numerics/training/test_determinism.py). Returned float32 kernels are the float64
    ones rounded.
    """
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    require(is_int(n) and n >= 1, "n", "an integer >= 1", n)
    r = source.max_parent
    require(is_int(length) and length > r, "length",
            f"an integer T > r = max(parents) = {r}", length)
    require(start in START_MODES, "start", f"one of {START_MODES}", start)
    require(is_int(burn_in) and burn_in >= 0,
            "burn_in", "an integer >= 0", burn_in)
    require(isinstance(generator, torch.Generator), "generator", "a torch.Generator",
            type(generator).__name__)
    require(isinstance(dtype, torch.dtype) and dtype.is_floating_point, "dtype",
            "a floating torch.dtype", dtype)
    n, length, burn_in = int(n), int(length), int(burn_in)
    require_sample_fits(source, n, length, start=start, burn_in=burn_in)
    dev = _resolve_device(device, generator)

    d, parents = source.vocab_size, source.parents
    k = len(parents)
    total = burn_in + length
    structures = _draw_structures(source, n, generator=generator, device=dev)  # (n,)
    kernels = _draw_kernels(source, n, generator=generator, device=dev,
                            structures=structures)                        # (n,)+(d,)*k+(d,)
    cdf = kernels.reshape(n, d**k, d).cumsum(-1)[..., : d - 1]            # (n, d^k, d-1)
    tokens = torch.empty(n, total, dtype=torch.int64, device=dev)         # (n, T')
    tokens[:, :r] = _start_tokens(kernels, parents, start, generator)  # (n, r)
    uniforms = torch.rand(n, total - r, generator=generator, dtype=torch.float64,
                          device=dev)                                     # (n, T'-r)
    # Row-major flat index of z = (x_{l-p_1}, ..., x_{l-p_k}) into the d^k kernel rows.
    strides = torch.tensor([d ** (k - 1 - j) for j in range(k)], device=dev)  # (k,)
    offsets = torch.tensor(parents, device=dev)                           # (k,)
    seq = torch.arange(n, device=dev)                                     # (n,)
    for t in range(r, total):  # 0-based column t holds x_{t+1}
        z = (tokens[:, t - offsets] * strides).sum(-1)                    # (n,)
        rows = cdf[seq, z]                                                # (n, d-1)
        tokens[:, t] = (rows <= uniforms[:, t - r, None]).sum(-1)         # (n,)
    tokens = tokens[:, burn_in:].contiguous()                             # (n, T)
    extra = (kernels.to(dtype),) * return_kernels + (structures,) * return_structures
    return (tokens, *extra) if extra else tokens


def _start_tokens(kernels: torch.Tensor, parents: tuple[int, ...], start: str,
                  generator: torch.Generator) -> torch.Tensor:
    """``x_1..x_r`` of every sequence, int64 ``(n, r)`` on the kernels' device."""
    n, d, r, dev = kernels.shape[0], kernels.shape[-1], parents[-1], kernels.device
    if start == "uniform":
        return torch.randint(0, d, (n, r), generator=generator, device=dev)
    law = window_law(kernels.double().cpu().numpy(), parents, r + 1)      # (n,) + (d,)*(r+1)
    law = torch.as_tensor(law.sum(axis=1).reshape(n, d**r), device=dev)   # (n, d^r)
    flat = torch.multinomial(law, 1, generator=generator).squeeze(1)      # (n,)
    digits = [(flat // d ** (r - 1 - j)) % d for j in range(r)]          # r × (n,), oldest first
    return torch.stack(digits, dim=1)                                     # (n, r)


def split_context(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut sequences ``x_1..x_{L+1}`` into the context ``x_1..x_L`` and the target ``x_{L+1}``.

    Args:
        tokens: integer tensor of shape ``(n, L+1)``, ``L >= 1``.

    Returns:
        ``(context (n, L), target (n,))``, views of ``tokens``.
    """
    require(isinstance(tokens, torch.Tensor) and tokens.dim() == 2
            and not torch.is_floating_point(tokens) and not torch.is_complex(tokens)
            and tokens.dtype != torch.bool, "tokens", "an integer tensor of shape (n, L+1)",
            getattr(tokens, "shape", type(tokens).__name__))
    require(tokens.shape[1] >= 2, "tokens length", "L + 1 >= 2 columns", tokens.shape[1])
    return tokens[:, :-1], tokens[:, -1]
