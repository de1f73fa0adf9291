"""The model-kind registry: one entry per kind, read by every consumer.

Each kind's entry builds its model, names its default run, trains, checkpoints, resumes and
loads through the same entry points, and lists checks that the verify suite can make. Nothing
outside the registry tells the kinds apart by name (a source scan).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import torch
from strategies import ROOT

from numerics.training import (
    KIND_NAMES,
    KINDS,
    TrainingHistory,
    checkpoint_kind,
    default_config,
    get_kind,
    kind_of,
    load_checkpoint,
    load_model,
    resume,
    train,
)
from numerics.training.standard import FAST_SPEC, StandardTrainConfig
from numerics.verify.suite import CHECK_FUNCTIONS
from theory import PAPER_MODEL, PAPER_SOURCE, InductionHeadsError

TINY = {"kind=simplified": {"sequences": 40, "seq_len": 12},
        "kind=full": {"sequences": 40, "seq_len": 12}}
"""Sizes of a run of a few seconds for the kinds with a fixed sample."""
TINY_STANDARD = StandardTrainConfig(steps=4, batch_size=8, seq_len=12, eval_sequences=8,
                                    log_points=3, warmup_steps=0, device="cpu")
"""Four AdamW steps of the standard transformer."""


def _config(name: str):
    if not get_kind(name).fixed_sample:
        return TINY_STANDARD
    base = default_config("stagewise", kind=name, device="cpu", **TINY[f"kind={name}"])
    return dataclasses.replace(base, stages=tuple(dataclasses.replace(s, steps=2)
                                                  for s in base.stages))


def _architecture(kind: str):
    return None if get_kind(kind).architecture_class is None else dataclasses.replace(
        FAST_SPEC, d_model=12, mlp=False, max_len=12)


def test_every_kind_names_its_own_class_and_known_checks() -> None:
    assert KIND_NAMES == tuple(KINDS) == ("simplified", "full", "standard")
    for name, kind in KINDS.items():
        assert kind.name == name == kind.model_class.kind, (name, kind.model_class)
        unknown = [c for c in kind.checks if c not in CHECK_FUNCTIONS]
        assert not unknown, f"kind {name!r} lists checks no function makes: {unknown}"
        readers = [m for m in ("effective_sets", "distances", "settled_step", "objective",
                               "summary", "to_dict", "from_dict")
                   if not callable(getattr(kind.history_class, m, None))]
        assert not readers, f"{kind.history_class.__name__} lacks {readers} ({TrainingHistory})"


def test_unknown_kind_is_refused_with_the_registered_names() -> None:
    with pytest.raises(InductionHeadsError, match=r"model kind: expected one of \('simplified'"):
        get_kind("gpt")
    with pytest.raises(InductionHeadsError, match="model kind"):
        default_config("stagewise", kind="gpt")


@pytest.mark.parametrize("name", KIND_NAMES)
def test_each_kind_trains_checkpoints_resumes_and_loads(tmp_path: Path, name: str) -> None:
    kind = get_kind(name)
    config = _config(name)
    model = kind.build(PAPER_MODEL, PAPER_SOURCE.vocab_size, config,
                       architecture=_architecture(name),
                       generator=torch.Generator().manual_seed(0))
    assert kind_of(model) is kind
    path = tmp_path / "run.pt"
    whole = train(kind.build(PAPER_MODEL, PAPER_SOURCE.vocab_size, config,
                             architecture=_architecture(name),
                             generator=torch.Generator().manual_seed(0)),
                  PAPER_SOURCE, config, generator=torch.Generator().manual_seed(1),
                  progress=False)
    part = train(model, PAPER_SOURCE, config, generator=torch.Generator().manual_seed(1),
                 progress=False, checkpoint_path=path, stop_after=1)
    assert isinstance(part.history, kind.history_class)
    assert checkpoint_kind(load_checkpoint(path)) is kind
    resumed = resume(path, progress=False)
    assert resumed.history.to_dict() == whole.history.to_dict(), "resume is bit-identical"
    loaded = load_model(path)
    assert type(loaded) is kind.model_class and not loaded.training
    for x, y in zip(loaded.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(x.cpu(), y.cpu())


def test_a_config_of_another_kind_is_refused() -> None:
    with pytest.raises(InductionHeadsError, match="config: expected a StandardTrainConfig"):
        get_kind("standard").build(PAPER_MODEL, 3, _config("simplified"),
                                   generator=torch.Generator())
    with pytest.raises(InductionHeadsError, match="architecture"):
        get_kind("simplified").build(PAPER_MODEL, 3, _config("simplified"),
                                     architecture=_architecture("standard"))


# A kind's name outside the registry is a switch: ``kind == "full"``, ``"standard" if``, a dict
# or tuple keyed by kind names. The registry, the model classes (each names its own kind) and
# the command line's help text are the only places that spell them.
_SWITCH = re.compile(r"""(==|!=|\bin|\bif)\s*\(?\s*["'](simplified|full|standard)["']"""
                     r"""|["'](simplified|full|standard)["']\s*(if\b|:\s*\w)""")
_ALLOWED = {"numerics/training/kinds.py"}
_NOT_A_SWITCH = ("batch", "size", "fresh", "version == 1", '"standard": standard.to_dict()')
"""Lines that spell a kind's name for another reason: the batch setting ``"full"``, the notebook
size ``"full"``, a version-1 checkpoint (which holds TF by definition), the bench's JSON block of
the standard transformer's timing."""


def test_no_string_switch_on_a_model_kind_outside_the_registry() -> None:
    found = []
    for path in sorted((ROOT / "numerics").rglob("*.py")) + sorted((ROOT / "theory").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in _ALLOWED:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if _SWITCH.search(code) and not any(m in code for m in _NOT_A_SWITCH):
                found.append(f"{rel}:{number}: {line.strip()}")
    assert not found, "string switches on a model kind:\n" + "\n".join(found)
