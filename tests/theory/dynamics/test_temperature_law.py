"""The law of the finite-L optimal temperature a*(L) and the prediction of the trained a.

The law (:func:`theory.dynamics.temperature.optimal_temperature_law`) is computed from the source's
kernels and stationary laws only; it is checked against the a*(L) measured on sampled
sequences (:func:`theory.dynamics.temperature.expected_optimal_temperature`), on the paper's source and
on a fast-mixing one, and its slope in L against log 2 per doubling. The stage-3 prediction
(:func:`theory.dynamics.temperature.predict_trained_temperature`) is checked against torch's optimizers
on the GIH loss and against the temperature a stage-wise training run reaches.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar
from scipy.stats import poisson

from numerics import InductionHeadModel
from numerics.training import StageConfig, TrainConfig, default_config, train
from theory.dynamics.temperature import (
    PSEUDO_COUNT_RANGE,
    count_loss_and_grad,
    expected_optimal_temperature,
    gih_counts,
    law_objective,
    optimal_temperature_law,
    predict_trained_temperature,
)
from theory.errors import InductionHeadsError
from theory.predictors.reference import (
    LOSS_FLOOR,
    context_similarity,
    gih_objective,
    optimal_temperature,
)
from theory.sources.priors import Dirichlet
from theory.sources.sequences import sample_sequences_np
from theory.sources.spec import PAPER_SOURCE, ModelSpec, Source

FAST_MIXING = Source(3, (1, 2), Dirichlet(1.0))
"""The second source of the law's check: uniform Dirichlet rows, S* = (1, 2) (G = 0.061 against
0.047 for (1,)); its best pseudo-count b* ≈ 3.1 is 9 times the paper source's 0.36."""

LENGTHS = (50, 100, 200, 400, 800)

COUNT_ATOL = 1e-12
"""Counts and gih_objective evaluate the same float64 expression in a different order."""

MINIMISER_ATOL = 1e-5
"""Two bounded-Brent searches (xatol 1e-6) on losses equal to 1e-16 end within a few xatol."""

SERIES_ATOL = 1e-10
"""Law objective (exact head, 12-term tail series) against plain Poisson sums: the series'
remainder is below 1e-9 of a term already O(c/N); the sums are cut where the mass is < 1e-17."""

BAYES_Z = 4.0
"""Standard errors allowed between the law's pseudo-count and dα (Monte Carlo over θ only)."""

LAW_MODEL_ATOL = 0.1
"""The law against the measured a*(L), beyond 3 standard errors: the law's Poisson match count
ignores the over-dispersion of visit counts and the sample's own unigram (law - measured with
these samples: -0.098 to -0.014 on the paper's source, -0.052 to +0.064 on FAST_MIXING)."""

LAW_Z = 3.0
"""Standard errors (measured and law combined) allowed on top of LAW_MODEL_ATOL."""

SLOPE_MODEL_ATOL = 0.03
"""Measured slope per doubling against log 2, beyond 3 standard errors: the offset a* - log L
still drifts by up to 0.06 over L = 50..800 in the law."""

LAW_SLOPE_ATOL = 0.015
"""Slope of the law per doubling over L = 50..12800 against log 2: its offset rises from 0.99 to
1.05 on the paper's source (b*(L) settling), 0.006 per doubling."""

TORCH_ATOL = 1e-12
"""numpy update against torch's SGD / Adam on the same float64 GIH loss: 40 steps of round-off
in two summation orders (measured 1.3e-15)."""

TRAINED_ATOL = 0.03
"""Trained a against the GIH prediction along stage 3: the trained copier puts 0.996-0.997, not 1,
on each offset of S*, the selector 0.99997 on S*, and the model runs in float32 (largest gap
along stage 3: 0.011 for SGD, 2e-4 for Adam, n = 1000, L = 60)."""


def _sample(source: Source, n: int, seq_len: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    tokens = sample_sequences_np(source, n, seq_len + 1, rng=np.random.default_rng(seed))
    return tokens[:, :-1], tokens[:, -1]  # (n, L), (n,)


def test_counts_reproduce_the_gih_objective() -> None:
    ctx, y = _sample(PAPER_SOURCE, 600, 60, 1)
    counts = gih_counts(ctx, y, (1, 2), vocab_size=3)  # (n, 4)
    objective = gih_objective(ctx, y, (1, 2), vocab_size=3)
    for a in (0.0, 0.7, 4.0, 12.0, 45.0):
        loss, grad = count_loss_and_grad(counts, a)
        want_loss, want_grad = objective(a)
        assert abs(loss.mean() - want_loss) <= COUNT_ATOL, (a, loss.mean(), want_loss)
        assert abs(grad.mean() - want_grad) <= COUNT_ATOL, (a, grad.mean(), want_grad)
    for i in range(20):  # per sequence, not only on average
        loss, grad = count_loss_and_grad(counts[i:i + 1], 3.0)
        want = gih_objective(ctx[i:i + 1], y[i:i + 1], (1, 2), vocab_size=3)(3.0)
        assert abs(loss[0] - want[0]) <= COUNT_ATOL and abs(grad[0] - want[1]) <= COUNT_ATOL


def test_measured_optimum_is_the_minimiser_of_the_drawn_sample() -> None:
    """One chunk: the estimator draws exactly the sample that _sample draws with the same seed."""
    measured = expected_optimal_temperature(PAPER_SOURCE, (1, 2), 80, sequences=3000,
                                            rng=np.random.default_rng(2))
    ctx, y = _sample(PAPER_SOURCE, 3000, 80, 2)
    want = optimal_temperature(ctx, y, (1, 2), vocab_size=3)
    assert abs(measured.a_star - want) <= MINIMISER_ATOL, (measured.a_star, want)
    assert 0 < measured.stderr < 0.5, measured


def test_law_objective_equals_plain_poisson_sums() -> None:
    rng = np.random.default_rng(3)
    mu = rng.dirichlet(np.ones(2), size=3)  # (K, Z) = (3, 2)
    theta = rng.dirichlet(np.full(3, 0.3), size=(3, 2))  # (K, Z, d)
    q = rng.dirichlet(np.ones(3), size=(3, 2))  # (K, Z, d)
    seq_len, max_offset = 900, 2
    objective = law_objective(mu, theta, q, seq_len=seq_len, max_offset=max_offset)
    mean_m = (seq_len - max_offset) * mu  # (K, Z)
    k = np.arange(3000)  # the means are at most 898: the mass beyond 3000 is < 1e-300

    def plain(a: float) -> np.ndarray:  # (K,)
        lam = math.exp(-a) * (seq_len - mean_m)  # (K, Z)
        hit = poisson.pmf(k, (mean_m[..., None] * theta)[..., None])  # (K, Z, d, k)
        e_hit = (hit * np.log(k + (lam[..., None] * q)[..., None])).sum(axis=-1)  # (K, Z, d)
        e_m = (poisson.pmf(k, mean_m[..., None]) * np.log(k + lam[..., None])).sum(axis=-1)
        return (mu * (e_m - (theta * e_hit).sum(axis=-1))).sum(axis=-1)

    base = math.log(seq_len)  # a = log L + x: b = e^{-x} within PSEUDO_COUNT_RANGE
    for x in (-2.0, 0.0, 1.5, 6.0):
        got = objective(base + x) - objective(base + 3.0)
        want = plain(base + x) - plain(base + 3.0)
        assert np.allclose(got, want, rtol=0, atol=SERIES_ATOL), (x, got, want)


@pytest.mark.parametrize("seq_len", [50, 400])
def test_uniform_unigram_gives_the_bayes_pseudo_count(seq_len: int) -> None:
    """With q uniform the GIH is add-λ/d smoothing and θ ~ Dir(α): its best λ is dα (Bayes)."""
    d, alpha, samples, mass = 3, 0.1, 20000, 0.4
    rng = np.random.default_rng(4)
    theta = np.maximum(rng.dirichlet(np.full(d, alpha), size=(samples, 1)), 1e-300)
    theta /= theta.sum(axis=-1, keepdims=True)  # (K, 1, d)
    mu, q = np.full((samples, 1), mass), np.full((samples, 1, d), 1.0 / d)
    objective = law_objective(mu, theta, q, seq_len=seq_len, max_offset=2)
    log_u = math.log(seq_len - (seq_len - 2) * mass)
    x = minimize_scalar(lambda v: objective(log_u - v).mean(), bounds=(-5.0, 2.0),
                        method="bounded", options={"xatol": 1e-7}).x  # x = log λ
    a, h = log_u - x, 1e-3
    grad = (objective(a + h) - objective(a - h)) / (2 * h)  # (K,)
    curvature = ((objective(a + h) - 2 * objective(a) + objective(a - h)) / h**2).mean()
    stderr = grad.std(ddof=1) / math.sqrt(samples) / curvature  # of log λ
    assert abs(x - math.log(d * alpha)) <= BAYES_Z * stderr, (
        f"L = {seq_len}: predicted λ* = dα = {d * alpha}, law's λ* = {math.exp(x):.4f} "
        f"(SE of log λ {stderr:.4f})")


@pytest.mark.slow
def test_law_slope_per_doubling_is_log_two() -> None:
    lengths = [50 * 2**j for j in range(9)]  # 50 .. 12800
    law = [optimal_temperature_law(PAPER_SOURCE, (1, 2), L, kernels=500,
                                   rng=np.random.default_rng(5)).a_star for L in lengths]
    slope = np.polyfit(np.log2(lengths), law, 1)[0]
    assert abs(slope - math.log(2)) <= LAW_SLOPE_ATOL, (
        f"predicted slope log 2 = {math.log(2):.4f}, law's {slope:.4f}: {np.round(law, 3)}")


@pytest.mark.thorough  # half a minute a source on one core
@pytest.mark.parametrize("source, sequences", [
    (PAPER_SOURCE, (60000, 100000, 100000, 120000, 150000)),
    (FAST_MIXING, (40000, 40000, 40000, 60000, 100000)),
], ids=["paper", "fast-mixing"])
def test_law_predicts_the_measured_optimum(source: Source, sequences: tuple[int, ...]) -> None:
    law = [optimal_temperature_law(source, (1, 2), L, kernels=2000,
                                   rng=np.random.default_rng(6)) for L in LENGTHS]
    measured = [expected_optimal_temperature(source, (1, 2), L, sequences=n,
                                             rng=np.random.default_rng(7 + L))
                for L, n in zip(LENGTHS, sequences)]
    for pred, meas in zip(law, measured):
        tol = LAW_MODEL_ATOL + LAW_Z * math.hypot(pred.stderr, meas.stderr)
        assert abs(pred.a_star - meas.a_star) <= tol, (
            f"L = {pred.seq_len}: law a* = {pred.a_star:.3f} ± {pred.stderr:.3f}, measured "
            f"{meas.a_star:.3f} ± {meas.stderr:.3f} (tolerance {tol:.3f})")
    x = np.log2(LENGTHS)
    values = np.array([m.a_star for m in measured])
    weights = 1 / np.array([m.stderr for m in measured]) ** 2
    (slope, _), cov = np.polyfit(x, values, 1, w=np.sqrt(weights), cov="unscaled")
    tol = SLOPE_MODEL_ATOL + LAW_Z * math.sqrt(cov[0, 0])
    assert abs(slope - math.log(2)) <= tol, (
        f"predicted slope log 2 = {math.log(2):.3f} per doubling, measured {slope:.3f} "
        f"(tolerance {tol:.3f}); a* = {np.round(values, 3)}")


def _torch_trajectory(ctx: np.ndarray, y: np.ndarray, a0: float, steps: int, make_opt
                      ) -> np.ndarray:
    """a along ``steps`` updates of a torch optimizer on the float64 GIH loss, (steps + 1,)."""
    sim = torch.from_numpy(context_similarity(ctx, (1, 2)))  # (n, L)
    onehot = torch.nn.functional.one_hot(torch.from_numpy(ctx), 3).double()  # (n, L, d)
    target = torch.from_numpy(y)  # (n,)
    a = torch.tensor(a0, dtype=torch.float64, requires_grad=True)
    opt = make_opt([a])
    out = [a0]
    for _ in range(steps):
        opt.zero_grad()
        probs = torch.einsum("nl,nld->nd", torch.softmax(a * sim, dim=1), onehot)  # (n, d)
        picked = probs[torch.arange(len(target)), target]  # (n,)
        (-torch.log(torch.clamp(picked, min=LOSS_FLOOR))).mean().backward()
        opt.step()
        out.append(float(a.detach()))
    return np.array(out)


@pytest.mark.parametrize("optimizer, lr, momentum", [
    ("sgd", 1.0, 0.0), ("sgd", 0.3, 0.9), ("adam", 0.05, 0.0)])
def test_numpy_iteration_is_the_torch_optimizer(optimizer: str, lr: float, momentum: float,
                                                one_thread) -> None:
    ctx, y = _sample(PAPER_SOURCE, 300, 40, 8)
    steps, a0 = 40, 0.01
    pred = predict_trained_temperature(ctx, y, (1, 2), vocab_size=3, a0=a0, lr=lr, steps=steps,
                                       optimizer=optimizer, momentum=momentum)
    if optimizer == "adam":
        def make_opt(p):
            return torch.optim.Adam(p, lr=lr)
    else:
        def make_opt(p):
            return torch.optim.SGD(p, lr=lr, momentum=momentum)
    want = _torch_trajectory(ctx, y, a0, steps, make_opt)
    assert np.max(np.abs(pred - want)) <= TORCH_ATOL, (pred[-3:], want[-3:])
    assert pred[-1] > a0 + 1.0, f"a barely moved: {pred[-1]}"


@pytest.mark.slow
@pytest.mark.parametrize("stage3", [
    default_config("stagewise").stages[2], StageConfig("classifier", ("a",), 0.03, 150, "adam")],
    ids=["default-sgd", "adam"])
def test_trained_temperature_follows_the_gih_iteration(stage3: StageConfig, one_thread) -> None:
    n, seq_len = 1000, 60
    stages = default_config("stagewise").stages[:2] + (stage3,)
    config = TrainConfig("stagewise", stages, n, seq_len, device="cpu")
    model = InductionHeadModel(ModelSpec(3, 3, 2), PAPER_SOURCE.vocab_size)
    result = train(model, PAPER_SOURCE, config, generator=torch.Generator().manual_seed(5),
                   progress=False)
    history, sample = result.history, result.sample.numpy()  # sample: (n, L+1)
    start = history.stage("copier")
    logged = history.stage("classifier")
    pred = predict_trained_temperature(
        sample[:, :-1], sample[:, -1], (1, 2), vocab_size=3, a0=float(start.a[-1]),
        lr=stage3.lr_of("a"), steps=stage3.steps, optimizer=stage3.optimizer,
        momentum=stage3.momentum)  # (steps + 1,)
    at = pred[logged.steps - start.steps[-1]]  # the prediction at the logged stage-3 steps
    gap = np.abs(logged.a - at)
    assert gap.max() <= TRAINED_ATOL, (
        f"predicted a = {np.round(at, 3)}, trained a = {np.round(logged.a, 3)}")
    a_star = optimal_temperature(sample[:, :-1], sample[:, -1], (1, 2), vocab_size=3)
    assert abs(pred[-1] - a_star) > 5 * TRAINED_ATOL, (
        f"stage 3 ended at a*(L) = {a_star:.3f}: the check needs an unfinished stage")


@pytest.mark.parametrize("call", [
    lambda: count_loss_and_grad(np.zeros((3, 3), dtype=np.int64), 1.0),
    lambda: count_loss_and_grad(np.zeros((3, 4), dtype=np.int64), -1.0),
    lambda: optimal_temperature_law(PAPER_SOURCE, (1, 2), 2, rng=np.random.default_rng(0)),
    lambda: optimal_temperature_law(PAPER_SOURCE, (1, 2), 50),
    lambda: expected_optimal_temperature(PAPER_SOURCE, (), 50, sequences=10,
                                         rng=np.random.default_rng(0)),
    lambda: law_objective(np.ones((2, 1)), np.ones((2, 1, 3)) / 3, np.zeros((2, 1, 3)),
                          seq_len=50, max_offset=2),
    lambda: predict_trained_temperature(np.zeros((2, 5), dtype=np.int64), np.zeros(2, dtype=int),
                                        (1,), vocab_size=2, a0=0.0, lr=1.0, steps=3,
                                        optimizer="adagrad"),
    lambda: predict_trained_temperature(np.zeros((2, 5), dtype=np.int64), np.zeros(2, dtype=int),
                                        (1,), vocab_size=2, a0=0.0, lr=1.0, steps=3,
                                        optimizer="adam", momentum=0.5),
])
def test_bad_input_raises(call) -> None:
    with pytest.raises(InductionHeadsError, match="expected"):
        call()


def test_pseudo_count_range_holds_the_paper_optimum() -> None:
    law = optimal_temperature_law(PAPER_SOURCE, (1, 2), 100, kernels=300,
                                  rng=np.random.default_rng(9))
    lo, hi = PSEUDO_COUNT_RANGE
    assert 10 * lo < law.pseudo_count < hi / 10 and math.isfinite(law.stderr), law
