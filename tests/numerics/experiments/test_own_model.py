"""Training an outside model on the library's sequences with the probe along the way
(``numerics.experiments.own_model``): one loss per update, one report per logged step, a loss
that falls, the same loop for Hugging Face and TransformerLens, and refused inputs."""

from __future__ import annotations

import functools
import importlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from numerics import InductionHeadsError, from_hf, from_lens
from numerics.experiments import (
    OwnModelRun,
    attention_rows,
    seeded_module,
    tiny_gpt2,
    tiny_lens,
    train_own_model,
)
from numerics.probing import DECIDED, NO_GIH_FITS, UNDECIDED, ProbeReport
from theory import PAPER_MODEL, PAPER_SOURCE, predict_limit

pytest.importorskip("transformers")
pytest.importorskip("transformer_lens")

D = PAPER_SOURCE.vocab_size
L = 12
SIZES = dict(sequences=64, seq_len=L, batch_size=16, heldout=20)
LOSS_STEPS = 80
LOSS_DROP = 0.05
"""Nats per token by which the mean loss of the last ten of ``LOSS_STEPS`` updates at lr 1e-2
lies below that of the first ten: the models start at the uniform law's ln 3 = 1.10 and move
toward the in-context unigram's level; one batch of 16 sequences scatters by about 0.05 nats
(each has its own kernel), a mean of ten by a third of that."""


@pytest.fixture(scope="module")
def limit():
    return predict_limit(PAPER_SOURCE, PAPER_MODEL, seq_len=L, samples=100,
                         rng=np.random.default_rng(0))


def _gpt2():
    return from_hf(tiny_gpt2(D, L, generator=torch.Generator().manual_seed(0), width=16),
                   vocab_size=D)


def _lens():
    return from_lens(tiny_lens(D, L, generator=torch.Generator().manual_seed(0), width=16,
                               heads=2), vocab_size=D)


@pytest.mark.parametrize("build", [_gpt2, _lens], ids=["gpt2", "lens"])
def test_history_has_a_loss_per_update_and_a_report_at_each_logged_step(build, limit):
    run = train_own_model(build(), PAPER_SOURCE, PAPER_MODEL, steps=7, lr=1e-2, probe_every=3,
                          limit=limit, generator=torch.Generator().manual_seed(1), **SIZES)
    assert run.losses.shape == (7,) and np.isfinite(run.losses).all(), run.losses
    assert run.steps == (0, 3, 6, 7), run.steps
    assert len(run.reports) == 4 and all(isinstance(r, ProbeReport) for r in run.reports)
    assert {(r.seq_len, r.sequences) for r in run.reports} == {(L, SIZES["heldout"])}
    assert run.final is run.reports[-1] and run.report_at(3) is run.reports[1]
    assert run.selected_set == tuple(limit.selected_set)
    layers = {row["layer"] for row in attention_rows(run.final)}
    assert layers == {0, 1}, f"both layers' attention read, read {layers}"
    found = run.findings()
    assert found["final effective set"] == run.final.last.effective.head_set, found
    assert found["plateau step"] in run.steps[1:-1], (found["plateau step"], run.steps)


@pytest.mark.parametrize("build", [_gpt2, _lens], ids=["gpt2", "lens"])
def test_loss_falls_over_a_short_run(build, limit):
    run = train_own_model(build(), PAPER_SOURCE, PAPER_MODEL, steps=LOSS_STEPS, lr=1e-2,
                          probe_every=LOSS_STEPS, limit=limit,
                          generator=torch.Generator().manual_seed(2), **SIZES)
    first, last = run.losses[:10].mean(), run.losses[-10:].mean()
    assert last <= first - LOSS_DROP, f"first ten {first:.3f}, last ten {last:.3f}"


def test_a_raw_module_trains_through_its_adapter(limit):
    module = tiny_lens(D, L, generator=torch.Generator().manual_seed(0), width=16, heads=2)
    run = train_own_model(module, PAPER_SOURCE, PAPER_MODEL, steps=2, lr=1e-2, probe_every=2,
                          adapter=functools.partial(from_lens, vocab_size=D), limit=limit,
                          generator=torch.Generator().manual_seed(1), **SIZES)
    assert run.steps == (0, 2) and not module.training


def test_same_generators_give_the_same_run(limit):
    runs = [train_own_model(_gpt2(), PAPER_SOURCE, PAPER_MODEL, steps=3, lr=1e-2, probe_every=3,
                            limit=limit, generator=torch.Generator().manual_seed(4), **SIZES)
            for _ in range(2)]
    assert np.array_equal(runs[0].losses, runs[1].losses), [r.losses for r in runs]


def test_seeded_module_draws_from_the_generator_and_leaves_the_global_one():
    before = torch.random.get_rng_state()
    one, two = (tiny_gpt2(D, L, generator=torch.Generator().manual_seed(5), width=16)
                for _ in range(2))
    other = tiny_gpt2(D, L, generator=torch.Generator().manual_seed(6), width=16)
    weights = [m.transformer.wte.weight for m in (one, two, other)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])
    assert torch.equal(torch.random.get_rng_state(), before), "global generator moved"
    with pytest.raises(InductionHeadsError, match="generator"):
        seeded_module(torch.nn.Linear, 2, 2, generator=5)


def test_logits_keep_their_graph_and_the_kept_vocabulary():
    model = from_hf(tiny_gpt2(D + 2, L, generator=torch.Generator().manual_seed(0), width=16),
                    vocab_size=D)
    logits = model.logits(torch.zeros(2, L, dtype=torch.int64))
    assert logits.shape == (2, L, D) and logits.requires_grad, (logits.shape, logits.grad_fn)


def test_bad_inputs_are_refused(limit):
    module = tiny_lens(D, L, generator=torch.Generator().manual_seed(0), width=16, heads=2)
    common = dict(steps=2, lr=1e-2, probe_every=1, generator=torch.Generator().manual_seed(0))
    with pytest.raises(InductionHeadsError, match="adapter="):
        train_own_model(module, PAPER_SOURCE, PAPER_MODEL, limit=limit, **common, **SIZES)
    model = from_lens(module, vocab_size=D)
    with pytest.raises(InductionHeadsError, match="steps"):
        train_own_model(model, PAPER_SOURCE, PAPER_MODEL, limit=limit,
                        **{**common, "steps": 0}, **SIZES)
    with pytest.raises(InductionHeadsError, match="lr"):
        train_own_model(model, PAPER_SOURCE, PAPER_MODEL, limit=limit,
                        **{**common, "lr": -1.0}, **SIZES)
    with pytest.raises(InductionHeadsError, match="L = 20"):
        train_own_model(model, PAPER_SOURCE, PAPER_MODEL, limit=limit,
                        **common, **{**SIZES, "seq_len": 20})
    with pytest.raises(InductionHeadsError, match="rng"):
        train_own_model(model, PAPER_SOURCE, PAPER_MODEL, **common, **SIZES)


def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch):
    real = importlib.import_module

    def absent(name: str, *args):
        if name in ("transformers", "transformer_lens"):
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", absent)
    with pytest.raises(InductionHeadsError, match=r"\[hf\]"):
        tiny_gpt2(D, L, generator=torch.Generator().manual_seed(0))
    with pytest.raises(InductionHeadsError, match=r"\[lens\]"):
        tiny_lens(D, L, generator=torch.Generator().manual_seed(0))


def _read(verdict: str, head_set: tuple[int, ...]) -> SimpleNamespace:
    return SimpleNamespace(verdict=verdict, effective_set=head_set if verdict == DECIDED else None)


def test_first_decided_settled_and_plateau_steps():
    reads = [_read(NO_GIH_FITS, ()), _read(NO_GIH_FITS, (1,)), _read(NO_GIH_FITS, (1,)),
             _read(DECIDED, (1, 2)), _read(UNDECIDED, (1, 2)), _read(DECIDED, (1, 2)),
             _read(DECIDED, (1, 2))]
    run = OwnModelRun(losses=np.zeros(60), steps=(0, 10, 20, 30, 40, 50, 60),
                      reports=tuple(reads), limit=SimpleNamespace(selected_set=(1, 2)),
                      seconds=0.0)
    assert run.first_decided_step() == 30
    assert run.settled_step() == 50, "the undecided read at 40 restarts the count"
    assert run.plateau_step() == 20, "the last 'no GIH fits' read before the decided one"
    never = OwnModelRun(losses=np.zeros(20), steps=(0, 10, 20), reports=tuple(reads[:3]),
                        limit=SimpleNamespace(selected_set=(1, 2)), seconds=0.0)
    assert never.first_decided_step() is None and never.settled_step() is None
    assert never.plateau_step() == 10, "never decided: the last read before the final one"
