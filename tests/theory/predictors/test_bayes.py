"""The Bayes predictive of every prior: closed forms where they exist, the mixture's particle filter
against exact enumeration and importance sampling, the start-token conditioning, and a sanity
check that it predicts mixture sequences better than the induction heads."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import gammaln

from theory.errors import InductionHeadsError
from theory.predictors.bayes import (
    bayes_predict_importance,
    bayes_predict_prior,
    bayes_predict_prior_positions,
    mixture_bayes_smc,
    needs_monte_carlo,
)
from theory.predictors.positional import (
    bayes_predict_positions,
    gih_from_counts,
    match_counts,
    oracle_predict_positions,
    unigram_predict_positions,
)
from theory.predictors.reference import LOSS_FLOOR, bayes_predict, oracle_predict, per_sequence_loss
from theory.sources.priors import Dirichlet, Fixed, Mixture, MixtureComponent
from theory.sources.sequences import sample_sequences_np
from theory.sources.spec import Source

CLOSED_FORM_ATOL = 1e-12
"""The same add-α ratio computed by two count paths: float64 round-off only."""

SUM_ATOL = 1e-12
"""Rows are mixtures of normalised rows: off from 1 by a few ulps."""

SE_FLOOR = 1e-9
"""Entries a filter determines exactly (every particle agrees) have a standard error ~1e-17,
below the round-off between two exact computations; z-scores divide by at least this."""

RMS_Z_MAX = 1.5
"""Root mean square of (estimate - reference) / SE over all entries: 1 when the SE is right,
up to ~1.1 for 16-group SEs (a t distribution with 15 degrees of freedom); a biased estimator
of the size the tests could miss gives several."""

SIGNIFICANT_Z = 10.0
"""A mean |gap| / SE above this is a gap no Monte Carlo error explains."""

SHORT_OVER_LONG = 4.0
"""The start tokens carry O(1) information about the kernel against O(L) from the transitions:
the conditional predictive's gap to the full posterior must shrink at least this much from
L = 4 to L = 60."""

LONG_STATIONARY_TV = 0.03
"""Mean TV between the conditional predictive and the full posterior at L = 60 under the
stationary start (measured 0.006 and 0.010): a usable reference on long contexts."""

PARTICLE_TV = 0.02
"""Mean TV between the default particle count and 16 times as many at L = 100 on the weak-parent
mixture (measured 0.008 on 300 sequences; the 16x estimate carries its own error)."""

PARTICLE_LOSS_ATOL = 0.005
"""Allowed mean loss gap (nats) between the default and 16x particles beyond 4 SE: a tenth of
the gap between the Bayes predictive and the best GIH on that source."""

FIRST_SCORED = 20
"""First position the loss comparison scores: every predictor has seen ~18 transitions."""

WEAK = Source(3, (1, 2), Mixture((MixtureComponent((1,), 0.7, 0.1),
                                  MixtureComponent((1, 2), 0.3, 0.1))))
THREE = Source(3, (1, 2), Mixture((MixtureComponent((1,), 0.5, 0.3),
                                   MixtureComponent((2,), 0.3, 0.3),
                                   MixtureComponent((1, 2), 0.2, 0.5))))
BINARY = Source(2, (1, 2), Mixture((MixtureComponent((1,), 0.7, 0.5),
                                    MixtureComponent((1, 2), 0.3, 0.5))))
"""A binary mixture with moderate α: its chains are primitive, so it has a stationary start."""


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _query_rows(seq: np.ndarray, parents: tuple[int, ...], r: int, d: int) -> list[int]:
    """Flat index of ``(x_{t-p})_{p∈parents}`` for ``t = r+1..L+1`` of one sequence ``x_1..x_L``."""
    rows = []
    for t in range(r + 1, len(seq) + 2):
        row = 0
        for p in parents:
            row = row * d + int(seq[t - p - 1])
        rows.append(row)
    return rows


def _exact_mixture(ctx: np.ndarray, source: Source) -> np.ndarray:
    """Exact posterior predictive by enumerating the J^(L-r) component assignments."""
    comps, d, r = source.prior.components, source.vocab_size, source.max_parent
    n, length = ctx.shape
    m = length - r
    labels = np.array(list(itertools.product(range(len(comps)), repeat=m)),
                      dtype=np.int64).reshape(len(comps) ** m, m)  # (A, m)
    log_w = np.log([c.weight for c in comps])
    out = np.zeros((n, d))
    for i in range(n):
        log_joint = log_w[labels].sum(axis=1)  # (A,)
        preds = np.zeros((len(labels), d))  # (A, d)
        for j, comp in enumerate(comps):
            rows = _query_rows(ctx[i], comp.parents, r, d)  # m + 1 rows
            table = np.zeros((len(labels), d ** len(comp.parents), d))  # (A, R_j, d)
            for t in range(m):
                table[:, rows[t], ctx[i, r + t]] += labels[:, t] == j
            a = comp.alpha
            log_joint += (gammaln(d * a) - gammaln(d * a + table.sum(axis=-1))
                          + (gammaln(a + table) - gammaln(a)).sum(axis=-1)).sum(axis=-1)
            query = table[:, rows[-1]]  # (A, d)
            preds += comp.weight * (query + a) / (query.sum(axis=-1, keepdims=True) + d * a)
        post = np.exp(log_joint - log_joint.max())
        out[i] = post @ preds / post.sum()
    return out


def _rms_z(estimate: np.ndarray, reference: np.ndarray, se: np.ndarray) -> float:
    return float(np.sqrt(np.mean(((estimate - reference) / np.maximum(se, SE_FLOOR)) ** 2)))


def test_one_component_mixture_equals_the_dirichlet_closed_form():
    tokens = sample_sequences_np(WEAK, 50, 40, rng=_rng(0))
    for prior in (Dirichlet(0.1), Mixture((MixtureComponent((1, 2), 1.0, 0.1),))):
        source = Source(3, (1, 2), prior)
        last = bayes_predict_prior(tokens, source)
        gap = float(np.abs(last - bayes_predict(tokens, (1, 2), 0.1, vocab_size=3)).max())
        assert gap <= CLOSED_FORM_ATOL, f"{prior}: last position off by {gap}"
        rows = bayes_predict_prior_positions(tokens, source)
        ref = bayes_predict_positions(tokens, (1, 2), 0.1, vocab_size=3)
        assert np.array_equal(np.isnan(rows), np.isnan(ref))
        gap = float(np.nanmax(np.abs(rows - ref)))
        assert gap <= CLOSED_FORM_ATOL, f"{prior}: per-position rows off by {gap}"


def test_one_component_on_fewer_parents_counts_the_transitions_after_r():
    source = Source(3, (1, 3), Mixture((MixtureComponent((1,), 1.0, 0.4),)))
    tokens = sample_sequences_np(source, 30, 25, rng=_rng(1))
    got = bayes_predict_prior(tokens, source)
    n, length = tokens.shape
    want = np.zeros((n, 3))
    for i in range(n):  # x_t for t = 4..L (r = 3) whose x_(t-1) equals the query's x_L
        hits = [tokens[i, t - 1] for t in range(4, length + 1)
                if tokens[i, t - 2] == tokens[i, length - 1]]
        counts = np.bincount(np.array(hits, dtype=np.int64), minlength=3)
        want[i] = (counts + 0.4) / (counts.sum() + 3 * 0.4)
    gap = float(np.abs(got - want).max())
    assert gap <= CLOSED_FORM_ATOL, f"hand count vs closed form: {gap}"
    rows = bayes_predict_prior_positions(tokens, source)
    assert np.isnan(rows[:, :2]).all() and not np.isnan(rows[:, 2:]).any()
    prefix = max(float(np.abs(rows[:, l - 1] - bayes_predict_prior(tokens[:, :l], source)).max())
                 for l in range(3, length + 1))
    assert prefix <= CLOSED_FORM_ATOL, f"per-position rows vs prefixes: {prefix}"


def test_particle_filter_with_one_component_is_the_closed_form():
    source = Source(3, (1, 2), Mixture((MixtureComponent((1,), 1.0, 0.2),)))
    tokens = sample_sequences_np(source, 20, 30, rng=_rng(2))
    smc = mixture_bayes_smc(tokens, source, rng=_rng(3), particles=4, positions=True).probs
    exact = bayes_predict_prior_positions(tokens, source)
    gap = float(np.nanmax(np.abs(smc - exact)))
    assert gap <= CLOSED_FORM_ATOL, f"one-component filter vs closed form: {gap}"


def test_fixed_prior_predicts_with_its_kernel():
    kernel = np.array([[0.9, 0.1], [0.2, 0.8]])
    source = Source(2, (1,), Fixed(kernel))
    tokens = sample_sequences_np(source, 10, 12, rng=_rng(4))
    oracle = oracle_predict(tokens, (1,), np.broadcast_to(kernel, (10, 2, 2)))
    assert np.array_equal(bayes_predict_prior(tokens, source), oracle)
    assert np.array_equal(bayes_predict_prior_positions(tokens, source)[:, :, 0],
                          kernel[tokens, 0])
    im = bayes_predict_importance(tokens, source, samples=5, rng=_rng(5))
    assert np.allclose(im.probs, oracle, rtol=0, atol=CLOSED_FORM_ATOL)
    assert np.allclose(im.ess, 5.0), "every draw is the kernel: all weights equal"


@pytest.mark.parametrize("source", [Source(3, (1, 2), Dirichlet(0.1)), WEAK, THREE,
                                    Source(2, (1,), Fixed(np.array([[0.9, 0.1], [0.2, 0.8]])))])
def test_rows_sum_to_one_and_rows_before_r_are_nan(source):
    tokens = sample_sequences_np(source, 20, 15, rng=_rng(6))
    last = bayes_predict_prior(tokens, source, rng=_rng(7), particles=32)
    rows = bayes_predict_prior_positions(tokens, source, rng=_rng(7), particles=32)
    r = source.max_parent
    assert np.isnan(rows[:, : r - 1]).all() and not np.isnan(rows[:, r - 1:]).any()
    for probs in (last, rows[:, r - 1:]):
        worst = float(np.abs(probs.sum(axis=-1) - 1).max())
        assert worst <= SUM_ATOL and probs.min() >= 0, f"row sums off by {worst}"
    assert needs_monte_carlo(source) == (source in (WEAK, THREE))
    if needs_monte_carlo(source):  # the last row of one filter pass is the last position
        assert np.array_equal(rows[:, -1], last)


@pytest.mark.parametrize(("source", "length"), [(WEAK, 12), (THREE, 8)])
def test_particle_filter_matches_exact_enumeration_at_every_prefix(source, length):
    tokens = sample_sequences_np(source, 30, length, rng=_rng(8))
    smc = mixture_bayes_smc(tokens, source, rng=_rng(9), particles=256, groups=16,
                            positions=True)
    r = source.max_parent
    for l in range(r, length + 1):
        exact = _exact_mixture(tokens[:, :l], source)
        z = _rms_z(smc.probs[:, l - 1], exact, smc.se[:, l - 1])
        assert z <= RMS_Z_MAX, (
            f"l={l}: RMS z {z:.2f}, max |filter - exact| "
            f"{float(np.abs(smc.probs[:, l - 1] - exact).max()):.4f}")


@pytest.mark.parametrize("length", [4, 40])
@pytest.mark.parametrize("source", [Source(2, (1,), Dirichlet(1.0)), BINARY])
def test_uniform_start_predictive_equals_the_full_posterior(source, length):
    """Under the uniform start the conditional predictive is exact: importance sampling with
    the full likelihood agrees within its standard error, on short and long contexts."""
    tokens = sample_sequences_np(source, 100, length, rng=_rng(10))
    full = bayes_predict_importance(tokens, source, samples=50_000, rng=_rng(11))
    if needs_monte_carlo(source):
        est = mixture_bayes_smc(tokens, source, rng=_rng(12), particles=256, groups=16)
        probs, se = est.probs, np.hypot(est.se, full.se)
    else:
        probs, se = bayes_predict_prior(tokens, source), full.se
    assert full.ess.min() > 100, f"importance sampling degenerated: ESS {full.ess.min():.0f}"
    z = _rms_z(probs, full.probs, se)
    assert z <= RMS_Z_MAX, f"L={length}: RMS z {z:.2f} against the full posterior"


@pytest.mark.parametrize("source", [Source(2, (1,), Dirichlet(1.0)), BINARY])
def test_stationary_start_conditioning_matters_on_short_contexts_only(source):
    """Under the stationary start the first r tokens carry the kernel's stationary law, which
    the conditional predictive ignores: measured against the full posterior, the gap is far
    beyond Monte Carlo error at L = 4 and shrinks to a small TV by L = 60."""
    tv, z = {}, {}
    for length in (4, 60):
        tokens = sample_sequences_np(source, 100, length, rng=_rng(13), start="stationary")
        full = bayes_predict_importance(tokens, source, samples=50_000, rng=_rng(14),
                                        start="stationary")
        probs = bayes_predict_prior(tokens, source, rng=_rng(15), particles=1024)
        gap = probs - full.probs  # (n, d)
        tv[length] = float(0.5 * np.abs(gap).sum(axis=1).mean())
        z[length] = float(np.mean(np.abs(gap) / np.maximum(full.se, SE_FLOOR)))
    assert z[4] > SIGNIFICANT_Z, f"L=4: mean |gap|/SE {z[4]:.1f}, TV {tv[4]:.4f}"
    assert tv[60] * SHORT_OVER_LONG < tv[4], f"TV at L=4 {tv[4]:.4f}, at L=60 {tv[60]:.4f}"
    assert tv[60] < LONG_STATIONARY_TV, f"TV at L=60 {tv[60]:.4f}"


def test_default_particles_are_close_to_sixteen_times_as_many():
    tokens = sample_sequences_np(WEAK, 60, 101, rng=_rng(16))
    ctx, y = tokens[:, :-1], tokens[:, -1]
    default = bayes_predict_prior(ctx, WEAK, rng=_rng(17))
    many = mixture_bayes_smc(ctx, WEAK, rng=_rng(18), particles=16 * 256).probs
    tv = float(0.5 * np.abs(default - many).sum(axis=1).mean())
    assert tv < PARTICLE_TV, f"mean TV(default, 16x particles) = {tv:.4f}"
    diff = per_sequence_loss(default, y) - per_sequence_loss(many, y)
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    assert abs(diff.mean()) <= 4 * se + PARTICLE_LOSS_ATOL, (
        f"loss gap {diff.mean():.4f} ± {se:.4f}")


def _position_losses(probs: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Per-sequence mean of ``-log ŷ_l(x_{l+1})`` over ``l = FIRST_SCORED..T-1``: ``(n,)``."""
    pick = np.take_along_axis(probs[:, FIRST_SCORED - 1:-1], tokens[:, FIRST_SCORED:, None],
                              axis=2)[..., 0]  # (n, T - FIRST_SCORED)
    return -np.log(np.maximum(pick, LOSS_FLOOR)).mean(axis=1)


def _fitted_gih_losses(train: np.ndarray, tokens: np.ndarray, head_set: tuple[int, ...]
                       ) -> np.ndarray:
    """The GIH at the temperature that minimises its per-position loss on ``train``."""
    matched, seen = match_counts(train, head_set, vocab_size=3)
    fit = minimize_scalar(
        lambda a: _position_losses(gih_from_counts(matched, seen, a), train).mean(),
        bounds=(0.0, 60.0), method="bounded")
    matched, seen = match_counts(tokens, head_set, vocab_size=3)
    return _position_losses(gih_from_counts(matched, seen, float(fit.x)), tokens)


def test_bayes_predicts_mixture_sequences_better_than_the_induction_heads():
    """On the weak-parent mixture, at every position l = 20..100, paired on the same sequences:
    Bayes beats the GIH of either set at its fitted temperature and the unigram, and the
    oracle beats Bayes."""
    train = sample_sequences_np(WEAK, 500, 101, rng=_rng(19))
    tokens, kernels = sample_sequences_np(WEAK, 500, 101, rng=_rng(20), return_kernels=True)
    bayes = _position_losses(bayes_predict_prior_positions(tokens, WEAK, rng=_rng(21)), tokens)
    others = {f"gih{s}": _fitted_gih_losses(train, tokens, s) for s in ((1,), (1, 2))}
    others["unigram"] = _position_losses(unigram_predict_positions(tokens, vocab_size=3), tokens)
    oracle = _position_losses(oracle_predict_positions(tokens, (1, 2), kernels), tokens)
    for name, worse, better in [(k, v, bayes) for k, v in others.items()] + [
            ("Bayes vs oracle", bayes, oracle)]:
        diff = worse - better  # (n,)
        se = diff.std(ddof=1) / np.sqrt(len(diff))
        assert diff.mean() > 3 * se, (
            f"{name}: {worse.mean():.4f} vs {better.mean():.4f}, gap {diff.mean():.4f} "
            f"± {se:.4f}")


def test_bad_inputs_are_refused():
    tokens = sample_sequences_np(WEAK, 4, 10, rng=_rng(22))
    with pytest.raises(InductionHeadsError, match="rng"):
        bayes_predict_prior(tokens, WEAK)
    with pytest.raises(InductionHeadsError, match="at least r"):
        bayes_predict_prior(tokens[:, :1], WEAK, rng=_rng(0))
    with pytest.raises(InductionHeadsError, match="Mixture prior"):
        mixture_bayes_smc(tokens, Source(3, (1, 2), Dirichlet(0.1)), rng=_rng(0))
    with pytest.raises(InductionHeadsError, match="particles"):
        mixture_bayes_smc(tokens, WEAK, rng=_rng(0), particles=0)
    with pytest.raises(InductionHeadsError, match="start"):
        bayes_predict_importance(tokens, WEAK, samples=10, rng=_rng(0), start="burn")
    with pytest.raises(InductionHeadsError, match="tokens in"):
        bayes_predict_prior(tokens + 3, WEAK, rng=_rng(0))
