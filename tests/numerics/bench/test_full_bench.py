"""The full model's step benchmark (numerics.bench.full) and ``python -m numerics bench full-step``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from numerics.__main__ import main
from numerics.bench import FullBenchResult, benchmark_full_step
from numerics.bench.full import (
    FULL_BENCH_SPEC,
    classifier_probs,
    full_step_copier,
    full_step_parameters,
)
from numerics.models.baseline import dense_head_similarity
from numerics.models.full_copier import gather_head_similarity
from theory import InductionHeadsError

TINY = {"sequences": 30, "seq_len": 8, "repeats": 2, "baseline_repeats": 1}
"""A size that runs in well under a second; the real benchmark is n = 9000, L = 100."""

EXACT = 1e-10
"""float64: the two contenders' losses differ by the copier's rounding only."""


@pytest.mark.parametrize("form", ["auto", "gather", "lookup", "patterns"])
def test_benchmark_full_step_returns_consistent_times(form: str) -> None:
    r = benchmark_full_step(**TINY, form=form, generator=torch.Generator().manual_seed(1))
    assert isinstance(r, FullBenchResult)
    assert (r.sequences, r.seq_len, r.repeats, r.baseline_repeats, r.device) == (30, 8, 2, 1,
                                                                                  "cpu")
    assert (r.vocab_size, r.heads, r.offsets, r.dtype) == (3, 3, (0, 1, 2, 3, 4, 5), "float32")
    assert form == "auto" or r.form == form
    for name in ("fast_s", "baseline_s", "prepare_s"):
        value = getattr(r, name)
        assert 0 < value < float("inf"), f"{name} = {value}"
    assert r.ratio == pytest.approx(r.baseline_s / r.fast_s, rel=1e-12)
    assert r.threads == torch.get_num_threads()
    assert set(r.to_dict()) == set(FullBenchResult.__dataclass_fields__)


def test_the_contenders_compute_the_same_loss() -> None:
    params = full_step_parameters(FULL_BENCH_SPEC, 3, dtype=torch.float64,
                                  device=torch.device("cpu"),
                                  generator=torch.Generator().manual_seed(2))
    copier = full_step_copier(FULL_BENCH_SPEC, params)
    assert copier.mask[:, 0].all(), "every head attends to its own position"
    assert copier.mask[:, 1:].tolist() == [[i in w for i in range(1, 6)]
                                           for w in FULL_BENCH_SPEC.windows]
    tokens = torch.randint(3, (6, 13), generator=torch.Generator().manual_seed(3))
    context, target = tokens[:, :-1], tokens[:, -1]
    losses = [F.cross_entropy(classifier_probs(f(context, copier), context, FULL_BENCH_SPEC,
                                               params), target)
              for f in (gather_head_similarity, dense_head_similarity)]
    assert abs(float((losses[0] - losses[1]).detach())) <= EXACT, f"gather {losses[0]}, dense {losses[1]}"
    probs = classifier_probs(gather_head_similarity(context, copier), context, FULL_BENCH_SPEC,
                             params)
    assert torch.allclose(probs.sum(-1), torch.ones(6, dtype=torch.float64), atol=EXACT)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sequences": 0}, "sequences: expected an integer >= 1, received 0"),
    ({"baseline_repeats": 0}, "baseline_repeats: expected an integer >= 1, received 0"),
    ({"seq_len": 5}, "seq_len: expected L > window M = 5, received 5"),
    ({"form": "dense"}, "form: expected 'auto' or one of"),
    ({"dtype": "float16"}, "dtype: expected torch.float32"),
    ({"device": "tpu"}, "device: expected 'auto', 'cpu'"),
])
def test_benchmark_full_step_bad_input(kwargs, message) -> None:
    with pytest.raises(InductionHeadsError, match=message):
        benchmark_full_step(**{**TINY, **kwargs})


def test_bench_full_step_cli_prints_and_writes_json(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "full.json"
    assert main(["bench", "full-step", "--sequences", "30", "--seq-len", "8", "--repeats", "2",
                 "--baseline-repeats", "1", "--form", "patterns", "--dtype", "float64",
                 "--threads", str(torch.get_num_threads()), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(FullBenchResult.__dataclass_fields__) | {"seed", "torch"} == set(data)
    assert (data["sequences"], data["seq_len"], data["form"], data["dtype"]) == (
        30, 8, "patterns", "float64")
    text = capsys.readouterr().out
    assert "full model training step, n=30, L=8" in text
    assert f"{data['ratio']:.1f}x" in text and "copier form patterns" in text
    assert main(["bench", "full-step", "--sequences", "0"]) == 2
    assert "error: sequences: expected an integer >= 1, received 0" in capsys.readouterr().err
