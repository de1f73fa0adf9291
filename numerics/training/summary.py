"""What a run learned, read off its last history row: one schema per history type.

``python -m numerics train`` writes it as ``summary.json``, ``python -m numerics verify`` as the
``learned`` block of ``report.json``, and :class:`numerics.VerifyReport` carries it.
"""

from __future__ import annotations

from typing import Any

from numerics.training.history import TrainingHistory
from theory.errors import require

__all__ = ["learned_summary"]


def learned_summary(history: TrainingHistory) -> dict[str, Any]:
    """What a run learned, at the last logged row (``history.summary()``).

    For TF and its full variant (:class:`numerics.training.History`): ``selected_set``, the
    head set with the largest final ``c̃`` (a list of offsets); ``selector_weights``:
    ``{"(1, 2)": c̃_S}`` for every set in ``history.sets`` order; ``copier_mass``: ``{"head h":
    σ_h(h)}``, each head's attention on its own offset; ``copier_argmax``: ``{"head h": [offset,
    σ_h(offset)]}`` at each head's largest weight; ``copier_attention``: the ``(H, M)`` attention
    as nested lists; ``temperature``: the final ``a``; ``loss_initial`` and ``loss``: the
    training objective at the first and the last row; ``steps``: the last row's global step.
    For the standard transformer (:class:`numerics.training.StandardHistory`):
    ``eval_last_loss``, ``eval_loss`` and ``steps``.

    Args:
        history: a run's history (at least one row).
    """
    require(isinstance(history, TrainingHistory), "history",
            "a training history (numerics.training.History or StandardHistory)",
            type(history).__name__)
    return history.summary()
