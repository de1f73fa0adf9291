"""Bayes over per-sequence structures (Switching and FiniteMixture priors) and the oracle
structure: against brute-force summation, against importance sampling over the prior, the
reductions to the closed forms of one structure, and the posterior's concentration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from theory.errors import InductionHeadsError
from theory.predictors.bayes import (
    bayes_predict_importance,
    bayes_predict_prior,
    bayes_predict_prior_positions,
    mixture_bayes_smc,
    needs_monte_carlo,
)
from theory.predictors.positional import bayes_predict_positions
from theory.predictors.reference import oracle_predict
from theory.predictors.structures import (
    bayes_predict_structures,
    oracle_structure_predict,
    oracle_structure_predict_positions,
    structure_posterior,
)
from theory.sizes import MEMORY_LIMIT_ENV
from theory.sources.priors import (
    Dirichlet,
    FiniteMixture,
    Fixed,
    Mixture,
    MixtureComponent,
    Switching,
    SwitchingComponent,
    structure_weights,
)
from theory.sources.sequences import sample_sequences_np
from theory.sources.spec import Source

EXACT_ATOL = 1e-12
"""Two exact computations of the same posterior or predictive (Gamma functions against running
sums of logs, or the same counts by two paths): float64 round-off of log-evidences of order 10
to 100, a few 1e-14."""

SUM_ATOL = 1e-12
"""Rows are convex combinations of normalised rows: off from 1 by a few ulps."""

SE_FLOOR = 1e-9
"""Importance-sampling entries with (almost) no spread have an SE near 0; z-scores divide by at
least this."""

RMS_Z_MAX = 1.5
"""Root mean square of (exact - importance sampling) / SE over all entries: 1 when the SE is
right; the delta-method SE of a self-normalised estimate is itself noisy at ESS of a few
hundred, a bias of the size worth catching gives several."""

OUTSIDE_3SE_SHARE = 0.02
"""Share of entries allowed past 3 SE: 0.27 % for a normal error; a margin for the SE's own
noise, far below what a wrong posterior gives."""

MIN_ESS = 100
"""The importance-sampling SE is meaningful only for an effective sample size this large."""

Z = 3.0
"""A decision counts past 3 standard errors (the house rule)."""

SWITCH = Source(3, (1, 2), Switching((
    SwitchingComponent((1,), 0.4, alpha=0.5),
    SwitchingComponent((2,), 0.35, alpha=0.2),
    SwitchingComponent((1, 2), 0.25, kernel=np.array(
        [[[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]],
         [[0.2, 0.5, 0.3], [0.6, 0.2, 0.2], [0.1, 0.8, 0.1]],
         [[0.4, 0.4, 0.2], [0.05, 0.05, 0.9], [0.5, 0.25, 0.25]]])),
)))
"""Dirichlet and fixed structures on different parent sets, one of them below r = 2."""

FINITE = FiniteMixture.draw(3, 0.7, seed=5, vocab_size=2, order=2, weights=(0.5, 0.3, 0.2))
CHAINS = Source(2, (1, 2), FINITE)

LAGS = Source(3, (1, 2, 3), Switching(tuple(
    SwitchingComponent((lag,), 1 / 3, alpha=0.1) for lag in (1, 2, 3))))
"""Selective lags: each sequence is a first-order chain at lag 1, 2 or 3."""

MODERATE = Source(3, (1, 2), Switching((SwitchingComponent((1,), 0.5, alpha=1.0),
                                        SwitchingComponent((2,), 0.5, alpha=1.0))))


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------ brute force

def _structure_table(source: Source) -> list[tuple[tuple[int, ...], float | None, np.ndarray | None]]:
    prior = source.prior
    if isinstance(prior, Switching):
        return [(c.parents, c.alpha, c.kernel) for c in prior.components]
    return [(source.parents, None, k) for k in prior.kernels]


def _log_marginal(seq: list[int], parents: tuple[int, ...], alpha: float | None,
                  kernel: np.ndarray | None, r: int, d: int) -> float:
    """``log p_j(x_{r+1..T} | x_1..x_r)`` of one sequence by the Gamma-function closed form
    (Dirichlet rows) or the product of the kernel's entries."""
    if kernel is not None:
        return sum(math.log(kernel[tuple(seq[t - p] for p in parents) + (seq[t],)])
                   for t in range(r, len(seq)))
    counts: dict[tuple[int, ...], list[int]] = {}
    for t in range(r, len(seq)):  # 0-based t holds x_(t+1)
        counts.setdefault(tuple(seq[t - p] for p in parents), [0] * d)[seq[t]] += 1
    total = 0.0
    for row in counts.values():
        total += math.lgamma(d * alpha) - math.lgamma(sum(row) + d * alpha)
        total += sum(math.lgamma(c + alpha) - math.lgamma(alpha) for c in row)
    return total


def _brute(seq: list[int], source: Source) -> tuple[np.ndarray, np.ndarray]:
    """Posterior over structures ``(J,)`` and predictive of the next token ``(d,)`` by direct
    summation: ``p(e | x) ∝ Σ_j w_j p_j(x, e)``, each term a whole-sequence marginal."""
    d, r = source.vocab_size, source.max_parent
    weights = structure_weights(source.prior)
    table = _structure_table(source)
    joint = np.array([w * math.exp(_log_marginal(seq, *s, r, d))
                      for w, s in zip(weights, table)])  # (J,)
    nxt = np.array([sum(w * math.exp(_log_marginal(seq + [e], *s, r, d))
                        for w, s in zip(weights, table)) for e in range(d)])  # (d,)
    return joint / joint.sum(), nxt / nxt.sum()


@pytest.mark.parametrize(("source", "length"), [(SWITCH, 9), (CHAINS, 10)])
def test_posterior_and_predictive_equal_brute_force_summation_at_every_prefix(source, length):
    tokens = sample_sequences_np(source, 12, length, rng=_rng(0))
    post = structure_posterior(tokens, source)  # (n, T, J)
    rows = bayes_predict_prior_positions(tokens, source)  # (n, T, d)
    r = source.max_parent
    worst_post = worst_pred = worst_query = 0.0
    for i, seq in enumerate(tokens.tolist()):
        for l in range(r, length + 1):
            want_post, want_pred = _brute(seq[:l], source)
            worst_post = max(worst_post, float(np.abs(post[i, l - 1] - want_post).max()))
            worst_pred = max(worst_pred, float(np.abs(rows[i, l - 1] - want_pred).max()))
            query = bayes_predict_prior(tokens[i: i + 1, :l], source)[0]
            worst_query = max(worst_query, float(np.abs(query - want_pred).max()))
    assert worst_post <= EXACT_ATOL, f"posterior off brute force by {worst_post:.3g}"
    assert worst_pred <= EXACT_ATOL, f"per-position predictive off by {worst_pred:.3g}"
    assert worst_query <= EXACT_ATOL, f"query predictive off by {worst_query:.3g}"


@pytest.mark.parametrize("source", [MODERATE, CHAINS])
def test_exact_predictive_agrees_with_importance_sampling_over_the_prior(source):
    """Importance sampling draws whole kernels from the prior (structures included, through
    theory.sample_kernels) and weights them by the likelihood: a computation that shares
    nothing with the posterior over structures."""
    tokens = sample_sequences_np(source, 100, 12, rng=_rng(1))
    exact = bayes_predict_prior(tokens, source)
    im = bayes_predict_importance(tokens, source, samples=50_000, rng=_rng(2))
    assert im.ess.min() > MIN_ESS, f"importance sampling degenerated: ESS {im.ess.min():.0f}"
    z = (exact - im.probs) / np.maximum(im.se, SE_FLOOR)  # (n, d)
    rms = float(np.sqrt(np.mean(z ** 2)))
    outside = float(np.mean(np.abs(z) > Z))
    assert rms <= RMS_Z_MAX and outside <= OUTSIDE_3SE_SHARE, (
        f"RMS z {rms:.2f}, share past 3 SE {outside:.3f}, max |exact - IS| "
        f"{float(np.abs(exact - im.probs).max()):.4f}")


# ------------------------------------------------------------------------ reductions

def _close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert np.array_equal(np.isnan(got), np.isnan(want)), f"{what}: NaN rows differ"
    gap = float(np.nanmax(np.abs(got - want)))
    assert gap <= EXACT_ATOL, f"{what}: off the closed form by {gap:.3g}"


def test_one_dirichlet_component_equals_the_mixture_closed_form():
    single = Source(3, (1, 3), Switching((SwitchingComponent((1,), 1.0, alpha=0.4),)))
    closed = Source(3, (1, 3), Mixture((MixtureComponent((1,), 1.0, 0.4),)))
    tokens = sample_sequences_np(single, 40, 30, rng=_rng(3))
    _close(bayes_predict_prior(tokens, single), bayes_predict_prior(tokens, closed), "query")
    _close(bayes_predict_prior_positions(tokens, single),
           bayes_predict_prior_positions(tokens, closed), "positions")
    oracle = oracle_structure_predict(tokens, single, np.zeros(40, dtype=np.int64))
    _close(oracle, bayes_predict_prior(tokens, closed), "oracle structure")


@pytest.mark.parametrize("kind", ["switching", "finite"])
def test_one_fixed_kernel_equals_the_fixed_prior(kind):
    kernel = FINITE.kernels[0]
    prior = (Switching((SwitchingComponent((1, 2), 1.0, kernel=kernel),)) if kind == "switching"
             else FiniteMixture(kernel[None]))
    single, fixed = Source(2, (1, 2), prior), Source(2, (1, 2), Fixed(kernel))
    tokens = sample_sequences_np(single, 40, 30, rng=_rng(4))
    _close(bayes_predict_prior(tokens, single), bayes_predict_prior(tokens, fixed), "query")
    _close(bayes_predict_prior_positions(tokens, single),
           bayes_predict_prior_positions(tokens, fixed), "positions")
    _close(oracle_structure_predict_positions(tokens, single, np.zeros(40, dtype=np.int64)),
           bayes_predict_prior_positions(tokens, fixed), "oracle structure")


@pytest.mark.parametrize("source", [Source(3, (1, 2), Dirichlet(0.3)),
                                    Source(3, (2,), Mixture((MixtureComponent((2,), 1.0, 0.2),)))])
def test_oracle_structure_of_one_structure_is_bayes(source):
    tokens = sample_sequences_np(source, 30, 25, rng=_rng(5))
    zeros = np.zeros(30, dtype=np.int64)
    _close(oracle_structure_predict(tokens, source, zeros), bayes_predict_prior(tokens, source),
           "query")
    _close(oracle_structure_predict_positions(tokens, source, zeros),
           bayes_predict_prior_positions(tokens, source), "positions")
    assert np.array_equal(structure_posterior(tokens, source), np.ones((30, 25, 1)))


# ------------------------------------------------------------------------ structure of the output

@pytest.mark.parametrize("source", [SWITCH, CHAINS, LAGS])
def test_query_row_is_the_last_row_and_rows_are_distributions(source):
    tokens = sample_sequences_np(source, 200, 40, rng=_rng(6))
    assert not needs_monte_carlo(source), "a per-sequence structure is exact, no Monte Carlo"
    last = bayes_predict_prior(tokens, source)
    rows = bayes_predict_prior_positions(tokens, source)
    r = source.max_parent
    assert np.isnan(rows[:, : r - 1]).all() and not np.isnan(rows[:, r - 1:]).any()
    _close(rows[:, -1], last, "last row against the query")
    post = structure_posterior(tokens, source)
    for what, probs in (("predictive", rows[:, r - 1:]), ("posterior", post)):
        worst = float(np.abs(probs.sum(axis=-1) - 1).max())
        assert worst <= SUM_ATOL and probs.min() >= 0, f"{what} row sums off by {worst:.3g}"
    prior = structure_weights(source.prior)
    gap = float(np.abs(post[:, :r] - prior).max())
    assert gap <= SUM_ATOL, f"rows l <= r must be the prior: off by {gap:.3g}"


def test_oracle_structure_predicts_with_the_sequences_own_structure():
    tokens, kernels, labels = sample_sequences_np(CHAINS, 50, 20, rng=_rng(7),
                                                  return_kernels=True, return_structures=True)
    _close(oracle_structure_predict(tokens, CHAINS, labels),
           oracle_predict(tokens, (1, 2), kernels), "finite mixture: the chain's kernel")
    tokens, labels = sample_sequences_np(SWITCH, 60, 20, rng=_rng(8), return_structures=True)
    got = oracle_structure_predict_positions(tokens, SWITCH, labels)
    rows = np.arange(60)
    for j, comp in enumerate(SWITCH.prior.components):
        own = rows[labels == j]
        assert own.size > 0, f"structure {j} drawn by no sequence"
        if comp.kernel is not None:
            want = comp.kernel[tokens[own, 1:], tokens[own, :-1]]  # row l-1: π(· | x_l, x_(l-1))
            _close(got[own, 1:], want, f"structure {j}: its kernel")
        else:
            shift = 2 - comp.parents[-1]
            want = np.full((own.size, 20, 3), np.nan)
            want[:, shift:] = bayes_predict_positions(tokens[own, shift:], comp.parents,
                                                      comp.alpha, vocab_size=3)
            _close(got[own], want, f"structure {j}: the counts on its P_j")


def test_posterior_concentrates_on_the_true_lag():
    """Selective lags {1}, {2}, {3}: the MAP structure is right far more often than chance at
    L = 64, and more often than at L = 8 (paired on the same sequences, past 3 SE)."""
    tokens, labels = sample_sequences_np(LAGS, 1000, 64, rng=_rng(9), return_structures=True)
    post = structure_posterior(tokens, LAGS)  # (n, 64, 3)
    right = {l: (post[:, l - 1].argmax(axis=1) == labels).astype(float) for l in (8, 64)}
    n = len(labels)
    acc, se = right[64].mean(), right[64].std(ddof=1) / math.sqrt(n)
    assert acc - 1 / 3 > Z * se, f"MAP accuracy at L=64: {acc:.3f} ± {se:.3f}"
    gain = right[64] - right[8]
    gain_se = gain.std(ddof=1) / math.sqrt(n)
    assert gain.mean() > Z * gain_se, (
        f"accuracy L=8 {right[8].mean():.3f}, L=64 {acc:.3f}, gain {gain.mean():.3f} "
        f"± {gain_se:.3f}")
    truth = post[np.arange(n), :, labels]  # (n, 64) posterior of the true lag
    rise = truth[:, 63] - truth[:, 7]
    assert rise.mean() > Z * rise.std(ddof=1) / math.sqrt(n), (
        f"posterior of the true lag: {truth[:, 7].mean():.3f} at L=8, {truth[:, 63].mean():.3f} "
        "at L=64")


def test_requests_over_the_memory_limit_are_refused_before_allocating(monkeypatch):
    tokens = sample_sequences_np(SWITCH, 4, 10, rng=_rng(11))
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "1e-6")  # about 1 KiB: below any of these requests
    for call in (lambda: structure_posterior(tokens, SWITCH),
                 lambda: bayes_predict_prior(tokens, SWITCH),
                 lambda: oracle_structure_predict_positions(tokens, SWITCH, np.zeros(4, np.int64))):
        with pytest.raises(InductionHeadsError, match="memory limit"):
            call()


def test_bad_inputs_are_refused():
    tokens = sample_sequences_np(SWITCH, 4, 10, rng=_rng(10))
    labels = np.zeros(4, dtype=np.int64)
    blended = Source(3, (1, 2), Mixture((MixtureComponent((1,), 0.5, 0.3),
                                         MixtureComponent((2,), 0.5, 0.3))))
    cases = [
        (lambda: structure_posterior(tokens[:, :1], SWITCH), "at least r"),
        (lambda: bayes_predict_prior(tokens + 3, SWITCH), "tokens in"),
        (lambda: structure_posterior(tokens.astype(float), SWITCH), "integer"),
        (lambda: oracle_structure_predict(tokens, SWITCH, labels[:3]), "4 entries"),
        (lambda: oracle_structure_predict(tokens, SWITCH, labels + 3), "indices in 0..2"),
        (lambda: oracle_structure_predict(tokens, SWITCH, labels.astype(float)), "integer"),
        (lambda: oracle_structure_predict(tokens, blended, labels), "closed-form"),
        (lambda: bayes_predict_structures(tokens, blended), "closed-form"),
        (lambda: structure_posterior(tokens, "switching"), "Source"),
        (lambda: mixture_bayes_smc(tokens, SWITCH, rng=_rng(0)), "Mixture prior"),
    ]
    for call, match in cases:
        with pytest.raises(InductionHeadsError, match=match):
            call()
