"""theory: closed forms of the limiting model (sympy, numpy, scipy; never torch).

Sub-packages by concept, in layers: a module imports only from its own layer or lower ones, so
there are no import cycles and a lower layer never needs a higher one.

0. The floor (plain modules): ``errors`` (InductionHeadsError, ``require``), ``exits`` (how
   both command lines end: statuses, Ctrl-C, a closed stdout), ``validation``
   (input checkers), ``notation`` (head-set labels), ``sizes`` (memory and count limits),
   ``work`` (time limits of the Monte Carlo and the solves).
1. ``theory.sources``: priors, the source and model specs, kernels, sequences, stationary laws.
2. ``theory.predictors``: probability checks, reference predictors, per-position predictors,
   Bayes predictives, TF's copier at a given attention.
3. ``theory.criterion``: the selection criterion per kernel, phase boundaries, Monte Carlo
   estimates, stage 1 on a training sample, the initial copier mass threshold.
4. ``theory.dynamics``: reduced dynamics, the official code's loss, the optimal temperature.
5. ``theory.limit``: rankings, the predicted limit, the set a training run must reach.
6. ``theory.cli_references``: the text and JSON of ``python -m theory references``; then the
   command line (``__main__``) and this package face.

Public API (everything listed in ``__all__``), by module:

Specs shared with ``numerics`` (``sources.spec``, priors in ``sources.priors``, errors in
``errors``):
    Source, Dirichlet, Fixed, Mixture, MixtureComponent, Switching, SwitchingComponent,
    FiniteMixture, structure_weights, structure_parents, ModelSpec, head_sets, load_source,
    PAPER_SOURCE, WEAK_PARENT_SOURCE, PAPER_MODEL, InductionHeadsError; head-set notation (``notation``):
    head_set_label, parse_head_set_label.
Kernels and sequences (numpy; ``sources.kernels``, ``sources.sequences``):
    sample_kernels, sample_structures, mean_kernel, kernel_atoms, sample_sequences_np; the
    literature's settings by name (``sources.presets``): Preset, PRESETS, preset; their reference
    losses (``predictors.reference_losses``): reference_losses, ReferenceLosses, ReferenceLoss.
Stationary laws (float ``sources.stationary``, exact/symbolic ``sources.stationary_exact``):
    window_law, marginal; window_law_exact.
Selection criterion (docs/theory.md §3; per kernel ``criterion.values``, estimates
``criterion.estimates``):
    modified_chi2, chi2_mutual_information (+ ``_exact``), symbolic_criterion, criterion_values;
    CriterionEstimate, expected_criterion, stage1_signal, finite_length_criterion,
    copier_criterion, sample_until_decided (adaptive Monte Carlo).
Phase boundaries of one-parameter kernel families (``criterion.families``,
``criterion.boundaries``, sympy):
    KernelFamily, family_criteria, phase_boundaries, phase_diagram, ranking_at, certified_sign,
    first_order_binary_gaps, Boundary, Phase; BINARY_PARITY_FAMILY, TWO_PARENT_FAMILY; one's own
    family's kernel: on_parent, blend_kernel; a family at one value: kernel_at, kernel_exact_at,
    source_at.
The copier at a given attention (``predictors.copier``; the initial copier of stage 1, §3.7):
    copier_attention, exact_attention, head_similarity, soft_context_similarity; the initial
    copier mass above which stage 1 selects S* (``criterion.threshold``): stage1_mass_threshold,
    MassThreshold, mass_attention; stage 1 on one training sample
    (``criterion.training_sample``): stage1_on_sample, sample_criterion, sample_curvature,
    SampleSelection.
Reference predictors (``predictors.reference``; the exact copier similarity
``context_similarity``):
    context_similarity, gih_predict, bayes_predict, oracle_predict, prediction_loss,
    per_sequence_loss, gih_loss_and_grad, optimal_temperature, LOSS_FLOOR; the Bayes predictive
    of every prior (``predictors.bayes``): bayes_predict_prior, bayes_predict_prior_positions,
    mixture_bayes_smc, bayes_predict_importance, needs_monte_carlo, MonteCarloPredictive,
    DEFAULT_PARTICLES; the posterior over per-sequence structures, its exact predictive and the
    predictor told each sequence's structure (``predictors.structures``): structure_posterior,
    bayes_predict_structures, bayes_predict_structures_positions, oracle_structure_predict,
    oracle_structure_predict_positions.
Finite-L optimal temperature and stage 3 (``dynamics.temperature``):
    optimal_temperature_law, expected_optimal_temperature, TemperatureEstimate,
    predict_trained_temperature.
Reduced dynamics (``dynamics.replicator``; the official code's loss in ``dynamics.official``):
    replicator_trajectory, replicator_closed_form, temperature_trajectory, log_growth,
    growth_coefficient; official_gih_loss_and_grad, official_temperature_trajectory.
The full model's first selector move, ``-∂ℓ/∂C_S`` at initialisation (``dynamics.first_move``,
docs/theory.md §7):
    FullIngredients, OFFICIAL_FULL_INGREDIENTS, LIBRARY_FULL_INGREDIENTS, FirstMove,
    predict_first_move, first_move_signal, full_head_similarity.
The selector at a finite temperature (``dynamics.finite_temperature``, ``dynamics.selection_path``,
docs/theory.md §3):
    gih_losses, TemperatureLosses, selector_growth, selector_fitness,
    small_temperature_expansion, set_counts, selection_path, SelectionPath, Switch;
    the split selector between two sets (``dynamics.coexistence``): edge_rest_point,
    EdgeRestPoint.
The copier stage in its finite steps (docs/theory.md §3.3): the copier's gradient at the
reached selector (``dynamics.copier_gradient``) and the stage's trajectory on a fixed sample
(``dynamics.copier_stage``):
    CopierGradient, CopierStage, copier_gradient, copier_stage_on_sample, predict_copier_stage.
Per-position predictors (``predictors.positional``) and probability checks
(``predictors.probabilities``):
    gih_predict_positions, bayes_predict_positions, oracle_predict_positions,
    unigram_predict_positions, valid_positions, ADDITIVE_SMOOTHING; check_probabilities.
Size limits (``sizes``; input checkers live in ``validation``) and time limits (``work``):
    MEMORY_LIMIT_ENV, DEFAULT_MEMORY_LIMIT_GIB, MAX_HEAD_SETS, MAX_EXACT_STATES,
    memory_limit_bytes; TIME_LIMIT_ENV, DEFAULT_TIME_LIMIT_S, time_limit_seconds.
The limit (``limit.prediction``, one ranking in ``limit.ranking``):
    predict_limit, LimitPrediction, Ranking, UNTOUCHED, DECIDABLE_Z; the set a training run
    must reach (``limit.target``): training_target, joint_target, ends_split, target_note, TrainingTarget,
    SAMPLE_SETTLED, TARGET_BASES.
"""

from theory.exits import install_startup_interrupts as _install_startup_interrupts

# ``python -m theory`` and ``python -m numerics`` import this package first; the imports below
# take seconds (theory.exits).
_install_startup_interrupts()

from theory.criterion.boundaries import (
    Boundary,
    Phase,
    certified_sign,
    family_criteria,
    first_order_binary_gaps,
    phase_boundaries,
    phase_diagram,
    ranking_at,
)
from theory.criterion.estimates import (
    CriterionEstimate,
    copier_criterion,
    expected_criterion,
    finite_length_criterion,
    sample_until_decided,
    stage1_signal,
)
from theory.criterion.families import (
    BINARY_PARITY_FAMILY,
    TWO_PARENT_FAMILY,
    KernelFamily,
    blend_kernel,
    kernel_at,
    kernel_exact_at,
    on_parent,
    source_at,
)
from theory.criterion.threshold import MassThreshold, mass_attention, stage1_mass_threshold
from theory.criterion.training_sample import (
    SampleSelection,
    sample_criterion,
    sample_curvature,
    stage1_on_sample,
)
from theory.criterion.values import (
    chi2_mutual_information,
    chi2_mutual_information_exact,
    criterion_values,
    modified_chi2,
    modified_chi2_exact,
    symbolic_criterion,
)
from theory.dynamics.coexistence import EdgeRestPoint, edge_rest_point
from theory.dynamics.copier_gradient import CopierGradient, copier_gradient
from theory.dynamics.copier_stage import CopierStage, copier_stage_on_sample, predict_copier_stage
from theory.dynamics.finite_temperature import (
    TemperatureLosses,
    gih_losses,
    selector_fitness,
    selector_growth,
    set_counts,
    small_temperature_expansion,
)
from theory.dynamics.first_move import (
    LIBRARY_FULL_INGREDIENTS,
    OFFICIAL_FULL_INGREDIENTS,
    FirstMove,
    FullIngredients,
    first_move_signal,
    full_head_similarity,
    predict_first_move,
)
from theory.dynamics.joint_path import JointPath, predict_joint_path
from theory.dynamics.official import official_gih_loss_and_grad, official_temperature_trajectory
from theory.dynamics.replicator import (
    growth_coefficient,
    log_growth,
    replicator_closed_form,
    replicator_trajectory,
    temperature_trajectory,
)
from theory.dynamics.selection_path import SelectionPath, Switch, selection_path
from theory.dynamics.temperature import (
    TemperatureEstimate,
    expected_optimal_temperature,
    optimal_temperature_law,
    predict_trained_temperature,
)
from theory.errors import InductionHeadsError
from theory.limit.prediction import DECIDABLE_Z, UNTOUCHED, LimitPrediction, predict_limit
from theory.limit.ranking import Ranking
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
from theory.notation import head_set_label, parse_head_set_label
from theory.predictors.bayes import (
    DEFAULT_PARTICLES,
    MonteCarloPredictive,
    bayes_predict_importance,
    bayes_predict_prior,
    bayes_predict_prior_positions,
    mixture_bayes_smc,
    needs_monte_carlo,
)
from theory.predictors.copier import (
    copier_attention,
    exact_attention,
    head_similarity,
    soft_context_similarity,
)
from theory.predictors.positional import (
    ADDITIVE_SMOOTHING,
    bayes_predict_positions,
    gih_predict_positions,
    oracle_predict_positions,
    unigram_predict_positions,
    valid_positions,
)
from theory.predictors.probabilities import check_probabilities
from theory.predictors.reference import (
    LOSS_FLOOR,
    bayes_predict,
    context_similarity,
    gih_loss_and_grad,
    gih_predict,
    optimal_temperature,
    oracle_predict,
    per_sequence_loss,
    prediction_loss,
)
from theory.predictors.reference_losses import ReferenceLoss, ReferenceLosses, reference_losses
from theory.predictors.structures import (
    bayes_predict_structures,
    bayes_predict_structures_positions,
    oracle_structure_predict,
    oracle_structure_predict_positions,
    structure_posterior,
)
from theory.sizes import (
    DEFAULT_MEMORY_LIMIT_GIB,
    MAX_EXACT_STATES,
    MAX_HEAD_SETS,
    MEMORY_LIMIT_ENV,
    memory_limit_bytes,
)
from theory.sources.kernels import kernel_atoms, mean_kernel, sample_kernels, sample_structures
from theory.sources.presets import PRESETS, Preset, preset
from theory.sources.priors import (
    Dirichlet,
    FiniteMixture,
    Fixed,
    Mixture,
    MixtureComponent,
    Switching,
    SwitchingComponent,
    structure_parents,
    structure_weights,
)
from theory.sources.sequences import sample_sequences_np
from theory.sources.spec import (
    PAPER_MODEL,
    PAPER_SOURCE,
    WEAK_PARENT_SOURCE,
    ModelSpec,
    Source,
    head_sets,
    load_source,
)
from theory.sources.stationary import marginal, window_law
from theory.sources.stationary_exact import window_law_exact
from theory.work import DEFAULT_TIME_LIMIT_S, TIME_LIMIT_ENV, time_limit_seconds

LAYERS = (("errors", "exits"), ("validation",), ("notation", "sizes"), ("work",), ("sources",),
          ("predictors",), ("criterion",), ("dynamics",), ("limit",), ("cli_references",),
          ("__main__", "<package>"))
"""The layers of the package docstring, lowest first, as module and sub-package names (the
floor split in four: ``errors`` and ``exits``, then ``validation``, then the modules that use both, then
``work``, which reads ``sizes``; the text of the command line's ``references``, then the command
line and the package face on top);
``tests/integration/test_layers.py`` reads the import graph against them."""

__all__ = [
    "LAYERS",
    "InductionHeadsError",
    "Source",
    "Dirichlet",
    "Fixed",
    "Mixture",
    "MixtureComponent",
    "Switching",
    "SwitchingComponent",
    "FiniteMixture",
    "structure_weights",
    "structure_parents",
    "ModelSpec",
    "head_sets",
    "head_set_label",
    "parse_head_set_label",
    "load_source",
    "PAPER_SOURCE",
    "WEAK_PARENT_SOURCE",
    "PAPER_MODEL",
    "sample_kernels",
    "sample_structures",
    "mean_kernel",
    "kernel_atoms",
    "sample_sequences_np",
    "Preset",
    "PRESETS",
    "preset",
    "ReferenceLoss",
    "ReferenceLosses",
    "reference_losses",
    "window_law",
    "window_law_exact",
    "marginal",
    "modified_chi2",
    "modified_chi2_exact",
    "chi2_mutual_information",
    "chi2_mutual_information_exact",
    "symbolic_criterion",
    "criterion_values",
    "CriterionEstimate",
    "expected_criterion",
    "stage1_signal",
    "finite_length_criterion",
    "copier_criterion",
    "sample_until_decided",
    "KernelFamily",
    "family_criteria",
    "phase_boundaries",
    "phase_diagram",
    "ranking_at",
    "certified_sign",
    "first_order_binary_gaps",
    "Boundary",
    "Phase",
    "BINARY_PARITY_FAMILY",
    "TWO_PARENT_FAMILY",
    "on_parent",
    "blend_kernel",
    "kernel_at",
    "kernel_exact_at",
    "source_at",
    "stage1_on_sample",
    "sample_criterion",
    "sample_curvature",
    "SampleSelection",
    "bayes_predict_prior",
    "bayes_predict_prior_positions",
    "mixture_bayes_smc",
    "bayes_predict_importance",
    "needs_monte_carlo",
    "structure_posterior",
    "bayes_predict_structures",
    "bayes_predict_structures_positions",
    "oracle_structure_predict",
    "oracle_structure_predict_positions",
    "MonteCarloPredictive",
    "DEFAULT_PARTICLES",
    "optimal_temperature_law",
    "expected_optimal_temperature",
    "TemperatureEstimate",
    "predict_trained_temperature",
    "stage1_mass_threshold",
    "MassThreshold",
    "mass_attention",
    "copier_attention",
    "exact_attention",
    "head_similarity",
    "soft_context_similarity",
    "context_similarity",
    "gih_predict",
    "bayes_predict",
    "oracle_predict",
    "prediction_loss",
    "per_sequence_loss",
    "gih_loss_and_grad",
    "optimal_temperature",
    "LOSS_FLOOR",
    "replicator_trajectory",
    "replicator_closed_form",
    "temperature_trajectory",
    "log_growth",
    "growth_coefficient",
    "official_gih_loss_and_grad",
    "official_temperature_trajectory",
    "FullIngredients",
    "OFFICIAL_FULL_INGREDIENTS",
    "LIBRARY_FULL_INGREDIENTS",
    "FirstMove",
    "predict_first_move",
    "gih_losses",
    "TemperatureLosses",
    "selector_growth",
    "selector_fitness",
    "small_temperature_expansion",
    "set_counts",
    "selection_path",
    "SelectionPath",
    "Switch",
    "predict_joint_path",
    "JointPath",
    "edge_rest_point",
    "EdgeRestPoint",
    "first_move_signal",
    "full_head_similarity",
    "CopierGradient",
    "CopierStage",
    "copier_gradient",
    "copier_stage_on_sample",
    "predict_copier_stage",
    "gih_predict_positions",
    "bayes_predict_positions",
    "oracle_predict_positions",
    "unigram_predict_positions",
    "valid_positions",
    "ADDITIVE_SMOOTHING",
    "check_probabilities",
    "MEMORY_LIMIT_ENV",
    "DEFAULT_MEMORY_LIMIT_GIB",
    "MAX_HEAD_SETS",
    "MAX_EXACT_STATES",
    "memory_limit_bytes",
    "TIME_LIMIT_ENV",
    "DEFAULT_TIME_LIMIT_S",
    "time_limit_seconds",
    "predict_limit",
    "LimitPrediction",
    "UNTOUCHED",
    "DECIDABLE_Z",
    "Ranking",
    "TrainingTarget",
    "training_target",
    "joint_target",
    "ends_split",
    "JOINT_SETTLED",
    "target_note",
    "SAMPLE_SETTLED",
    "TARGET_BASES",
]
