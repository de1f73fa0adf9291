"""Sources and their laws: what a training sequence is drawn from (docs/theory.md §1).

Priors over kernels (``priors``), the JSON-backed specs of a source and of the model
(``spec``), kernels drawn from a prior (``kernels``), token sequences (``sequences``), and the
stationary window law of a kernel in floats (``stationary``) and exactly (``stationary_exact``),
and the named settings of the literature (``presets``).

Layer 1: imports only the floor (``errors``, ``validation``, ``notation``, ``sizes``).
"""

from theory.sources.kernels import (
    check_structures,
    expand_component,
    kernel_atoms,
    mean_kernel,
    sample_kernels,
    sample_structures,
)
from theory.sources.presets import PRESET_KEYS, PRESETS, Preset, preset
from theory.sources.priors import (
    COMPONENT_KEYS,
    MIN_ALPHA,
    STOCHASTIC_ATOL,
    SWITCHING_COMPONENT_KEYS,
    Dirichlet,
    FiniteMixture,
    Fixed,
    Mixture,
    MixtureComponent,
    Prior,
    Switching,
    SwitchingComponent,
    check_parents,
    dirichlet_rows,
    structure_parents,
    structure_weights,
)
from theory.sources.sequences import (
    START_MODES,
    sample_sequences_np,
)
from theory.sources.spec import (
    MODEL_KEYS,
    PAPER_MODEL,
    PAPER_SOURCE,
    PRIOR_KEYS,
    SOURCE_KEYS,
    WEAK_PARENT_SOURCE,
    ModelSpec,
    Source,
    head_sets,
    load_source,
)
from theory.sources.stationary import (
    PRIMITIVITY_ATOL,
    SOLVE_COND_MAX,
    check_window,
    extend_law,
    is_primitive,
    marginal,
    require_primitive,
    transition_matrix,
    window_law,
)
from theory.sources.stationary_exact import (
    as_exact_kernel,
    symbolic_window_law,
    window_law_exact,
    window_law_field,
)

__all__ = [
    "Dirichlet",
    "Fixed",
    "MixtureComponent",
    "Mixture",
    "Switching",
    "SwitchingComponent",
    "FiniteMixture",
    "SWITCHING_COMPONENT_KEYS",
    "structure_weights",
    "structure_parents",
    "dirichlet_rows",
    "Prior",
    "STOCHASTIC_ATOL",
    "COMPONENT_KEYS",
    "MIN_ALPHA",
    "check_parents",
    "Source",
    "ModelSpec",
    "head_sets",
    "load_source",
    "PAPER_SOURCE",
    "WEAK_PARENT_SOURCE",
    "PAPER_MODEL",
    "SOURCE_KEYS",
    "PRIOR_KEYS",
    "MODEL_KEYS",
    "sample_kernels",
    "sample_structures",
    "check_structures",
    "mean_kernel",
    "expand_component",
    "kernel_atoms",
    "START_MODES",
    "sample_sequences_np",
    "Preset",
    "PRESETS",
    "PRESET_KEYS",
    "preset",
    "PRIMITIVITY_ATOL",
    "SOLVE_COND_MAX",
    "transition_matrix",
    "is_primitive",
    "window_law",
    "marginal",
    "check_window",
    "extend_law",
    "require_primitive",
    "as_exact_kernel",
    "window_law_field",
    "window_law_exact",
    "symbolic_window_law",
]
