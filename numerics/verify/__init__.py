"""The verification job: predict the limit, train, check the trained model against it.

``job``: :func:`verify_case` and :class:`VerifyReport`; ``checks``: the checks and their
tolerances; ``curves``: predicted trajectories overlaid on the history; ``evaluation``: held-out
probabilities and losses of the model and the reference predictors; ``report``: writing, reading
and formatting a report.
"""

from numerics.verify.checks import Check
from numerics.verify.evaluation import heldout_losses, model_probabilities
from numerics.verify.job import (
    DEFAULT_HELDOUT,
    DEFAULT_PREDICTION_SAMPLES,
    DEFAULT_SEQ_LEN,
    DEFAULT_SEQUENCES,
    VerifyReport,
    verify_case,
)
from numerics.verify.report import format_report, load_report, write_report

__all__ = ["verify_case", "VerifyReport", "Check", "write_report", "load_report",
           "format_report", "model_probabilities", "heldout_losses", "DEFAULT_SEQ_LEN",
           "DEFAULT_SEQUENCES", "DEFAULT_HELDOUT", "DEFAULT_PREDICTION_SAMPLES"]
