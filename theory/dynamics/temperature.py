"""The finite-L optimal temperature ``a*(L)`` of the GIH and the trained ``a`` of stage 3
(docs/theory.md §3.6; numpy and scipy, float64).

**Counts.** At the exact copier a sequence's GIH loss depends on four counts: ``m`` positions
match the query's ``S``-context, ``m_e`` of them hold the target ``e``, and ``u = L - m``, ``u_e``
the others. With ``β = e^{-a}``, ``λ = β u`` and ``q_e = u_e/u``,
``ŷ(e) = (m_e + λ q_e)/(m + λ)`` (``u_e/u`` when ``m = 0``): the match frequencies shrunk toward
the non-matching unigram ``q`` by a pseudo-count ``λ``.

**The law.** As for the Bayes add-``α`` predictive (pseudo-count ``dα``, weight falling like
``1/m``), the best pseudo-count is of order one, and one ``a`` serves all sequences with
``u ≈ L(1 - μ(z*))``: ``e^{a*} ∝ L``. :func:`optimal_temperature_law` computes it from the
source: for kernels from the prior and each ``S``-context ``z`` (weight ``μ(z)``, stationary),
the successors of the matches are i.i.d. ``θ = μ(·|z)``, the non-matching unigram is
``q_e = Σ_{z'≠z} μ(z', e) / Σ_{z'≠z} μ(z')``, the match count is Poisson with mean
``M = (L - max S) μ(z)`` (so ``N_e ~ Poisson(M θ_e)`` independently) and ``u = L - M``. The law's
``a*(L)`` minimises that model's expected loss

    E_π Σ_z μ(z) [ Σ_e θ_e E(-log(N_e + λ_z q_e)) + E log(m + λ_z) ],   λ_z = e^{-a} u_z,

using no sequence of length ``L``. With the pseudo-count scale ``b* = L e^{-a*}`` tending to a
constant of the source, ``a*(L) = log L + c + o(1)``, ``c = -log b*``: ``log 2`` per doubling.

**Stage 3.** With the selector on ``S`` and the exact copier the stage-3 loss is the GIH loss of
the training sample; :func:`predict_trained_temperature` iterates torch's SGD or Adam update rule
(in numpy) on :func:`theory.predictors.reference.gih_objective`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.stats import poisson

from theory.criterion.estimates import MC_KERNEL_FLOOR
from theory.errors import require
from theory.predictors.reference import (
    LOSS_FLOOR,
    TEMPERATURE_XATOL,
    check_context,
    check_targets,
    context_similarity,
    gih_objective,
)
from theory.sizes import FLOAT_BYTES, require_memory
from theory.sources.kernels import kernel_atoms, sample_kernels
from theory.sources.priors import Fixed
from theory.sources.sequences import sample_sequences_np
from theory.sources.spec import Source
from theory.sources.stationary import marginal, window_law
from theory.validation import as_float, as_float_array, as_generator, as_int, as_offsets

__all__ = ["TAIL_START", "TAIL_TERMS", "PSEUDO_COUNT_RANGE", "DERIVATIVE_STEP", "SAMPLE_CHUNK",
           "TemperatureEstimate", "gih_counts", "count_loss_and_grad",
           "expected_optimal_temperature", "law_objective", "optimal_temperature_law",
           "predict_trained_temperature"]

TAIL_START = 32
"""Counts ``N < TAIL_START`` enter the law's Poisson means exactly, larger ones by the series
``log(N + c) = log N + Σ_j (-1)^{j+1} c^j / (j N^j)`` (``c <= 8 <= N/4``)."""

TAIL_TERMS = 12
"""Terms of that series: its remainder is below ``(1/4)^13 / 13 ≈ 1e-9``."""

PSEUDO_COUNT_RANGE = (1e-6, 8.0)
"""Search range of the law's pseudo-count scale ``b = L e^{-a}``: the best ``b`` is of order one
(0.36 on the paper's source); 8 keeps every ``c = λ q <= b`` inside the series' range."""

DERIVATIVE_STEP = 1e-3
"""Central-difference step in ``a`` for the standard errors (curvature varies on a scale of 1)."""

SAMPLE_CHUNK = 8192
"""Sequences drawn at a time by :func:`expected_optimal_temperature` (only counts are kept)."""

_LOG_FLOOR = math.log(LOSS_FLOOR)
_OPTIMIZERS = ("sgd", "adam")
_SEARCH = (0.0, 60.0)  # the interval of theory.optimal_temperature


@dataclass(frozen=True)
class TemperatureEstimate:
    """An optimal temperature ``a*(L)`` with its Monte Carlo standard error.

    Attributes:
        seq_len: ``L``.
        a_star: ``a*(L)``.
        stderr: delta-method standard error over the samples (0 when nothing is random, nan
            when the minimiser sits at a search bound).
        samples: kernels (``kind="law"``) or sequences (``kind="measured"``) averaged.
        kind: ``"law"`` or ``"measured"``.
    """

    seq_len: int
    a_star: float
    stderr: float
    samples: int
    kind: str

    @property
    def offset(self) -> float:
        """``c = a*(L) - log L``."""
        return self.a_star - math.log(self.seq_len)

    @property
    def pseudo_count(self) -> float:
        """``b* = L e^{-a*}``, the pseudo-count scale of the non-matching positions."""
        return math.exp(-self.offset)


def gih_counts(context: Any, targets: Any, head_set: Sequence[int], *, vocab_size: int
               ) -> np.ndarray:
    """The counts ``(m, m_e, u, u_e)`` of every sequence, int64 ``(n, 4)``.

    Args:
        context: integer ``(n, L)``, ``x_1..x_L``.
        targets: integer ``(n,)``, ``x_{L+1}``.
        head_set: the offsets ``S`` of the exact copier similarity, each in ``1..L``.
        vocab_size: ``d``.
    """
    ctx = check_context(context, vocab_size)
    y = check_targets(targets, ctx.shape[0], int(vocab_size))
    sim = context_similarity(ctx, head_set).astype(bool)  # (n, L)
    hit = ctx == y[:, None]  # (n, L)
    m, m_e = sim.sum(axis=1), (sim & hit).sum(axis=1)  # (n,), (n,)
    return np.stack([m, m_e, ctx.shape[1] - m, hit.sum(axis=1) - m_e], axis=1).astype(np.int64)


def count_loss_and_grad(counts: Any, a: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-sequence GIH loss ``-log max(ŷ(e), LOSS_FLOOR)`` and its ``∂/∂a`` from the counts.

    ``ŷ(e) = (m_e + β u_e)/(m + β u)`` with ``β = e^{-a}`` when ``m >= 1`` and ``u_e/u`` when
    ``m = 0``; ``∂ log ŷ/∂a = β u/(m + β u) - β u_e/(m_e + β u_e)``; 0 where ``ŷ`` is at the floor.

    Args:
        counts: integer ``(n, 4)`` from :func:`gih_counts`.
        a: a finite temperature ``>= 0``.

    Returns:
        ``(loss, dloss_da)``, float64 ``(n,)`` each.
    """
    arr = np.asarray(counts)
    require(arr.ndim == 2 and arr.shape[1] == 4 and np.issubdtype(arr.dtype, np.integer)
            and bool(np.all(arr >= 0)), "counts", "non-negative integers (n, 4): m, m_e, u, u_e",
            getattr(arr, "shape", arr))
    a = as_float(a, "a")
    require(a >= 0, "a", "a finite number >= 0", a)
    m, m_e, u, u_e = (arr[:, j].astype(np.float64) for j in range(4))  # (n,) each
    beta = math.exp(-a)
    matched = m >= 1
    num = np.where(matched, m_e + beta * u_e, u_e)  # (n,)
    den = np.where(matched, m + beta * u, u)  # (n,)
    with np.errstate(divide="ignore"):
        log_yhat = np.log(num) - np.log(den)  # (n,), -inf where the target is absent
    active = log_yhat > _LOG_FLOOR
    dlog = np.where(matched & active, beta * u / np.maximum(den, 1e-300)
                    - beta * u_e / np.maximum(num, 1e-300), 0.0)  # (n,)
    return -np.maximum(log_yhat, _LOG_FLOOR), -dlog


def _minimise(mean_loss: Any, per_grad: Any, lo: float, hi: float, samples: int
              ) -> tuple[float, float]:
    """Bounded Brent on ``mean_loss``; delta-method SE ``sd(ℓ_i')/(√n ℓ'')`` from ``per_grad``."""
    a_star = float(minimize_scalar(mean_loss, bounds=(lo, hi), method="bounded",
                                   options={"xatol": TEMPERATURE_XATOL}).x)
    h = DERIVATIVE_STEP
    if min(a_star - lo, hi - a_star) < 10 * h:
        return a_star, float("nan")
    curvature = (per_grad(a_star + h).mean() - per_grad(a_star - h).mean()) / (2 * h)
    if samples < 2 or curvature <= 0:
        return a_star, 0.0 if samples < 2 else float("nan")
    return a_star, float(np.std(per_grad(a_star), ddof=1)) / math.sqrt(samples) / curvature


def _check_source_set(source: Any, head_set: Any, seq_len: Any) -> tuple[tuple[int, ...], int]:
    require(isinstance(source, Source), "source", "a theory.sources.spec.Source", type(source).__name__)
    offsets = tuple(sorted(as_offsets(head_set, "head_set", allow_empty=True, increasing=False)))
    require(len(offsets) >= 1, "head_set", "a non-empty head set S", head_set)
    seq_len = as_int(seq_len, "seq_len", minimum=2, symbol="L")
    require(seq_len > max(offsets[-1], source.max_parent), "seq_len",
            f"L > max(S, P) = {max(offsets[-1], source.max_parent)}", seq_len)
    return offsets, seq_len


def expected_optimal_temperature(source: Source, head_set: Sequence[int], seq_len: int, *,
                                 sequences: int, rng: np.random.Generator
                                 ) -> TemperatureEstimate:
    """The measured ``a*(L)``: the minimiser of the GIH loss on sampled sequences.

    Sequences (uniform start, as in training) are drawn :data:`SAMPLE_CHUNK` at a time and only
    their counts kept; bounded Brent on ``[0, 60]`` as in :func:`theory.optimal_temperature` (the
    same minimiser on the same sample). SE by the delta method.

    Args:
        source: the data source.
        head_set: the offsets ``S`` (typically ``S*``), non-empty.
        seq_len: ``L > max(S, P)``.
        sequences: ``n >= 2``.
        rng: numpy generator, the only randomness.
    """
    offsets, seq_len = _check_source_set(source, head_set, seq_len)
    n = as_int(sequences, "sequences", minimum=2)
    rng = as_generator(rng, needed_for="sequences are drawn at random")
    parts = []
    for start in range(0, n, SAMPLE_CHUNK):
        tokens = sample_sequences_np(source, min(SAMPLE_CHUNK, n - start), seq_len + 1, rng=rng)
        parts.append(gih_counts(tokens[:, :-1], tokens[:, -1], offsets,
                                vocab_size=source.vocab_size))  # (chunk, 4)
    counts = np.concatenate(parts)  # (n, 4)
    a_star, err = _minimise(lambda a: count_loss_and_grad(counts, a)[0].mean(),
                            lambda a: count_loss_and_grad(counts, a)[1], *_SEARCH, n)
    return TemperatureEstimate(seq_len, a_star, err, n, "measured")


# ----------------------------------------------------------------------------------- the law
def _context_laws(source: Source, offsets: tuple[int, ...], kernels: int,
                  rng: np.random.Generator | None) -> tuple[np.ndarray, ...]:
    """``μ(z)`` (K, Z), ``θ = μ(·|z)`` (K, Z, d), the non-matching unigram ``q`` (K, Z, d) and
    the kernels' weights (K,): the prior's own kernels when it has finitely many
    (:func:`theory.sources.kernels.kernel_atoms`), else ``kernels`` draws of weight ``1/K``."""
    atoms = kernel_atoms(source)
    if atoms is not None:
        ker, weights = atoms  # (K,) + (d,)*k + (d,), (K,)
    else:
        ker = sample_kernels(source, kernels, rng=rng)  # (K,) + (d,)*k + (d,)
        weights = np.full(kernels, 1.0 / kernels)  # (K,)
    if not isinstance(source.prior, Fixed):
        ker = np.maximum(ker, MC_KERNEL_FLOOR, out=ker)
        ker /= ker.sum(axis=-1, keepdims=True)
    d = source.vocab_size
    law = window_law(ker, source.parents, max(offsets[-1], source.max_parent) + 1)
    joint = marginal(law, offsets, batch_ndim=1).reshape(len(ker), -1, d)  # (K, Z, d)
    mu = joint.sum(axis=2)  # (K, Z)
    # Σ_{z'≠z} μ(z', e); the floor only moves a q_e that round-off left near 0
    rest = np.maximum(joint.sum(axis=1, keepdims=True) - joint, LOSS_FLOOR)  # (K, Z, d)
    q = rest / rest.sum(axis=2, keepdims=True)
    # a context of stationary mass 0 (underflow) has weight 0: give it any valid θ
    theta = np.where(mu[..., None] > 0, joint / np.where(mu > 0, mu, 1.0)[..., None], 1.0 / d)
    return mu, theta, q, weights


class _PoissonLogMean:
    """``c ↦ E log(N + c) - E[log N; N >= TAIL_START]`` for ``N ~ Poisson(t)``, ``t`` of any shape."""

    def __init__(self, t: np.ndarray) -> None:
        flat = t.reshape(-1)  # (E,)
        self.shape = t.shape
        self.head = poisson.pmf(np.arange(TAIL_START), flat[:, None])  # (E, K0)
        self.tail = np.zeros((flat.size, TAIL_TERMS))  # (E, J): E[N^-j; N >= K0]
        idx = np.flatnonzero(poisson.sf(TAIL_START - 1, flat) > 1e-17)
        idx = idx[np.argsort(flat[idx])]
        for chunk in np.array_split(idx, idx.size // 512 + 1) if idx.size else []:
            t_lo, t_hi = flat[chunk[0]], flat[chunk[-1]]
            k0 = max(TAIL_START, int(t_lo - 12 * math.sqrt(t_lo) - 20))
            k = np.arange(k0, int(t_hi + 12 * math.sqrt(t_hi) + 40), dtype=np.float64)  # (W,)
            p = poisson.pmf(k, flat[chunk, None])  # (c, W)
            power = np.ones_like(k)
            for j in range(TAIL_TERMS):
                power /= k
                self.tail[chunk, j] = p @ power

    def __call__(self, c: np.ndarray) -> np.ndarray:
        cf = np.broadcast_to(c, self.shape).reshape(-1, 1)  # (E, 1)
        head = (self.head * np.log(np.arange(TAIL_START) + cf)).sum(axis=1)  # (E,)
        j = np.arange(1, TAIL_TERMS + 1)  # (J,)
        series = (self.tail * ((-1.0) ** (j + 1) * cf ** j / j)).sum(axis=1)  # (E,)
        return (head + series).reshape(self.shape)


def law_objective(context_mass: Any, successor: Any, unigram: Any, *, seq_len: int,
                  max_offset: int) -> Callable[[float], np.ndarray]:
    """``a ↦`` per-kernel expected loss of the law's model, up to a constant in ``a``.

    For kernel ``k`` it is ``Σ_z μ(z) [Σ_e θ_e E(-log(N_e + λ_z q_e)) + E log(m + λ_z)]`` with
    ``N_e ~ Poisson(M_z θ_e)``, ``m ~ Poisson(M_z)``, ``M_z = (L - max S) μ(z)``,
    ``λ_z = e^{-a}(L - M_z)``; the dropped constant is ``Σ_z μ(z)(E[log m; m >= K0] -
    Σ_e θ_e E[log N_e; N_e >= K0])``, ``K0 =`` :data:`TAIL_START`.

    Args:
        context_mass: ``μ(z)``, float ``(K, Z)`` (``K`` kernels, ``Z`` contexts).
        successor: ``θ = μ(·|z)``, float ``(K, Z, d)``, rows summing to 1.
        unigram: ``q``, float ``(K, Z, d)``, positive, rows summing to 1.
        seq_len, max_offset: ``L`` and ``max S`` (the first ``max S`` positions cannot match).

    Returns:
        ``a ↦`` float64 ``(K,)``, valid while ``L e^{-a} <= PSEUDO_COUNT_RANGE[1]``.
    """
    mu = as_float_array(context_mass, "context_mass")
    theta = as_float_array(successor, "successor")
    q = as_float_array(unigram, "unigram")
    require(mu.ndim == 2 and theta.shape == q.shape == mu.shape + (theta.shape[-1],)
            and bool(np.all(mu >= 0) and np.all(theta >= 0) and np.all(q > 0)),
            "context_mass, successor, unigram", "shapes (K, Z), (K, Z, d), (K, Z, d) with "
            "μ, θ >= 0 and q > 0", (mu.shape, theta.shape, q.shape, float(q.min())))
    seq_len = as_int(seq_len, "seq_len", minimum=2, symbol="L")
    max_offset = as_int(max_offset, "max_offset", minimum=1)
    require(max_offset < seq_len, "max_offset", f"max S < L = {seq_len}", max_offset)
    mean_m = (seq_len - max_offset) * mu  # (K, Z): M, the mean number of matches
    u = seq_len - mean_m  # (K, Z)
    hits, matches = _PoissonLogMean(mean_m[..., None] * theta), _PoissonLogMean(mean_m)

    def per_kernel(a: float) -> np.ndarray:  # (K,)
        lam = math.exp(-a) * u  # (K, Z)
        per_context = matches(lam) - (theta * hits(lam[..., None] * q)).sum(axis=2)  # (K, Z)
        return (mu * per_context).sum(axis=1)

    return per_kernel


def optimal_temperature_law(source: Source, head_set: Sequence[int], seq_len: int, *,
                            kernels: int = 1000, rng: np.random.Generator | None = None
                            ) -> TemperatureEstimate:
    """The law's ``a*(L)``: the minimiser of the model's expected loss (module docstring).

    The stationary laws of ``kernels`` prior draws (floored at ``MC_KERNEL_FLOOR``; the prior's
    own kernels, weighted, when it has finitely many: :func:`theory.sources.kernels.kernel_atoms`)
    give ``μ(z)``, ``θ``, ``q``; the mean of
    :func:`law_objective` is minimised by bounded Brent over ``b = L e^{-a}`` in
    :data:`PSEUDO_COUNT_RANGE` (``stderr = nan`` at a bound).

    Args:
        source: the data source.
        head_set: the offsets ``S`` of the GIH (typically ``S*``), non-empty.
        seq_len: ``L > max(S, P)``.
        kernels: prior draws, ``>= 2`` (ignored for a prior with finitely many kernels).
        rng: numpy generator (may be None only for a prior with finitely many kernels).

    Returns:
        :class:`TemperatureEstimate` of kind ``"law"`` (``stderr`` over kernels).
    """
    offsets, seq_len = _check_source_set(source, head_set, seq_len)
    kernels = as_int(kernels, "kernels", minimum=2)
    atoms = kernel_atoms(source)
    if atoms is None:
        rng = as_generator(rng, needed_for=f"a {type(source.prior).__name__} prior draws kernels")
    d, n_ctx = source.vocab_size, source.vocab_size ** len(offsets)
    count = kernels if atoms is None else len(atoms[1])
    require_memory(4 * count * n_ctx * (d + 1) * (TAIL_START + TAIL_TERMS) * FLOAT_BYTES,
                   f"the temperature law over {count} kernel(s) and {n_ctx} contexts",
                   "pass fewer kernels")
    mu, theta, q, weights = _context_laws(source, offsets, kernels, rng)
    objective = law_objective(mu, theta, q, seq_len=seq_len, max_offset=offsets[-1])
    # Exact (one weighted sample) for finitely many kernels, a Monte Carlo mean otherwise.
    per_kernel = objective if atoms is None else (lambda a: weights @ objective(a)[:, None])

    lo, hi = (math.log(seq_len / b) for b in PSEUDO_COUNT_RANGE[::-1])
    h = DERIVATIVE_STEP  # per-kernel derivatives by central differences, (K,)
    samples = len(mu) if atoms is None else 1
    a_star, err = _minimise(lambda a: per_kernel(a).mean(),
                            lambda a: (per_kernel(a + h) - per_kernel(a - h)) / (2 * h),
                            lo, hi, samples)
    return TemperatureEstimate(seq_len, a_star, err, samples, "law")


# ---------------------------------------------------------------------------------- stage 3
def predict_trained_temperature(context: Any, targets: Any, head_set: Sequence[int], *,
                                vocab_size: int, a0: float, lr: float, steps: int,
                                optimizer: str = "sgd", momentum: float = 0.0,
                                betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
                                ) -> np.ndarray:
    """``a`` after each of ``steps`` full-batch updates of the GIH loss on a sample.

    ``g = ∂ℓ/∂a`` of :func:`theory.predictors.reference.gih_objective`; the update of ``torch.optim.SGD``
    (``buf = g`` at step 1, then ``momentum·buf + g``; ``a -= lr·buf``) or ``torch.optim.Adam``
    (``a -= (lr/(1-β1^t)) m_t / (√v_t/√(1-β2^t) + eps)``), their other options at the defaults.

    Args:
        context: integer ``(n, L)``, the training sample's ``x_1..x_L``.
        targets: integer ``(n,)``, its ``x_{L+1}``.
        head_set: the offsets ``S`` the selector sits on.
        vocab_size: ``d``.
        a0: ``a`` when stage 3 starts.
        lr: learning rate ``> 0``.
        steps: number of updates ``>= 0``.
        optimizer: ``"sgd"`` or ``"adam"``.
        momentum: SGD momentum in ``[0, 1)`` (0 with Adam).
        betas: Adam's ``(β1, β2)`` in ``[0, 1)``.
        eps: Adam's ``eps > 0``.

    Returns:
        float64 ``(steps + 1,)``: ``a`` before the first update and after each one.
    """
    objective = gih_objective(context, targets, head_set, vocab_size=vocab_size)
    a = as_float(a0, "a0")
    lr = as_float(lr, "lr", positive=True)
    steps = as_int(steps, "steps", minimum=0)
    require(optimizer in _OPTIMIZERS, "optimizer", f"one of {_OPTIMIZERS}", optimizer)
    momentum = as_float(momentum, "momentum")
    require(0 <= momentum < 1 and (optimizer == "sgd" or momentum == 0), "momentum",
            "a number in [0, 1) (0 with adam)", momentum)
    b1, b2 = (as_float(b, "betas") for b in betas)
    require(0 <= b1 < 1 and 0 <= b2 < 1, "betas", "(β1, β2) in [0, 1)", betas)
    eps = as_float(eps, "eps", positive=True)
    out = np.full(steps + 1, a)  # (steps + 1,)
    buf = first = second = 0.0
    for t in range(1, steps + 1):
        g = objective(a)[1]
        if optimizer == "sgd":
            buf = g if t == 1 else momentum * buf + g
            a -= lr * buf
        else:
            first = b1 * first + (1 - b1) * g
            second = b2 * second + (1 - b2) * g * g
            denom = math.sqrt(second) / math.sqrt(1 - b2 ** t) + eps
            a -= lr / (1 - b1 ** t) * first / denom
        out[t] = a
    return out
