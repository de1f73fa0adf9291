"""numerics.experiments.structured: the two sources whose structure varies per sequence, a tiny
standard-transformer run with the probe at every logged step, and the end-point summary.

The runs are seconds (a few steps of a 12-wide transformer at L = 16): only the plumbing is
checked here; notebook 07 and docs/results.md measure what a trained model reaches. The summary's
arithmetic is checked on models whose answer is known: a model that *is* the best single GIH
closes none of the gap to Bayes and is undecided against it; a model that *is* the Bayes
predictive closes all of it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from numerics import probe, sample_sequences
from numerics.experiments import (
    BAYES,
    BEATS,
    CHAIN_COUNT,
    CHAIN_SEED,
    FOUR_CHAINS,
    ORACLE_STRUCTURE,
    SPARSE_LAGS,
    STRUCTURED_MODEL,
    STRUCTURED_SOURCES,
    ComparedLoss,
    StructuredRun,
    StructuredSummary,
    structured_run,
    structured_summary,
    torch_generator,
)
from numerics.models import StandardSpec
from numerics.probing import UNDECIDED
from numerics.training.standard import StandardTrainConfig
from numerics.verify.evaluation import fitted_temperatures
from theory import (
    PAPER_SOURCE,
    FiniteMixture,
    InductionHeadsError,
    Switching,
    bayes_predict_prior,
    gih_predict,
    head_set_label,
    parse_head_set_label,
)
from theory.predictors.positional import ADDITIVE_SMOOTHING, gih_from_counts, last_match_counts

SEQ_LEN, STEPS, LOG_POINTS = 16, 4, 3
"""A run of about a second: L = 16, four updates, logged at step 0 and three more rows."""
TINY = dict(architecture=StandardSpec(d_model=12, max_len=SEQ_LEN),
            config=StandardTrainConfig(steps=STEPS, seq_len=SEQ_LEN, batch_size=16,
                                       eval_sequences=20, log_points=LOG_POINTS, device="cpu"),
            heldout=120, probe_sequences=40, fit_sequences=120, prediction_samples=100)
"""Sizes of the tiny runs."""
SHARE_ATOL = 1e-12
"""The gap share of a model that is exactly one of its two ends: round-off only."""
HELD, FIT = 600, 600
"""Sequences of the summary checks: enough for Bayes to lead the best GIH by many SE at L = 50."""


@pytest.fixture(scope="module")
def run() -> StructuredRun:
    return structured_run(SPARSE_LAGS, **TINY, generator=torch_generator(0),
                          rng=np.random.default_rng(0))


# ------------------------------------------------------------------------------ the sources
def test_selective_lags_switches_between_the_three_lags():
    prior = SPARSE_LAGS.prior
    assert isinstance(prior, Switching) and SPARSE_LAGS.parents == (1, 2, 3)
    assert [c.parents for c in prior.components] == [(1,), (2,), (3,)]
    assert [c.weight for c in prior.components] == pytest.approx([1 / 3] * 3)
    assert all(c.alpha == 0.1 and c.kernel is None for c in prior.components)


def test_park_mixture_is_drawn_once_from_its_seed():
    prior = FOUR_CHAINS.prior
    again = FiniteMixture.draw(CHAIN_COUNT, 0.5, seed=CHAIN_SEED, vocab_size=3, order=1)
    assert isinstance(prior, FiniteMixture) and prior.count == CHAIN_COUNT
    assert np.array_equal(prior.kernels, again.kernels)
    assert FOUR_CHAINS.to_dict()["prior"]["seed"] == CHAIN_SEED
    assert STRUCTURED_SOURCES == {"sparse-lags": SPARSE_LAGS, "four-chains": FOUR_CHAINS}


# -------------------------------------------------------------------------------- the run
def test_every_logged_step_holds_a_probe_with_every_gih(run: StructuredRun):
    history = run.history
    assert len(history) == LOG_POINTS + 1 and history.steps[-1] == STEPS, history.steps
    assert all(r is not None and "last" in r for r in history.reports)
    names = run.names()
    sets = STRUCTURED_MODEL.sets
    expected = {"uniform", "unigram"} | {f"{kind}{head_set_label(s)}" for s in sets
                                         for kind in ("gih", "gih_inf")}
    assert expected <= set(names), sorted(expected - set(names))
    distances = run.distances()
    assert all(v.shape == (len(history),) and np.all(np.isfinite(v) & (v >= 0))
               for v in distances.values()), distances
    rows = run.distance_rows()
    assert [r["step"] for r in rows] == history.steps.tolist()
    assert isinstance(run.figure(), Figure)


def test_the_run_predicts_s_star_at_its_length(run: StructuredRun):
    assert run.limit.seq_len == SEQ_LEN and run.limit.selected_set in STRUCTURED_MODEL.sets
    assert run.report.selected_set == run.limit.selected_set
    assert run.report.sequences == TINY["heldout"]


def test_bayes_and_oracle_structure_are_read_by_name_or_absent_with_a_reason(run: StructuredRun):
    summary, scored = run.summary, {s.name for s in run.report.last.scores}
    for name in (BAYES, ORACLE_STRUCTURE):
        row = summary.reference(name)
        if name in scored:
            assert row.loss is not None and row.absent is None, row
        else:
            assert row.loss is None and row.absent, row
    if BAYES in scored:
        assert summary.gap_share is not None and summary.gap_share_absent is None
    else:
        assert summary.gap_share is None and summary.gap_share_absent == summary.reference(
            BAYES).absent


def test_the_model_rows_match_the_probe_table(run: StructuredRun):
    table, summary = run.report.last, run.summary
    assert summary.model_loss == pytest.approx(table.model_loss, rel=1e-9)
    for row in summary.references:
        if row.loss is not None:
            assert row.loss == pytest.approx(table.score(row.name).loss, rel=1e-9), row
    best = summary.reference(summary.best_gih)
    gih_rows = [r for r in summary.references if r.name.startswith("gih")]
    assert best.loss == min(r.loss for r in gih_rows)
    assert best.gap == pytest.approx(summary.model_loss - best.loss, abs=1e-12)


def test_bad_sizes_are_refused():
    short = dict(TINY, architecture=StandardSpec(d_model=12, max_len=SEQ_LEN - 1))
    with pytest.raises(InductionHeadsError, match="max_len"):
        structured_run(SPARSE_LAGS, **short, generator=torch_generator(0),
                       rng=np.random.default_rng(0))
    many = dict(TINY, probe_sequences=TINY["heldout"] + 1)
    with pytest.raises(InductionHeadsError, match="probe_sequences"):
        structured_run(SPARSE_LAGS, **many, generator=torch_generator(0),
                       rng=np.random.default_rng(0))


# ---------------------------------------------------------------------------- the summary
@pytest.fixture(scope="module")
def paper_case():
    """Held-out sequences of the paper's source (Dirichlet prior: Bayes in closed form)."""
    held, kernels = sample_sequences(PAPER_SOURCE, HELD, 51, generator=torch_generator(4),
                                     return_kernels=True, dtype=torch.float64)
    fit = sample_sequences(PAPER_SOURCE, FIT, 51, generator=torch_generator(5)).numpy()
    held = held.numpy()
    fitted = fitted_temperatures(fit, STRUCTURED_MODEL.sets, vocab_size=3)
    bayes = bayes_predict_prior(held[:, :-1], PAPER_SOURCE)
    return held, kernels.numpy(), fitted, bayes


def _summary(probs, paper_case):
    held, kernels, fitted, bayes = paper_case
    report = probe(lambda _: probs, PAPER_SOURCE, STRUCTURED_MODEL, tokens=held,
                   kernels=kernels, bayes=bayes, gih_at=fitted, call_with="numpy",
                   sets=list(STRUCTURED_MODEL.sets), limit=None,
                   rng=np.random.default_rng(0), limit_samples=100)
    return structured_summary(report, probs, held, fitted=fitted, bayes=bayes, kernels=kernels)


def test_a_model_that_is_bayes_closes_the_whole_gap(paper_case):
    summary = _summary(paper_case[3], paper_case)
    assert summary.gap_share == pytest.approx(1.0, abs=SHARE_ATOL), summary
    assert summary.verdict == BEATS, (summary.margin_se, summary.sentence())
    assert summary.reference(BAYES).gap == pytest.approx(0.0, abs=1e-12)


def _gih_probs(name: str, context: np.ndarray, fitted) -> np.ndarray:
    """The predictor a GIH row of the summary names, on ``context`` (n, L)."""
    if name in fitted:
        head_set, a = fitted[name]
        return gih_predict(context, head_set, a, vocab_size=3)
    head_set = parse_head_set_label(name[len("gih_inf"):])
    counts = last_match_counts(context, head_set, vocab_size=3)
    return gih_from_counts(*counts, float("inf"), smoothing=ADDITIVE_SMOOTHING)


def test_a_model_that_is_the_best_gih_closes_none_of_it(paper_case):
    held, _, fitted, _ = paper_case
    name = _summary(paper_case[3], paper_case).best_gih
    summary = _summary(_gih_probs(name, held[:, :-1], fitted), paper_case)
    assert summary.best_gih == name
    assert summary.gap_share == pytest.approx(0.0, abs=SHARE_ATOL), summary
    assert summary.verdict == UNDECIDED and summary.margin_se == 0.0, summary.sentence()


def test_rows_mark_absent_references_and_unpaired_ones():
    references = (ComparedLoss("best GIH, a = ∞", "gih_inf(1,)", 0.5, 0.01, -0.1, 0.002),
                  ComparedLoss("Bayes over structures", BAYES, None, None, absent="why"),
                  ComparedLoss("oracle structure", ORACLE_STRUCTURE, 0.3, 0.01))
    summary = StructuredSummary(0.4, 0.01, references, "gih_inf(1,)", BEATS, 50.0, None, None,
                                "why")
    rows = {r["name"]: r for r in summary.rows()}
    assert rows["gih_inf(1,)"]["model - it"] == "-0.1000", rows
    assert rows[BAYES]["loss"] == rows[BAYES]["model - it"] == "absent", rows
    assert rows[ORACLE_STRUCTURE]["model - it"] == "-" and rows[ORACLE_STRUCTURE]["loss"] == "0.3000"
    assert "beats the best single GIH gih_inf(1,) (0.5000) by 50.0 paired SE" in summary.sentence()
    assert "gap share unavailable (why)" in summary.sentence()
