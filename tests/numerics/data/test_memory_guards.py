"""The torch side refuses, before allocating, what exceeds the memory limit theory uses
(``INDUCTION_HEADS_MEMORY_LIMIT_GIB``): the sampler, the kernel draw, a training sample, a
verify held-out sample and a standard transformer's parameters."""

from __future__ import annotations

import time

import pytest
import torch

from numerics import StandardSpec, StandardTransformer, draw_kernels, sample_sequences
from numerics.data import require_sample_fits, sample_bytes
from numerics.models.standard import standard_model_bytes, standard_parameter_count
from numerics.training import default_config
from numerics.training.loop import require_training_fits
from theory import PAPER_SOURCE
from theory.errors import InductionHeadsError
from theory.sizes import MEMORY_LIMIT_ENV


@pytest.fixture(autouse=True)
def _default_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)


def _refused(call, *fragments: str) -> str:
    started = time.perf_counter()
    with pytest.raises(InductionHeadsError) as info:
        call()
    assert time.perf_counter() - started < 5.0, "refused up front, before any work"
    message = str(info.value)
    assert "\n" not in message
    for fragment in ("memory limit of 2.0 GiB", MEMORY_LIMIT_ENV, "needs about") + fragments:
        assert fragment in message, (fragment, message)
    assert "about about" not in message
    return message


def test_sample_sequences_of_10_to_the_12_is_refused():
    _refused(lambda: sample_sequences(PAPER_SOURCE, 10**12, 11, generator=torch.Generator()),
             "n=1000000000000 sequences", "T=11")


def test_draw_kernels_over_the_limit_is_refused():
    _refused(lambda: draw_kernels(PAPER_SOURCE, 10**10, generator=torch.Generator()),
             "kernel draw of n=10000000000")


def test_the_limit_variable_raises_and_lowers_the_bound(monkeypatch: pytest.MonkeyPatch):
    n, length = 20_000, 51
    need = sample_bytes(PAPER_SOURCE, n, length)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(0.5 * need / 2**30))
    with pytest.raises(InductionHeadsError, match="sequence sample"):
        sample_sequences(PAPER_SOURCE, n, length, generator=torch.Generator())
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(2 * need / 2**30))
    assert sample_sequences(PAPER_SOURCE, n, length, generator=torch.Generator()).shape == (
        n, length)


def test_the_estimate_is_monotone_and_exact_in_python_integers():
    small = sample_bytes(PAPER_SOURCE, 1000, 101)
    assert sample_bytes(PAPER_SOURCE, 2000, 101) > small
    assert sample_bytes(PAPER_SOURCE, 1000, 201) > small
    assert sample_bytes(PAPER_SOURCE, 10**30, 10**30) > 10**60
    assert require_sample_fits(PAPER_SOURCE, 1000, 101) == small


def test_train_3000000_sequences_of_100_is_refused_at_the_default_limit():
    config = default_config("joint", sequences=3_000_000, seq_len=100)
    _refused(lambda: require_training_fits(PAPER_SOURCE, config),
             "training sample of n=3000000 sequences of T=101 tokens")


@pytest.mark.parametrize("kw, fragment", [({"n_layers": 100_000}, "100000 layers"),
                                          ({"max_len": 10**9}, "max_len=1000000000")])
def test_a_standard_transformer_too_large_is_refused(kw, fragment):
    spec = StandardSpec(**kw)
    _refused(lambda: StandardTransformer(spec, 3, generator=torch.Generator()), fragment)


@pytest.mark.parametrize("kw", [{}, {"positional": "absolute"}, {"layer_norm": False},
                                {"mlp": False, "n_layers": 3}, {"n_heads": (4, 2), "d_model": 16}])
def test_the_parameter_count_is_the_models(kw):
    spec = StandardSpec(**kw)
    model = StandardTransformer(spec, 5, generator=torch.Generator())
    assert sum(p.numel() for p in model.parameters()) == standard_parameter_count(spec, 5)
    assert standard_model_bytes(spec, 5) == 4 * 8 * standard_parameter_count(spec, 5)


def test_astronomical_requests_read_as_powers_of_ten_once():
    message = _refused(lambda: sample_sequences(PAPER_SOURCE, 10**20, 10**6,
                                                generator=torch.Generator()))
    assert "needs about 10^" in message
