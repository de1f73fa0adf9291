"""Predictors over a context: references, per-position forms, Bayes, and TF's copier.

Probability checks (``probabilities``); the reference predictors, the exact copier similarity
and the GIH loss (``reference``); their per-position forms (``positional``); the posterior over
per-sequence structures, its exact Bayes predictive and the oracle structure (``structures``);
the Bayes predictive of every prior (``bayes``); the copier at a given attention, the similarity
stage 1 of training sees (``copier``); the cross-entropy of every reference on held-out sequences
of a source or preset (``reference_losses``).

Layer 2: imports the floor and :mod:`theory.sources`.
"""

from theory.predictors.bayes import (
    DEFAULT_PARTICLES,
    RESAMPLE_ESS_FRACTION,
    MonteCarloPredictive,
    bayes_predict_importance,
    bayes_predict_prior,
    bayes_predict_prior_positions,
    mixture_bayes_smc,
    needs_monte_carlo,
)
from theory.predictors.copier import (
    ATTENTION_SUM_ATOL,
    check_attention,
    copier_attention,
    exact_attention,
    head_similarity,
    set_similarity,
    soft_context_similarity,
)
from theory.predictors.positional import (
    ADDITIVE_SMOOTHING,
    bayes_predict_positions,
    first_valid_position,
    gih_from_counts,
    gih_predict_positions,
    last_match_counts,
    match_counts,
    oracle_predict_positions,
    unigram_predict_positions,
    valid_positions,
)
from theory.predictors.probabilities import (
    LOGIT_HINT_GAP,
    PROB_SUM_ATOL,
    check_probabilities,
)
from theory.predictors.reference import (
    LOSS_FLOOR,
    TEMPERATURE_XATOL,
    bayes_predict,
    check_context,
    check_offsets,
    check_oracle_inputs,
    check_targets,
    context_similarity,
    gih_loss_and_grad,
    gih_objective,
    gih_predict,
    optimal_temperature,
    oracle_predict,
    per_sequence_loss,
    prediction_loss,
)
from theory.predictors.reference_losses import (
    ReferenceLoss,
    ReferenceLosses,
    ngram_name,
    ngram_sets,
    reference_losses,
    reference_smoothing,
)
from theory.predictors.structures import (
    bayes_predict_structures,
    bayes_predict_structures_positions,
    check_source_tokens,
    has_structure_predictives,
    oracle_structure_predict,
    oracle_structure_predict_positions,
    structure_posterior,
)

__all__ = [
    "PROB_SUM_ATOL",
    "LOGIT_HINT_GAP",
    "check_probabilities",
    "LOSS_FLOOR",
    "TEMPERATURE_XATOL",
    "context_similarity",
    "gih_predict",
    "bayes_predict",
    "oracle_predict",
    "prediction_loss",
    "per_sequence_loss",
    "gih_objective",
    "gih_loss_and_grad",
    "optimal_temperature",
    "check_context",
    "check_offsets",
    "check_oracle_inputs",
    "check_targets",
    "ADDITIVE_SMOOTHING",
    "first_valid_position",
    "valid_positions",
    "match_counts",
    "last_match_counts",
    "gih_from_counts",
    "gih_predict_positions",
    "bayes_predict_positions",
    "unigram_predict_positions",
    "oracle_predict_positions",
    "check_source_tokens",
    "has_structure_predictives",
    "structure_posterior",
    "bayes_predict_structures",
    "bayes_predict_structures_positions",
    "oracle_structure_predict",
    "oracle_structure_predict_positions",
    "DEFAULT_PARTICLES",
    "RESAMPLE_ESS_FRACTION",
    "MonteCarloPredictive",
    "needs_monte_carlo",
    "bayes_predict_prior",
    "bayes_predict_prior_positions",
    "mixture_bayes_smc",
    "bayes_predict_importance",
    "ATTENTION_SUM_ATOL",
    "copier_attention",
    "exact_attention",
    "check_attention",
    "head_similarity",
    "set_similarity",
    "soft_context_similarity",
    "ReferenceLoss",
    "ReferenceLosses",
    "reference_losses",
    "reference_smoothing",
    "ngram_name",
    "ngram_sets",
]
