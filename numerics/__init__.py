"""numerics: the data generator, the paper's transformer TF(M, H, d, D) and its training (torch).

The specs are shared with ``theory`` and re-exported here.
"""

from numerics.bench import BenchResult, benchmark_step
from numerics.checkpoint import History, HistoryRecord, load_checkpoint, save_checkpoint
from numerics.data import START_MODES, draw_kernels, sample_sequences, split_context
from numerics.model import LOSS_FLOOR, LOSS_KINDS, CopierInputs, InductionHeadModel, prepare_inputs
from numerics.reference import dense_forward, dense_loss
from numerics.train import (
    StageConfig,
    TrainConfig,
    TrainResult,
    default_config,
    log_steps,
    resolve_device,
    resume,
    train,
)
from theory.errors import InductionHeadsError
from theory.spec import (
    PAPER_MODEL,
    PAPER_SOURCE,
    Dirichlet,
    Fixed,
    Mixture,
    MixtureComponent,
    ModelSpec,
    Source,
    head_sets,
    load_source,
)

__all__ = [
    "InductionHeadsError",
    "Source",
    "Dirichlet",
    "Fixed",
    "Mixture",
    "MixtureComponent",
    "ModelSpec",
    "head_sets",
    "load_source",
    "PAPER_SOURCE",
    "PAPER_MODEL",
    "sample_sequences",
    "draw_kernels",
    "split_context",
    "START_MODES",
    "InductionHeadModel",
    "CopierInputs",
    "prepare_inputs",
    "LOSS_FLOOR",
    "LOSS_KINDS",
    "dense_forward",
    "dense_loss",
    "StageConfig",
    "TrainConfig",
    "TrainResult",
    "default_config",
    "train",
    "resume",
    "log_steps",
    "resolve_device",
    "History",
    "HistoryRecord",
    "save_checkpoint",
    "load_checkpoint",
    "BenchResult",
    "benchmark_step",
]

# Issue 5: the verification (predict, train, check) and its report.
from numerics.verify import Check, VerifyReport, verify_case, write_report  # noqa: E402

__all__ += ["Check", "VerifyReport", "verify_case", "write_report"]
