"""Fixtures of the probing tests: held-out sequences of the paper's source and theory's limit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from strategies import PROBE_L as L
from strategies import PROBE_N as N

from numerics import sample_sequences
from theory import PAPER_MODEL, PAPER_SOURCE, predict_limit


@pytest.fixture(scope="module")
def held_out() -> tuple[np.ndarray, np.ndarray]:
    """N paper-source sequences of L+1 tokens with their kernels."""
    tokens, kernels = sample_sequences(PAPER_SOURCE, N, L + 1,
                                       generator=torch.Generator().manual_seed(5),
                                       return_kernels=True, dtype=torch.float64)
    return tokens.numpy(), kernels.numpy()


@pytest.fixture(scope="module")
def limit():
    return predict_limit(PAPER_SOURCE, PAPER_MODEL, seq_len=L, samples=500,
                         rng=np.random.default_rng(0))
