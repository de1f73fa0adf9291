"""theory's predicted joint path (theory.predict_joint_path) against torch: one SGD step of the
exact-copier model, and the switch step of a real joint run on the weak-parent mixture.

:meth:`numerics.InductionHeadModel.at_limit` with every head fixed on its own offset is the
reduced model of :mod:`theory.dynamics.joint_path`; one torch SGD step on ``C`` and ``a`` from the
same values on the same tokens must land where the predicted path's first step does (float64).
The real run trains ``C``, ``w`` and ``a`` together from the authors' initialisation, so its
copier is soft at first; the prediction keeps the copier exact.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from numerics import InductionHeadModel, train
from numerics.training.config import StageConfig, TrainConfig
from theory import PAPER_SOURCE, WEAK_PARENT_SOURCE, ModelSpec, sample_sequences_np
from theory.dynamics import JointSample, joint_path_on_sample, selector_leads

STEP_ATOL = 1e-10
"""One step in float64 by the closed-form gradients and by torch's backward: round-off only."""

SPEC = ModelSpec(2, 2, 2)
"""H = M = D = 2: the sets ∅, (1,), (2,), (1, 2)."""

JOINT_SPEC = ModelSpec.band(3, 2, w_plus=3.0, w_minus=0.1, c_init=0.01, a_init=0.01)
"""The authors' joint initialisation on TF with M = 3, D = 2."""

RUN_SEQUENCES = 9000
"""The authors' training sample size."""
RUN_STEPS = 250
"""Past the switch (about step 213 on the seed below) with room for the new leader to hold."""

SWITCH_REL = 0.2
"""Allowed relative gap between the predicted and the measured switch step. The prediction runs
on the run's own training sample, so sampling does not enter; what remains is the left-out
copier learning: the run's copier starts soft (``softmax(3, 0.1, 0.1)`` puts about 0.9 on the
head's offset) and sharpens while ``a`` grows, and the exact copier of the prediction is its
limit. 20% is the target the prediction is held to."""


@pytest.mark.parametrize("loss", ["nll", "official_ce"])
@pytest.mark.parametrize("a", [0.01, 2.0])
def test_predicted_step_matches_torch_sgd_step(loss: str, a: float) -> None:
    tokens = sample_sequences_np(PAPER_SOURCE, 64, 41, rng=np.random.default_rng(7))
    C = np.array([0.3, 1.2, 0.5, 0.8])
    lr_C, lr_a = 0.7, 1.3
    model = InductionHeadModel.at_limit(SPEC, 3, selected_set=(1, 2), a=a,
                                        offsets={1: 1, 2: 2}, dtype=torch.float64, loss=loss)
    with torch.no_grad():
        model.C.copy_(torch.as_tensor(C))
    optimizer = torch.optim.SGD([{"params": [model.C], "lr": lr_C},
                                 {"params": [model.a], "lr": lr_a}])
    optimizer.zero_grad()
    model.loss(torch.as_tensor(tokens)).backward()
    optimizer.step()
    with torch.no_grad():
        measured_selector = model.selector_weights().numpy()
        measured_a = float(model.a)
    path = joint_path_on_sample(JointSample.of(tokens, SPEC.sets, vocab_size=3), lr_C=lr_C,
                                lr_a=lr_a, steps=1, loss=loss, c_init=C, a_init=a, groups=0)
    assert np.allclose(path.selector[1], measured_selector, rtol=0, atol=STEP_ATOL), (
        f"{loss}, a = {a}: predicted c̃ {path.selector[1]}, torch {measured_selector}")
    assert abs(path.a[1] - measured_a) <= STEP_ATOL, (
        f"{loss}, a = {a}: predicted a {path.a[1]}, torch {measured_a}")


@pytest.mark.thorough
def test_weak_parent_switch_step_matches_joint_run() -> None:
    config = TrainConfig("joint", (StageConfig("joint", ("C", "w", "a"), 1.0, RUN_STEPS),),
                         RUN_SEQUENCES, 100, batch="full", loss="official_ce", device="cpu",
                         log_points=RUN_STEPS + 1)
    result = train(InductionHeadModel(JOINT_SPEC, 3, loss="official_ce"), WEAK_PARENT_SOURCE, config,
                   generator=torch.Generator().manual_seed(0), progress=False)
    history = result.history
    assert np.array_equal(history.steps, np.arange(RUN_STEPS + 1)), "a row at every step"
    sets = result.model.sets
    leader, first, switch = selector_leads(history.selector)
    assert first is not None and sets[first] == (1,) and switch is not None, (
        f"measured first leader {first}, switch {switch}")
    assert sets[int(leader[switch])] == (1, 2)
    path = joint_path_on_sample(JointSample.of(result.sample.numpy(), sets, vocab_size=3),
                                lr_C=1.0, lr_a=1.0, steps=RUN_STEPS, loss="official_ce",
                                c_init=JOINT_SPEC.c_init, a_init=JOINT_SPEC.a_init)
    assert path.first_leader == (1,) and path.final_leader == (1, 2), (
        f"predicted first {path.first_leader}, final {path.final_leader}")
    assert path.switch_step is not None
    ratio = path.switch_step / switch
    assert abs(ratio - 1.0) <= SWITCH_REL, (
        f"predicted switch step {path.switch_step} (± {path.switch_stderr:.1f}), measured "
        f"{switch}: ratio {ratio:.3f}; a at the switch predicted {path.a[path.switch_step]:.2f},"
        f" measured {float(history.a[switch]):.2f}")
