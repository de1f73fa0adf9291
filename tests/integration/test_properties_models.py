"""Property tier, recorded: do the full variant and a standard transformer learn theory's S*?

The theorem is about TF(M, H, d, D) trained stage-wise; the paper's full variant (docs/theory.md
§7) and an ordinary transformer trained with AdamW are outside it. For every drawn case
(:mod:`tests.strategies`, plus the paper's weak-parent mixture, where S* is smaller than P) the
verify job trains the model and reads it with the probe; the session summary (``conftest.py``)
tallies how often the probe decides the predicted ``S*`` (or another set, or leaves the set
undecided, or finds that no GIH fits) and lists each case.
What is asserted is that the case's row is recorded with its fields, and what any training run
must do: a falling logged objective and a finite held-out loss below the uniform guess ``log d``
(:func:`strategies.assert_recorded_and_trained`). For the full variant theory also predicts the
selector's first move (:func:`theory.predict_first_move` on the model's own ingredients,
docs/theory.md §7), and that is asserted wherever it is decidable: the set whose ``c̃`` first
leads by :data:`numerics.experiments.facts.FIRST_LEAD_MARGIN` in the selector stage is the
predicted one, also where it is not ``S*`` (a departure theory predicts passes).

Sizes (CPU, within ``make test``'s budget): the standard transformer is
:data:`numerics.training.standard.FAST_SPEC` trained :data:`STANDARD_STEPS` steps of 128 fresh
sequences at ``L = 50``; the full variant runs its default stage-wise schedule on
:data:`FULL_SEQUENCES` sequences of ``L = 100``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, example, given, note, settings
from strategies import (
    THOROUGH,
    WEAK_PARENT_CASE,
    Case,
    assert_recorded_and_trained,
    cases,
    examples_count,
    record_case,
)

from numerics.experiments.facts import first_lead_set
from numerics.models import first_move_ingredients
from numerics.training.config import FULL_STAGEWISE_DEFAULTS
from numerics.training.standard import StandardTrainConfig
from numerics.verify import VerifyReport, verify_case
from theory import head_set_label, predict_first_move

STANDARD_STEPS = 1000
"""AdamW steps of the standard transformer: on the paper's source the effective set is (1, 2)
from about step 300 and the loss within 0.02 nats of the best GIH by step 1000 (seeds 0-3)."""
STANDARD_SEQ_LEN = 50
"""L of :data:`numerics.training.standard.FAST_TRAINING`."""
STANDARD_CI_EXAMPLES = 2
"""Drawn cases for the standard transformer beside the weak-parent example (about a minute each
on one core, hence the thorough tier only; more with ``INDUCTION_HEADS_PROPERTY_EXAMPLES`` or the
thorough profile). ``make test`` reads a standard transformer in
tests/numerics/verify/test_verify_models.py."""
FULL_SEQUENCES = 1000
"""n of the full variant's training sample."""
FULL_SEQ_LEN = 100
"""L of the paper's experiments."""
FULL_CI_EXAMPLES = 3
"""Drawn cases for the full variant in the ci profile."""
HELDOUT = 1000
"""Held-out sequences of the final probe: the effective set's margin is then ~10 SE on the
paper's source."""
PREDICTION_SAMPLES = 1000
"""Monte Carlo sequences of the prediction."""
FIRST_MOVE_SAMPLES = 2000
"""Sequences a draw of the first-move prediction."""
FIRST_MOVE_BUDGET = 16000
"""Sequences the first-move prediction may draw in all (a few seconds at L = 100)."""
SELECTOR_STAGE = FULL_STAGEWISE_DEFAULTS[0][0]
"""The full variant's first stage, which trains C alone against the initial copier."""
PHASES = (Phase.explicit, Phase.generate)
"""No shrinking: a case costs a minute of training and is recorded, not asserted."""
LOGGING = (HealthCheck.function_scoped_fixture,)
"""``request`` is taken only to attach each case's row to the test report."""


def _record(request: pytest.FixtureRequest, mode: str, case: Case, report: VerifyReport,
            **extra: object) -> None:
    """Attach the case's row (plain JSON types, ``extra`` fields included) to the running test's
    report."""
    predicted, learned = list(report.prediction.selected_set), report.learned["effective_set"]
    verdict = report.learned["effective_verdict"]
    reading = verdict if learned is None else ("same S*" if learned == predicted else "other set")
    row = {"mode": mode, "outcome": f"{mode} {reading}", "verdict": verdict,
           "within_reach": report.learned["effective_within_reach"],
           "source": case.source.to_dict(), "model": case.spec.to_dict(),
           "predicted": predicted, "learned": learned,
           "decidable": bool(report.prediction.exact.decidable), "seconds": float(report.seconds),
           "checks": {c.name: bool(c.passed) for c in report.checks},
           "parents": list(case.source.parents),
           "effective_margin_se": report.learned.get("effective_margin_se"),
           "loss": report.losses["model"], "best_gih": report.losses["best_gih"]["best"],
           **extra}
    record_case(request, row)


def _reading(report: VerifyReport) -> str:
    """The probe's decided set, or its verdict with the sets within reach."""
    learned = report.learned
    if learned["effective_set"] is not None:
        return head_set_label(learned["effective_set"])
    reach = ", ".join(head_set_label(s) for s in learned["effective_within_reach"])
    return f"{learned['effective_verdict']} (within reach: {reach})"


def _describe(case: Case, report: VerifyReport) -> str:
    p = report.prediction
    return (f"source {case.source.to_dict()}, model {case.spec.to_dict()}, seed {case.seed}: "
            f"predicted S* = {head_set_label(p.selected_set)} (margin {p.exact.margin_se:.1f} SE), "
            f"effective set {_reading(report)}, held-out loss "
            f"{report.losses['model']:.4f}, best GIH {report.losses['best_gih']['best']:.4f}")


@pytest.mark.thorough
@settings(max_examples=examples_count(STANDARD_CI_EXAMPLES), phases=PHASES,
          suppress_health_check=LOGGING, deadline=None)
@example(WEAK_PARENT_CASE)
@given(case=cases())
def test_standard_transformer_agreement_is_recorded(request: pytest.FixtureRequest,
                                                    case: Case) -> None:
    config = StandardTrainConfig(steps=STANDARD_STEPS, batch_size=128, seq_len=STANDARD_SEQ_LEN,
                                 device="auto" if THOROUGH else "cpu")
    report = verify_case(case.source, case.spec, kind="standard", config=config,
                         heldout=HELDOUT, prediction_samples=PREDICTION_SAMPLES, seed=case.seed)
    note(_describe(case, report))
    _record(request, "standard", case, report)
    assert_recorded_and_trained(request, report, math.log(case.source.vocab_size))


@pytest.mark.slow
@settings(max_examples=examples_count(FULL_CI_EXAMPLES), phases=PHASES,
          suppress_health_check=LOGGING, deadline=None)
@example(WEAK_PARENT_CASE)
@given(case=cases())
def test_full_variant_agreement_is_recorded(request: pytest.FixtureRequest, case: Case) -> None:
    report = verify_case(case.source, case.spec, kind="full", sequences=FULL_SEQUENCES,
                         seq_len=FULL_SEQ_LEN, heldout=HELDOUT,
                         prediction_samples=PREDICTION_SAMPLES, seed=case.seed,
                         probe_history=False, device="auto" if THOROUGH else "cpu", bayes=False)
    note(_describe(case, report))
    move = predict_first_move(case.source, case.spec, first_move_ingredients({}, "nll"),
                              seq_len=FULL_SEQ_LEN, samples=FIRST_MOVE_SAMPLES,
                              max_samples=FIRST_MOVE_BUDGET,
                              rng=np.random.default_rng(case.seed))
    measured = first_lead_set(report.history, stage=SELECTOR_STAGE)
    note(f"first move: predicted {move.first_set} ({move.margin_se:.1f} SE, decidable "
         f"{move.decidable}), measured {measured}")
    _record(request, "full", case, report, first_move_predicted=list(move.first_set),
            first_move_margin_se=float(move.margin_se),
            first_move_measured=None if measured is None else list(measured))
    assert_recorded_and_trained(request, report, math.log(case.source.vocab_size))
    if move.decidable and measured is not None:
        assert measured == move.first_set, (
            f"first move: predicted {head_set_label(move.first_set)} (ahead of "
            f"{head_set_label(move.runner_up)} by {move.margin_se:.1f} SE), measured "
            f"{head_set_label(measured)}")
