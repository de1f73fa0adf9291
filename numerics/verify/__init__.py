"""The verification job: predict the limit, train, check the trained model against it.

``job``: :func:`verify_case` for every model kind; ``report``: :class:`VerifyReport`, writing,
reading and formatting it; ``suite``: the checks by name (:data:`CHECK_FUNCTIONS`), with
``checks`` (TF's own selector, copier and temperature) and ``probe_checks`` (read through the
probe) and their tolerances; ``evaluation``: the held-out losses and the best-GIH loss, views
of the probe's table; ``curves``: predicted trajectories overlaid on the history.
"""

from numerics.verify.checks import Check
from numerics.verify.evaluation import heldout_losses, model_probabilities
from numerics.verify.job import (
    DEFAULT_HELDOUT,
    DEFAULT_PREDICTION_SAMPLES,
    DEFAULT_PROBE_SEQUENCES,
    DEFAULT_SEQ_LEN,
    DEFAULT_SEQUENCES,
    CaseGenerators,
    case_generators,
    verify_case,
)
from numerics.verify.report import VerifyReport, format_report, load_report, write_report
from numerics.verify.suite import CHECK_FUNCTIONS, CheckContext, run_checks

__all__ = ["verify_case", "VerifyReport", "Check", "write_report", "load_report",
           "format_report", "model_probabilities", "heldout_losses", "DEFAULT_SEQ_LEN",
           "DEFAULT_SEQUENCES", "DEFAULT_HELDOUT", "DEFAULT_PREDICTION_SAMPLES",
           "DEFAULT_PROBE_SEQUENCES", "CaseGenerators", "case_generators", "CHECK_FUNCTIONS",
           "CheckContext", "run_checks"]
