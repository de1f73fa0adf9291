"""Checkpoints of every kind refused when edited or damaged, with the library's error only.

* A table of tampered standard-transformer checkpoints: each raises :class:`InductionHeadsError`
  naming the part, the expected and the received value, from ``load_checkpoint``,
  ``load_model`` and ``resume`` (as ``test_checkpoints`` does for TF and its full variant).
* NaN or inf in any tensor of the model or optimizer state of every kind is refused.
* Damaged bytes (truncated files, flipped bytes) of every kind raise only the library's error,
  and ``python -m numerics train --resume`` shows one error line and exits 2.
* A standard run that diverges is reported as divergence, naming the step; rates above
  ``MAX_LEARNING_RATE`` are refused by the config.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from numerics.cli.main import main
from numerics.models.full import FullInductionHeadModel
from numerics.models.simplified import InductionHeadModel
from numerics.models.standard import StandardSpec, StandardTransformer
from numerics.training import (
    MAX_LEARNING_RATE,
    StageConfig,
    TrainConfig,
    load_checkpoint,
    load_model,
    resume,
    train,
)
from numerics.training.standard import StandardTrainConfig
from theory import PAPER_MODEL, PAPER_SOURCE, InductionHeadsError

D = PAPER_SOURCE.vocab_size
SPEC = StandardSpec(d_model=12, max_len=24)
RUN = StandardTrainConfig(steps=9, batch_size=6, seq_len=16, eval_sequences=8, log_points=4,
                          device="cpu", warmup_steps=2)
"""Nine updates of a tiny transformer, logged at steps 0, 1, 2, 4, 9 (milliseconds)."""
STOP = 5
"""The standard checkpoints stop after step 5: rows 0, 1, 2, 4 logged, the warm-up done."""
TF_RUN = TrainConfig("stagewise", tuple(
    StageConfig(name, params, lr, 5, momentum=0.5) for name, params, lr in (
        ("selector", ("C",), 300.0), ("copier", ("w",), 300.0), ("classifier", ("a",), 1.0))),
    40, 12, device="cpu", log_points=3)
FULL_RUN = TrainConfig("stagewise", tuple(
    StageConfig(s.name, s.params, lr, 5, momentum=0.5)
    for s, lr in zip(TF_RUN.stages, (300.0, 10.0, 1e-4))), 40, 12, device="cpu", log_points=3)


def _standard(path: Path, config: StandardTrainConfig = RUN, stop: int | None = STOP) -> None:
    model = StandardTransformer(SPEC, D, generator=torch.Generator().manual_seed(0))
    train(model, PAPER_SOURCE, config, generator=torch.Generator().manual_seed(1),
          progress=False, checkpoint_path=path, stop_after=stop)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A valid checkpoint file of each kind, stopped mid-run."""
    root = tmp_path_factory.mktemp("kinds")
    out = {"standard": root / "standard.pt", "simplified": root / "simplified.pt",
           "full": root / "full.pt"}
    _standard(out["standard"])
    for kind, cls, config in (("simplified", InductionHeadModel, TF_RUN),
                              ("full", FullInductionHeadModel, FULL_RUN)):
        train(cls(PAPER_MODEL, D), PAPER_SOURCE, config,
              generator=torch.Generator().manual_seed(0), progress=False,
              checkpoint_path=out[kind], stop_after=7)
    return out


@pytest.fixture(scope="module")
def good(files: dict[str, Path]) -> dict[str, dict[str, Any]]:
    return {kind: load_checkpoint(path) for kind, path in files.items()}


def _with(**changes: Any) -> Callable[[dict], dict]:
    return lambda d: {**d, **changes}


def _part(key: str, change: Callable[[Any], Any]) -> Callable[[dict], dict]:
    return lambda d: {**d, key: change(copy.deepcopy(d[key]))}


def _entry(key: str, value: Any) -> Callable[[dict], dict]:
    return _part("config" if key in RUN.to_dict() else key, lambda c: {**c, key: value})


def _tensor(name: str, edit: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[dict], dict]:
    return _part("model_state", lambda s: {**s, name: edit(s[name])})


def _opt(index: int, key: str, edit: Callable[[Any], Any]) -> Callable[[dict], dict]:
    def change(o: dict) -> dict:
        o["state"][index][key] = edit(o["state"][index][key])
        return o
    return _part("optimizer_state", change)


def _group(index: int, key: str, value: Any) -> Callable[[dict], dict]:
    def change(o: dict) -> dict:
        o["param_groups"][index][key] = value
        return o
    return _part("optimizer_state", change)


def _set(flat_index: int, value: float) -> Callable[[torch.Tensor], torch.Tensor]:
    def edit(t: torch.Tensor) -> torch.Tensor:
        t = t.clone()
        t.view(-1)[flat_index] = value
        return t
    return edit


def _history(key: str, change: Callable[[list], list]) -> Callable[[dict], dict]:
    return _part("history", lambda h: {**h, key: change(h[key])})


# (id, tampering, fragment of the message) of the standard checkpoint
STANDARD_TAMPERED = [
    ("format", _with(format="induction-heads/train-checkpoint"), "checkpoint keys"),
    ("format-unknown", _with(format="other"), "checkpoint format: expected one of"),
    ("version", _with(version=2), "checkpoint version: expected 1, received 2"),
    ("extra-key", _with(colour=1), "checkpoint keys: expected only"),
    ("missing-key", lambda d: {k: v for k, v in d.items() if k != "eval_sample"},
     "missing ['eval_sample']"),
    ("step-huge", _with(step=10**6), "checkpoint step: expected an integer in 0..9"),
    ("step-string", _with(step="3"), "checkpoint step: expected an integer in 0..9 (the config's "
     "steps), received '3'"),
    ("step-float", _with(step=5.0), "checkpoint step: expected an integer"),
    ("step-bool", _with(step=True), "checkpoint step: expected an integer"),
    ("step-negative", _with(step=-1), "checkpoint step: expected an integer in 0..9"),
    ("step-2-history-of-5", _with(step=2), "checkpoint optimizer_state"),
    ("step-2-mismatched-history", lambda d: _opt_steps(_with(step=2)(d), 2),
     "checkpoint history: expected the 3 rows logged up to step 2"),
    ("config-steps", _entry("steps", 3), "checkpoint step: expected an integer in 0..3"),
    ("config-lr", _entry("lr", 0.02), "checkpoint optimizer_state param_groups[0]['lr']"),
    ("config-weight-decay", _entry("weight_decay", 0.5),
     "checkpoint optimizer_state param_groups[0]['weight_decay']: expected 0.5"),
    ("config-betas", _entry("betas", [0.8, 0.9]), "param_groups[0]['betas']"),
    ("config-eval-sequences", _entry("eval_sequences", 9),
     "checkpoint eval_sample: expected an int64 tensor of shape (eval_sequences, L+1) = (9, 17)"),
    ("config-seq-len", _entry("seq_len", 15), "checkpoint eval_sample: expected an int64"),
    ("config-seq-len-beyond-max-len", _entry("seq_len", 30),
     "checkpoint config seq_len: expected max(parents) = 2 <= L <= the model_spec's max_len = "
     "24, received 30"),
    ("config-log-points", _entry("log_points", 9), "checkpoint history: expected the 6 rows"),
    ("config-dtype", _entry("dtype", "float64"),
     "checkpoint model_state['W_E']: expected a float64 tensor of shape (3, 12)"),
    ("config-unknown-key", _part("config", lambda c: {**c, "colour": 1}),
     "checkpoint config: standard train config: expected a dict"),
    ("config-lr-string", _entry("lr", "0.01"), "checkpoint config: lr: expected a number"),
    ("config-not-a-dict", _with(config=[1, 2]), "checkpoint config"),
    ("source-vocab", _part("source", lambda s: {**s, "vocab_size": 4}),
     "checkpoint "),
    ("source-malformed", _with(source={"x": 1}), "checkpoint source"),
    ("spec-d-model", _part("model_spec", lambda s: {**s, "d_model": 24}),
     "checkpoint model_state['W_E']: expected a float32 tensor of shape (3, 24)"),
    ("spec-no-mlp", _part("model_spec", lambda s: {**s, "mlp": False}),
     "checkpoint model_state: expected a dict with keys"),
    ("spec-malformed", _with(model_spec={"d_model": "wide"}), "checkpoint model_spec"),
    ("vocab-size", _with(vocab_size=4), "checkpoint vocab_size: expected the source's d = 3"),
    ("state-dtype", _tensor("W_E", lambda t: t.double()),
     "checkpoint model_state['W_E']: expected a float32 tensor of shape (3, 12) (the "
     "model_spec's architecture, the config's dtype), received a float64 tensor"),
    ("state-shape", _tensor("W_E", lambda t: t[:2]), "model_state['W_E']: expected a float32"),
    ("state-not-tensor", _tensor("W_E", lambda t: t.tolist()), "received list"),
    ("state-missing", _part("model_state", lambda s: {k: v for k, v in s.items()
                                                      if k != "W_U"}),
     "checkpoint model_state: expected a dict with keys"),
    ("state-nan", _tensor("W_E", _set(0, float("nan"))),
     "checkpoint model_state['W_E']: expected finite values"),
    ("state-inf", _tensor("b_U", _set(1, float("-inf"))),
     "checkpoint model_state['b_U']: expected finite values"),
    ("optimizer-nan", _opt(0, "exp_avg", _set(0, float("nan"))),
     "checkpoint optimizer_state[0]['exp_avg']: expected finite values"),
    ("optimizer-negative-second-moment", _opt(0, "exp_avg_sq", _set(0, -1.0)),
     "['exp_avg_sq']: expected values >= 0"),
    ("optimizer-step", _opt(0, "step", lambda t: t + 1),
     "['step']: expected a scalar tensor 5"),
    ("optimizer-shape", _opt(1, "exp_avg", lambda t: t[:1]), "['exp_avg']: expected a float32"),
    ("optimizer-entry-missing", _part("optimizer_state", lambda o: {
        **o, "state": {k: v for k, v in o["state"].items() if k != 0}}),
     "checkpoint optimizer_state state: expected an entry for each"),
    ("optimizer-one-group", _part("optimizer_state", lambda o: {
        **o, "param_groups": o["param_groups"][:1]}),
     "checkpoint optimizer_state: expected a torch AdamW state_dict"),
    ("optimizer-amsgrad", _group(1, "amsgrad", True),
     "checkpoint optimizer_state param_groups[1]['amsgrad']: expected False"),
    ("optimizer-not-a-dict", _with(optimizer_state=None),
     "checkpoint optimizer_state: expected a torch AdamW state_dict"),
    ("generator-state", _with(generator_state=torch.zeros(3, dtype=torch.uint8)),
     "checkpoint generator_state"),
    ("generator-device", _with(generator_device="tpu"), "checkpoint generator_device"),
    ("eval-sample-token", _part("eval_sample", _set(0, D)),
     "checkpoint eval_sample: expected tokens in 0..2"),
    ("eval-sample-negative", _part("eval_sample", _set(5, -1)), "tokens in 0..2"),
    ("eval-sample-dtype", _part("eval_sample", lambda t: t.int()),
     "checkpoint eval_sample: expected an int64 tensor"),
    ("eval-sample-shape", _part("eval_sample", lambda t: t[:-1]),
     "checkpoint eval_sample: expected an int64 tensor of shape (eval_sequences, L+1) = (8, 17)"),
    ("history-row-missing", _part("history", lambda h: {k: v[:-1] for k, v in h.items()}),
     "checkpoint history: expected the 4 rows logged up to step 5"),
    ("history-step", _history("steps", lambda s: s[:-1] + [3]), "(row 3: 4)"),
    ("history-lr", _history("lr", lambda s: s[:-1] + [0.5]),
     "checkpoint history lr[3]: expected 0.0083"),
    ("history-loss-nan", _history("eval_loss", lambda s: s[:-1] + [float("nan")]),
     "checkpoint history: expected finite losses"),
    ("history-train-loss-row-0", _history("train_loss", lambda s: [1.0] + s[1:]),
     "checkpoint history: expected finite losses (the training loss NaN at step 0 only)"),
    ("history-lengths", _history("lr", lambda s: s[:-1]), "checkpoint history lr"),
    ("history-report", _history("reports", lambda s: s[:-1] + [[1]]),
     "checkpoint history reports[3]: expected None or a JSON dict"),
    ("history-malformed", _with(history={"steps": []}),
     "checkpoint history: standard history: expected a dict with keys"),
    ("history-strings", _history("eval_loss", lambda s: ["x"] * len(s)), "checkpoint history"),
    ("checkpoint-every-zero", _with(checkpoint_every=0),
     "checkpoint checkpoint_every: expected None or an integer >= 1, received 0"),
    ("checkpoint-every-string", _with(checkpoint_every="2"),
     "checkpoint checkpoint_every: expected None or an integer >= 1, received '2'"),
]


def _opt_steps(data: dict, step: int) -> dict:
    """``data`` with its optimizer's step counts set to ``step`` (a consistent edit of both)."""
    out = copy.deepcopy(data)
    for entry in out["optimizer_state"]["state"].values():
        entry["step"] = torch.tensor(float(step))
    out["optimizer_state"]["param_groups"] = [
        {**g, "lr": RUN.lr_at(step)} for g in out["optimizer_state"]["param_groups"]]
    return out


def _refused(path: Path, fragment: str) -> str:
    with pytest.raises(InductionHeadsError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "expected" in message and "received" in message and str(path) in message, message
    assert "\n" not in message, message
    for call in (lambda: load_model(path), lambda: resume(path, progress=False)):
        with pytest.raises(InductionHeadsError) as again:
            call()
        assert str(again.value) == message
    return message


@pytest.mark.parametrize(("tamper", "fragment"), [t[1:] for t in STANDARD_TAMPERED],
                         ids=[t[0] for t in STANDARD_TAMPERED])
def test_tampered_standard_checkpoint_is_refused(good, tmp_path: Path, tamper, fragment: str
                                                 ) -> None:
    path = tmp_path / "tampered.pt"
    torch.save(tamper(good["standard"]), path)
    _refused(path, fragment)


@pytest.mark.parametrize(("config", "stop"), [(RUN, 1), (RUN, 2), (RUN, 4), (RUN, None),
                                              (StandardTrainConfig(steps=0, device="cpu",
                                                                   seq_len=16), None)],
                         ids=["step-1", "step-2", "step-4", "finished", "no-steps"])
def test_standard_checkpoints_at_every_position_are_accepted(tmp_path: Path, config, stop
                                                             ) -> None:
    path = tmp_path / "run.pt"
    _standard(path, config, stop)
    assert load_checkpoint(path)["step"] == (config.steps if stop is None else stop)
    assert isinstance(load_model(path), StandardTransformer)


@pytest.mark.parametrize("switch", [dict(positional="absolute"), dict(mlp=False),
                                    dict(layer_norm=False), dict(n_layers=3)],
                         ids=["absolute", "no-mlp", "no-layernorm", "three-layers"])
def test_standard_checkpoints_of_every_architecture_are_accepted(tmp_path: Path, switch
                                                                 ) -> None:
    spec = StandardSpec(**{**SPEC.to_dict(), "n_heads": None, "heads": None, **switch})
    model = StandardTransformer(spec, D, generator=torch.Generator().manual_seed(0),
                                dtype=torch.float64)
    config = StandardTrainConfig(**{**RUN.to_dict(), "dtype": "float64", "weight_decay": 0.1})
    train(model, PAPER_SOURCE, config, generator=torch.Generator().manual_seed(1),
          progress=False, checkpoint_path=tmp_path / "run.pt", stop_after=3)
    resume(tmp_path / "run.pt", progress=False)


@pytest.mark.parametrize("kind", ["simplified", "full"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("part", ["model_state", "optimizer_state"])
def test_non_finite_tensors_of_tf_checkpoints_are_refused(good, tmp_path: Path, kind: str,
                                                          value: float, part: str) -> None:
    data = copy.deepcopy(good[kind])
    if part == "model_state":
        data["model_state"]["C"].view(-1)[0] = value
        fragment = "checkpoint model_state['C']: expected finite values"
    else:
        entry = next(iter(data["optimizer_state"]["state"].values()))
        entry["momentum_buffer"].view(-1)[0] = value
        fragment = "checkpoint optimizer_state['state'][0]['momentum_buffer']: expected finite"
    path = tmp_path / "tampered.pt"
    torch.save(data, path)
    _refused(path, fragment)


def _damaged(whole: bytes, seed: int) -> bytes:
    """``whole`` truncated, or with bytes flipped, or both (several of each per seed)."""
    rng = random.Random(seed)
    data = bytearray(whole)
    if seed % 3 != 1:
        for _ in range(rng.choice([1, 4, 32])):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    if seed % 3 != 0:
        data = data[: rng.randrange(len(data))]
    return bytes(data)


DAMAGES = 40
"""Damaged copies of each kind's file (seconds in all)."""


@pytest.mark.parametrize("kind", ["standard", "simplified", "full"])
def test_damaged_bytes_raise_only_the_library_error(files, tmp_path: Path, kind: str) -> None:
    whole = files[kind].read_bytes()
    path = tmp_path / "damaged.pt"
    refused = 0
    for seed in range(DAMAGES):
        path.write_bytes(_damaged(whole, seed))
        try:
            load_checkpoint(path)
        except InductionHeadsError as err:
            assert str(path) in str(err) and "\n" not in str(err), str(err)
            refused += 1
    assert refused >= DAMAGES // 2, f"only {refused} of {DAMAGES} damaged files refused"


@pytest.mark.parametrize("kind", ["standard", "simplified"])
def test_resume_of_a_damaged_file_is_one_error_line(files, tmp_path: Path, kind: str,
                                                    capsys: pytest.CaptureFixture) -> None:
    whole = files[kind].read_bytes()
    for seed in (0, 1, 2, 5):
        bad = tmp_path / f"bad{seed}.pt"
        bad.write_bytes(_damaged(whole, seed))
        argv = ["train", "--out", str(tmp_path / f"out{seed}"), "--resume", str(bad),
                "--no-progress"]
        try:
            load_checkpoint(bad)
            loads = True                               # a flip that left the file valid
        except InductionHeadsError:
            loads = False
        code = main(argv)
        err = capsys.readouterr().err
        if loads:
            continue
        assert code == 2, err
        assert err.startswith("error: --resume: ") and len(err.splitlines()) == 1, err


# ----------------------------------------------------------------------- rates and divergence
@pytest.mark.parametrize("lr", [MAX_LEARNING_RATE * 10, 1e300, float("inf")])
def test_standard_rates_above_the_bound_are_refused(lr: float) -> None:
    with pytest.raises(InductionHeadsError, match="MAX_LEARNING_RATE"):
        StandardTrainConfig(steps=3, lr=lr)


@pytest.mark.parametrize("lr", [1e6, 1e20, MAX_LEARNING_RATE])
def test_standard_divergence_is_reported_with_its_step(tmp_path: Path, lr: float) -> None:
    config = StandardTrainConfig(**{**RUN.to_dict(), "lr": lr, "warmup_steps": 0,
                                    "log_points": 2})
    with pytest.raises(InductionHeadsError, match=r"at step \d+: expected .*\(the run "
                       r"diverged: lower the learning rate") as info:
        _standard(tmp_path / "run.pt", config, None)
    assert not (tmp_path / "run.pt").exists() or load_checkpoint(tmp_path / "run.pt"), info


WRONG = [None, True, "x", "3", 1, -1, 2.5, float("nan"), 10**30, [], {}, [1, "2"], {"a": 1},
         torch.zeros(2), torch.full((2,), float("nan"))]
"""Replacements of the wrong type or value for any part of a checkpoint."""


def _nested_paths(value: Any, prefix: tuple = (), depth: int = 3) -> list[tuple]:
    out = [prefix] if prefix else []
    if depth and isinstance(value, dict):
        for k, v in value.items():
            out += _nested_paths(v, (*prefix, k), depth - 1)
    elif depth and isinstance(value, list):
        for k, v in enumerate(value[:2]):
            out += _nested_paths(v, (*prefix, k), depth - 1)
    return out


def _replace_at(data: Any, path: tuple, new: Any) -> Any:
    head, rest = path[0], path[1:]
    out = dict(data) if isinstance(data, dict) else list(data)
    out[head] = _replace_at(data[head], rest, new) if rest else new
    return out


@pytest.mark.parametrize("kind", ["standard", "simplified", "full"])
def test_every_part_of_the_wrong_type_raises_only_the_library_error(good, tmp_path: Path,
                                                                    kind: str) -> None:
    path = tmp_path / "variant.pt"
    paths = _nested_paths(good[kind])
    for part in random.Random(0).sample(paths, min(30, len(paths))):
        for new in WRONG:
            torch.save(_replace_at(good[kind], part, new), path)
            try:
                load_checkpoint(path)
            except InductionHeadsError as err:
                assert str(path) in str(err) and "\n" not in str(err), (part, str(err))
