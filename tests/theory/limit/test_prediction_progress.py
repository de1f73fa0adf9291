"""``predict_limit`` on many head sets: refused at once above the time limit, and a progress bar
that moves through the long ``G`` stage chunk by chunk (``on_chunk`` of ``expected_criterion``)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from tqdm import tqdm

from theory import (
    PAPER_MODEL,
    PAPER_SOURCE,
    InductionHeadsError,
    ModelSpec,
    expected_criterion,
    head_sets,
    predict_limit,
)
from theory.__main__ import main
from theory.limit import prediction
from theory.sizes import LAW_CHUNK_ENTRIES
from theory.work import TIME_LIMIT_ENV

REFUSAL_S = 2.0
"""A refusal estimates from the sizes alone: well under a second, two on a loaded machine."""

MANY_HEADS = ModelSpec(heads=12, window=12, degree=6)
"""|𝒮| = Σ_{k<=6} C(12, k) = 2510 head sets on 3^13 window-law entries per kernel."""


@pytest.fixture(autouse=True)
def _default_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TIME_LIMIT_ENV, raising=False)


def test_many_head_sets_are_refused_at_once_with_size_limit_and_remedy():
    assert len(MANY_HEADS.sets) == sum(math.comb(12, k) for k in range(7)) == 2510
    started = time.perf_counter()
    with pytest.raises(InductionHeadsError) as info:
        predict_limit(PAPER_SOURCE, MANY_HEADS, samples=2000, rng=np.random.default_rng(0))
    elapsed = time.perf_counter() - started
    assert elapsed < REFUSAL_S, f"refusal took {elapsed:.2f} s"
    message = str(info.value)
    for part in ("2510 head sets", "H=12", "D=6", "over 2000 samples", "time limit of 5.0 min",
                 "estimated at about", "fewer samples, a smaller H or D", "time_limit_s"):
        assert part in message, (part, message)


def test_the_cli_refuses_the_same_request_naming_its_flag(capsys):
    started = time.perf_counter()
    status = main(["predict", "--heads", "12", "--window", "12", "--degree", "6"])
    err = capsys.readouterr().err
    assert status == 2 and time.perf_counter() - started < REFUSAL_S, (status, err)
    assert "2510 head sets" in err and "--time-limit" in err and "h on a reference CPU" in err, err


def test_on_chunk_reports_every_kernel_in_chunks_of_the_law_budget():
    sets = head_sets(8, 1)  # window K = 9: 3^9 law entries per kernel
    chunk = LAW_CHUNK_ENTRIES // 3**9
    samples = 2 * chunk + 7
    seen: list[int] = []
    quiet = expected_criterion(PAPER_SOURCE, sets, samples=samples,
                               rng=np.random.default_rng(1))
    told = expected_criterion(PAPER_SOURCE, sets, samples=samples,
                              rng=np.random.default_rng(1), on_chunk=seen.append)
    assert seen == [chunk, chunk, 7], seen
    np.testing.assert_array_equal(quiet.values, told.values)


def test_the_bar_runs_to_its_end_and_names_the_stages(monkeypatch: pytest.MonkeyPatch):
    seen: list[tuple[str, float, float]] = []

    class Recording(tqdm):
        def update(self, n: float = 1) -> bool | None:
            out = super().update(n)
            seen.append((self.desc, self.n, self.total))
            return out

    monkeypatch.setattr(prediction, "tqdm", Recording)
    predict_limit(PAPER_SOURCE, PAPER_MODEL, seq_len=20, samples=50,
                  rng=np.random.default_rng(0), progress=True)
    descs = " ".join(desc for desc, _, _ in seen)
    for part in ("G_L: about", "G: about", "initial copier: about"):
        assert part in descs, (part, seen)
    _, done, total = seen[-1]
    assert done == pytest.approx(total, rel=1e-12), seen
    assert all(b[1] >= a[1] for a, b in zip(seen, seen[1:])), seen
