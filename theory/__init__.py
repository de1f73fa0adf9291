"""theory: closed forms of the limiting model (sympy, numpy, scipy; never torch).

Public API (everything listed in ``__all__``):

Specs shared with ``numerics``:
    Source, Dirichlet, Fixed, Mixture, MixtureComponent, ModelSpec, head_sets, load_source,
    PAPER_SOURCE, PAPER_MODEL, InductionHeadsError.
Kernels:
    sample_kernels, mean_kernel.
"""

from theory.errors import InductionHeadsError
from theory.kernels import mean_kernel, sample_kernels
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
    "sample_kernels",
    "mean_kernel",
]
