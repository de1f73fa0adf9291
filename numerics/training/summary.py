"""What a run learned, read off its last history row: one schema for every consumer.

``python -m numerics train`` writes it as ``summary.json``, ``python -m numerics verify`` as the
``learned`` block of ``report.json``, and :class:`numerics.VerifyReport` carries it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numerics.training.checkpoint import History
from theory.errors import require
from theory.notation import head_set_label

__all__ = ["learned_summary"]


def learned_summary(history: History) -> dict[str, Any]:
    """The learned selector, copier and temperature at the last logged row.

    Args:
        history: a run's history (at least one row).

    Returns:
        ``selected_set``: the head set with the largest final ``c̃`` (a list of offsets);
        ``selector_weights``: ``{"(1, 2)": c̃_S}`` for every set in ``history.sets`` order;
        ``copier_mass``: ``{"head h": σ_h(h)}``, each head's attention on its own offset;
        ``copier_argmax``: ``{"head h": [offset, σ_h(offset)]}`` at each head's largest weight;
        ``copier_attention``: the ``(H, M)`` attention as nested lists;
        ``temperature``: the final ``a``; ``loss_initial`` and ``loss``: the training objective
        at the first and the last row; ``steps``: the last row's global step.
    """
    require(isinstance(history, History) and len(history) >= 1, "history",
            "a History with at least one logged row", history)
    selector, copier = history.selector[-1], history.copier[-1]   # (|𝒮|,), (H, M)
    argmax = copier.argmax(axis=1)                                 # (H,)
    heads = range(1, copier.shape[0] + 1)
    return {
        "selected_set": list(history.sets[int(np.argmax(selector))]),
        "selector_weights": {head_set_label(s): float(w) for s, w in zip(history.sets, selector)},
        "copier_mass": {f"head {h}": float(copier[h - 1, h - 1]) for h in heads},
        "copier_argmax": {f"head {h}": [int(argmax[h - 1]) + 1, float(copier[h - 1, argmax[h - 1]])]
                          for h in heads},
        "copier_attention": copier.tolist(),
        "temperature": float(history.a[-1]),
        "loss_initial": float(history.loss[0]),
        "loss": float(history.loss[-1]),
        "steps": int(history.steps[-1]),
    }
