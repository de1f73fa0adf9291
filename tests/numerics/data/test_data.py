"""Tests of the torch sampler ``numerics.data``: laws, determinism, shapes and input checks."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from numerics.data import _log_gamma, draw_kernels, sample_sequences, split_context
from theory.errors import InductionHeadsError
from theory.sources.spec import PAPER_SOURCE, Dirichlet, Fixed, Mixture, MixtureComponent, Source

FREQ_SDS = 5.0
"""Frequencies must lie within 5 binomial SDs sqrt(p(1-p)/N) of the law (two-sided p ≈ 6e-7 each).
For a Markov chain the conditional frequency N(z,e)/N(z) has that same asymptotic SD (martingale
CLT: the draws given their parents are independent), so the bound holds for dependent positions too."""

MOMENT_SDS = 5.0
"""Monte-Carlo moments must lie within 5 estimated standard errors of the exact value."""

KS_MIN_PVALUE = 1e-4
"""A Kolmogorov–Smirnov p-value below this rejects the Gamma law (seeded, so no flakiness)."""

ROW_SUM_ATOL = 1e-12
"""float64 round-off of a softmax-normalised row of a few entries."""

MIXTURE = Source(3, (1, 2), Mixture((MixtureComponent((1,), 0.7, 0.1),
                                     MixtureComponent((1, 2), 0.3, 0.1))))
BIGRAM = Source(2, (1,), Fixed([[0.9, 0.1], [0.2, 0.8]]))
BIGRAM_STATIONARY_0 = 2.0 / 3.0
"""μ(0) of BIGRAM: solves μ(0) = 0.9 μ(0) + 0.2 (1 - μ(0))."""


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _fixed_source_1_3() -> Source:
    """d=3, parents (1, 3), a fixed kernel with every entry >= 0.1 (all contexts are visited)."""
    rows = np.random.default_rng(13).dirichlet(np.ones(3), size=(3, 3))   # (z1, z3, e)
    return Source(3, (1, 3), Fixed(0.1 + 0.7 * rows))


def _transition_counts(tokens: torch.Tensor, parents: tuple[int, ...], d: int,
                       positions: slice | None = None) -> np.ndarray:
    """N(z, e) pooled over sequences and positions: array (d^k, d), z flat row-major in P order."""
    x = tokens.numpy()                                                    # (n, T)
    r, T = max(parents), x.shape[1]
    z = np.zeros((x.shape[0], T - r), dtype=np.int64)                     # (n, T-r)
    for p in parents:
        z = z * d + x[:, r - p: T - p]
    e = x[:, r:]                                                          # (n, T-r)
    if positions is not None:
        z, e = z[:, positions], e[:, positions]
    k = len(parents)
    return np.bincount((z * d + e).ravel(), minlength=d ** (k + 1)).reshape(d ** k, d)


def _assert_frequencies(counts: np.ndarray, law: np.ndarray, label: str) -> None:
    """Each row of ``counts`` (m, d) matches the row of ``law`` (m, d) within FREQ_SDS binomial SDs."""
    totals = counts.sum(-1, keepdims=True)                                # (m, 1)
    seen = totals[:, 0] > 0
    freq = counts[seen] / totals[seen]
    sd = np.sqrt(law[seen] * (1.0 - law[seen]) / totals[seen])
    err = np.abs(freq - law[seen])
    worst = np.unravel_index(np.argmax(err / np.maximum(sd, 1e-300)), err.shape)
    assert np.all(err <= FREQ_SDS * sd + 1e-12), (
        f"{label}: frequency {freq[worst]:.4f} vs law {law[seen][worst]:.4f} "
        f"(N = {int(totals[seen][worst[0], 0])}, {FREQ_SDS} SD = {FREQ_SDS * sd[worst]:.4f})")


# -------------------------------------------------------------------------- shapes and dtypes
@pytest.mark.parametrize("source", [PAPER_SOURCE, MIXTURE, _fixed_source_1_3()],
                         ids=["dirichlet", "mixture", "fixed-1-3"])
def test_shapes_dtypes_and_ranges(source):
    d, k = source.vocab_size, source.order
    tokens, kernels = sample_sequences(source, 7, 11, generator=_gen(0), return_kernels=True)
    assert tokens.shape == (7, 11) and tokens.dtype == torch.int64
    assert tokens.device.type == "cpu"
    assert int(tokens.min()) >= 0 and int(tokens.max()) < d
    assert kernels.shape == (7,) + (d,) * (k + 1) and kernels.dtype == torch.float32
    _, k64 = sample_sequences(source, 7, 11, generator=_gen(0), return_kernels=True,
                              dtype=torch.float64)
    assert k64.dtype == torch.float64
    worst = float((k64.sum(-1) - 1.0).abs().max())
    assert worst <= ROW_SUM_ATOL, f"kernel rows sum to 1 ± {worst}"
    alone = sample_sequences(source, 7, 11, generator=_gen(0))
    assert isinstance(alone, torch.Tensor) and torch.equal(alone, tokens)


@given(d=st.integers(2, 5), parents=st.sets(st.integers(1, 4), min_size=1, max_size=3),
       n=st.integers(1, 6), extra=st.integers(1, 8), seed=st.integers(0, 2**31 - 1))
def test_every_transition_has_positive_probability_under_its_kernel(d, parents, n, extra, seed):
    parents = tuple(sorted(parents))
    source = Source(d, parents, Dirichlet(0.7))
    r = parents[-1]
    tokens, kernels = sample_sequences(source, n, r + extra, generator=_gen(seed),
                                       return_kernels=True, dtype=torch.float64)
    assert tokens.shape == (n, r + extra)
    assert int(tokens.min()) >= 0 and int(tokens.max()) < d
    for t in range(r, r + extra):  # 0-based column t is x_{t+1}
        index = (torch.arange(n),) + tuple(tokens[:, t - p] for p in parents) + (tokens[:, t],)
        assert bool((kernels[index] > 0).all()), f"zero-probability transition at x_{t + 1}"


# ------------------------------------------------------------------------------------ the laws
def test_deterministic_kernel_pins_the_parent_axis_order():
    """π(e | z1, z3) = 1{e = 2·z1 + z3 mod 3}: an axis swap or offset slip breaks the recurrence."""
    d = 3
    kernel = np.zeros((d, d, d))
    for z1 in range(d):
        for z3 in range(d):
            kernel[z1, z3, (2 * z1 + z3) % d] = 1.0
    tokens = sample_sequences(Source(d, (1, 3), Fixed(kernel)), 50, 30, generator=_gen(1))
    predicted = (2 * tokens[:, 2:-1] + tokens[:, :-3]) % d                # x_l from x_{l-1}, x_{l-3}
    mismatches = int((tokens[:, 3:] != predicted).sum())
    assert mismatches == 0, f"{mismatches} tokens break x_l = 2·x_(l-1) + x_(l-3) mod 3"


def test_fixed_source_1_3_conditional_frequencies_match_kernel():
    source = _fixed_source_1_3()
    tokens = sample_sequences(source, 2000, 200, generator=_gen(2))
    counts = _transition_counts(tokens, source.parents, 3)                # (9, 3)
    assert counts.sum(-1).min() > 5000, f"some context seen only {counts.sum(-1).min()} times"
    _assert_frequencies(counts, source.prior.kernel.reshape(9, 3), "fixed (1,3)")


def test_start_tokens_are_uniform():
    tokens = sample_sequences(_fixed_source_1_3(), 20_000, 4, generator=_gen(3))
    for t in range(3):
        counts = np.bincount(tokens[:, t].numpy(), minlength=3)[None, :]
        _assert_frequencies(counts, np.full((1, 3), 1 / 3), f"x_{t + 1}")


def test_mixture_first_transition_pooled_over_sequences_is_the_mean_kernel():
    """x_1, x_2 are uniform and independent of π, so P(x_3 = e | z) = E π(e|z) = 1/d exactly.

    (Later transitions pooled over sequences are *not* the mean kernel: sequences whose kernel
    favours a context visit it more often; see the repeat-probability test below.)
    """
    tokens = sample_sequences(MIXTURE, 40_000, 3, generator=_gen(4))
    counts = _transition_counts(tokens, MIXTURE.parents, 3)               # (9, 3)
    _assert_frequencies(counts, np.full((9, 3), 1 / 3), "mixture first transition")


def test_mixture_marginals_are_uniform_at_every_position():
    """Relabelling tokens leaves the prior and the uniform start invariant: P(x_t = e) = 1/d."""
    tokens = sample_sequences(MIXTURE, 4000, 40, generator=_gen(5)).numpy()
    counts = np.stack([np.bincount(tokens[:, t], minlength=3) for t in range(40)])  # (T, d)
    _assert_frequencies(counts, np.full((40, 3), 1 / 3), "mixture marginal of x_t")


def test_dirichlet_repeat_probability_of_first_two_transitions():
    """Bigram Dir(α): P(x_2 = x_1) = 1/d, P(x_3 = x_2) = (α+1)/(d(dα+1)) + (d-1)/d² (derived here:
    given x_2 = a, x_1 = a with prob. 1/d and then E π(a|a)² = (α+1)/(d(dα+1)); else the rows are
    independent, E π(a|b) E π(a|a) = 1/d²)."""
    d, alpha, n = 3, 0.1, 40_000
    tokens = sample_sequences(Source(d, (1,), Dirichlet(alpha)), n, 3, generator=_gen(6))
    first = float((tokens[:, 1] == tokens[:, 0]).double().mean())
    second = float((tokens[:, 2] == tokens[:, 1]).double().mean())
    p2 = (alpha + 1) / (d * (d * alpha + 1)) + (d - 1) / d**2
    for label, measured, predicted in [("P(x2=x1)", first, 1 / d), ("P(x3=x2)", second, p2)]:
        sd = math.sqrt(predicted * (1 - predicted) / n)
        assert abs(measured - predicted) <= FREQ_SDS * sd, (
            f"{label}: measured {measured:.4f}, predicted {predicted:.4f} ± {FREQ_SDS * sd:.4f}")


def test_returned_kernels_are_the_ones_used():
    """Within each long sequence the conditional frequencies match that sequence's own kernel,
    and its own kernel explains it better than any other sequence's kernel."""
    source = Source(3, (1,), Dirichlet(1.0))
    tokens, kernels = sample_sequences(source, 3, 20_000, generator=_gen(7), return_kernels=True,
                                       dtype=torch.float64)
    log_k = torch.log(kernels)                                            # (n, d, d)
    for i in range(3):
        counts = _transition_counts(tokens[i: i + 1], (1,), 3)            # (3, 3)
        _assert_frequencies(counts, kernels[i].numpy(), f"sequence {i}")
        loglik = (torch.as_tensor(counts) * log_k).sum((-1, -2))          # (n,)
        assert int(loglik.argmax()) == i, f"sequence {i}: log-likelihoods {loglik.tolist()}"


def test_stationary_and_burn_in_starts_follow_the_stationary_law():
    n = 20_000
    uniform = sample_sequences(BIGRAM, n, 5, generator=_gen(8))
    burned = sample_sequences(BIGRAM, n, 5, generator=_gen(8), burn_in=60)
    stationary = sample_sequences(BIGRAM, n, 5, generator=_gen(8), start="stationary")
    assert burned.shape == stationary.shape == (n, 5)
    for label, tokens, predicted in [("uniform start", uniform, 0.5),
                                     ("burn-in 60", burned, BIGRAM_STATIONARY_0),
                                     ("stationary start", stationary, BIGRAM_STATIONARY_0)]:
        measured = float((tokens[:, 0] == 0).double().mean())
        sd = math.sqrt(predicted * (1 - predicted) / n)
        assert abs(measured - predicted) <= FREQ_SDS * sd, (
            f"{label}: P(x_1 = 0) measured {measured:.4f}, predicted {predicted:.4f}")


# ------------------------------------------------------------------------- Gamma and Dirichlet
@pytest.mark.parametrize("alpha", [0.05, 0.5, 3.0])
def test_gamma_variates_follow_the_gamma_law(alpha):
    log_g = _log_gamma(alpha, (50_000,), generator=_gen(9), device=torch.device("cpu"))
    assert bool(torch.isfinite(log_g).all()), "non-finite log-gamma"
    result = stats.kstest(log_g.exp().numpy(), "gamma", args=(alpha,))
    assert result.pvalue >= KS_MIN_PVALUE, (
        f"Gamma({alpha}): KS statistic {result.statistic:.4f}, p = {result.pvalue:.2g}")


@pytest.mark.parametrize("alpha", [0.05, 0.1, 1.0])
def test_dirichlet_rows_mean_and_variance(alpha):
    d = 3
    rows = draw_kernels(Source(d, (1,), Dirichlet(alpha)), 20_000,
                        generator=_gen(10)).reshape(-1, d).numpy()        # (N, d)
    assert np.all(np.isfinite(rows)) and np.all(rows >= 0), f"alpha={alpha}: NaN or negative"
    worst = np.max(np.abs(rows.sum(-1) - 1.0))
    assert worst <= ROW_SUM_ATOL, f"alpha={alpha}: rows sum to 1 ± {worst}"
    var_exact = (1 / d) * (1 - 1 / d) / (d * alpha + 1)
    mean, var = rows.mean(0), rows.var(0, ddof=1)
    se_mean = math.sqrt(var_exact / len(rows))
    se_var = np.sqrt(np.mean((rows - mean) ** 4, 0) - var**2) / math.sqrt(len(rows))
    assert np.all(np.abs(mean - 1 / d) <= MOMENT_SDS * se_mean), (
        f"alpha={alpha}: mean {mean}, predicted {1 / d:.4f} ± {MOMENT_SDS * se_mean:.2g}")
    assert np.all(np.abs(var - var_exact) <= MOMENT_SDS * se_var), (
        f"alpha={alpha}: variance {var}, predicted {var_exact:.5f} ± {MOMENT_SDS}·{se_var}")


def test_tiny_alpha_rows_do_not_underflow():
    """α = 0.05 in d = 8: Gamma(α) itself underflows float64 often, the log-space rows never do."""
    rows = draw_kernels(Source(8, (1, 2), Dirichlet(0.05)), 2000, generator=_gen(11))
    assert not bool(torch.isnan(rows).any()), "NaN entries"
    worst = float((rows.sum(-1) - 1.0).abs().max())
    assert worst <= ROW_SUM_ATOL, f"rows sum to 1 ± {worst}"
    assert float(rows.max(-1).values.mean()) > 0.7, "alpha = 0.05 rows should be near one-hot"


def test_mixture_kernels_structure():
    """Constant along unused parent axes; Cov(π(0|z1,z2), π(0|z1,z2')) = w_1²·Var_Dir(α)."""
    only_first = Source(3, (1, 2), Mixture((MixtureComponent((1,), 1.0, 0.1),)))
    k = draw_kernels(only_first, 50, generator=_gen(12))                  # (n, z1, z2, e)
    assert float((k - k[:, :, :1]).abs().max()) == 0.0, "varies along the unused offset-2 axis"
    n = 20_000
    k = draw_kernels(MIXTURE, n, generator=_gen(13))[..., 0].numpy()      # (n, z1, z2)
    var_dir = (1 / 3) * (2 / 3) / (3 * 0.1 + 1)
    for (a, b), predicted in [(((0, 0), (0, 1)), 0.49 * var_dir), (((0, 0), (1, 0)), 0.0),
                              (((0, 0), (0, 0)), (0.49 + 0.09) * var_dir)]:
        prod = (k[:, a[0], a[1]] - 1 / 3) * (k[:, b[0], b[1]] - 1 / 3)    # (n,)
        cov, se = prod.mean(), prod.std() / math.sqrt(n)
        assert abs(cov - predicted) <= MOMENT_SDS * se, (
            f"Cov(π(0|{a}), π(0|{b})) = {cov:.5f}, predicted {predicted:.5f} ± {MOMENT_SDS * se:.2g}")


# -------------------------------------------------------------------------------- determinism
def test_same_seed_same_tensor_different_seed_different():
    a = sample_sequences(PAPER_SOURCE, 64, 50, generator=_gen(21))
    b = sample_sequences(PAPER_SOURCE, 64, 50, generator=_gen(21))
    c = sample_sequences(PAPER_SOURCE, 64, 50, generator=_gen(22))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_tokens_do_not_depend_on_kernel_dtype_and_kernels_come_first():
    t32, k32 = sample_sequences(MIXTURE, 16, 20, generator=_gen(23), return_kernels=True)
    t64, k64 = sample_sequences(MIXTURE, 16, 20, generator=_gen(23), return_kernels=True,
                                dtype=torch.float64)
    assert torch.equal(t32, t64)
    assert torch.equal(k64, draw_kernels(MIXTURE, 16, generator=_gen(23)))
    assert torch.equal(k32, k64.float())


# ------------------------------------------------------------------------------- split_context
def test_split_context():
    tokens = sample_sequences(PAPER_SOURCE, 5, 101, generator=_gen(24))
    context, target = split_context(tokens)
    assert context.shape == (5, 100) and target.shape == (5,)
    assert torch.equal(context, tokens[:, :100]) and torch.equal(target, tokens[:, 100])


@pytest.mark.parametrize("bad, expected, received", [
    (torch.zeros(5, dtype=torch.int64), "an integer tensor of shape (n, L+1)", "torch.Size([5])"),
    (torch.zeros(2, 3), "an integer tensor of shape (n, L+1)", "torch.Size([2, 3])"),
    (torch.zeros(2, 1, dtype=torch.int64), "L + 1 >= 2 columns", "1"),
    (np.zeros((2, 3), dtype=np.int64), "an integer tensor of shape (n, L+1)", "(2, 3)"),
])
def test_split_context_rejects_bad_input(bad, expected, received):
    with pytest.raises(InductionHeadsError, match=rf"expected {re.escape(expected)}.*"
                                                  rf"received {re.escape(received)}"):
        split_context(bad)


# --------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("kwargs, expected, received", [
    ({"n": 0}, "an integer >= 1", "0"),
    ({"n": 2.0}, "an integer >= 1", "2.0"),
    ({"n": True}, "an integer >= 1", "True"),
    ({"length": 2}, "an integer T > r = max(parents) = 2", "2"),
    ({"length": 10.0}, "an integer T > r", "10.0"),
    ({"start": "burn_in"}, "one of ('uniform', 'stationary')", "'burn_in'"),
    ({"burn_in": -1}, "an integer >= 0", "-1"),
    ({"generator": np.random.default_rng(0)}, "a torch.Generator", "'Generator'"),
    ({"generator": 0}, "a torch.Generator", "'int'"),
    ({"device": "cuda:0" if torch.cuda.is_available() else "cuda"},
     "a generator on the sampling device cuda" if torch.cuda.is_available()
     else "'cpu' or 'auto' (CUDA is not available)", "'cuda'"),
    ({"device": "not-a-device"}, "'auto', 'cpu', 'cuda' or 'cuda:N'", "'not-a-device'"),
    ({"dtype": torch.int64}, "a floating torch.dtype", "torch.int64"),
    ({"source": "paper"}, "a theory.Source", "'str'"),
])
def test_bad_input_raises_naming_expected_and_received(kwargs, expected, received):
    args = {"source": PAPER_SOURCE, "n": 4, "length": 10, "generator": _gen(0)} | kwargs
    with pytest.raises(InductionHeadsError, match=rf"expected {re.escape(expected)}.*"
                                                  rf"received {re.escape(received)}"):
        sample_sequences(args.pop("source"), args.pop("n"), args.pop("length"), **args)


def test_numpy_integers_are_accepted_for_sizes():
    a = sample_sequences(PAPER_SOURCE, np.int64(6), np.int32(12), generator=_gen(30),
                         burn_in=np.int64(2))
    b = sample_sequences(PAPER_SOURCE, 6, 12, generator=_gen(30), burn_in=2)
    assert a.shape == (6, 12) and torch.equal(a, b)
    assert draw_kernels(PAPER_SOURCE, np.int64(2), generator=_gen(31)).shape == (2, 3, 3, 3)


def test_draw_kernels_rejects_bad_input():
    with pytest.raises(InductionHeadsError, match="n: expected an integer >= 1, received 0"):
        draw_kernels(PAPER_SOURCE, 0, generator=_gen(0))
    with pytest.raises(InductionHeadsError, match="generator: expected a torch.Generator"):
        draw_kernels(PAPER_SOURCE, 3, generator=None)


# ----------------------------------------------------------------------------------------- gpu
@pytest.mark.gpu
def test_cuda_sampler_is_seeded_and_has_the_first_transition_law():
    gen = torch.Generator(device="cuda")
    a, k = sample_sequences(MIXTURE, 40_000, 3, generator=gen.manual_seed(0), device="cuda",
                            return_kernels=True)
    b = sample_sequences(MIXTURE, 40_000, 3, generator=gen.manual_seed(0), device="cuda")
    assert a.device.type == "cuda" and k.device.type == "cuda" and torch.equal(a, b)
    counts = _transition_counts(a.cpu(), MIXTURE.parents, 3)
    _assert_frequencies(counts, np.full((9, 3), 1 / 3), "cuda mixture first transition")
