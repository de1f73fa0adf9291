"""The probe keeps its own context: a model that writes into its input is refused; half-precision
probabilities are read at a tolerance that suits their precision; complex outputs are refused
(``numerics.probing.adapters``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from strategies import gih_model, probe_paper, probe_raises
from torch import nn

from numerics.probing.adapters import HALF_PRECISION_ATOL
from theory.errors import InductionHeadsError

GIH_12 = gih_model((1, 2), 8.0)


def _numpy_vandal(ctx: np.ndarray) -> np.ndarray:
    """The GIH of {1, 2}, computed first; then the model overwrites its input with zeros."""
    out = GIH_12(ctx)
    ctx[...] = 0
    return out


class _TorchVandal(nn.Module):
    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out = torch.as_tensor(GIH_12(tokens.numpy().copy()))
        tokens.zero_()
        return out


@pytest.mark.parametrize("batch_size", [None, 7])
def test_a_model_writing_into_its_numpy_input_is_refused(held_out, limit, batch_size):
    probe_raises("leaves its input tokens unchanged", _numpy_vandal, held_out, limit,
                 batch_size=batch_size)


def test_a_torch_model_writing_into_its_input_is_refused(held_out, limit):
    probe_raises("leaves its input tokens unchanged", _TorchVandal(), held_out, limit)


def test_the_probe_hands_a_copy_so_its_own_tokens_stay_intact(held_out, limit):
    tokens, kernels = held_out
    before = tokens.copy()
    with pytest.raises(InductionHeadsError):
        probe_paper(_numpy_vandal, (tokens, kernels), limit)
    assert np.array_equal(tokens, before), "the caller's tokens are untouched"


def test_a_model_that_only_reads_its_input_keeps_its_effective_set(held_out, limit):
    assert probe_paper(GIH_12, held_out, limit).effective_set == (1, 2)


def test_attention_callable_writing_into_its_input_is_refused(held_out, limit):
    def taps(ctx: np.ndarray):
        ctx[...] = 0
        return {}

    probe_raises("leaves its input tokens unchanged", GIH_12, held_out, limit, attention=taps)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_correct_half_precision_probabilities_are_read(held_out, limit, dtype):
    def half(ctx: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(GIH_12(ctx), dtype=torch.float32).to(dtype)

    report = probe_paper(half, held_out, limit)
    assert report.effective_set == (1, 2)


def test_numpy_float16_probabilities_are_read(held_out, limit):
    report = probe_paper(lambda ctx: GIH_12(ctx).astype(np.float16), held_out, limit)
    assert report.effective_set == (1, 2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_unnormalised_half_precision_rows_are_still_refused(held_out, limit, dtype):
    off = 4 * HALF_PRECISION_ATOL[str(dtype).removeprefix("torch.")]

    def skewed(ctx: np.ndarray) -> torch.Tensor:
        p = GIH_12(ctx)
        p[:, 0] += off
        return torch.as_tensor(p, dtype=torch.float32).to(dtype)

    probe_raises("sum", skewed, held_out, limit)


def test_float32_keeps_the_tight_tolerance(held_out, limit):
    def skewed(ctx: np.ndarray) -> torch.Tensor:
        p = GIH_12(ctx)
        p[:, 0] += 1e-3  # accepted for float16, not for float32
        return torch.as_tensor(p, dtype=torch.float32)

    probe_raises("sum", skewed, held_out, limit)


@pytest.mark.parametrize("wrap", [lambda p: p.astype(np.complex128),
                                  lambda p: torch.as_tensor(p).to(torch.complex64)])
def test_complex_outputs_are_refused(held_out, limit, wrap):
    probe_raises("complex", lambda ctx: wrap(GIH_12(ctx)), held_out, limit)

