"""The predicted limit and the set a training run is checked against (docs/theory.md §3).

One ranking of the head sets and its decidability rule (``ranking``); the memory and time
checks of a prediction (``fits``); the flat form of earlier reports (``reports``); the prediction itself
(``prediction``); the set a run must reach (``target``).

Layer 5, the top: imports every lower layer; no other sub-package of ``theory`` imports it.
"""

from theory.limit.fits import (
    prediction_seconds,
    require_prediction_fits,
)
from theory.limit.prediction import (
    LEAVES,
    UNTOUCHED,
    LimitPrediction,
    predict_limit,
)
from theory.limit.ranking import (
    DECIDABLE_Z,
    Ranking,
    in_units,
    read_only,
    top_two,
    units_from_json,
)
from theory.limit.reports import (
    FLAT_KEYS,
    rankings_from_flat,
)
from theory.limit.target import (
    JOINT_SETTLED,
    SAMPLE_SETTLED,
    TARGET_BASES,
    TrainingTarget,
    ends_split,
    joint_target,
    target_note,
    training_target,
)

__all__ = [
    "DECIDABLE_Z",
    "Ranking",
    "read_only",
    "top_two",
    "in_units",
    "units_from_json",
    "require_prediction_fits",
    "prediction_seconds",
    "FLAT_KEYS",
    "rankings_from_flat",
    "LEAVES",
    "UNTOUCHED",
    "LimitPrediction",
    "predict_limit",
    "SAMPLE_SETTLED",
    "TARGET_BASES",
    "TrainingTarget",
    "target_note",
    "training_target",
    "joint_target",
    "ends_split",
    "JOINT_SETTLED",
]
