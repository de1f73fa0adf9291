"""Time guards of theory's Monte Carlo and stationary solves (``theory.work``, ``theory.limit.fits``):
an estimate of the work from the sizes alone, refused above a stated bound unless raised."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from theory import PAPER_MODEL, PAPER_SOURCE, Dirichlet, ModelSpec, Source, predict_limit
from theory.errors import InductionHeadsError
from theory.limit.fits import prediction_seconds, require_prediction_fits
from theory.work import (
    DEFAULT_TIME_LIMIT_S,
    TIME_LIMIT_ENV,
    format_seconds,
    prediction_stage_seconds,
    time_limit_seconds,
)

LONG_WINDOW = Source(vocab_size=4, parents=(5,), prior=Dirichlet(0.1))
"""d = 4, P = (5,): 1024 states, a stationary solve of about half a second per kernel."""


@pytest.fixture(autouse=True)
def _default_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TIME_LIMIT_ENV, raising=False)


@pytest.mark.parametrize("source, spec, fragment", [
    (LONG_WINDOW, ModelSpec(heads=5, window=5, degree=2), "1024 states"),
    (PAPER_SOURCE, ModelSpec(heads=12, window=12, degree=6), "2510 head sets"),
], ids=["d4-P5-H5-D2", "paper-H12-D6"])
def test_long_predictions_are_refused_at_once(source, spec, fragment):
    started = time.perf_counter()
    with pytest.raises(InductionHeadsError) as info:
        predict_limit(source, spec, samples=2000, rng=np.random.default_rng(0))
    assert time.perf_counter() - started < 2.0
    message = str(info.value)
    for part in (fragment, "time limit of 5.0 min", TIME_LIMIT_ENV, "time_limit_s",
                 "estimated at about", "over 2000 samples"):
        assert part in message, (part, message)
    assert "\n" not in message


def test_the_keyword_and_the_variable_raise_the_limit(monkeypatch: pytest.MonkeyPatch):
    spec = ModelSpec(heads=5, window=5, degree=2)
    stages = require_prediction_fits(LONG_WINDOW, spec, samples=2000, seq_len=None,
                                     time_limit_s=math.inf)
    assert stages["G"] > DEFAULT_TIME_LIMIT_S
    monkeypatch.setenv(TIME_LIMIT_ENV, "1e9")
    require_prediction_fits(LONG_WINDOW, spec, samples=2000, seq_len=None)
    with pytest.raises(InductionHeadsError, match="time limit of 1 s"):
        require_prediction_fits(LONG_WINDOW, spec, samples=2000, seq_len=None, time_limit_s=1)


def test_the_estimate_of_a_small_prediction_is_within_a_factor_of_its_time():
    """The estimate errs high, and not by orders of magnitude (a loaded machine may be slower)."""
    spec = ModelSpec(heads=5, window=5, degree=2)
    estimate = prediction_seconds(LONG_WINDOW, spec, samples=4, seq_len=None)["G"]
    started = time.perf_counter()
    predict_limit(LONG_WINDOW, spec, samples=4, rng=np.random.default_rng(0), progress=False)
    took = time.perf_counter() - started
    assert took / 20 < estimate < 20 * took, (estimate, took)


def test_project_defaults_fit_the_default_limit():
    paper = prediction_seconds(PAPER_SOURCE, PAPER_MODEL, samples=2000, seq_len=100,
                               max_samples=32_000)
    assert sum(paper.values()) < DEFAULT_TIME_LIMIT_S / 10
    scale = Source(vocab_size=5, parents=(1, 3), prior=Dirichlet(0.1))
    big = prediction_seconds(scale, ModelSpec(heads=4, window=4, degree=3), samples=4000,
                             seq_len=400, max_samples=64_000)
    assert sum(big.values()) < DEFAULT_TIME_LIMIT_S


def test_the_estimate_grows_with_every_size():
    base = dict(d=3, k=2, r=2, heads=3, window=3, n_sets=7, kernels=100, samples=100, seq_len=50)
    total = sum(prediction_stage_seconds(**base).values())
    for key in ("d", "r", "heads", "window", "n_sets", "kernels", "samples", "seq_len"):
        grown = sum(prediction_stage_seconds(**{**base, key: base[key] * 2}).values())
        assert grown > total, key
    huge = prediction_stage_seconds(10**3, 2, 10**3, 10**3, 10**3, 10**9, kernels=10**9,
                                    samples=10**9, seq_len=10**9)
    assert all(v > 0 for v in huge.values())
    assert "years" in format_seconds(huge["G_L"])
    assert format_seconds(sum(huge.values())) == "more than 10^300 years"


@pytest.mark.parametrize("bad", [0, -1, "x", math.nan, True])
def test_bad_limits_are_refused(bad, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(InductionHeadsError, match="time_limit_s"):
        time_limit_seconds(bad)
    monkeypatch.setenv(TIME_LIMIT_ENV, str(bad))
    if bad is not True:
        with pytest.raises(InductionHeadsError, match=TIME_LIMIT_ENV):
            time_limit_seconds()


def test_a_progress_bar_shows_when_asked_and_stays_silent_otherwise(
        capsys: pytest.CaptureFixture[str]):
    predict_limit(PAPER_SOURCE, PAPER_MODEL, seq_len=20, samples=50,
                  rng=np.random.default_rng(0))
    assert capsys.readouterr().err == "", "a short prediction prints nothing"
    predict_limit(PAPER_SOURCE, PAPER_MODEL, seq_len=20, samples=50,
                  rng=np.random.default_rng(0), progress=True)
    assert "limit prediction" in capsys.readouterr().err


def test_the_bar_does_not_change_the_prediction():
    kw = dict(seq_len=20, samples=50)
    quiet = predict_limit(PAPER_SOURCE, PAPER_MODEL, rng=np.random.default_rng(3), **kw)
    shown = predict_limit(PAPER_SOURCE, PAPER_MODEL, rng=np.random.default_rng(3),
                          progress=True, **kw)
    assert quiet.to_dict() == shown.to_dict()
