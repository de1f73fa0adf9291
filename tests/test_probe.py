"""The probe reads exact GIH, Bayes and unigram models as themselves, reads every library model's
attention taps by their declared layouts, and refuses bad inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from numerics import (
    FullInductionHeadModel,
    InductionHeadModel,
    StandardSpec,
    StandardTransformer,
    default_config,
    sample_sequences,
    train,
)
from numerics.probing import ProbeReport, attention_taps, from_logits, probe
from numerics.probing.measure import BAYES_NEEDS_RNG
from theory import (
    PAPER_MODEL,
    PAPER_SOURCE,
    Dirichlet,
    InductionHeadsError,
    Mixture,
    MixtureComponent,
    ModelSpec,
    Source,
    bayes_predict,
    gih_predict,
    predict_limit,
)
from theory.predictors.bayes import bayes_predict_prior
from theory.predictors.positional import gih_predict_positions
from theory.predictors.probabilities import check_probabilities
from theory.predictors.reference import prediction_loss

N, L, D = 300, 60, PAPER_SOURCE.vocab_size

EXACT_KL_ATOL = 1e-12
"""KL of a reference to a model computing that reference: float64 round-off, or the e^-60 mass
a GIH at the fit's upper bound a = 60 leaves on keys an a = ∞ model ignores (≈ 1e-25)."""

CLEAR_MARGIN_SE = 3.0
"""The effective set must beat the runner-up by at least 3 standard errors (a one-sided 3σ gap)."""

TEMPERATURE_ATOL = 1e-3
"""The fit recovers a model's own temperature: KL grows quadratically around it, Brent's xatol
is 1e-6, so the minimiser sits well within 1e-3."""

LOGITS_ATOL = 1e-10
"""softmax(log p + c) reproduces p to float64 round-off; the KLs then agree far below 1e-10."""

HARD_COPY = 0.99
"""Mean attention a hard-wired or trained copier head puts on its offset (hard-wired heads put
1 - e^-60 or more there, the short stage-wise run about 0.996)."""

READOUT_ATOL = 1e-12
"""The probe's offset profile against the model's own averaged read-out: the same float64 mean."""

CONCENTRATED_SELECTOR = 0.9
"""c̃ of the learned set after the short run (seen: 0.9999); a split selector has no one set."""

LIMIT_A = 6.0
"""Classifier temperature of the limiting models (a finite a that the fit must recover)."""


@pytest.fixture(scope="module")
def held_out() -> tuple[np.ndarray, np.ndarray]:
    """N paper-source sequences of L+1 tokens with their kernels."""
    tokens, kernels = sample_sequences(PAPER_SOURCE, N, L + 1,
                                       generator=torch.Generator().manual_seed(5),
                                       return_kernels=True, dtype=torch.float64)
    return tokens.numpy(), kernels.numpy()


@pytest.fixture(scope="module")
def limit():
    return predict_limit(PAPER_SOURCE, PAPER_MODEL, seq_len=L, samples=500,
                         rng=np.random.default_rng(0))


def _probe(model, held_out, limit, **kwargs) -> ProbeReport:
    tokens, kernels = held_out
    return probe(model, PAPER_SOURCE, PAPER_MODEL, tokens=tokens, kernels=kernels, limit=limit,
                 **kwargs)


def _gih(head_set, a):
    return lambda ctx: gih_predict(ctx, head_set, a, vocab_size=D)


@pytest.mark.parametrize("head_set", [(1, 2), (1,)])
def test_exact_gih_function_reads_as_its_set(held_out, limit, head_set):
    report = _probe(_gih(head_set, math.inf), held_out, limit)
    eff = report.last.effective
    assert eff.head_set == head_set, f"effective {eff.head_set}, model's set {head_set}"
    assert eff.kl <= EXACT_KL_ATOL, f"KL to its own GIH {eff.kl}"
    assert eff.margin_se >= CLEAR_MARGIN_SE, f"margin {eff.margin_se} SE over {eff.runner_up}"
    assert report.selected_set == limit.selected_set == (1, 2)
    assert report.agrees_with_theory == (head_set == (1, 2))
    assert report.parents == (1, 2)


def test_finite_temperature_is_recovered(held_out, limit):
    report = _probe(_gih((1, 2), 3.0), held_out, limit)
    score = report.last.score("gih(1, 2)")
    assert abs(score.temperature - 3.0) <= TEMPERATURE_ATOL, f"fitted a = {score.temperature}"
    assert score.kl <= EXACT_KL_ATOL and report.last.closest == "gih(1, 2)"


@pytest.mark.parametrize("selected", [(1, 2), (1,)])
def test_limiting_transformer_reads_as_its_selector_set(held_out, limit, selected):
    tf = InductionHeadModel.at_limit(PAPER_MODEL, D, selected_set=selected, a=6.0,
                                     dtype=torch.float64)
    report = _probe(tf, held_out, limit, attention=attention_taps(tf))
    eff = report.last.effective
    assert eff.head_set == selected, f"effective {eff.head_set}, selector on {selected}"
    assert abs(eff.temperature - 6.0) <= TEMPERATURE_ATOL, f"fitted a = {eff.temperature}"
    assert eff.kl <= EXACT_KL_ATOL and eff.margin_se >= CLEAR_MARGIN_SE
    peaks = {o.head + 1: o.peak_offset for o in report.offsets}
    assert all(peaks[h] == h for h in selected), f"copier peaks {peaks}"
    (match,) = report.matches
    assert match.head is None and match.head_set == (1, 2)
    if selected == (1, 2):  # the classifier attends exactly to S*'s matches, weighted e^a
        assert match.correlation > 0.99, f"correlation {match.correlation}"


def test_bayes_predictor_is_recognised(held_out, limit):
    report = _probe(lambda ctx: bayes_predict(ctx, (1, 2), 0.1, vocab_size=D), held_out, limit)
    assert report.last.closest == "bayes"
    assert report.last.score("bayes").kl <= EXACT_KL_ATOL


class _Unigram(nn.Module):
    """Average of the one-hot context tokens, with ``beta`` pseudo-counts per token."""

    def __init__(self, beta: float):
        super().__init__()
        self.register_buffer("beta", torch.tensor(beta, dtype=torch.float64))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        assert isinstance(tokens, torch.Tensor), "auto inputs give a module a tensor"
        counts = nn.functional.one_hot(tokens, D).to(torch.float64).sum(dim=1)  # (n, d)
        return (counts + self.beta) / (tokens.shape[1] + D * self.beta)


def test_unigram_module_reads_as_the_unigram(held_out, limit):
    plain = _probe(_Unigram(0.0), held_out, limit)
    assert plain.effective_set == (), "the unsmoothed unigram is the GIH of the empty set"
    assert plain.last.effective.kl <= EXACT_KL_ATOL
    smoothed = _probe(_Unigram(0.5), held_out, limit)
    assert smoothed.last.closest == "unigram"
    assert smoothed.last.score("unigram").kl <= EXACT_KL_ATOL


def test_logits_adapter_matches_probabilities(held_out, limit):
    rng = np.random.default_rng(1)

    def logits(ctx):
        p = gih_predict(ctx, (1, 2), 3.0, vocab_size=D)  # 0 for tokens absent from ctx
        log_p = np.log(p, out=np.full_like(p, -np.inf), where=p > 0)
        return log_p + rng.normal(size=(len(ctx), 1))  # any per-row shift

    def torch_logits(ctx):
        return torch.as_tensor(logits(ctx.numpy()))

    base = _probe(_gih((1, 2), 3.0), held_out, limit)
    for adapted in (from_logits(logits), from_logits(torch_logits, inputs="torch")):
        report = _probe(adapted, held_out, limit)
        gaps = [abs(a.kl - b.kl) for a, b in zip(report.last.scores, base.last.scores)]
        assert max(gaps) <= LOGITS_ATOL, f"KL gaps up to {max(gaps)}"
        assert report.effective_set == (1, 2)


def test_per_position_scores_read_the_set(held_out, limit):
    def per_position(ctx):
        out = gih_predict_positions(ctx, (1, 2), math.inf, vocab_size=D)
        return np.nan_to_num(out, nan=1.0 / D)  # rows before l0 are not scored

    report = _probe(_gih((1, 2), math.inf), held_out, limit, per_position=per_position)
    table = report.positions
    assert (table.first_position, table.last_position) == (3, L)
    assert table.effective.head_set == (1, 2) and table.effective.kl <= EXACT_KL_ATOL
    assert table.score("bayes").kl > 0 and table.closest == "gih(1, 2)"


def test_attention_patterns_in_transformer_lens_layout(held_out, limit):
    """Head 0 attends to offset 1, head 1 to offset 2 (to itself where that key is absent);
    head 2's last query row is the normalised S*-match indicator (uniform without a match)."""
    ctx = held_out[0][:, :L]
    q = np.arange(L)
    pattern = np.zeros((N, 3, L, L))  # (n, heads, query, key)
    for head, offset in ((0, 1), (1, 2), (2, 0)):
        pattern[:, head, q, np.where(q >= offset, q - offset, q)] = 1.0
    match = np.zeros((N, L))
    match[:, 2:] = (ctx[:, 1:L - 1] == ctx[:, L - 1:]) & (ctx[:, :L - 2] == ctx[:, L - 2:L - 1])
    none = match.sum(axis=1) == 0
    match[none] = 1.0
    pattern[:, 2, L - 1] = match / match.sum(axis=1, keepdims=True)
    report = _probe(_gih((1, 2), math.inf), held_out, limit,
                    attention={"blocks.0.attn.hook_pattern": pattern})
    profiles = {o.head: o.profile for o in report.offsets}
    assert profiles[0] == (1.0, 0.0, 0.0) and profiles[1] == (0.0, 1.0, 0.0)
    assert [o.self_mass for o in report.offsets[:2]] == [0.0, 0.0]
    last_row = report.matches[2]
    assert last_row.head == 2 and last_row.sequences == int((~none).sum())
    assert abs(last_row.correlation - 1) < 1e-12, f"correlation {last_row.correlation}"
    assert last_row.match_mass == pytest.approx(float((~none).mean())), "1 where a key matches"
    assert report.matches[0].match_mass < 1.0, "offset-1 attention is not the match pattern"


def test_absent_references_are_reported(held_out, limit):
    mixture = Source(3, (1, 2), Mixture((MixtureComponent((1,), 0.7, 0.1),
                                         MixtureComponent((1, 2), 0.3, 0.1))))
    tokens = held_out[0][:60]
    report = probe(_gih((1,), math.inf), mixture, PAPER_MODEL, tokens=tokens,
                   rng=np.random.default_rng(2), limit_samples=200)
    names = [s.name for s in report.last.scores]
    assert "bayes" in names and "oracle" not in names, names  # the rng draws the estimate
    assert dict(report.absent).keys() == {"oracle"}
    # Without an rng the mixture's particle-filter estimate cannot be drawn: absent, with why.
    undrawn = probe(_gih((1,), math.inf), mixture, PAPER_MODEL, tokens=tokens,
                    limit=predict_limit(mixture, PAPER_MODEL, seq_len=L, samples=200,
                                        rng=np.random.default_rng(2)))
    absent = dict(undrawn.absent)
    assert "bayes" not in [s.name for s in undrawn.last.scores]
    assert absent.keys() == {"bayes", "oracle"} and absent["bayes"] == BAYES_NEEDS_RNG, absent


def test_precomputed_bayes_scores_the_last_position(held_out, limit):
    mixture = Source(3, (1, 2), Mixture((MixtureComponent((1,), 0.7, 0.1),
                                         MixtureComponent((1, 2), 0.3, 0.1))))
    tokens = held_out[0][:60]
    given = bayes_predict_prior(tokens[:, :-1], mixture, rng=np.random.default_rng(3),
                                particles=64)
    lim = predict_limit(mixture, PAPER_MODEL, seq_len=L, samples=200, rng=np.random.default_rng(2))
    report = probe(lambda ctx: given, mixture, PAPER_MODEL, tokens=tokens, limit=lim,
                   bayes=given)
    assert report.last.closest == "bayes" and report.last.score("bayes").kl <= EXACT_KL_ATOL
    positions = probe(lambda ctx: given, mixture, PAPER_MODEL, tokens=tokens, limit=lim,
                      bayes=given, per_position=np.full((60, L, D), 1.0 / D))
    assert dict(positions.absent)["bayes per position"] == BAYES_NEEDS_RNG
    drawn = probe(lambda ctx: given, mixture, PAPER_MODEL, tokens=tokens, limit=lim,
                  rng=np.random.default_rng(4), per_position=np.full((60, L, D), 1.0 / D))
    assert "bayes" in [s.name for s in drawn.positions.scores]
    assert "bayes" not in dict(drawn.absent) and "bayes per position" not in dict(drawn.absent)


def test_probe_scores_the_given_bayes_predictive(held_out):
    from numerics.probing.callback import next_token_model

    mixture = Source(3, (1, 2), Mixture((MixtureComponent((1,), 0.7, 0.1),
                                         MixtureComponent((1, 2), 0.3, 0.1))))
    tokens = torch.as_tensor(held_out[0][:60])                              # (n, L+1)
    given = bayes_predict_prior(tokens[:, :-1].numpy(), mixture, rng=np.random.default_rng(3),
                                particles=64)                               # (n, d)
    lim = predict_limit(mixture, PAPER_MODEL, seq_len=L, samples=200, rng=np.random.default_rng(2))
    tf = InductionHeadModel.at_limit(PAPER_MODEL, D, selected_set=(1, 2), a=LIMIT_A,
                                     dtype=torch.float64)
    report = probe(next_token_model(tf), mixture, PAPER_MODEL, tokens=tokens, limit=lim,
                   bayes=given)
    assert "bayes" not in dict(report.absent), report.absent
    got = report.last.score("bayes").loss
    want = prediction_loss(given, tokens[:, -1].numpy())
    assert abs(got - want) <= EXACT_KL_ATOL, f"loss of the given Bayes predictive: {got} vs {want}"
    # Without it, the probe has no generator to draw the mixture's estimate with.
    undrawn = probe(next_token_model(tf), mixture, PAPER_MODEL, tokens=tokens, limit=lim)
    assert dict(undrawn.absent)["bayes"] == BAYES_NEEDS_RNG, undrawn.absent
    with pytest.raises(InductionHeadsError, match="bayes"):
        probe(next_token_model(tf), mixture, PAPER_MODEL, tokens=tokens, limit=lim,
              bayes=given[:10])


def test_report_json_round_trip(held_out, limit):
    tf = InductionHeadModel.at_limit(PAPER_MODEL, D, selected_set=(1, 2), a=6.0,
                                     dtype=torch.float64)
    report = _probe(tf, held_out, limit, attention=attention_taps(tf),
                    per_position=lambda ctx: np.full((len(ctx), L, D), 1.0 / D))
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert ProbeReport.from_dict(json.loads(text)) == report
    assert "effective set (1, 2)" in report.summary()


def test_drawn_sequences_and_batches(limit):
    kwargs = {"n": 50, "seq_len": L, "limit": limit}
    one = probe(_gih((1, 2), math.inf), PAPER_SOURCE, PAPER_MODEL,
                generator=torch.Generator().manual_seed(9), **kwargs)
    batched = probe(_gih((1, 2), math.inf), PAPER_SOURCE, window=3, degree=2, batch_size=7,
                    generator=torch.Generator().manual_seed(9), **kwargs)
    assert one == batched, "the same seed and sizes give the same report in batches"
    assert one.last.score("oracle").kl > 0
    wider = probe(_gih((1, 2), math.inf), PAPER_SOURCE, PAPER_MODEL, sets=[(3, 2, 1), (2, 1)],
                  generator=torch.Generator().manual_seed(9), **kwargs)
    assert wider.sets == ((1, 2, 3), (1, 2)) and wider.effective_set == (1, 2)
    assert wider.last.effective.runner_up == (1, 2, 3)


# ------------------------------------------------------------- library models' attention taps
LIMIT_CASES = (
    (PAPER_SOURCE, PAPER_MODEL, 300, 60),
    (Source(4, (1,), Dirichlet(0.5)), ModelSpec(heads=2, window=2, degree=2), 200, 50),
    (Source(3, (2, 3), Dirichlet(0.2)), ModelSpec(heads=3, window=4, degree=2), 200, 50),
)
"""(source, sizes, n, L): the paper's setting, a first-order source on two heads, and a window
wider than the heads (M = 4 > H = 3: the probe scores sets with offset 4 no head reaches)."""


def _selector_set(model) -> tuple[int, ...]:
    """The selector's set: the argmax of c̃."""
    return model.sets[int(torch.argmax(model.selector_weights()))]


@pytest.mark.parametrize("case", range(len(LIMIT_CASES)))
def test_limiting_models_read_as_their_selector_sets(case):
    """Every head set of each setting: the at_limit model's effective set is its selector's."""
    source, spec, n, seq_len = LIMIT_CASES[case]
    limit = predict_limit(source, spec, seq_len=seq_len, samples=200,
                          rng=np.random.default_rng(case))
    for head_set in spec.sets:
        tf = InductionHeadModel.at_limit(spec, source.vocab_size, selected_set=head_set,
                                         a=LIMIT_A, dtype=torch.float64)
        selected = _selector_set(tf)
        report = probe(tf, source, spec, n=n, seq_len=seq_len, limit=limit,
                       generator=torch.Generator().manual_seed(10 + case),
                       attention=attention_taps(tf))
        eff = report.last.effective
        assert eff.head_set == selected == head_set, (
            f"{source.to_dict()}, {spec.to_dict()}: effective {eff.head_set}, selector "
            f"{selected}; runner-up {eff.runner_up} by {eff.margin}")
        assert eff.kl <= EXACT_KL_ATOL, f"KL to GIH{head_set} at its own a: {eff.kl}"
        if head_set:  # the empty set's unigram is every GIH at a = 0: a tie, won by ()
            assert eff.margin_se >= CLEAR_MARGIN_SE, f"{head_set}: margin {eff.margin_se} SE"
        peaks = {o.head + 1: o.peak_offset for o in report.offsets}
        assert all(peaks[h] == h for h in head_set), f"{head_set}: copier peaks {peaks}"
        assert all(o.self_mass == 0.0 for o in report.offsets), "the window is 1..M"


@pytest.mark.parametrize("selected", [(1,), (2,), (1, 2), (2, 3)])
def test_paper_limiting_model_reads_as_the_selected_set(held_out, limit, selected):
    tf = InductionHeadModel.at_limit(PAPER_MODEL, D, selected_set=selected, a=LIMIT_A,
                                     dtype=torch.float64)
    report = _probe(tf, held_out, limit, attention=attention_taps(tf))
    assert report.effective_set == _selector_set(tf) == selected, (
        f"effective {report.effective_set}, selector {_selector_set(tf)}")
    assert report.agrees_with_theory == (selected == (1, 2))


def test_trained_model_reads_as_its_learned_set(limit, one_thread):
    """A short stage-wise run on the paper's source learns S = (1, 2); the probe reads it."""
    config = default_config("stagewise", sequences=400, seq_len=L, device="cpu")
    model = InductionHeadModel(PAPER_MODEL, D, loss=config.loss)
    train(model, PAPER_SOURCE, config, generator=torch.Generator().manual_seed(0),
          progress=False)
    weights = model.selector_weights().detach()
    learned = _selector_set(model)
    assert float(weights.max()) > CONCENTRATED_SELECTOR, f"c̃ = {weights.tolist()}"
    tokens, kernels = sample_sequences(PAPER_SOURCE, N, L + 1,
                                       generator=torch.Generator().manual_seed(11),
                                       return_kernels=True, dtype=torch.float64)
    report = probe(model, PAPER_SOURCE, PAPER_MODEL, tokens=tokens, kernels=kernels,
                   limit=limit, attention=attention_taps(model))
    eff = report.last.effective
    kls = {s.name: round(s.kl, 4) for s in report.last.scores if s.kind == "gih"}
    assert eff.head_set == learned == (1, 2), (
        f"effective {eff.head_set}, learned selector {learned}; KL(GIH_S ‖ model) {kls}")
    assert eff.margin_se >= CLEAR_MARGIN_SE, f"margin over {eff.runner_up}: {eff.margin_se} SE"
    profiles = {o.head + 1: o.profile for o in report.offsets}
    assert all(profiles[h][h - 1] > HARD_COPY for h in learned), f"copier {profiles}"


@pytest.mark.parametrize(("selected", "offsets", "normalization", "self_attention"), [
    ((1, 2), None, "layernorm", True), ((2,), None, "layernorm", True),
    ((2, 3), None, "layernorm", True), ((1,), None, "l2", True),
    ((1, 3), {1: 3, 3: 2}, "l2", False)])
def test_full_limiting_model_reads_as_its_set(held_out, limit, selected, offsets, normalization,
                                              self_attention):
    """The full variant's per-position copier tap reads as per-head offset profiles, with the
    mass on the position itself beside them; the classifier tap as the match read-out. The GIH
    set is the set of offsets the selected heads copy (heads 1 and 3 on offsets 3 and 2 read as
    (2, 3))."""
    tf = FullInductionHeadModel.at_limit(PAPER_MODEL, D, selected_set=selected, a=LIMIT_A,
                                         offsets=offsets, normalization=normalization,
                                         self_attention=self_attention, dtype=torch.float64)
    taps = attention_taps(tf)
    assert taps.layouts == {"copier.position_attention": "copier_positions",
                            "classifier.attention": "query"}
    report = _probe(tf, held_out, limit, attention=taps)
    copied = offsets or {h: h for h in selected}
    reads = tuple(sorted(copied.values()))  # the GIH set is the set of copied offsets
    eff = report.last.effective
    assert eff.head_set == reads and _selector_set(tf) == selected, (
        f"effective {eff.head_set}, copied offsets {reads}, selector {_selector_set(tf)}")
    assert eff.margin_se >= CLEAR_MARGIN_SE, f"margin over {eff.runner_up}: {eff.margin_se} SE"
    profiles = {o.head + 1: o for o in report.offsets}
    assert sorted(profiles) == [1, 2, 3] and all(len(o.profile) == 3 for o in report.offsets)
    for h, o in copied.items():
        assert profiles[h].profile[o - 1] > HARD_COPY and profiles[h].peak_offset == o, (
            f"head {h} copies offset {o}: profile {profiles[h].profile}")
    context = torch.as_tensor(held_out[0][:, :L])
    own = tf.copier_attention(context, include_self=True).detach().numpy()  # (H, K)
    for o in report.offsets:
        row = (o.self_mass,) + o.profile if self_attention else o.profile
        gap = np.abs(np.array(row) - own[o.head]).max()
        assert gap <= READOUT_ATOL, f"head {o.head}: probe {row}, model's read-out {own[o.head]}"
        assert abs(o.self_mass + sum(o.profile) - 1) <= READOUT_ATOL
    assert self_attention or all(o.self_mass == 0.0 for o in report.offsets)
    (match,) = report.matches
    assert match.name == "classifier.attention" and match.head is None
    assert ProbeReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def _standard(n_layers: int, offsets: tuple[int, ...]) -> StandardTransformer:
    """A standard transformer whose first-layer head h attends to offset ``offsets[h]``: zero
    queries leave only the relative bias, e^60 on that offset."""
    spec = StandardSpec(d_model=12, n_layers=n_layers, heads=len(offsets), max_len=L)
    model = StandardTransformer(spec, D, generator=torch.Generator().manual_seed(0),
                                dtype=torch.float64)
    with torch.no_grad():
        model.blocks[0].attn.W_Q.zero_()
        for h, o in enumerate(offsets):
            model.blocks[0].attn.rel_bias[h, o] = 60.0
    return model


@pytest.mark.parametrize("offsets", [(2, 3, 1), (1, 1, 3)])
def test_standard_transformer_first_layer_reads_as_offsets(held_out, limit, offsets):
    model = _standard(2, offsets)
    taps = attention_taps(model)
    first, last = "blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"
    assert taps.names == (first, last) and set(taps.layouts.values()) == {"pattern"}
    report = _probe(model.next_token_probs, held_out, limit, attention=taps)
    heads = [o for o in report.offsets if o.name == first]
    assert [o.head for o in heads] == [0, 1, 2]
    assert all(len(o.profile) == PAPER_MODEL.window for o in heads), "offsets 1..M"
    assert [o.peak_offset for o in heads] == list(offsets), [o.profile for o in heads]
    for o, offset in zip(heads, offsets):
        assert o.profile[offset - 1] > HARD_COPY, f"head {o.head}: profile {o.profile}"
        assert o.self_mass < 1 - HARD_COPY, f"head {o.head}: self mass {o.self_mass}"
    assert [(m.name, m.head) for m in report.matches] == (
        [(first, h) for h in range(3)] + [(last, 0)])


def test_standard_transformer_default_taps_by_depth():
    assert attention_taps(_standard(1, (1, 2, 3))).names == ("blocks.0.attn.hook_pattern",)
    assert attention_taps(_standard(3, (1, 2, 3))).names == (
        "blocks.0.attn.hook_pattern", "blocks.2.attn.hook_pattern")
    named = attention_taps(_standard(3, (1, 2, 3)), ["blocks.1.attn.hook_pattern"])
    assert named.layouts == {"blocks.1.attn.hook_pattern": "pattern"}
    with pytest.raises(InductionHeadsError, match=r"tap names.*blocks\.3\.attn\.hook_pattern"):
        attention_taps(_standard(3, (1, 2, 3)), ["blocks.3.attn.hook_pattern"])


def test_declared_layouts_and_their_refusals(held_out, limit):
    tf = FullInductionHeadModel.at_limit(PAPER_MODEL, D, selected_set=(1, 2), a=LIMIT_A,
                                         dtype=torch.float64)
    _, taps = tf(torch.as_tensor(held_out[0][:, :L]), return_taps=True)
    sigma = taps["copier.position_attention"]  # (n, H, L+1, M+1)
    _raises(r"received \(300, 3, 61, 4\); a per-position copier.*'copier_positions'",
            _gih((1, 2), math.inf),
            held_out, limit, attention={"copier.attention": sigma})
    declared = _probe(_gih((1, 2), math.inf), held_out, limit,
                      attention={"copier.attention": (sigma, "copier_positions")})
    assert [o.peak_offset for o in declared.offsets] == [1, 2, 3]
    _raises(r"shape \(n=300, heads, L=60, L=60\) of its layout 'pattern'.*\(300, 3, 61, 4\)",
            _gih((1, 2), math.inf), held_out, limit,
            attention={"copier.attention": (sigma, "pattern")})
    _raises(r"layout: expected one of .*'offsets'", _gih((1, 2), math.inf), held_out, limit,
            attention={"copier.attention": (sigma, "offsets")})
    with pytest.raises(InductionHeadsError, match="names: expected tap names"):
        attention_taps(lambda tokens, return_taps=False: None)
    with pytest.raises(InductionHeadsError, match="layouts: expected layouts among"):
        attention_taps(tf, layouts={"copier.position_attention": "rows"})
    with pytest.raises(InductionHeadsError, match="layouts: expected names among"):
        attention_taps(tf, layouts={"output": "query"})


# ------------------------------------------------------------------------------ bad input
def _raises(match: str, model, held_out, limit, **kwargs) -> None:
    with pytest.raises(InductionHeadsError, match=match):
        _probe(model, held_out, limit, **kwargs)


def test_negative_probabilities_are_refused(held_out, limit):
    def negative(ctx):
        p = gih_predict(ctx, (1,), 1.0, vocab_size=D)
        p[0] = [1.2, -0.1, -0.1]
        return p

    _raises(r"probabilities >= 0, received -0\.1", negative, held_out, limit)


def test_logits_passed_as_probabilities_are_refused(held_out, limit):
    logits = lambda ctx: np.log(gih_predict(ctx, (1,), 1.0, vocab_size=D) + 0.1) + 3.0  # noqa: E731
    _raises("these look like logits; pass them through softmax or use the logits adapter",
            logits, held_out, limit)
    _raises("look like logits", lambda ctx: 3 * gih_predict(ctx, (1,), 1.0, vocab_size=D),
            held_out, limit)


def test_wrong_shapes_are_refused(held_out, limit):
    tokens, kernels = held_out
    probs = _gih((1,), 1.0)
    _raises(r"axis 0 is n = 300.*\(299, 3\)", lambda ctx: probs(ctx)[1:], held_out, limit)
    _raises(r"shape \(n=300, d=3\).*\(300,\)", lambda ctx: probs(ctx)[:, 0], held_out, limit)
    _raises(r"d \(the vocabulary\) = 3.*\(300, 4\)",
            lambda ctx: np.full((len(ctx), 4), 0.25), held_out, limit)
    _raises(r"shape \(n=300, L=60, d=3\).*\(300, 61, 3\)", probs, held_out, limit,
            per_position=np.full((N, L + 1, D), 1.0 / D))
    _raises("sequences 0..99", lambda ctx: probs(ctx)[:, :2], held_out, limit, batch_size=100)
    _raises("an array or tensor", lambda ctx: (probs(ctx), {}), held_out, limit)
    with pytest.raises(InductionHeadsError, match=r"shape \(n, L\+1=61\).*\(300, 62\)"):
        probe(probs, PAPER_SOURCE, PAPER_MODEL, tokens=np.zeros((N, L + 2), dtype=np.int64),
              seq_len=L, limit=limit)
    with pytest.raises(InductionHeadsError, match=r"tokens in 0\.\.2.*tokens in 3\.\.3"):
        probe(probs, PAPER_SOURCE, PAPER_MODEL, tokens=np.full((N, L + 1), 3), limit=limit)
    with pytest.raises(InductionHeadsError, match="kernels"):
        probe(probs, PAPER_SOURCE, PAPER_MODEL, tokens=tokens, kernels=kernels[:, :2],
              limit=limit)
    with pytest.raises(InductionHeadsError, match=r"limit\.seq_len"):
        probe(probs, PAPER_SOURCE, PAPER_MODEL, tokens=tokens[:, :L], limit=limit)


def test_check_probabilities_directly():
    good = np.full((4, 3), 1 / 3)
    assert check_probabilities(good, n=4, vocab_size=3).dtype == np.float64
    assert check_probabilities(np.full((4, 5, 3), 1 / 3), positions=5).shape == (4, 5, 3)
    with pytest.raises(InductionHeadsError, match="finite"):
        check_probabilities(np.where(good > 0, np.nan, 0.0))
    with pytest.raises(InductionHeadsError, match=r"summing to 1 within 0\.0001.*0\.995") as err:
        check_probabilities(good * 0.995)
    assert "logits" not in str(err.value), "a nearly normalised row gets no logits hint"
    with pytest.raises(InductionHeadsError, match=r"axis 1 is L \(positions\) = 6"):
        check_probabilities(np.full((4, 5, 3), 1 / 3), positions=6)
    with pytest.raises(InductionHeadsError, match="dtype"):
        check_probabilities(np.array([["a", "b"]]))
