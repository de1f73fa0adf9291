"""numerics: the data generator, the paper's transformer TF(M, H, d, D), its training and the
verification job (torch).

Sub-packages: ``models`` (TF, its full variant, a standard transformer, the dense reference),
``training`` (the model-kind registry, configs, the run loops, checkpoints, summaries), ``probing`` (any model against the
predicted limit), ``verify`` (predict, train, check, report),
``experiments`` (what the notebooks run), ``cli`` (``python -m numerics``). The specs are shared
with ``theory`` and re-exported here.
"""

from theory.exits import install_startup_interrupts as _install_startup_interrupts

# ``python -m numerics``: the imports below take seconds (theory.exits).
_install_startup_interrupts()

from numerics.bench import BenchResult, StandardBenchResult, benchmark_standard_step, benchmark_step
from numerics.data import (
    START_MODES,
    draw_kernels,
    draw_structures,
    sample_sequences,
    split_context,
)
from numerics.devices import resolve_device
from numerics.models import (
    LOSS_FLOOR,
    LOSS_KINDS,
    OFFICIAL_FULL_OPTIONS,
    FullInductionHeadModel,
    InductionHeadModel,
    StandardSpec,
    StandardTransformer,
    dense_forward,
    dense_loss,
)
from numerics.probing import ProbeReport, attention_taps, from_hf, from_lens, from_logits, probe
from numerics.training import (
    KINDS,
    History,
    ModelKind,
    StageConfig,
    TrainConfig,
    TrainingHistory,
    TrainResult,
    default_config,
    get_kind,
    learned_summary,
    load_checkpoint,
    load_model,
    resume,
    train,
)
from numerics.verify import (
    Check,
    VerifyReport,
    format_report,
    heldout_losses,
    load_report,
    model_probabilities,
    verify_case,
    write_report,
)
from theory.errors import InductionHeadsError
from theory.sources.spec import (
    PAPER_MODEL,
    PAPER_SOURCE,
    Dirichlet,
    FiniteMixture,
    Fixed,
    Mixture,
    MixtureComponent,
    ModelSpec,
    Source,
    Switching,
    SwitchingComponent,
    head_sets,
    load_source,
)

__all__ = [
    # specs shared with theory
    "InductionHeadsError", "Source", "Dirichlet", "Fixed", "Mixture", "MixtureComponent",
    "Switching", "SwitchingComponent", "FiniteMixture", "ModelSpec", "head_sets", "load_source", "PAPER_SOURCE", "PAPER_MODEL",
    # data
    "sample_sequences", "draw_kernels", "draw_structures", "split_context", "START_MODES",
    # the model
    "InductionHeadModel", "LOSS_FLOOR", "LOSS_KINDS", "dense_forward", "dense_loss",
    "FullInductionHeadModel", "OFFICIAL_FULL_OPTIONS", "StandardSpec", "StandardTransformer",
    "resolve_device",
    # training
    "StageConfig", "TrainConfig", "TrainResult", "default_config", "train", "resume",
    "History", "TrainingHistory", "learned_summary", "load_checkpoint", "load_model",
    # the model kinds
    "KINDS", "ModelKind", "get_kind",
    # verification
    "verify_case", "VerifyReport", "Check", "write_report", "load_report", "format_report",
    "model_probabilities", "heldout_losses",
    # reading any model against the predicted limit
    "probe", "ProbeReport", "from_logits", "attention_taps", "from_hf", "from_lens",
    # benchmark
    "BenchResult", "benchmark_step", "StandardBenchResult", "benchmark_standard_step",
]
