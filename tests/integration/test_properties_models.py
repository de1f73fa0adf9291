"""Property tier, recorded: do the full variant and a standard transformer learn theory's S*?

The theorem is about TF(M, H, d, D) trained stage-wise; the paper's full variant (docs/theory.md
§7) and an ordinary transformer trained with AdamW are outside it. For every drawn case
(:mod:`tests.strategies`, plus the paper's weak-parent mixture, where S* is smaller than P) the
verify job trains the model and reads it with the probe; the session summary (``conftest.py``)
tallies how often the probe's ``effective_set`` equals the predicted ``S*`` and lists each case.
What is asserted is that the case's row is recorded with its fields, and what any training run
must do: a falling logged objective and a finite held-out loss below the uniform guess ``log d``
(:func:`strategies.assert_recorded_and_trained`).

Sizes (CPU, within ``make test``'s budget): the standard transformer is
:data:`numerics.training.standard.FAST_SPEC` trained :data:`STANDARD_STEPS` steps of 128 fresh
sequences at ``L = 50``; the full variant runs its default stage-wise schedule on
:data:`FULL_SEQUENCES` sequences of ``L = 100``.
"""

from __future__ import annotations

import math

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

from numerics.training.standard import StandardTrainConfig
from numerics.verify import VerifyReport, verify_case
from theory import head_set_label

STANDARD_STEPS = 1000
"""AdamW steps of the standard transformer: on the paper's source the effective set is (1, 2)
from about step 300 and the loss within 0.02 nats of the best GIH by step 1000 (seeds 0-3)."""
STANDARD_SEQ_LEN = 50
"""L of :data:`numerics.training.standard.FAST_TRAINING`."""
STANDARD_CI_EXAMPLES = 2
"""Drawn cases for the standard transformer in the ci profile (about a minute each; more with
``INDUCTION_HEADS_PROPERTY_EXAMPLES`` or the thorough profile)."""
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
PHASES = (Phase.explicit, Phase.generate)
"""No shrinking: a case costs a minute of training and is recorded, not asserted."""
LOGGING = (HealthCheck.function_scoped_fixture,)
"""``request`` is taken only to attach each case's row to the test report."""


def _record(request: pytest.FixtureRequest, mode: str, case: Case, report: VerifyReport) -> None:
    """Attach the case's row (plain JSON types) to the running test's report."""
    predicted, learned = list(report.prediction.selected_set), report.learned["effective_set"]
    row = {"mode": mode, "outcome": f"{mode} {'same S*' if learned == predicted else 'other set'}",
           "source": case.source.to_dict(), "model": case.spec.to_dict(),
           "predicted": predicted, "learned": learned,
           "decidable": bool(report.prediction.exact.decidable), "seconds": float(report.seconds),
           "checks": {c.name: bool(c.passed) for c in report.checks},
           "parents": list(case.source.parents),
           "effective_margin_se": report.learned.get("effective_margin_se"),
           "loss": report.losses["model"], "best_gih": report.losses["best_gih"]["best"]}
    record_case(request, row)


def _describe(case: Case, report: VerifyReport) -> str:
    p = report.prediction
    return (f"source {case.source.to_dict()}, model {case.spec.to_dict()}, seed {case.seed}: "
            f"predicted S* = {head_set_label(p.selected_set)} (margin {p.exact.margin_se:.1f} SE), "
            f"effective set {head_set_label(report.learned['effective_set'])}, held-out loss "
            f"{report.losses['model']:.4f}, best GIH {report.losses['best_gih']['best']:.4f}")


@pytest.mark.slow
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
    _record(request, "full", case, report)
    assert_recorded_and_trained(request, report, math.log(case.source.vocab_size))
