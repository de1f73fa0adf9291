"""The step benchmark (numerics.bench) and ``python -m numerics bench``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from numerics.__main__ import main
from numerics.bench import (
    BenchResult,
    StandardBenchResult,
    benchmark_standard_step,
    benchmark_step,
)
from numerics.models.standard import StandardSpec, StandardTransformer
from numerics.training.standard import PAPER_SPEC
from theory import InductionHeadsError, ModelSpec

TINY = {"sequences": 40, "seq_len": 12, "repeats": 2}
"""A size that runs in well under a second; the real benchmark is n = 9000, L = 100."""
JSON_KEYS = {"vectorized_s", "dense_s", "ratio", "sampler_seq_per_s", "gpu_steps_per_s",
             "prepare_s", "sequences", "seq_len", "device", "threads", "seed", "standard"}
TINY_STANDARD = {"batch_size": 4, "seq_len": 12, "repeats": 2,
                 "spec": StandardSpec(d_model=12, max_len=24)}
"""A standard transformer step in milliseconds; the real one is PAPER_SPEC, B = 128, L = 100."""


def _parameters(spec: StandardSpec) -> int:
    model = StandardTransformer(spec, 3, generator=torch.Generator().manual_seed(0))
    return sum(p.numel() for p in model.parameters())


def test_benchmark_step_returns_consistent_positive_times() -> None:
    r = benchmark_step(**TINY, generator=torch.Generator().manual_seed(1))
    assert isinstance(r, BenchResult)
    assert (r.sequences, r.seq_len, r.repeats, r.dense_repeats, r.device) == (40, 12, 2, 1, "cpu")
    for name in ("vectorized_s", "dense_s", "prepare_s", "sampler_seq_per_s"):
        value = getattr(r, name)
        assert value > 0 and value == value, f"{name} = {value}"
    assert r.ratio == pytest.approx(r.dense_s / r.vectorized_s, rel=1e-12)
    assert r.threads == torch.get_num_threads()
    if not torch.cuda.is_available():
        assert r.gpu_steps_per_s is None
    assert set(r.to_dict()) == set(BenchResult.__dataclass_fields__)


def test_benchmark_step_other_model_size() -> None:
    r = benchmark_step(sequences=8, seq_len=9, repeats=1, spec=ModelSpec(2, 4, 2))
    assert r.vectorized_s > 0 and r.dense_s > 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sequences": 0}, "sequences: expected an integer >= 1, received 0"),
    ({"repeats": 0}, "repeats: expected an integer >= 1, received 0"),
    ({"dense_repeats": 1.5}, "dense_repeats: expected an integer >= 1, received 1.5"),
    ({"seq_len": 3}, "seq_len: expected L > window M = 3, received 3"),
    ({"device": "tpu"}, "device: expected 'auto', 'cpu'"),
    ({"generator": 0}, "generator: expected None or a CPU torch.Generator, received 0"),
    ({"source": "paper"}, "source: expected a theory.Source"),
])
def test_benchmark_step_bad_input(kwargs, message) -> None:
    with pytest.raises(InductionHeadsError, match=message):
        benchmark_step(**{**TINY, **kwargs})


def test_benchmark_standard_step_returns_consistent_rates() -> None:
    r = benchmark_standard_step(**TINY_STANDARD, generator=torch.Generator().manual_seed(1))
    assert isinstance(r, StandardBenchResult)
    assert (r.batch_size, r.seq_len, r.repeats, r.device) == (4, 12, 2, "cpu")
    assert r.parameters == _parameters(TINY_STANDARD["spec"])
    assert r.step_s > 0 and r.steps_per_second == pytest.approx(1 / r.step_s, rel=1e-12)
    assert r.threads == torch.get_num_threads()
    if not torch.cuda.is_available():
        assert r.gpu_steps_per_second is None
    assert set(r.to_dict()) == set(StandardBenchResult.__dataclass_fields__)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"batch_size": 0}, "batch_size: expected an integer >= 1, received 0"),
    ({"repeats": True}, "repeats: expected an integer >= 1, received True"),
    ({"seq_len": 25}, "seq_len: expected max\\(parents\\) = 2 <= L <= the model's max_len = 24"),
    ({"seq_len": 1}, "seq_len: expected max\\(parents\\) = 2 <= L"),
    ({"spec": PAPER_SPEC.to_dict()}, "spec: expected a StandardSpec"),
    ({"device": "tpu"}, "device: expected 'auto', 'cpu'"),
    ({"generator": 0}, "generator: expected None or a CPU torch.Generator, received 0"),
])
def test_benchmark_standard_step_bad_input(kwargs, message) -> None:
    with pytest.raises(InductionHeadsError, match=message):
        benchmark_standard_step(**{**TINY_STANDARD, **kwargs})


def test_bench_cli_prints_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "sub" / "bench.json"
    assert main(["bench", "--sequences", "40", "--seq-len", "12", "--repeats", "2",
                 "--batch-size", "4", "--standard-repeats", "1",
                 "--threads", str(torch.get_num_threads()), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert JSON_KEYS <= set(data), f"missing {JSON_KEYS - set(data)}"
    assert data["ratio"] == pytest.approx(data["dense_s"] / data["vectorized_s"])
    assert (data["sequences"], data["seq_len"], data["seed"]) == (40, 12, 0)
    text = capsys.readouterr().out
    assert "vectorised" in text and "dense" in text and f"{data['ratio']:.1f}x" in text
    std = data["standard"]
    assert set(std) == set(StandardBenchResult.__dataclass_fields__)
    assert (std["batch_size"], std["seq_len"], std["repeats"]) == (4, 12, 1)
    sized = dataclasses.replace(PAPER_SPEC, max_len=12)   # relative biases span L offsets
    assert std["parameters"] == _parameters(sized), "the CLI times PAPER_SPEC sized to L"
    assert std["steps_per_second"] == pytest.approx(1 / std["step_s"])
    assert f"{std['steps_per_second']:.2f} steps/s on cpu" in text


def test_bench_cli_bad_input_exits_2(capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "--sequences", "0"]) == 2
    assert "error: sequences: expected an integer >= 1, received 0" in capsys.readouterr().err
    assert main(["bench", "--threads", "0", "--sequences", "4"]) == 2
    assert "--threads: expected an integer >= 1, received 0" in capsys.readouterr().err
    assert main(["bench", "--batch-size", "0", "--sequences", "4"]) == 2
    assert "--batch-size: expected an integer >= 1, received 0" in capsys.readouterr().err


@pytest.mark.gpu
def test_benchmark_on_cuda_reports_gpu_steps() -> None:
    r = benchmark_step(**TINY, device="cuda")
    assert r.device.startswith("cuda") and r.gpu_steps_per_s == pytest.approx(1 / r.vectorized_s)
    cpu = benchmark_step(**TINY)
    assert cpu.gpu_steps_per_s is not None and cpu.gpu_steps_per_s > 0


@pytest.mark.gpu
def test_benchmark_standard_step_on_cuda() -> None:
    r = benchmark_standard_step(**TINY_STANDARD, device="cuda")
    assert r.device.startswith("cuda")
    assert r.gpu_steps_per_second == pytest.approx(r.steps_per_second)
    cpu = benchmark_standard_step(**TINY_STANDARD)
    assert cpu.gpu_steps_per_second is not None and cpu.gpu_steps_per_second > 0
