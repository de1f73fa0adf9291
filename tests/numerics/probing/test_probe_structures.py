"""The probe on a source whose sequences differ in structure: the oracle-structure reference, the
structures drawn with the sequences, and the share of the gap from the best single GIH to Bayes
a model closes (``numerics.probing.measure``, ``heldout`` and ``gap``)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from strategies import EXACT_KL_ATOL

from numerics import sample_sequences
from numerics.probing import GapShare, ProbeReport, probe
from numerics.probing.gap import measure_gap_share
from numerics.probing.measure import NO_STRUCTURES
from theory import (
    InductionHeadsError,
    ModelSpec,
    Source,
    Switching,
    SwitchingComponent,
    gih_predict,
    predict_limit,
)
from theory.limit.prediction import DECIDABLE_Z
from theory.predictors.bayes import bayes_predict_prior, bayes_predict_prior_positions
from theory.predictors.structures import (
    oracle_structure_predict,
    oracle_structure_predict_positions,
)

LAGS = Source(3, (1, 2, 3), Switching(tuple(
    SwitchingComponent((lag,), 1 / 3, alpha=0.1) for lag in (1, 2, 3))))
"""Selective lags: each sequence is a first-order chain at lag 1, 2 or 3."""

SPEC = ModelSpec(heads=3, window=3, degree=2)
N, L = 400, 64

SHARE_ROUNDOFF = 1e-9
"""A model equal to Bayes (or to the best single GIH) closes exactly 1 (or 0) of the gap: the
per-sequence losses agree to float64 round-off (the probe renormalises the model's rows)."""

BASELINE_ATOL = 1e-9
"""The best single GIH minimises the loss over every set and temperature; a GIH of the table
(fitted to the model) can undercut it only by the temperature search's tolerance (xatol 1e-6 in
``a``, second order in the loss)."""


@pytest.fixture(scope="module")
def lags():
    """``(tokens (N, L+1), kernels, structures, limit)`` of the selective-lags source."""
    tokens, kernels, labels = sample_sequences(LAGS, N, L + 1,
                                               generator=torch.Generator().manual_seed(1),
                                               return_kernels=True, return_structures=True,
                                               dtype=torch.float64)
    limit = predict_limit(LAGS, SPEC, seq_len=L, samples=300, rng=np.random.default_rng(0))
    return tokens.numpy(), kernels.numpy(), labels.numpy(), limit


def _probe(model, lags, **kwargs) -> ProbeReport:
    tokens, kernels, labels, limit = lags
    given = dict(tokens=tokens, kernels=kernels, structures=labels, limit=limit) | kwargs
    return probe(model, LAGS, SPEC, **{k: v for k, v in given.items() if v is not None})


def test_the_oracle_structure_reference_is_scored_at_the_query_and_every_position(lags):
    tokens, _, labels, _ = lags
    ctx = tokens[:, :L]
    query = oracle_structure_predict(ctx, LAGS, labels)
    rows = np.nan_to_num(oracle_structure_predict_positions(ctx, LAGS, labels), nan=1 / 3)
    report = _probe(lambda c: query, lags, per_position=rows)
    for table in (report.last, report.positions):
        names = [s.name for s in table.scores]
        assert names[-3:] == ["bayes", "oracle_structure", "oracle"], names
        kl = table.score("oracle_structure").kl
        assert kl <= EXACT_KL_ATOL, f"KL(oracle structure ‖ itself) = {kl}"
        assert table.score("bayes").kl > EXACT_KL_ATOL
    assert not report.absent


def test_drawn_sequences_carry_their_structures(lags):
    report = probe(lambda c: bayes_predict_prior(c, LAGS), LAGS, SPEC, n=N, seq_len=L,
                   generator=torch.Generator().manual_seed(1), limit=lags[3])
    drawn = _probe(lambda c: bayes_predict_prior(c, LAGS), lags)
    assert report.last.score("oracle_structure") == drawn.last.score("oracle_structure")
    assert not report.absent


def test_without_structures_the_oracle_structure_is_absent(lags):
    report = _probe(lambda c: bayes_predict_prior(c, LAGS), lags, structures=None)
    assert ("oracle_structure", NO_STRUCTURES) in report.absent
    assert "oracle_structure" not in [s.name for s in report.last.scores]
    labels = lags[2]
    for bad, match in ((labels[:-1], f"{N} entries"), (labels + 3, "indices in 0..2")):
        with pytest.raises(InductionHeadsError, match=match):
            _probe(lambda c: bayes_predict_prior(c, LAGS), lags, structures=bad)
    with pytest.raises(InductionHeadsError, match="structures"):
        probe(lambda c: c, LAGS, SPEC, n=N, seq_len=L, structures=labels,
              generator=torch.Generator().manual_seed(1), limit=lags[3])


def test_bayes_closes_the_whole_gap_and_the_best_single_gih_none(lags):
    tokens, _, labels, _ = lags
    ctx = tokens[:, :L]
    bayes = bayes_predict_prior(ctx, LAGS)
    report = _probe(lambda c: bayes, lags, per_position=np.nan_to_num(
        bayes_predict_prior_positions(ctx, LAGS), nan=1 / 3))
    whole = report.gap_share
    assert whole.share is not None, whole.reason
    assert whole.gap > DECIDABLE_Z * whole.gap_se, f"gap {whole.gap} ± {whole.gap_se}"
    assert abs(whole.share - 1) <= DECIDABLE_Z * whole.share_se + SHARE_ROUNDOFF, (
        f"Bayes closes {whole.share} ± {whole.share_se} of the gap")
    gih = gih_predict(ctx, whole.baseline_set, whole.baseline_temperature, vocab_size=3)
    none = _probe(lambda c: gih, lags).gap_share
    assert none.baseline_set == whole.baseline_set
    assert abs(none.gap - whole.gap) <= SHARE_ROUNDOFF, "Bayes at the query by two paths"
    assert abs(none.share) <= DECIDABLE_Z * none.share_se + SHARE_ROUNDOFF, (
        f"GIH{none.baseline_set} closes {none.share} ± {none.share_se} of the gap")
    fitted = min(s.loss for s in report.last.scores if s.kind == "gih")
    assert whole.baseline_loss <= fitted + BASELINE_ATOL, (
        f"best single GIH loss {whole.baseline_loss}, a GIH of the table {fitted}")


def test_the_gap_share_is_a_ratio_of_paired_means_with_its_delta_method_error():
    rng = np.random.default_rng(3)
    base = rng.normal(1.0, 0.3, 500)
    bayes = base - rng.normal(0.2, 0.1, 500)
    model = base - rng.normal(0.1, 0.1, 500)
    got = measure_gap_share(model, bayes, ((1,), 2.0, base))
    u, v = base - model, base - bayes
    share = u.mean() / v.mean()
    cov = np.cov(u, v, ddof=1)
    var = (cov[0, 0] - 2 * share * cov[0, 1] + share ** 2 * cov[1, 1]) / (len(u) * v.mean() ** 2)
    assert math.isclose(got.share, share, rel_tol=1e-12)
    assert math.isclose(got.share_se, math.sqrt(var), rel_tol=1e-9), (got.share_se, var)
    flat = measure_gap_share(model, base - rng.normal(0.0, 0.1, 500), ((1,), 2.0, base))
    assert flat.share is None and flat.share_se is None and "not past 3" in flat.reason


def test_the_gap_share_survives_the_json_round_trip_and_reads_in_the_summary(lags):
    report = _probe(lambda c: bayes_predict_prior(c, LAGS), lags)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert ProbeReport.from_dict(data) == report
    assert isinstance(report.gap_share, GapShare) and "gap share: 1" in report.summary()
    del data["gap_share"]
    assert ProbeReport.from_dict(data).gap_share is None
