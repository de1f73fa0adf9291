"""The reference losses of a source or preset (theory.predictors.reference_losses).

Orderings that hold in expectation: the oracle knows each kernel, so no predictor of the context
beats it; the Bayes predictive minimises the expected cross-entropy among predictors of the
context, so it beats every n-gram estimator. They are checked to Z standard errors of the
difference (the two losses' errors added in quadrature: conservative, as they are computed on the
same sequences and positively correlated)."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from theory import (
    Dirichlet,
    FiniteMixture,
    Fixed,
    InductionHeadsError,
    Mixture,
    MixtureComponent,
    Source,
    Switching,
    SwitchingComponent,
    preset,
    reference_losses,
    sample_sequences_np,
)
from theory.predictors.positional import ADDITIVE_SMOOTHING
from theory.predictors.reference import bayes_predict, oracle_predict, per_sequence_loss
from theory.predictors.reference_losses import ngram_name, ngram_sets, reference_smoothing
from theory.sizes import MEMORY_LIMIT_ENV

Z = 3.0
"""Standard errors an ordering may be violated by before the test fails (the library's decision
threshold)."""

EXACT_ATOL = 1e-12
"""Two losses computed by the same closed form on the same sequences agree to float round-off."""

DIRICHLET_PRESETS = ("edelman-bigram", "nichani-single-parent", "varre-trigram")
STRUCTURE_PRESETS = ("selective-lags", "park-mixture")
SEQUENCES = 3000
"""Enough held-out sequences for standard errors near 0.01 nats, each preset under a second."""

EXACT_STRUCTURE_BAYES = importlib.util.find_spec("theory.predictors.structures") is not None
"""Whether the exact Bayes predictive of Switching and FiniteMixture priors is in the library
(theory.predictors.structures, the posterior over each sequence's structure)."""


def _losses(name, **kwargs):
    return reference_losses(preset(name), sequences=SEQUENCES, rng=np.random.default_rng(7),
                            **kwargs).losses


def _not_above(low, high, what):
    gap = low.loss - high.loss
    se = math.hypot(low.se, high.se)
    assert gap <= Z * se, f"{what}: {low.loss:.5f} above {high.loss:.5f} by {gap / se:.1f} SE"


@pytest.mark.parametrize("name", DIRICHLET_PRESETS + STRUCTURE_PRESETS)
def test_uniform_is_log_d_exactly(name):
    ref = reference_losses(preset(name), sequences=2, rng=np.random.default_rng(0),
                           bayes=False).losses["uniform"]
    d = preset(name).source.vocab_size
    assert ref.loss == math.log(d) and ref.se == 0.0, (ref, math.log(d))


@pytest.mark.parametrize("name", DIRICHLET_PRESETS)
def test_oracle_bayes_and_every_ngram_are_ordered(name):
    losses = _losses(name)
    _not_above(losses["oracle"], losses["bayes"], f"{name}: oracle vs bayes")
    for s in ngram_sets(preset(name).source):
        _not_above(losses["bayes"], losses[ngram_name(s)], f"{name}: bayes vs {ngram_name(s)}")
    _not_above(losses["bayes"], losses["unigram"], f"{name}: bayes vs unigram")


@pytest.mark.parametrize("name", DIRICHLET_PRESETS)
def test_the_full_parent_ngram_is_bayes_for_a_dirichlet_prior(name):
    losses = _losses(name)
    full = losses[ngram_name(preset(name).source.parents)]
    assert abs(full.loss - losses["bayes"].loss) <= EXACT_ATOL, (full, losses["bayes"])
    assert abs(full.se - losses["bayes"].se) <= EXACT_ATOL, (full, losses["bayes"])


@pytest.mark.parametrize("name", STRUCTURE_PRESETS)
def test_structure_presets_have_every_reference_but_bayes_ordered_above_the_oracle(name):
    losses = _losses(name, bayes=False)
    sets = ngram_sets(preset(name).source)
    expected = ["uniform", "unigram"] + [ngram_name(s) for s in sets] + ["oracle"]
    assert list(losses) == expected, list(losses)
    for key in expected[:-1]:
        _not_above(losses["oracle"], losses[key], f"{name}: oracle vs {key}")
    assert all(math.isfinite(r.loss) and r.se > 0 for k, r in losses.items() if k != "uniform")


@pytest.mark.skipif(not EXACT_STRUCTURE_BAYES, reason="needs the exact Bayes predictive of "
                    "Switching and FiniteMixture priors (theory.predictors.structures)")
@pytest.mark.parametrize("name", STRUCTURE_PRESETS)
def test_structure_presets_order_oracle_bayes_and_every_ngram(name):
    losses = _losses(name)
    _not_above(losses["oracle"], losses["bayes"], f"{name}: oracle vs bayes")
    for s in ngram_sets(preset(name).source):
        _not_above(losses["bayes"], losses[ngram_name(s)], f"{name}: bayes vs {ngram_name(s)}")


def test_the_names_follow_the_head_set_notation():
    losses = _losses("varre-trigram")
    assert list(losses) == ["uniform", "unigram", "ngram(1)", "ngram(2)", "ngram(1, 2)",
                            "bayes", "oracle"], list(losses)
    assert ngram_sets(preset("selective-lags").source) == (
        (1,), (2,), (3,), (1, 2), (1, 3), (2, 3), (1, 2, 3))


def test_the_losses_are_the_predictors_on_the_same_sequences():
    p = preset("varre-trigram")
    table = reference_losses(p, sequences=500, rng=np.random.default_rng(3))
    tokens, kernels = sample_sequences_np(p.source, 500, p.seq_len + 1,
                                          rng=np.random.default_rng(3), start=p.start,
                                          return_kernels=True)
    context, target = tokens[:, :-1], tokens[:, -1]
    alpha = p.source.prior.alpha
    counts = np.stack([(context == e).sum(axis=1) for e in range(5)], axis=1)  # (n, d)
    unigram = -np.log(((counts + alpha) / (p.seq_len + 5 * alpha))[np.arange(500), target])
    direct = {"unigram": unigram,
              "ngram(2)": per_sequence_loss(bayes_predict(context, (2,), alpha, vocab_size=5),
                                            target),
              "oracle": per_sequence_loss(oracle_predict(context, (1, 2), kernels), target)}
    for key, losses in direct.items():
        measured = table.losses[key]
        assert abs(measured.loss - losses.mean()) <= EXACT_ATOL, (key, measured, losses.mean())
        se = losses.std(ddof=1) / math.sqrt(500)
        assert abs(measured.se - se) <= EXACT_ATOL, (key, measured.se, se)


def test_the_same_seed_gives_the_same_table():
    first = reference_losses(preset("edelman-bigram"), sequences=200, rng=np.random.default_rng(5))
    again = reference_losses(preset("edelman-bigram"), sequences=200, rng=np.random.default_rng(5))
    assert first == again


@pytest.mark.parametrize("source, alpha", [
    (Source(3, (1,), Dirichlet(0.3)), 0.3),
    (Source(3, (1, 2), Mixture((MixtureComponent((1,), 0.5, 0.2),
                                MixtureComponent((1, 2), 0.5, 0.2)))), 0.2),
    (Source(3, (1, 2), Mixture((MixtureComponent((1,), 0.5, 0.2),
                                MixtureComponent((1, 2), 0.5, 0.4)))), ADDITIVE_SMOOTHING),
    (Source(2, (1, 2), Switching((SwitchingComponent((1,), 0.5, alpha=0.7),
                                  SwitchingComponent((2,), 0.5, kernel=[[0.9, 0.1],
                                                                        [0.2, 0.8]])))),
     ADDITIVE_SMOOTHING),
    (Source(2, (1,), FiniteMixture.draw(3, 0.6, seed=1, vocab_size=2, order=1)), 0.6),
    (Source(2, (1,), FiniteMixture([[[0.9, 0.1], [0.2, 0.8]]])), ADDITIVE_SMOOTHING),
    (Source(2, (1,), Fixed([[0.9, 0.1], [0.2, 0.8]])), ADDITIVE_SMOOTHING),
])
def test_the_smoothing_is_the_priors_one_concentration(source, alpha):
    assert reference_smoothing(source) == alpha


def test_a_source_takes_its_length_and_start_from_the_call():
    source = Source(3, (1,), Dirichlet(1.0))
    table = reference_losses(source, 12, sequences=50, rng=np.random.default_rng(0),
                             smoothing=0.25)
    assert (table.seq_len, table.start, table.smoothing) == (12, "uniform", 0.25)
    with pytest.raises(InductionHeadsError, match="seq_len"):
        reference_losses(source, sequences=50, rng=np.random.default_rng(0))


@pytest.mark.parametrize("kwargs, fragment", [
    ({"sequences": 1}, "sequences"), ({"start": "burn-in"}, "start"),
    ({"smoothing": 0.0}, "smoothing"), ({"rng": None}, "rng"),
])
def test_bad_arguments_are_refused(kwargs, fragment):
    args = {"sequences": 10, "rng": np.random.default_rng(0)} | kwargs
    with pytest.raises(InductionHeadsError, match=fragment):
        reference_losses(preset("edelman-bigram"), **args)


def test_a_request_over_the_memory_limit_is_refused(monkeypatch):
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "0.001")
    with pytest.raises(InductionHeadsError, match="reference losses"):
        reference_losses(preset("park-mixture"), sequences=10_000, rng=np.random.default_rng(0))
