"""Training steps per second of the standard transformer's trainer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from numerics.bench.timing import timed
from numerics.data import sample_sequences
from numerics.devices import resolve_device
from numerics.models.standard import StandardSpec, StandardTransformer
from numerics.training.config import DTYPES
from numerics.training.standard import (
    PAPER_SPEC,
    PAPER_TRAINING,
    StandardTrainConfig,
    adamw_for,
    train_step,
)
from theory.errors import require
from theory.sources.spec import PAPER_SOURCE, Source
from theory.validation import is_int

__all__ = ["StandardBenchResult", "benchmark_standard_step"]


@dataclass(frozen=True)
class StandardBenchResult:
    """What :func:`benchmark_standard_step` measured (seconds per step, median over repeats).

    Attributes:
        batch_size: B, fresh sequences per step.
        seq_len: L, context length (sequences hold L + 1 tokens).
        device: the device the steps ran on.
        threads: ``torch.get_num_threads()`` during the run.
        repeats: timed steps.
        parameters: the transformer's parameter count.
        step_s: one step: draw the batch, loss at every position, backward, AdamW update.
        steps_per_second: ``1 / step_s``.
        gpu_steps_per_second: steps per second on CUDA (``None`` without CUDA).
    """

    batch_size: int
    seq_len: int
    device: str
    threads: int
    repeats: int
    parameters: int
    step_s: float
    steps_per_second: float
    gpu_steps_per_second: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of all fields."""
        return asdict(self)


def _standard_step_s(spec: StandardSpec, source: Source, config: StandardTrainConfig,
                     repeats: int, device: torch.device, seed: int) -> tuple[float, int]:
    """(median step seconds, parameter count) of the trainer's step on ``device``."""
    model = StandardTransformer(spec, source.vocab_size, generator=torch.Generator().manual_seed(0),
                                dtype=DTYPES[config.dtype], device=device).train()
    optimizer = adamw_for(model, config)
    generator = torch.Generator(device=device).manual_seed(seed)
    done = [0]

    def step() -> None:
        done[0] += 1
        tokens = sample_sequences(source, config.batch_size, config.seq_len + 1,
                                  generator=generator, device=device, start=config.start,
                                  burn_in=config.burn_in)                    # (B, L+1)
        train_step(model, optimizer, tokens, config, lr=config.lr_at(done[0]))

    step()  # untimed warm-up: allocator, kernel caches and AdamW's state
    return timed(step, repeats, device), sum(p.numel() for p in model.parameters())


def benchmark_standard_step(*, batch_size: int = PAPER_TRAINING.batch_size,
                            seq_len: int = PAPER_TRAINING.seq_len, repeats: int = 5,
                            device: str = "cpu", spec: StandardSpec = PAPER_SPEC,
                            source: Source = PAPER_SOURCE,
                            generator: torch.Generator | None = None) -> StandardBenchResult:
    """Steps per second of the standard transformer's trainer (module docstring).

    The step is :data:`~numerics.training.standard.PAPER_TRAINING`'s (AdamW, loss at every
    position, float32) with the batch size and length given here.

    Args:
        batch_size: B, fresh sequences per step (the paper's setting: 128).
        seq_len: L, context length, ``max(parents) <= L <= spec.max_len`` (paper: 100).
        repeats: timed steps, >= 1 (after one untimed warm-up step).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``: where model and sampling run.
        spec: the transformer (default :data:`~numerics.training.standard.PAPER_SPEC`).
        source: the data source (default: the paper's d=3, P=(1,2), Dirichlet(0.1)).
        generator: CPU ``torch.Generator`` seeding the batches' generator on ``device``
            (keyword-only; ``None``: seed 0). The weights are drawn with seed 0.

    Returns:
        :class:`StandardBenchResult`. ``gpu_steps_per_second`` is ``steps_per_second`` when
        ``device`` is CUDA, a separate measurement on ``cuda`` when CUDA is available, else
        ``None``.
    """
    for name, value, low in (("batch_size", batch_size, 1), ("seq_len", seq_len, 1),
                             ("repeats", repeats, 1)):
        require(is_int(value) and value >= low, name,
                f"an integer >= {low}", value)
    require(isinstance(spec, StandardSpec), "spec", "a StandardSpec", type(spec).__name__)
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    require(source.max_parent <= seq_len <= spec.max_len, "seq_len",
            f"max(parents) = {source.max_parent} <= L <= the model's max_len = {spec.max_len}",
            seq_len)
    require(generator is None or (isinstance(generator, torch.Generator)
                                  and generator.device.type == "cpu"), "generator",
            "None or a CPU torch.Generator", generator)
    dev = resolve_device(device)
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    seed = int(torch.randint(2**62, (1,), generator=generator))
    config = replace(PAPER_TRAINING, batch_size=batch_size, seq_len=seq_len, device=str(dev))
    step_s, parameters = _standard_step_s(spec, source, config, repeats, dev, seed)
    gpu = None
    if dev.type == "cuda":
        gpu = 1.0 / step_s
    elif torch.cuda.is_available():
        cuda = torch.device("cuda")
        gpu = 1.0 / _standard_step_s(spec, source, replace(config, device="cuda"), repeats, cuda,
                                     seed)[0]
    return StandardBenchResult(batch_size=batch_size, seq_len=seq_len, device=str(dev),
                               threads=torch.get_num_threads(), repeats=repeats,
                               parameters=parameters, step_s=step_s,
                               steps_per_second=1.0 / step_s, gpu_steps_per_second=gpu)
