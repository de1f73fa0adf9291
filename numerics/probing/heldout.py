"""The probe's held-out sequences: given by the caller or drawn, with what is known of them.

:func:`held_out` returns the tokens ``(n, L+1)`` (context ``x_1..x_L``, then the target), their
kernels (for the oracle reference) and, for a source whose prior has two or more structures
(:func:`theory.structure_weights`), their structures (for the oracle-structure reference).
Drawn sequences come from :func:`numerics.data.sample_sequences` with an explicit
``torch.Generator`` and carry both; given ones carry what the caller passes with them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from numerics.data import sample_sequences
from numerics.probing.adapters import to_numpy
from theory.errors import require
from theory.predictors.probabilities import check_probabilities
from theory.sources.kernels import check_structures
from theory.sources.priors import structure_weights
from theory.sources.spec import Source
from theory.validation import is_int

__all__ = ["HeldOut", "held_out"]


class HeldOut(NamedTuple):
    """Held-out sequences and what is known of them.

    Attributes:
        tokens: int64 ``(n, L+1)``.
        kernels: float64 ``(n,) + (d,)*k + (d,)``, or None when not known.
        structures: int64 ``(n,)``, or None when not known or the prior has one structure.
    """

    tokens: np.ndarray
    kernels: np.ndarray | None
    structures: np.ndarray | None


def _given(source: Source, tokens: Any, kernels: Any, structures: Any, n: Any, seq_len: Any
           ) -> HeldOut:
    arr = tokens.detach().cpu().numpy() if isinstance(tokens, torch.Tensor) else np.asarray(tokens)
    shape = f"(n{'' if n is None else '=' + str(n)}, L+1" + (
        "" if seq_len is None else f"={seq_len + 1}") + ")"
    require(arr.ndim == 2 and arr.dtype.kind in "iu", "tokens",
            f"an integer array of shape {shape}, context x_1..x_L then the target x_(L+1)",
            f"{arr.dtype} array of shape {arr.shape}")
    require(arr.shape[0] >= 2 and arr.shape[1] >= 2, "tokens",
            "at least 2 sequences (standard errors) of at least 2 tokens", arr.shape)
    require(n is None or arr.shape[0] == n, "tokens", f"shape {shape}", arr.shape)
    require(seq_len is None or arr.shape[1] == seq_len + 1, "tokens", f"shape {shape}",
            arr.shape)
    d = source.vocab_size
    require(int(arr.min()) >= 0 and int(arr.max()) < d, "tokens",
            f"tokens in 0..{d - 1} (the source's vocabulary)",
            f"tokens in {int(arr.min())}..{int(arr.max())}")
    kern = None
    if kernels is not None:
        kern = to_numpy(kernels, "kernels")
        expected = (arr.shape[0],) + (d,) * (source.order + 1)
        require(kern.shape == expected, "kernels",
                f"shape (n,) + (d,)*k + (d,) = {expected}, one kernel per sequence", kern.shape)
        check_probabilities(kern.reshape(arr.shape[0], -1, d), n=arr.shape[0], vocab_size=d,
                            ndim=3, what="kernels")
    labels = None
    if structures is not None:
        given = (structures.detach().cpu().numpy() if isinstance(structures, torch.Tensor)
                 else structures)
        labels = check_structures(given, source, arr.shape[0])  # (n,)
        if len(structure_weights(source.prior)) == 1:
            labels = None  # one structure: the oracle structure is the Bayes predictive
    return HeldOut(arr.astype(np.int64), kern, labels)


def held_out(source: Source, *, tokens: Any, kernels: Any, structures: Any, n: Any,
             seq_len: Any, generator: Any) -> HeldOut:
    """Given ``tokens`` (with optional ``kernels`` and ``structures``), or ``n`` sequences of
    ``seq_len + 1`` tokens drawn with ``generator`` (module docstring)."""
    if tokens is not None:
        require(generator is None, "generator", "None when tokens are given", generator)
        return _given(source, tokens, kernels, structures, n, seq_len)
    require(kernels is None, "kernels", "None unless tokens are given", type(kernels).__name__)
    require(structures is None, "structures", "None unless tokens are given",
            type(structures).__name__)
    require(isinstance(generator, torch.Generator), "generator",
            "a torch.Generator (or pass tokens=)", type(generator).__name__)
    require(is_int(n) and n >= 2, "n", "an integer >= 2 (standard errors need two)", n)
    require(is_int(seq_len) and seq_len >= 1, "seq_len", "an integer L >= 1", seq_len)
    several = len(structure_weights(source.prior)) > 1
    drawn = sample_sequences(source, int(n), int(seq_len) + 1, generator=generator,
                             device=generator.device, return_kernels=True,
                             return_structures=several, dtype=torch.float64)
    labels = drawn[2].cpu().numpy() if several else None
    return HeldOut(drawn[0].cpu().numpy(), drawn[1].cpu().numpy(), labels)
