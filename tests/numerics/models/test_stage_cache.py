"""The stage cache of the training loop: what a stage cannot change is computed once, exactly.

While only ``C`` trains the head-set products stay where they are, and while only ``a`` trains so
does the whole similarity; the loop hands the model those parts once per stage
(:meth:`numerics.InductionHeadModel.stage_inputs`), and a run must be bit-identical to one that
recomputes them every step.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import numerics.training.loop as loop
from numerics import InductionHeadModel
from numerics.models.inputs import StageInputs
from numerics.training import default_config, train
from theory import PAPER_SOURCE, Dirichlet, ModelSpec, Source


def _run(cache: bool, monkeypatch: pytest.MonkeyPatch, **kw):
    monkeypatch.setattr(loop, "STAGE_CACHE", cache)
    source, spec = Source(3, (1, 3), Dirichlet(0.3)), ModelSpec(3, 3, 2, w_plus=2.9)
    config = default_config("stagewise", sequences=120, seq_len=30, device="cpu", **kw)
    config = dataclasses.replace(config, stages=tuple(dataclasses.replace(s, steps=25)
                                                      for s in config.stages))
    net = InductionHeadModel(spec, source.vocab_size)
    result = train(net, source, config, generator=torch.Generator().manual_seed(4))
    return result.history, {k: v.clone() for k, v in net.state_dict().items()}


def test_a_cached_run_is_bit_identical(monkeypatch: pytest.MonkeyPatch, one_thread) -> None:
    plain, plain_state = _run(False, monkeypatch)
    cached, cached_state = _run(True, monkeypatch)
    for name in ("loss", "selector", "copier", "a"):
        assert np.array_equal(getattr(plain, name), getattr(cached, name)), name
    assert all(torch.equal(plain_state[k], cached_state[k]) for k in plain_state)


@pytest.mark.parametrize("trained", [("C",), ("a",)])
def test_stage_inputs_give_the_same_loss_and_gradient(trained: tuple[str, ...]) -> None:
    torch.manual_seed(0)
    net = InductionHeadModel(ModelSpec(3, 3, 2, w_plus=1.7), 3, dtype=torch.float64)
    with torch.no_grad():
        net.C.copy_(torch.rand_like(net.C) + 0.5)
        net.a.fill_(2.3)
    tokens = torch.randint(0, 3, (40, 21))
    inputs = net.prepare_inputs(tokens[:, :-1])
    cached = net.stage_inputs(inputs, trained)
    assert isinstance(cached, StageInputs)
    param = net.C if trained == ("C",) else net.a
    grads = []
    for prepared in (inputs, cached):
        net.zero_grad(set_to_none=True)
        loss = net.loss(tokens, prepared)
        loss.backward()
        grads.append((float(loss.detach()), param.grad.clone()))
    assert grads[0][0] == grads[1][0]
    assert torch.equal(grads[0][1], grads[1][1])


def test_other_stages_and_taps_use_the_full_forward() -> None:
    net = InductionHeadModel(ModelSpec(3, 3, 2), PAPER_SOURCE.vocab_size)
    tokens = torch.randint(0, 3, (8, 21))
    inputs = net.prepare_inputs(tokens[:, :-1])
    assert net.stage_inputs(inputs, ("w",)) is inputs
    assert net.stage_inputs(inputs, ("C", "w", "a")) is inputs
    cached = net.stage_inputs(inputs, ("C",))
    probs, taps = net(cached, return_taps=True)
    assert torch.equal(probs, net(inputs)) and "copier.head_similarity" in taps
