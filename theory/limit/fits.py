"""The memory check of a whole limit prediction, made before any sampling (docs/theory.md §6).

It sits beside the prediction rather than in :mod:`theory.sizes` because it reads a source and a
model spec, which live above the floor of size limits.
"""

from __future__ import annotations

from theory.sizes import prediction_bytes, require_memory
from theory.sources.priors import Fixed
from theory.sources.spec import ModelSpec, Source

__all__ = ["require_prediction_fits"]


def require_prediction_fits(source: Source, spec: ModelSpec, *, samples: int,
                            seq_len: int | None) -> None:
    """Refuse, before any sampling, a limit prediction over the memory limit.

    Args:
        source: the source (d, P, prior).
        spec: the model spec (its head sets are already bounded by :data:`MAX_HEAD_SETS`).
        samples: Monte Carlo kernels / sequences.
        seq_len: ``L`` or None (the ``L -> ∞`` criterion only).

    Raises:
        InductionHeadsError: when :func:`theory.sizes.prediction_bytes` exceeds the limit.
    """
    d, k, r = source.vocab_size, len(source.parents), source.parents[-1]
    estimate = prediction_bytes(d, k, r, spec.heads, len(spec.sets), samples, seq_len,
                                fixed=isinstance(source.prior, Fixed), window=spec.window)
    what = "G" if seq_len is None else f"G_L at L={seq_len}, G and G_L at the initial copier"
    require_memory(estimate, f"limit prediction ({what}) for d={d}, P={source.parents}, "
                   f"H={spec.heads}, D={spec.degree} over {samples} samples",
                   "pass fewer samples")
