"""The probe calls any next-token model the same way: a torch module gets tensors, and the logits
adapter reads as the probabilities it stands for (``numerics.probing.adapters``)."""

from __future__ import annotations

import functools

import numpy as np
import torch
from strategies import EXACT_KL_ATOL, gih_model, probe_paper
from strategies import PROBE_D as D
from torch import nn

from numerics.probing import UNDECIDED, from_logits
from numerics.probing.adapters import call_convention, wrapped_module
from theory import gih_predict


class _Unigram(nn.Module):
    """Average of the one-hot context tokens, with ``beta`` pseudo-counts per token."""

    def __init__(self, beta: float):
        super().__init__()
        self.register_buffer("beta", torch.tensor(beta, dtype=torch.float64))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        assert isinstance(tokens, torch.Tensor), "auto inputs give a module a tensor"
        counts = nn.functional.one_hot(tokens, D).to(torch.float64).sum(dim=1)  # (n, d)
        return (counts + self.beta) / (tokens.shape[1] + D * self.beta)


def test_unigram_module_reads_as_the_unigram(held_out, limit):
    plain = probe_paper(_Unigram(0.0), held_out, limit)
    eff = plain.last.effective
    assert eff.head_set == () and eff.kl <= EXACT_KL_ATOL, (
        f"the unsmoothed unigram is the GIH of the empty set: closest {eff.head_set}, KL {eff.kl}")
    assert plain.verdict == UNDECIDED and set(eff.within_reach) == set(plain.sets), (
        f"every GIH at a = 0 is the unigram: verdict {plain.verdict}, within reach "
        f"{eff.within_reach}, sets {plain.sets}")
    smoothed = probe_paper(_Unigram(0.5), held_out, limit)
    assert smoothed.last.closest == "unigram"
    assert smoothed.last.score("unigram").kl <= EXACT_KL_ATOL


LOGITS_ATOL = 1e-10
"""softmax(log p + c) reproduces p to float64 round-off; the KLs then agree far below 1e-10."""


def test_logits_adapter_matches_probabilities(held_out, limit):
    rng = np.random.default_rng(1)

    def logits(ctx):
        p = gih_predict(ctx, (1, 2), 3.0, vocab_size=D)  # 0 for tokens absent from ctx
        log_p = np.log(p, out=np.full_like(p, -np.inf), where=p > 0)
        return log_p + rng.normal(size=(len(ctx), 1))  # any per-row shift

    def torch_logits(ctx):
        return torch.as_tensor(logits(ctx.numpy()))

    base = probe_paper(gih_model((1, 2), 3.0), held_out, limit)
    for adapted in (from_logits(logits), from_logits(torch_logits, call_with="torch")):
        report = probe_paper(adapted, held_out, limit)
        gaps = [abs(a.kl - b.kl) for a, b in zip(report.last.scores, base.last.scores)]
        assert max(gaps) <= LOGITS_ATOL, f"KL gaps up to {max(gaps)}"
        assert report.effective_set == (1, 2)



_COUNTER = _Unigram(0.0)
"""A module-level module, reached by a function through its globals."""


def _through_globals(tokens):
    return _COUNTER(tokens)


def test_callables_wrapping_a_module_are_handed_tensors():
    module = _Unigram(0.0)

    def closure(tokens):
        return module(tokens)

    wrapping = {"module": module, "closure": closure, "bound method": module.forward,
                "partial": functools.partial(closure), "globals": _through_globals,
                "from_logits": from_logits(closure)}
    for what, fn in wrapping.items():
        assert call_convention(fn) == "torch", f"{what}: predicted torch, measured numpy"
    for what, fn in {"numpy function": gih_model((1,), 1.0),
                     "numpy lambda": lambda ctx: np.full((len(ctx), D), 1 / D)}.items():
        assert call_convention(fn) == "numpy", f"{what}: predicted numpy, measured torch"
    assert wrapped_module(closure) is module and wrapped_module(_through_globals) is _COUNTER
