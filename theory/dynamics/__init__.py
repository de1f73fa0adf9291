"""Reduced training dynamics and the temperature (docs/theory.md §4-5, §7).

The replicator flow of the selector and the temperature's growth (``replicator``), the official
code's loss (``official``), the finite-L optimal temperature of stage 3 (``temperature``), and
the full model's first selector move, ``-∂ℓ/∂C_S`` at initialisation (``first_move``), the
selector at a finite temperature (``finite_temperature``) and the set it favours along a
temperature grid (``selection_path``), with the split selector between two mutually invading
sets (``coexistence``); the copier's gradient at a frozen selector (``copier_gradient``) and the
copier stage in the steps it is given (``copier_stage``).

Layer 4: imports the floor, :mod:`theory.sources`, :mod:`theory.predictors` and
:mod:`theory.criterion`.
"""

from theory.dynamics.coexistence import EDGE_STEP, EDGE_XTOL, EdgeRestPoint, edge_rest_point
from theory.dynamics.copier_gradient import (
    COPIER_GRADIENT_CHUNK,
    CopierGradient,
    CopierSample,
    check_selector_weights,
    copier_gradient,
    copier_loss_gradient,
    copier_softmax,
    initial_logits,
)
from theory.dynamics.copier_stage import (
    COPIER_STAGE_GROUPS,
    CopierStage,
    copier_stage_on_sample,
    predict_copier_stage,
)
from theory.dynamics.finite_temperature import (
    TEMPERATURE_LOSS_KINDS,
    SetCounts,
    TemperatureLosses,
    check_temperatures,
    gih_losses,
    losses_from_counts,
    selector_fitness,
    selector_growth,
    set_counts,
    small_temperature_expansion,
    vertex_fitness,
)
from theory.dynamics.first_move import (
    FIRST_MOVE_ARRAYS,
    FIRST_MOVE_KIND,
    FIRST_MOVE_UNIT_S,
    LIBRARY_FULL_INGREDIENTS,
    LOSS_KINDS,
    NORMALIZATIONS,
    OFFICIAL_FULL_INGREDIENTS,
    FirstMove,
    FullIngredients,
    first_move_signal,
    full_head_similarity,
    predict_first_move,
)
from theory.dynamics.joint_path import (
    JOINT_GROUPS,
    JOINT_HOLD,
    JOINT_LEAD,
    JOINT_MARGIN,
    JointPath,
    JointSample,
    joint_loss_gradients,
    joint_path_on_sample,
    predict_joint_path,
    selector_leads,
)
from theory.dynamics.official import (
    official_gih_loss_and_grad,
    official_temperature_trajectory,
)
from theory.dynamics.replicator import (
    ODE_ATOL,
    ODE_RTOL,
    SIMPLEX_ATOL,
    growth_coefficient,
    log_growth,
    replicator_closed_form,
    replicator_trajectory,
    temperature_trajectory,
)
from theory.dynamics.selection_path import (
    PATH_CHUNK,
    PATH_UNIT_S,
    SelectionPath,
    Switch,
    selection_path,
)
from theory.dynamics.temperature import (
    DERIVATIVE_STEP,
    PSEUDO_COUNT_RANGE,
    SAMPLE_CHUNK,
    TAIL_START,
    TAIL_TERMS,
    TemperatureEstimate,
    count_loss_and_grad,
    expected_optimal_temperature,
    gih_counts,
    law_objective,
    optimal_temperature_law,
    predict_trained_temperature,
)

__all__ = [
    "ODE_RTOL",
    "growth_coefficient",
    "ODE_ATOL",
    "SIMPLEX_ATOL",
    "replicator_trajectory",
    "replicator_closed_form",
    "temperature_trajectory",
    "log_growth",
    "official_gih_loss_and_grad",
    "official_temperature_trajectory",
    "TAIL_START",
    "TAIL_TERMS",
    "PSEUDO_COUNT_RANGE",
    "DERIVATIVE_STEP",
    "SAMPLE_CHUNK",
    "TemperatureEstimate",
    "gih_counts",
    "count_loss_and_grad",
    "expected_optimal_temperature",
    "law_objective",
    "optimal_temperature_law",
    "predict_trained_temperature",
    "FIRST_MOVE_KIND",
    "FIRST_MOVE_ARRAYS",
    "FIRST_MOVE_UNIT_S",
    "LOSS_KINDS",
    "NORMALIZATIONS",
    "FullIngredients",
    "OFFICIAL_FULL_INGREDIENTS",
    "LIBRARY_FULL_INGREDIENTS",
    "FirstMove",
    "full_head_similarity",
    "first_move_signal",
    "predict_first_move",
    "TEMPERATURE_LOSS_KINDS",
    "SetCounts",
    "TemperatureLosses",
    "check_temperatures",
    "set_counts",
    "gih_losses",
    "losses_from_counts",
    "selector_fitness",
    "selector_growth",
    "vertex_fitness",
    "small_temperature_expansion",
    "PATH_CHUNK",
    "PATH_UNIT_S",
    "Switch",
    "SelectionPath",
    "selection_path",
    "EDGE_XTOL",
    "EDGE_STEP",
    "EdgeRestPoint",
    "edge_rest_point",
    "COPIER_GRADIENT_CHUNK",
    "CopierGradient",
    "CopierSample",
    "check_selector_weights",
    "copier_softmax",
    "initial_logits",
    "copier_loss_gradient",
    "copier_gradient",
    "COPIER_STAGE_GROUPS",
    "CopierStage",
    "copier_stage_on_sample",
    "predict_copier_stage",
    "JOINT_LEAD",
    "JOINT_HOLD",
    "JOINT_MARGIN",
    "JOINT_GROUPS",
    "selector_leads",
    "JointSample",
    "JointPath",
    "joint_loss_gradients",
    "joint_path_on_sample",
    "predict_joint_path",
]
