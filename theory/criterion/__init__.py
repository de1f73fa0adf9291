"""The selection criterion and what decides with it (docs/theory.md §3).

Per-kernel values of ``G`` and the χ² mutual information, floats and exact (``values``); phase
boundaries of one-parameter kernel families (``families``, ``boundaries``); Monte Carlo
estimates under a source, the finite-length ``G_L`` and ``G_L`` at a given copier
(``estimates``); stage 1 on one training sample (``training_sample``); the initial copier mass
above which stage 1 selects ``S*`` (``threshold``).

Layer 3: imports the floor, :mod:`theory.sources` and :mod:`theory.predictors`.
"""

from theory.criterion.boundaries import (
    SAME_ROOT_GAP,
    Boundary,
    Phase,
    certified_sign,
    criterion_functions,
    family_criteria,
    first_order_binary_gaps,
    phase_boundaries,
    phase_diagram,
    ranking_at,
)
from theory.criterion.estimates import (
    DECIDABLE_Z,
    MC_KERNEL_FLOOR,
    CriterionEstimate,
    copier_criterion,
    expected_criterion,
    finite_length_criterion,
    sample_until_decided,
    signal_from_similarity,
    stage1_signal,
)
from theory.criterion.families import (
    BINARY_PARITY_FAMILY,
    TWO_PARENT_FAMILY,
    KernelFamily,
    blend_kernel,
    check_family_value,
    kernel_at,
    kernel_exact_at,
    on_parent,
    source_at,
)
from theory.criterion.threshold import (
    DEFAULT_MASSES,
    MassThreshold,
    mass_attention,
    stage1_mass_threshold,
)
from theory.criterion.training_sample import (
    SampleSelection,
    sample_criterion,
    sample_curvature,
    selector_descent,
    stage1_on_sample,
)
from theory.criterion.values import (
    CRITERION_KINDS,
    check_head_set,
    chi2_mutual_information,
    chi2_mutual_information_exact,
    criterion_from_joint,
    criterion_values,
    law_window,
    modified_chi2,
    modified_chi2_exact,
    symbolic_criterion,
)

__all__ = [
    "DECIDABLE_Z",
    "modified_chi2",
    "chi2_mutual_information",
    "criterion_values",
    "modified_chi2_exact",
    "chi2_mutual_information_exact",
    "symbolic_criterion",
    "CRITERION_KINDS",
    "check_head_set",
    "law_window",
    "criterion_from_joint",
    "KernelFamily",
    "blend_kernel",
    "on_parent",
    "check_family_value",
    "kernel_at",
    "kernel_exact_at",
    "source_at",
    "BINARY_PARITY_FAMILY",
    "TWO_PARENT_FAMILY",
    "Boundary",
    "Phase",
    "family_criteria",
    "criterion_functions",
    "phase_boundaries",
    "phase_diagram",
    "ranking_at",
    "certified_sign",
    "first_order_binary_gaps",
    "SAME_ROOT_GAP",
    "MC_KERNEL_FLOOR",
    "CriterionEstimate",
    "expected_criterion",
    "stage1_signal",
    "finite_length_criterion",
    "copier_criterion",
    "sample_until_decided",
    "signal_from_similarity",
    "SampleSelection",
    "sample_criterion",
    "sample_curvature",
    "selector_descent",
    "stage1_on_sample",
    "DEFAULT_MASSES",
    "MassThreshold",
    "mass_attention",
    "stage1_mass_threshold",
]
