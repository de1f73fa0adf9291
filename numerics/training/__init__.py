"""Training every model kind: configuration, the run loops, checkpoints and the logged history.

``kinds``: the model-kind registry (:data:`KINDS`, :class:`ModelKind`) and the entry points for
every kind: :func:`train`, :func:`resume`, :func:`load_model`, :func:`load_checkpoint`,
:func:`default_config`.
``config``: :class:`TrainConfig`, :class:`StageConfig` and the defaults of TF and its full
variant; ``loop``: their stage-wise or joint run; ``standard``: the standard transformer's run.
``history``: :class:`History`, :class:`TrainResult` and the :class:`TrainingHistory` protocol
every kind's history follows; ``checkpoint``: the checkpoint file format and its validation.
``summary``: :func:`learned_summary`, what a run learned (one schema for every consumer).
``parameters``: the copier's parameters logged at the history's rows
(:func:`copier_parameter_callback`) and read back (:func:`parameter_trajectories`).
"""

from numerics.training.checkpoint import HistoryRecord, save_checkpoint
from numerics.training.config import (
    DEFAULT_LOG_POINTS,
    DTYPES,
    FULL_BATCH,
    FULL_JOINT_DEFAULTS,
    FULL_REFERENCE,
    FULL_SEQUENCES,
    FULL_STAGEWISE_DEFAULTS,
    JOINT_DEFAULTS,
    MAX_LEARNING_RATE,
    MODES,
    OPTIMIZERS,
    PARAMS,
    STAGEWISE_DEFAULTS,
    StageConfig,
    TrainConfig,
    full_config,
    full_rate_scale,
    log_steps,
    simplified_config,
)
from numerics.training.history import History, TrainingHistory, TrainResult
from numerics.training.kinds import (
    KIND_NAMES,
    KINDS,
    ModelKind,
    checkpoint_kind,
    default_config,
    get_kind,
    kind_of,
    load_checkpoint,
    load_model,
    resume,
    train,
    validate_checkpoint,
)
from numerics.training.loop import EXPLOSION_NATS
from numerics.training.parameters import (
    PARAMETERS_KEY,
    copier_parameter_callback,
    copier_parameters,
    parameter_trajectories,
    run_parameters,
)
from numerics.training.standard import StandardHistory, StandardTrainConfig, probe_callback
from numerics.training.summary import learned_summary

__all__ = ["PARAMS", "MODES", "OPTIMIZERS", "DTYPES", "DEFAULT_LOG_POINTS", "STAGEWISE_DEFAULTS",
           "JOINT_DEFAULTS", "MAX_LEARNING_RATE", "EXPLOSION_NATS", "StageConfig", "TrainConfig",
           "default_config", "simplified_config", "full_config", "log_steps", "TrainResult",
           "train", "resume", "load_model", "History", "HistoryRecord", "TrainingHistory",
           "save_checkpoint", "load_checkpoint", "validate_checkpoint", "learned_summary",
           "StandardTrainConfig", "StandardHistory", "FULL_STAGEWISE_DEFAULTS",
           "FULL_JOINT_DEFAULTS", "FULL_SEQUENCES", "FULL_BATCH", "FULL_REFERENCE",
           "full_rate_scale", "KINDS", "KIND_NAMES", "ModelKind", "get_kind", "kind_of",
           "checkpoint_kind", "probe_callback", "PARAMETERS_KEY", "copier_parameters",
           "copier_parameter_callback", "parameter_trajectories", "run_parameters"]
