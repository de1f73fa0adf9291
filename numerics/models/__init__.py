"""Models: the paper's simplified transformer TF(M, H, d, D), its full variant, and a standard
GPT-style transformer.

``simplified``: :class:`InductionHeadModel`, vectorised over sequences and positions, on inputs
prepared once in one of four forms (``inputs``: :func:`prepare_inputs`; ``vectors`` and
``patterns`` hold two of the forms; ``costs``: the cost model :func:`input_form` ranks them by;
``copy_norm``: the copy's normalisation every form applies).
``reference``: :func:`dense_forward` / :func:`dense_loss`, the obviously-correct O(n·L²) twin
the tests and the benchmark compare it with.
``full``: :class:`FullInductionHeadModel`, the paper's full variant (docs/theory.md §7), trained
by the same stage-wise and joint trainer (:class:`TrainableModel` is the interface it needs); its
copier's forms (``full_copier``, ``full_patterns``) behind :func:`copier_head_similarity`
(``full_forms``, which picks one by cost) and its dense baseline in ``baseline``;
:data:`OFFICIAL_FULL_OPTIONS` makes it the authors' full model (``full_options``).
``standard``: :class:`StandardTransformer`, a causal decoder with TransformerLens-style taps,
trained by :func:`numerics.train` (its registry entry, :data:`numerics.training.KINDS`).
"""

from numerics.models.costs import form_costs, input_form
from numerics.models.full import OFFICIAL_FULL_OPTIONS, FullInductionHeadModel, TrainableModel
from numerics.models.full_forms import (
    FULL_FORMS,
    copier_head_similarity,
    prepare_full_inputs,
    select_full_inputs,
)
from numerics.models.full_options import first_move_ingredients
from numerics.models.inputs import INPUT_FORMS, CopierInputs, prepare_inputs
from numerics.models.patterns import PatternInputs
from numerics.models.reference import dense_forward, dense_loss
from numerics.models.simplified import LOSS_FLOOR, LOSS_KINDS, InductionHeadModel
from numerics.models.standard import StandardSpec, StandardTransformer
from numerics.models.vectors import VectorInputs

__all__ = ["InductionHeadModel", "CopierInputs", "VectorInputs", "PatternInputs", "prepare_inputs",
           "input_form", "form_costs", "INPUT_FORMS", "LOSS_FLOOR", "LOSS_KINDS",
           "dense_forward", "dense_loss", "FullInductionHeadModel", "TrainableModel",
           "OFFICIAL_FULL_OPTIONS", "first_move_ingredients",
           "StandardSpec", "StandardTransformer", "FULL_FORMS", "copier_head_similarity",
           "prepare_full_inputs", "select_full_inputs"]
