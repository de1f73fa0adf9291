"""Timing helpers shared by the benchmarks: synchronised clocks, medians, one SGD step."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from numerics.models.inputs import INPUT_FORMS
from numerics.models.simplified import InductionHeadModel
from theory.errors import require
from theory.sources.spec import ModelSpec, Source
from theory.validation import is_int

__all__ = ["WARMUP_SEQUENCES", "clock", "timed", "timed_pair", "step_fn", "check_common",
           "check_sizes", "step_form", "admitted_forms"]

WARMUP_SEQUENCES = 64
"""Sequences of the untimed warm-up step (allocator and kernel caches, not the timed size)."""


def clock(device: torch.device) -> float:
    """``time.perf_counter()`` after the device has finished its queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def timed(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` calls (synchronised on CUDA)."""
    times = []
    for _ in range(repeats):
        start = clock(device)
        fn()
        times.append(clock(device) - start)
    return statistics.median(times)


def step_fn(model: nn.Module, loss_fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
    """One SGD update: zero the gradients, loss, backward into the model's parameters (w, C and
    a of TF(M, H, d, D)), step (lr 0)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn().backward()
        optimizer.step()

    return step


def timed_pair(first: Callable[[], object], second: Callable[[], object],
                repeats: tuple[int, int], device: torch.device) -> tuple[float, float]:
    """Median seconds of ``first()`` and ``second()`` timed in alternation.

    Round k runs each function that has repeats left, so a change in the machine's load during
    the run slows both alike and their ratio keeps its meaning.
    """
    times: tuple[list[float], list[float]] = ([], [])
    for k in range(max(repeats)):
        for fn, count, out in ((first, repeats[0], times[0]), (second, repeats[1], times[1])):
            if k < count:
                start = clock(device)
                fn()
                out.append(clock(device) - start)
    return statistics.median(times[0]), statistics.median(times[1])


def check_common(source: Source, spec: ModelSpec, generator: torch.Generator | None) -> None:
    """The source, spec and generator arguments shared by the benchmarks."""
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", type(spec).__name__)
    require(generator is None or (isinstance(generator, torch.Generator)
                                  and generator.device.type == "cpu"), "generator",
            "None or a CPU torch.Generator", generator)


def check_sizes(values: object, name: str, low: int) -> tuple[int, ...]:
    """A non-empty sequence of integers >= ``low`` as a tuple."""
    require(isinstance(values, (tuple, list)) and len(values) >= 1
            and all(is_int(v) and v >= low
                    for v in values), name, f"a non-empty list of integers >= {low}", values)
    return tuple(values)


def step_form(model: InductionHeadModel, tokens: torch.Tensor) -> str:
    """The input form the model picks by cost for ``tokens`` (n, L+1)
    (:func:`numerics.models.costs.input_form`)."""
    return model.cheapest_form(tokens.shape[0], tokens.shape[1] - 1)


def admitted_forms(model: InductionHeadModel, tokens: torch.Tensor) -> tuple[str, ...]:
    """The input forms a sample ``tokens`` (n, L+1) can be prepared in for ``model``."""
    costs = model.input_costs(tokens.shape[0], tokens.shape[1] - 1)
    return tuple(f for f in INPUT_FORMS if f in costs)
