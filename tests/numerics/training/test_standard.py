"""The GPT-style transformer and its trainer: shapes, causality, taps, switches, checkpoints.

The slow test trains it on the paper's source and reads it with the probe: a real transformer's
prediction of ``x_{L+1}`` must be closest to the GIH of theory's selected set ``(1, 2)``
(``docs/theory.md §3.4``) among all head sets of the window.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import numerics.training
from numerics.models import FullInductionHeadModel, InductionHeadModel
from numerics.models.standard import StandardSpec, StandardTransformer
from numerics.probing import DECIDED, VERDICTS, attention_taps, probe
from numerics.probing import probe_callback as probing_callback
from numerics.training import load_model, resume, train
from numerics.training.standard import StandardHistory, StandardTrainConfig, probe_callback
from theory import (
    PAPER_MODEL,
    PAPER_SOURCE,
    InductionHeadsError,
    predict_limit,
)

D = PAPER_SOURCE.vocab_size

PROB_ATOL = 1e-12
"""Softmax rows in float64 sum to 1 up to round-off."""

SMALL = StandardSpec(d_model=12, max_len=24)
"""A tiny model: every quick test runs in well under a second."""

TINY_RUN = StandardTrainConfig(steps=9, batch_size=6, seq_len=16, eval_sequences=8, log_points=4,
                               device="cpu", warmup_steps=2, schedule="cosine")
"""Nine updates with a warm-up and a cosine tail, so a resume crosses both phases."""

SWITCHES = [dict(), dict(positional="absolute"), dict(mlp=False), dict(layer_norm=False),
            dict(layer_norm=False, mlp=False, positional="absolute"), dict(n_layers=3)]


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on these small matrices a second one only adds synchronisation
    (FAST_SPEC steps took 0.19 s with one thread and 0.69 s with two on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _model(seed: int = 0, **kw) -> StandardTransformer:
    spec = StandardSpec(**{**SMALL.to_dict(), "n_heads": None, "heads": None, **kw})
    return StandardTransformer(spec, D, generator=torch.Generator().manual_seed(seed),
                               dtype=torch.float64)


def _tokens(n: int = 4, T: int = 20, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, D, (n, T), generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------ model
@pytest.mark.parametrize("kw", SWITCHES)
def test_shapes_and_tap_names(kw):
    model = _model(**kw)
    n, T = 3, 17
    logits, taps = model(_tokens(n, T), return_taps=True)
    assert logits.shape == (n, T, D)
    assert tuple(taps) == model.tap_names(), f"taps {list(taps)}"
    Dm = model.spec.d_model
    for name, value in taps.items():
        if name.endswith(("hook_pattern", "hook_scores")):
            layer = int(name.split(".")[1])
            assert value.shape == (n, model.spec.n_heads[layer], T, T), name
        else:
            assert value.shape == (n, T, Dm), name
    spec = model.spec
    assert ("ln_final.hook_normalized" in taps) == spec.layer_norm
    assert ("blocks.0.hook_mlp_out" in taps) == spec.mlp
    assert ("hook_pos_embed" in taps) == (spec.positional == "absolute")
    final = taps["ln_final.hook_normalized"] if spec.layer_norm else \
        taps[f"blocks.{spec.n_layers - 1}.hook_resid_post"]
    torch.testing.assert_close(final @ model.W_U + model.b_U, logits, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kw", SWITCHES)
def test_future_tokens_do_not_change_earlier_logits(kw):
    model = _model(**kw)
    tokens = _tokens(5, 20)
    changed = tokens.clone()
    t = 11  # 0-based column, i.e. x_12
    changed[:, t] = (changed[:, t] + 1) % D
    before, after = model(tokens), model(changed)
    assert torch.equal(before[:, :t], after[:, :t]), "a later token changed an earlier logit"
    assert (before[:, t:] - after[:, t:]).abs().max() > 1e-6, "the changed token had no effect"


def test_patterns_are_causal_distributions():
    _, taps = _model(mlp=True)(_tokens(3, 15), return_taps=True)
    upper = torch.triu(torch.ones(15, 15, dtype=torch.bool), diagonal=1)
    for i in range(2):
        pattern, scores = taps[f"blocks.{i}.attn.hook_pattern"], taps[f"blocks.{i}.attn.hook_scores"]
        assert torch.all(pattern[..., upper] == 0)
        assert torch.all(torch.isneginf(scores[..., upper]))
        assert torch.all(torch.isfinite(scores[..., ~upper]))
        err = (pattern.sum(-1) - 1).abs().max().item()
        assert err < PROB_ATOL, f"pattern rows sum to 1 within {err:.2e}"


def test_relative_bias_is_indexed_by_offset():
    """Head h with zero content scores and a large bias at offset h attends to x_{q-h}."""
    model = _model(heads=3)
    attn = model.blocks[0].attn
    with torch.no_grad():
        attn.W_Q.zero_()
        for h in range(3):
            attn.rel_bias[h, h + 1] = 60.0
    _, taps = model(_tokens(2, 12), return_taps=True)
    pattern = taps["blocks.0.attn.hook_pattern"]                      # (n, 3, T, T)
    for h in range(1, 4):
        on_offset = torch.diagonal(pattern[:, h - 1], offset=-h, dim1=-2, dim2=-1)  # q = h+1..T
        assert on_offset.min() >= 1 - PROB_ATOL, f"head {h}: mass on offset {h} {on_offset.min()}"
    assert model.W_pos is None and attn.rel_bias.shape == (3, SMALL.max_len)


def test_absolute_positions_enter_the_stream():
    model = _model(positional="absolute")
    _, taps = model(_tokens(2, 9), return_taps=True)
    assert torch.equal(taps["hook_pos_embed"][1], model.W_pos[:9])
    assert model.blocks[0].attn.rel_bias is None
    assert torch.equal(taps["blocks.0.hook_resid_pre"], taps["hook_embed"] + taps["hook_pos_embed"])


def test_switches_change_the_parameters():
    names = lambda m: {n for n, _ in m.named_parameters()}  # noqa: E731
    base, mlp, bare = _model(mlp=False), _model(mlp=True), _model(layer_norm=False)
    assert "blocks.0.mlp.0.weight" in names(mlp) and "blocks.0.mlp.0.weight" not in names(base)
    assert "ln_final.weight" in names(base) and not any("ln" in n for n in names(bare))
    assert _model(heads=4, d_model=12).spec.n_heads == (4, 1)
    assert StandardSpec(n_heads=(2, 2)).heads == 2


def test_probabilities_sum_to_one_and_agree():
    model = _model()
    tokens = _tokens(6, 14)
    probs, every = model.next_token_probs(tokens), model.position_probs(tokens)
    assert probs.shape == (6, D) and every.shape == (6, 14, D) and probs.dtype == torch.float64
    assert (probs.sum(-1) - 1).abs().max() < PROB_ATOL
    assert (every.sum(-1) - 1).abs().max() < PROB_ATOL
    torch.testing.assert_close(probs, every[:, -1], rtol=0, atol=0)
    torch.testing.assert_close(model.next_token_probs(tokens.numpy()), probs, rtol=0, atol=0)


def test_initialisation_is_seeded_and_dtype_independent():
    a, b, c = _model(seed=3), _model(seed=3), _model(seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.W_E, c.W_E)
    single = StandardTransformer(SMALL, D, generator=torch.Generator().manual_seed(3))
    assert torch.equal(single.blocks[0].attn.W_Q, a.blocks[0].attn.W_Q.float())


def test_spec_round_trip():
    spec = StandardSpec(d_model=24, n_heads=(4, 2), mlp=True, positional="absolute")
    data = json.loads(json.dumps(spec.to_dict()))
    assert StandardSpec.from_dict(data) == spec


@pytest.mark.parametrize("bad", [
    {"d_model": 16},                       # not a multiple of the 3 first-layer heads
    {"positional": "rotary"},
    {"n_heads": (3,)},                     # one entry for two layers
    {"heads": 2, "n_heads": (3, 1)},
    {"n_layers": 0},
    {"layer_norm": 1},
    {"init_std": 0.0},
    {"max_len": 0},
])
def test_bad_spec(bad):
    with pytest.raises(InductionHeadsError):
        StandardSpec(**bad)


@pytest.mark.parametrize("tokens", [
    torch.rand(2, 5),                      # float
    torch.zeros(5, dtype=torch.int64),     # 1-D
    torch.full((2, 5), D),                 # out of the vocabulary
    torch.full((2, 5), -1),
    torch.zeros(2, SMALL.max_len + 1, dtype=torch.int64),
    np.zeros((2, 5)),                      # float numpy
    [[0, 1]],
])
def test_bad_tokens(tokens):
    with pytest.raises(InductionHeadsError):
        _model()(tokens)


def test_bad_model_arguments():
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(InductionHeadsError):
        StandardTransformer(SMALL, 1, generator=gen)
    with pytest.raises(InductionHeadsError):
        StandardTransformer(SMALL, D, generator=0)
    with pytest.raises(InductionHeadsError):
        StandardTransformer(SMALL, D, generator=gen, dtype=torch.float16)
    with pytest.raises(InductionHeadsError):
        _model().loss(_tokens(2, 6), positions="first")


# ---------------------------------------------------------------------------------- trainer
def _train(seed: int = 0, config: StandardTrainConfig = TINY_RUN, **kw):
    return train(_model(seed), PAPER_SOURCE, config,
                          generator=torch.Generator().manual_seed(seed + 10), progress=False,
                          **kw)


def _same_run(a, b) -> None:
    assert a.history.to_dict() == b.history.to_dict()
    for (name, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(x, y), f"{name} differs"


def test_training_is_deterministic_and_logs_log_spaced_rows():
    a, b, c = _train(0), _train(0), _train(1)
    _same_run(a, b)
    assert a.history.to_dict() != c.history.to_dict()
    h = a.history
    assert h.steps.tolist() == [0, 1, 2, 4, 9]
    assert math.isnan(h.train_loss[0]) and np.all(np.isfinite(h.train_loss[1:]))
    assert h.lr.tolist()[:3] == [0.0, TINY_RUN.lr / 2, TINY_RUN.lr]
    assert h.eval_loss[-1] < h.eval_loss[0], f"eval loss {h.eval_loss}"
    assert a.sample.shape == (TINY_RUN.eval_sequences, TINY_RUN.seq_len + 1)


def test_history_json_round_trip():
    h = _train(0).history
    text = json.dumps(h.to_dict(), allow_nan=False)
    back = StandardHistory.from_dict(json.loads(text))
    assert back.to_dict() == h.to_dict()
    assert np.array_equal(back.eval_last_loss, h.eval_last_loss)


def test_resume_is_bit_identical(tmp_path):
    path = tmp_path / "run.pt"
    whole = _train(0)
    part = _train(0, checkpoint_path=path, stop_after=3)
    assert part.history.steps[-1] == 2  # stopped after step 3, last logged row is step 2
    resumed = resume(path, progress=False)
    _same_run(whole, resumed)
    loaded = load_model(path)
    assert not loaded.training
    assert all(torch.equal(x, y) for x, y in zip(loaded.state_dict().values(),
                                                 whole.model.state_dict().values()))


def test_checkpoint_every_and_bad_checkpoints(tmp_path):
    path = tmp_path / "run.pt"
    _train(0, checkpoint_path=path, checkpoint_every=4, stop_after=5)
    data = torch.load(path, weights_only=True)
    assert data["step"] == 5 and not (tmp_path / "run.pt.tmp").exists()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    for bad in (tmp_path / "junk.pt", tmp_path / "missing.pt"):
        with pytest.raises(InductionHeadsError):
            resume(bad)
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(InductionHeadsError):
        load_model(tmp_path / "other.pt")


def test_learning_rate_schedule():
    cfg = StandardTrainConfig(steps=100, lr=1.0, warmup_steps=10, schedule="cosine",
                              min_lr_ratio=0.1)
    assert cfg.lr_at(5) == 0.5 and cfg.lr_at(10) == 1.0
    assert cfg.lr_at(100) == pytest.approx(0.1, abs=1e-15)
    assert cfg.lr_at(55) == pytest.approx(0.55, abs=1e-15)
    constant = StandardTrainConfig(steps=5, warmup_steps=0, schedule="constant")
    assert [constant.lr_at(s) for s in (1, 5)] == [constant.lr] * 2


def test_last_position_loss():
    model, tokens = _model(), _tokens(5, 12)
    logits = model(tokens[:, :-1])
    expected = torch.nn.functional.cross_entropy(logits[:, -1], tokens[:, -1])
    torch.testing.assert_close(model.loss(tokens, positions="last"), expected)
    cfg = StandardTrainConfig(**{**TINY_RUN.to_dict(), "loss_positions": "last",
                                 "betas": TINY_RUN.betas})
    assert _train(0, cfg).history.to_dict() != _train(0).history.to_dict()


def test_callback_reports_are_stored():
    seen = []

    def callback(model, step):
        seen.append((step, model.training, torch.is_grad_enabled()))
        return {"step": step, "set": [1, 2] if step >= 4 else [1]}

    h = _train(0, callback=callback).history
    assert seen == [(s, False, False) for s in (0, 1, 2, 4, 9)]
    assert [r["step"] for r in h.reports] == h.steps.tolist()
    with pytest.raises(InductionHeadsError):
        _train(0, callback=lambda model, step: {"x": math.nan})
    with pytest.raises(InductionHeadsError):
        _train(0, callback=3)


def test_settled_step_and_distances_from_probe_reports():
    def report(head_set, kl):
        return {"last": {"effective": {"head_set": head_set, "verdict": "decided"},
                         "scores": [{"name": "gih(1, 2)", "kl": kl}]}}
    sets = [[1], [1, 2], [1], [1, 2], [1, 2]]
    h = StandardHistory([0, 1, 2, 4, 8], [0.0] * 5, [math.nan] + [1.0] * 4, [1.0] * 5, [1.0] * 5,
                        tuple(report(s, 0.1 * i) for i, s in enumerate(sets)))
    assert h.settled_step() == 4
    assert h.effective_sets()[1] == (1, 2)
    np.testing.assert_allclose(h.distances("gih(1, 2)"), [0.0, 0.1, 0.2, 0.3, 0.4])
    empty = StandardHistory([0], [0.0], [math.nan], [1.0], [1.0], (None,))
    assert empty.settled_step() is None and math.isnan(empty.distances("bayes")[0])


@pytest.fixture(scope="module")
def limit():
    """Theory's limit at L = TINY_RUN.seq_len (a small Monte Carlo: only its shape is used)."""
    return predict_limit(PAPER_SOURCE, PAPER_MODEL, seq_len=TINY_RUN.seq_len, samples=50,
                         rng=np.random.default_rng(0))


def test_the_probe_reads_the_taps_and_every_position(limit):
    """The pattern taps have the probe's (n, heads, L, L) layout: a first-layer head biased to
    offset h peaks at offset h in the probe's offset profile."""
    model = _model(heads=3)
    with torch.no_grad():
        model.blocks[0].attn.W_Q.zero_()
        for h in range(3):
            model.blocks[0].attn.rel_bias[h, h + 1] = 60.0
    L = TINY_RUN.seq_len
    tokens = torch.randint(0, D, (20, L + 1), generator=torch.Generator().manual_seed(2))
    names = ("blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern")
    report = probe(model.next_token_probs, PAPER_SOURCE, PAPER_MODEL, tokens=tokens,
                   limit=limit, per_position=model.position_probs,
                   attention=attention_taps(model, names))
    first = [o for o in report.offsets if o.name == names[0]]
    assert [o.peak_offset for o in first] == [1, 2, 3], [o.profile for o in first]
    assert len(report.matches) == 4 and report.positions is not None


def test_probe_callback_runs_the_probe(limit, tmp_path):
    L = TINY_RUN.seq_len
    tokens = torch.randint(0, D, (20, L + 1), generator=torch.Generator().manual_seed(2))
    callback = probe_callback(PAPER_SOURCE, PAPER_MODEL, tokens=tokens, limit=limit,
                              attention=True)
    whole = _train(0, callback=callback)
    h = whole.history
    _train(0, callback=callback, checkpoint_path=tmp_path / "run.pt", stop_after=3)
    _same_run(whole, resume(tmp_path / "run.pt", progress=False, callback=callback))
    verdicts = [r["last"]["effective"]["verdict"] for r in h.reports]
    assert all(v in VERDICTS for v in verdicts), verdicts
    decided = tuple(tuple(r["last"]["effective"]["head_set"]) if v == DECIDED else None
                    for r, v in zip(h.reports, verdicts))
    assert h.effective_sets() == decided, f"decided sets {decided}, read {h.effective_sets()}"
    assert np.all(np.isfinite(h.distances("gih(1, 2)")))
    assert h.settled_step() in h.steps.tolist() + [None]
    names = {"blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"}
    assert all({o["name"] for o in r["offsets"]} == names for r in h.reports), h.reports[0]


def test_probe_callback_is_one_function_under_every_import_path():
    assert probe_callback is numerics.training.probe_callback is probing_callback


def _held_out(n: int = 40, seed: int = 2) -> torch.Tensor:
    """Held-out sequences (n, L+1) at the L of the ``limit`` fixture."""
    return torch.randint(0, D, (n, TINY_RUN.seq_len + 1),
                         generator=torch.Generator().manual_seed(seed))


LIMIT_TEMPERATURE = 8.0
"""a of the limiting TF models: high enough that they read as the GIH of their selected set."""


@pytest.mark.parametrize("cls", [InductionHeadModel, FullInductionHeadModel])
def test_probe_callback_reads_a_library_tf_model_and_its_taps(cls, limit):
    """The module itself is the prediction of x_(L+1); ``attention=True`` hands the probe the
    taps ``attention_taps`` names for it, so each copier head peaks at the offset it copies."""
    model = cls.at_limit(PAPER_MODEL, D, selected_set=(1, 2), a=LIMIT_TEMPERATURE,
                         offsets={1: 1, 2: 2, 3: 3}, dtype=torch.float64).eval()
    tokens = _held_out()
    with torch.no_grad():
        got = probing_callback(PAPER_SOURCE, PAPER_MODEL, tokens=tokens, limit=limit,
                               attention=True)(model, 0)
        want = probe(model, PAPER_SOURCE, PAPER_MODEL, tokens=tokens, limit=limit,
                     attention=attention_taps(model)).to_dict()
        bare = probing_callback(PAPER_SOURCE, PAPER_MODEL, tokens=tokens, limit=limit)(model, 0)
    assert got == want
    assert got["last"]["effective"]["head_set"] == [1, 2], got["last"]["effective"]
    name = "copier.attention" if cls is InductionHeadModel else "copier.position_attention"
    copier = [o["peak_offset"] for o in got["offsets"] if o["name"] == name]
    assert copier == [1, 2, 3], got["offsets"]
    assert [m["name"] for m in got["matches"]] == ["classifier.attention"]
    assert bare["offsets"] == [] and bare["matches"] == [] and bare["last"] == got["last"]


def test_probe_callback_reads_a_standard_transformer_and_its_first_and_last_patterns(limit):
    """A first-layer head biased to offset h peaks at h; the last layer gives one match read-out."""
    model = _model(heads=3, n_layers=3).eval()
    with torch.no_grad():
        model.blocks[0].attn.W_Q.zero_()
        for h in range(3):
            model.blocks[0].attn.rel_bias[h, h + 1] = 60.0
    tokens = _held_out()
    with torch.no_grad():
        got = probing_callback(PAPER_SOURCE, PAPER_MODEL, tokens=tokens, limit=limit,
                               attention=True)(model, 0)
        last = probe(model.next_token_probs, PAPER_SOURCE, PAPER_MODEL, tokens=tokens,
                     limit=limit).to_dict()["last"]
    first = [o["peak_offset"] for o in got["offsets"]
             if o["name"] == "blocks.0.attn.hook_pattern"]
    assert first == [1, 2, 3], got["offsets"]
    assert {o["name"] for o in got["offsets"]} == {"blocks.0.attn.hook_pattern",
                                                   "blocks.2.attn.hook_pattern"}
    assert len(got["matches"]) == 3 + 1 and got["last"] == last


UNIFORM_KL_ATOL = 1e-12
"""KL(uniform ‖ uniform) is 0 up to float64 round-off."""


def test_probe_callback_reads_any_callable_and_rejects_unknown_taps(limit):
    uniform = lambda context: np.full((len(context), D), 1.0 / D)  # noqa: E731
    tokens = _held_out()
    report = probing_callback(PAPER_SOURCE, PAPER_MODEL, tokens=tokens, limit=limit)(uniform, 0)
    kl = {s["name"]: s["kl"] for s in report["last"]["scores"]}["uniform"]
    assert abs(kl) <= UNIFORM_KL_ATOL, f"KL(uniform ‖ uniform model): predicted 0, measured {kl}"
    with pytest.raises(InductionHeadsError, match="names"):
        probing_callback(PAPER_SOURCE, PAPER_MODEL, tokens=tokens, limit=limit,
                         attention=True)(uniform, 0)
    with pytest.raises(InductionHeadsError, match="model"):
        probing_callback(PAPER_SOURCE, PAPER_MODEL, tokens=tokens, limit=limit)(3, 0)
    for bad in ("blocks.0.attn.hook_pattern", [], 3, {"copier.attention": "copier"}, [1]):
        with pytest.raises(InductionHeadsError, match="attention"):
            probing_callback(PAPER_SOURCE, PAPER_MODEL, tokens=tokens, limit=limit,
                             attention=bad)


@pytest.mark.parametrize("bad", [
    {"steps": -1}, {"batch_size": 0}, {"lr": 0.0}, {"betas": (0.9, 1.0)}, {"schedule": "step"},
    {"loss_positions": "first"}, {"eval_sequences": 1}, {"dtype": "float16"},
    {"device": "tpu"}, {"grad_clip": 0.0}, {"min_lr_ratio": 2.0}, {"log_points": 1},
])
def test_bad_config(bad):
    with pytest.raises(InductionHeadsError):
        StandardTrainConfig(**{"steps": 3, **bad})


def test_bad_training_arguments():
    with pytest.raises(InductionHeadsError):  # L beyond the model's positional tables
        _train(0, StandardTrainConfig(steps=1, seq_len=SMALL.max_len + 1, device="cpu"))
    gen = torch.Generator().manual_seed(0)
    with pytest.raises(InductionHeadsError):
        train(StandardTransformer(SMALL, 4, generator=gen), PAPER_SOURCE, TINY_RUN,
                       generator=gen)
    with pytest.raises(InductionHeadsError):
        train(_model(), PAPER_SOURCE, TINY_RUN, generator=gen, stop_after=0)


def test_config_round_trip():
    cfg = StandardTrainConfig(steps=7, betas=(0.8, 0.95), grad_clip=None, schedule="cosine")
    assert StandardTrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
