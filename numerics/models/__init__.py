"""Models: the paper's simplified transformer TF(M, H, d, D) and its dense reference.

``simplified``: :class:`InductionHeadModel`, vectorised over sequences and positions.
``reference``: :func:`dense_forward` / :func:`dense_loss`, the obviously-correct O(n·L²) twin
the tests and the benchmark compare it with.
"""

from numerics.models.reference import dense_forward, dense_loss
from numerics.models.simplified import (
    LOSS_FLOOR,
    LOSS_KINDS,
    CopierInputs,
    InductionHeadModel,
    prepare_inputs,
)

__all__ = ["InductionHeadModel", "CopierInputs", "prepare_inputs", "LOSS_FLOOR", "LOSS_KINDS",
           "dense_forward", "dense_loss"]
