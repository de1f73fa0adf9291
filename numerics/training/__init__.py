"""Training TF(M, H, d, D): configuration, the run loop, checkpoints and the logged history.

``config``: :class:`TrainConfig`, :class:`StageConfig`, :func:`default_config`.
``loop``: :func:`train`, :func:`resume`, :class:`TrainResult`.
``history``: :class:`History`, the logged trajectory; ``checkpoint``: the checkpoint file format
and its validation.
``summary``: :func:`learned_summary`, what a run learned (one schema for every consumer).
"""

from numerics.training.checkpoint import (
    History,
    HistoryRecord,
    load_checkpoint,
    save_checkpoint,
    validate_checkpoint,
)
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
    MODELS,
    MODES,
    OPTIMIZERS,
    PARAMS,
    STAGEWISE_DEFAULTS,
    StageConfig,
    TrainConfig,
    default_config,
    full_rate_scale,
    log_steps,
)
from numerics.training.loop import EXPLOSION_NATS, TrainResult, load_model, resume, train
from numerics.training.standard import (
    StandardTrainConfig,
    load_standard,
    probe_callback,
    resume_standard,
    train_standard,
)
from numerics.training.summary import learned_summary

__all__ = ["PARAMS", "MODES", "OPTIMIZERS", "DTYPES", "DEFAULT_LOG_POINTS", "STAGEWISE_DEFAULTS",
           "JOINT_DEFAULTS", "MAX_LEARNING_RATE", "EXPLOSION_NATS", "StageConfig", "TrainConfig", "default_config", "log_steps",
           "TrainResult", "train", "resume", "load_model", "History", "HistoryRecord", "save_checkpoint",
           "load_checkpoint", "validate_checkpoint", "learned_summary", "StandardTrainConfig",
           "FULL_STAGEWISE_DEFAULTS", "FULL_JOINT_DEFAULTS", "FULL_SEQUENCES", "FULL_BATCH",
           "FULL_REFERENCE", "full_rate_scale",
           "MODELS",
           "train_standard", "resume_standard", "load_standard", "probe_callback"]
