"""The memory and time checks of a whole limit prediction, made before any sampling
(docs/theory.md §6).

They sit beside the prediction rather than in :mod:`theory.sizes` and :mod:`theory.work`
because they read a source and a model spec, which live above the floor of size limits.
"""

from __future__ import annotations

from theory.sizes import prediction_bytes, require_memory
from theory.sources.kernels import kernel_atoms
from theory.sources.priors import Fixed
from theory.sources.spec import ModelSpec, Source
from theory.work import prediction_stage_seconds, require_time

__all__ = ["require_prediction_fits", "prediction_seconds", "criterion_kernels"]


def criterion_kernels(source: Source, *, samples: int, seq_len: int | None,
                      asymptotic_samples: int | None = None) -> int:
    """Kernels behind a limit prediction's ``G``: a prior's own kernels when it has finitely
    many (:func:`theory.sources.kernels.kernel_atoms`: ``G`` is then exact), else the Monte
    Carlo draws (``asymptotic_samples`` when given with ``seq_len``, else ``samples``)."""
    atoms = kernel_atoms(source)
    if atoms is not None:
        return len(atoms[1])
    return samples if asymptotic_samples is None or seq_len is None else asymptotic_samples


def prediction_seconds(source: Source, spec: ModelSpec, *, samples: int, seq_len: int | None,
                       max_samples: int | None = None,
                       asymptotic_samples: int | None = None) -> dict[str, float]:
    """Estimated seconds of each stage of a limit prediction on the reference CPU
    (:func:`theory.work.prediction_stage_seconds`; arguments as
    :func:`theory.limit.prediction.predict_limit`'s)."""
    d, k, r = source.vocab_size, len(source.parents), source.parents[-1]
    kernels = criterion_kernels(source, samples=samples, seq_len=seq_len,
                                asymptotic_samples=asymptotic_samples)
    return prediction_stage_seconds(d, k, r, spec.heads, spec.window, len(spec.sets),
                                    kernels=kernels, samples=samples, seq_len=seq_len,
                                    max_samples=max_samples)


def require_prediction_fits(source: Source, spec: ModelSpec, *, samples: int,
                            seq_len: int | None, max_samples: int | None = None,
                            asymptotic_samples: int | None = None,
                            time_limit_s: float | None = None,
                            limit_name: str = "time_limit_s") -> dict[str, float]:
    """Refuse, before any sampling, a limit prediction over the memory or the time limit.

    Args:
        source: the source (d, P, prior).
        spec: the model spec (its head sets are already bounded by :data:`MAX_HEAD_SETS`).
        samples: Monte Carlo kernels / sequences.
        seq_len: ``L`` or None (the ``L -> ∞`` criterion only).
        max_samples: the adaptive budget of the ``G_L`` stages (None: ``samples``).
        asymptotic_samples: kernels behind ``G`` when ``seq_len`` is given (None: ``samples``).
        time_limit_s: the time limit in seconds (None: :func:`theory.work.time_limit_seconds`,
            i.e. ``INDUCTION_HEADS_TIME_LIMIT_S`` or the default).
        limit_name: how the user raises the time limit, named in the message (a CLI passes
            its flag).

    Returns:
        The estimated seconds of each stage (:func:`prediction_seconds`).

    Raises:
        InductionHeadsError: when :func:`theory.sizes.prediction_bytes` exceeds the memory limit,
            or the estimated work (:func:`prediction_seconds`) the time limit.
    """
    d, k, r = source.vocab_size, len(source.parents), source.parents[-1]
    estimate = prediction_bytes(d, k, r, spec.heads, len(spec.sets), samples, seq_len,
                                fixed=isinstance(source.prior, Fixed), window=spec.window,
                                kernels=criterion_kernels(source, samples=samples,
                                                          seq_len=seq_len,
                                                          asymptotic_samples=asymptotic_samples))
    what = "G" if seq_len is None else f"G_L at L={seq_len}, G and G_L at the initial copier"
    request = (f"limit prediction ({what}) for d={d}, P={source.parents}, "
               f"H={spec.heads}, M={spec.window}, D={spec.degree} "
               f"({len(spec.sets)} head sets, {d**r} states) over {samples} samples")
    require_memory(estimate, request, "pass fewer samples")
    stages = prediction_seconds(source, spec, samples=samples, seq_len=seq_len,
                                max_samples=max_samples, asymptotic_samples=asymptotic_samples)
    budget = "" if max_samples in (None, samples) else f" (adaptive budget {max_samples})"
    require_time(sum(stages.values()), request + budget,
                 "pass fewer samples, a smaller H or D, or a source with fewer states",
                 limit_s=time_limit_s, limit_name=limit_name)
    return stages
