"""Stationary window laws (float vs exact, stationarity, primitivity) and the numpy sampler."""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import sizes
from theory.errors import InductionHeadsError
from theory.sources.kernels import sample_kernels
from theory.sources.sequences import sample_sequences_np
from theory.sources.spec import Dirichlet, Fixed, Source
from theory.sources.stationary import SOLVE_COND_MAX, marginal, transition_matrix, window_law
from theory.sources.stationary_exact import window_law_exact

EXACT_VS_FLOAT_ATOL = 1e-12
"""float64 solve of at most 27 states vs exact Rationals: round-off only."""

STATIONARY_ATOL = 1e-10
"""Float laws: the LAPACK route errs by <= cond * 2.4e-17 <= 2.4e-11 (cond < SOLVE_COND_MAX = 1e6)."""

NEAR_REDUCIBLE_RTOL = 1e-12
"""GTH elimination keeps relative accuracy of a 1e-10 stationary mass (condition number 1e30)."""

SAMPLER_Z = 5.0
"""Empirical frequencies must lie within 5 binomial standard errors of the law (false alarm ~1e-6)."""

PARENT_CASES = [(1,), (1, 2), (2,), (1, 3)]

EXACT_EXAMPLES = settings(max_examples=max(5, settings().max_examples // 4))
"""Exact solves cost ~5-20 ms each: a quarter of the profile's examples (25 under ci)."""


@st.composite
def rational_kernels(draw, d: int, k: int):
    """A strictly positive kernel of Rationals with small integer weights (rows sum to 1)."""
    out = np.empty((d,) * (k + 1), dtype=object)
    for idx in np.ndindex((d,) * k):
        weights = draw(st.lists(st.integers(1, 9), min_size=d, max_size=d))
        for e, w in enumerate(weights):
            out[idx + (e,)] = sp.Rational(w, sum(weights))
    return out


def _cells(array: sp.NDimArray) -> list:
    """The entries of a sympy N-d array, flat."""
    return list(np.array(array.tolist(), dtype=object).flat)


def _as_float(kernel: np.ndarray) -> np.ndarray:
    return np.array(kernel.tolist(), dtype=np.float64)


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("parents", PARENT_CASES)
@EXACT_EXAMPLES
@given(data=st.data())
def test_exact_and_float_window_laws_agree(d, parents, data):
    kernel = data.draw(rational_kernels(d, len(parents)))
    window = parents[-1] + 1 + data.draw(st.integers(0, 1))
    exact = window_law_exact(kernel, parents, window)
    assert exact.shape == (d,) * window
    assert sum(_cells(exact)) == 1, f"exact law sums to {sum(_cells(exact))}"
    assert all(isinstance(v, sp.Rational) for v in _cells(exact))
    exact_f = np.array(exact.tolist(), dtype=np.float64)
    approx = window_law(_as_float(kernel), parents, window)
    err = np.abs(approx - exact_f).max()
    assert err <= EXACT_VS_FLOAT_ATOL, f"max |float - exact| = {err:.3g}"


@pytest.mark.parametrize("parents", PARENT_CASES)
@EXACT_EXAMPLES
@given(data=st.data())
def test_exact_law_is_exactly_stationary(parents, data):
    kernel = data.draw(rational_kernels(2, len(parents)))
    law = np.array(window_law_exact(kernel, parents, parents[-1] + 2).tolist(), dtype=object)
    oldest_out, newest_out = law.sum(axis=0), law.sum(axis=-1)
    bad = [(i, a, b) for i, (a, b) in enumerate(zip(oldest_out.flat, newest_out.flat)) if a != b]
    assert not bad, f"(K-1)-window laws differ (index, drop-oldest, drop-newest): {bad[:3]}"


@pytest.mark.parametrize("d,parents,alpha", [(3, (1, 2), 0.3), (3, (1, 3), 0.1), (4, (1, 2, 3), 0.3),
                                             (2, (2,), 0.5)])
def test_float_law_is_stationary_and_normalised(d, parents, alpha):
    kernels = sample_kernels(Source(d, parents, Dirichlet(alpha)), 200,
                             rng=np.random.default_rng(3))
    window = parents[-1] + 2
    law = window_law(kernels, parents, window)  # (n,) + (d,)*K
    assert law.shape == (200,) + (d,) * window
    total = law.reshape(200, -1).sum(axis=1)
    assert np.abs(total - 1).max() <= STATIONARY_ATOL, f"sums: {total.min()}..{total.max()}"
    assert law.min() >= 0.0, f"negative mass {law.min()}"
    shift = np.abs(law.sum(axis=1) - law.sum(axis=-1)).max()
    assert shift <= STATIONARY_ATOL, f"drop-oldest vs drop-newest differ by {shift:.3g}"
    one = window_law(kernels[7], parents, window)
    assert np.array_equal(one, law[7]) or np.abs(one - law[7]).max() <= STATIONARY_ATOL


@pytest.mark.parametrize("parents", [(1, 2), (1, 3), (2,), (2, 3)])
def test_conditional_of_window_law_recovers_the_kernel(parents):
    """μ(x_l | (x_{l-p})_{p∈P}) = π: checks the axis convention independently of the solver."""
    kernel = sample_kernels(Source(3, parents, Dirichlet(1.0)), 1, rng=np.random.default_rng(9))[0]
    joint = marginal(window_law(kernel, parents, parents[-1] + 2), parents)  # (d,)*k + (d,)
    cond = joint / joint.sum(axis=-1, keepdims=True)
    err = np.abs(cond - kernel).max()
    assert err <= STATIONARY_ATOL, f"recovered kernel differs by {err:.3g}"


def test_law_extends_consistently_to_longer_windows():
    kernel = sample_kernels(Source(3, (1, 2), Dirichlet(0.5)), 1, rng=np.random.default_rng(0))[0]
    short, long = window_law(kernel, (1, 2), 3), window_law(kernel, (1, 2), 5)
    for drop in [(0, 1), (3, 4), (0, 4)]:
        err = np.abs(long.sum(axis=drop) - short).max()
        assert err <= STATIONARY_ATOL, f"marginalising axes {drop} of K=5: error {err:.3g}"


def test_marginal_orders_axes_by_offsets_and_matches_direct_sum():
    rng = np.random.default_rng(1)
    law = rng.random((2, 3, 3, 3, 3))  # (n, x_{l-3}, x_{l-2}, x_{l-1}, x_l)
    got = marginal(law, (1, 3), batch_ndim=1)  # (n, x_{l-1}, x_{l-3}, x_l)
    want = law.sum(axis=2).transpose(0, 2, 1, 3)  # drop x_{l-2}; reorder (x_{l-1}, x_{l-3})
    assert np.abs(got - want).max() <= STATIONARY_ATOL
    assert np.array_equal(marginal(law[0], (2,)), law[0].sum(axis=(0, 2)))
    exact = window_law_exact([[sp.Rational(1, 3), sp.Rational(2, 3)], [1, 0]], (1,), 3)
    m = marginal(exact, (2,))
    assert isinstance(m, sp.NDimArray) and m.shape == (2, 2) and sum(_cells(m)) == 1
    with pytest.raises(InductionHeadsError, match="offsets"):
        marginal(law[0], (4,))


@pytest.mark.parametrize("kernel,kind", [([[0.0, 1.0], [1.0, 0.0]], "periodic"),
                                         ([[1.0, 0.0], [0.0, 1.0]], "reducible"),
                                         ([[1.0, 0.0], [0.5, 0.5]], "reducible")])
def test_non_primitive_chains_raise(kernel, kind):
    with pytest.raises(InductionHeadsError, match=kind):
        window_law(np.array(kernel), (1,), 2)
    exact = [[sp.Rational(int(2 * v), 2) for v in row] for row in kernel]
    with pytest.raises(InductionHeadsError, match=kind):
        window_law_exact(exact, (1,), 2)


def test_periodic_chain_on_a_longer_offset_raises():
    # x_l = 1 - x_{l-2}: period 4 on the pairs (x_{l-1}, x_l).
    with pytest.raises(InductionHeadsError, match="periodic"):
        window_law(np.array([[0.0, 1.0], [1.0, 0.0]]), (2,), 3)


@pytest.mark.parametrize("parents", [(1,), (1, 2), (2,)])
def test_every_deterministic_kernel_is_rejected(parents):
    """A deterministic chain moves along a functional graph: never primitive on >= 2 states."""
    d, k = 2, len(parents)
    for table in itertools.product(range(d), repeat=d**k):
        kernel = np.eye(d)[np.array(table)].reshape((d,) * k + (d,))
        with pytest.raises(InductionHeadsError, match="primitive"):
            window_law(kernel, parents, parents[-1] + 1)


def test_batch_with_one_bad_kernel_raises_and_names_it():
    good = np.array([[0.5, 0.5], [0.3, 0.7]])
    batch = np.stack([good, good, np.eye(2)])
    with pytest.raises(InductionHeadsError, match="batch index 2"):
        window_law(batch, (1,), 2)


def test_nearly_reducible_chain_keeps_relative_accuracy():
    p, q = 1e-40, 1e-30  # leave 0 w.p. p, leave 1 w.p. q: μ_1 = p / (p + q) ≈ 1e-10
    kernel = np.array([[1.0 - p, p], [q, 1.0 - q]])
    trans = transition_matrix(kernel, (1,))
    a = np.eye(2) - trans + 1.0
    assert np.linalg.cond(a, 1) > SOLVE_COND_MAX, "this case must exercise the GTH route"
    law = window_law(kernel, (1,), 2).sum(axis=0)
    want = p / (p + q)
    assert abs(law[1] - want) <= NEAR_REDUCIBLE_RTOL * want, f"μ_1 {law[1]!r} vs {want!r}"


def test_small_alpha_batch_where_lapack_fails_is_still_stationary():
    kernels = sample_kernels(Source(3, (1, 2), Dirichlet(0.05)), 2000,
                             rng=np.random.default_rng(1))
    law = window_law(kernels, (1, 2), 3)  # (n, 3, 3, 3)
    a, b = law.sum(axis=1), law.sum(axis=-1)  # (n, 3, 3)
    rel = np.abs(a - b) / np.maximum(np.maximum(a, b), 1e-300)
    assert rel.max() <= 1e-9, f"worst relative stationarity error {rel.max():.3g}"


def test_bad_inputs_raise():
    kernel = np.array([[0.5, 0.5], [0.3, 0.7]])
    with pytest.raises(InductionHeadsError, match="window"):
        window_law(kernel, (1,), 1)
    with pytest.raises(InductionHeadsError, match="rows summing to 1"):
        window_law(np.array([[0.5, 0.6], [0.3, 0.7]]), (1,), 2)
    with pytest.raises(InductionHeadsError, match="shape"):
        window_law(kernel, (1, 2), 3)
    with pytest.raises(InductionHeadsError, match="exact rational"):
        window_law_exact([[0.5, 0.5], [0.25, 0.75]], (1,), 2)
    with pytest.raises(InductionHeadsError, match="exactly to 1"):
        window_law_exact([[sp.Rational(1, 2), sp.Rational(1, 3)], [1, 0]], (1,), 2)


# --- the numpy sampler -------------------------------------------------------------------------

def test_sampler_shapes_dtype_and_reproducibility():
    src = Source(3, (1, 3), Dirichlet(0.2))
    a, ka = sample_sequences_np(src, 50, 20, rng=np.random.default_rng(5), return_kernels=True)
    b = sample_sequences_np(src, 50, 20, rng=np.random.default_rng(5))
    assert a.shape == (50, 20) and a.dtype == np.int64 and ka.shape == (50, 3, 3, 3)
    assert np.array_equal(a, b), "same seed must give the same sequences"
    assert a.min() >= 0 and a.max() <= 2
    with pytest.raises(InductionHeadsError, match="length"):
        sample_sequences_np(src, 5, 3, rng=np.random.default_rng(0))
    with pytest.raises(InductionHeadsError, match="start"):
        sample_sequences_np(src, 5, 9, rng=np.random.default_rng(0), start="zero")


def test_sampler_never_emits_zero_probability_transitions():
    kernel = np.array([[[0.0, 1.0], [0.5, 0.5]], [[0.3, 0.7], [1.0, 0.0]]])  # P = (1, 2)
    src = Source(2, (1, 2), Fixed(kernel))
    tok = sample_sequences_np(src, 200, 60, rng=np.random.default_rng(2))
    z1, z2, e = tok[:, 1:-1], tok[:, :-2], tok[:, 2:]  # x_{l-1}, x_{l-2}, x_l
    assert kernel[z1, z2, e].min() > 0, "a transition of probability 0 was sampled"


@pytest.mark.parametrize("start,burn_in", [("uniform", 300), ("stationary", 0)])
def test_sampler_window_frequencies_match_stationary_law(start, burn_in):
    kernel = np.array([[[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.1, 0.8, 0.1]],
                       [[0.3, 0.3, 0.4], [0.7, 0.2, 0.1], [0.05, 0.05, 0.9]],
                       [[0.5, 0.25, 0.25], [0.4, 0.1, 0.5], [0.2, 0.6, 0.2]]])
    src = Source(3, (1, 2), Fixed(kernel))
    tok = sample_sequences_np(src, 20000, 3, rng=np.random.default_rng(4), start=start,
                              burn_in=burn_in)
    # kernel axes are (x_{l-1}, x_{l-2}); the law's are (x_{l-2}, x_{l-1}, x_l)
    law = window_law(kernel, (1, 2), 3).ravel()
    flat = tok[:, 0] * 9 + tok[:, 1] * 3 + tok[:, 2]
    freq = np.bincount(flat, minlength=27) / tok.shape[0]
    z = np.abs(freq - law) / np.sqrt(law * (1 - law) / tok.shape[0])
    assert z.max() <= SAMPLER_Z, f"worst cell z={z.max():.2f}: freq {freq[z.argmax()]:.4f} " \
                                 f"vs law {law[z.argmax()]:.4f}"


# --- chunked solves and the memory guard -------------------------------------------------------

def test_chunked_solves_give_identical_laws(monkeypatch):
    """Chunks of 7 kernels (per-matrix LAPACK and GTH) reproduce the one-batch result bit for bit."""
    src = Source(3, (1, 3), Dirichlet(0.2))
    kernels = sample_kernels(src, 40, rng=np.random.default_rng(6))  # (40, 3, 3, 3)
    whole = window_law(kernels, (1, 3), 5)
    per_kernel = sizes.solve_bytes_per_kernel(3, 3)
    monkeypatch.setattr(sizes, "SOLVE_CHUNK_BYTES", 7 * per_kernel)
    assert sizes.solve_chunk(40, 3, 3) == 7
    chunked = window_law(kernels, (1, 3), 5)
    assert np.array_equal(whole, chunked), f"differ by {np.abs(whole - chunked).max():.3g}"


def test_chunked_gth_fallback_matches_the_one_batch_result(monkeypatch):
    """alpha = 0.05 makes LAPACK report a singular matrix: every chunk then goes through GTH."""
    kernels = sample_kernels(Source(3, (1, 2), Dirichlet(0.05)), 300, rng=np.random.default_rng(1))
    whole = window_law(kernels, (1, 2), 3)
    monkeypatch.setattr(sizes, "SOLVE_CHUNK_BYTES", 16 * sizes.solve_bytes_per_kernel(3, 2))
    assert np.array_equal(window_law(kernels, (1, 2), 3), whole)


def test_non_primitive_kernels_are_counted_across_chunks(monkeypatch):
    good = np.array([[0.5, 0.5], [0.3, 0.7]])
    batch = np.stack([good, np.eye(2), good, np.eye(2)[::-1], good, np.eye(2)])  # (6, 2, 2)
    monkeypatch.setattr(sizes, "SOLVE_CHUNK_BYTES", 2 * sizes.solve_bytes_per_kernel(2, 1))
    with pytest.raises(InductionHeadsError, match=r"reducible chain \(batch index 1, 3 of 6 such\)"):
        window_law(batch, (1,), 2)


MEMORY_ESTIMATE_CASES = [(3, (1, 4), 120), (2, (1, 7), 30), (3, (1, 2), 20_000)]
"""(d, P, kernels): 81, 128 and 9 states; the first two run in several chunks."""


@pytest.mark.parametrize("d,parents,n", MEMORY_ESTIMATE_CASES)
def test_window_law_memory_estimate_bounds_the_measured_peak(monkeypatch, d, parents, n):
    """tracemalloc's peak (numpy buffers) stays below the estimate the guard checks."""
    monkeypatch.setattr(sizes, "SOLVE_CHUNK_BYTES", 2**21)  # 2 MiB chunks: several per call
    kernels = sample_kernels(Source(d, parents, Dirichlet(0.3)), n, rng=np.random.default_rng(2))
    window = parents[-1] + 1
    estimate = sizes.window_law_bytes(n, d, parents[-1], window)
    tracemalloc.start()
    try:
        window_law(kernels, parents, window)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= estimate, f"measured peak {peak} B above the estimate {estimate} B"


def test_oversized_window_law_is_refused_before_allocating(monkeypatch):
    monkeypatch.setenv(sizes.MEMORY_LIMIT_ENV, "0.01")  # 10 MiB
    kernels = np.full((1000, 4, 4, 4), 0.25)  # d=4, P=(1,2): 16 states, law of 4^5 per kernel
    estimate = sizes.window_law_bytes(1000, 4, 2, 5)
    assert estimate > sizes.memory_limit_bytes()
    with pytest.raises(InductionHeadsError) as info:
        window_law(kernels, (1, 2), 5)
    message = str(info.value)
    assert message.startswith("window law for d=4, r=2 (16 states), window K=5, over 1000 kernel")
    assert "the memory limit of 10.2 MiB" in message and sizes.MEMORY_LIMIT_ENV in message
    assert f"needs about {sizes.format_bytes(estimate)}" in message
    monkeypatch.setenv(sizes.MEMORY_LIMIT_ENV, "1")
    assert window_law(kernels, (1, 2), 5).shape == (1000,) + (4,) * 5


def test_sequence_sampler_is_refused_before_drawing(monkeypatch):
    monkeypatch.setenv(sizes.MEMORY_LIMIT_ENV, "0.001")  # 1 MiB
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    with pytest.raises(InductionHeadsError, match="1000 sequence"):
        sample_sequences_np(Source(3, (1, 2), Dirichlet(0.3)), 1000, 100, rng=rng)
    assert rng.bit_generator.state == state, "a refused request must not consume randomness"
