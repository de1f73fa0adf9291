"""The probe reads every library model's attention taps by their declared layouts, and a
limiting or trained model reads as its selector's set (``numerics.probing.attention``)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from strategies import (
    CLEAR_MARGIN_SE,
    EXACT_KL_ATOL,
    LIMIT_A,
    TEMPERATURE_ATOL,
    gih_model,
    probe_paper,
    probe_raises,
)
from strategies import PROBE_D as D
from strategies import PROBE_L as L
from strategies import PROBE_N as N

from numerics import (
    FullInductionHeadModel,
    InductionHeadModel,
    StandardSpec,
    StandardTransformer,
    default_config,
    sample_sequences,
    train,
)
from numerics.probing import ProbeReport, attention_taps, probe
from theory import (
    PAPER_MODEL,
    PAPER_SOURCE,
    Dirichlet,
    InductionHeadsError,
    ModelSpec,
    Source,
    predict_limit,
)

HARD_COPY = 0.99
"""Mean attention a hard-wired or trained copier head puts on its offset (hard-wired heads put
1 - e^-60 or more there, the short stage-wise run about 0.996)."""

READOUT_ATOL = 1e-12
"""The probe's offset profile against the model's own averaged read-out: the same float64 mean."""

CONCENTRATED_SELECTOR = 0.9
"""c̃ of the learned set after the short run (seen: 0.9999); a split selector has no one set."""


@pytest.mark.parametrize("selected", [(1, 2), (1,)])
def test_limiting_transformer_reads_as_its_selector_set(held_out, limit, selected):
    tf = InductionHeadModel.at_limit(PAPER_MODEL, D, selected_set=selected, a=6.0,
                                     dtype=torch.float64)
    report = probe_paper(tf, held_out, limit, attention=attention_taps(tf))
    eff = report.last.effective
    assert eff.head_set == selected, f"effective {eff.head_set}, selector on {selected}"
    assert abs(eff.temperature - 6.0) <= TEMPERATURE_ATOL, f"fitted a = {eff.temperature}"
    assert eff.kl <= EXACT_KL_ATOL and eff.margin_se >= CLEAR_MARGIN_SE
    peaks = {o.head: o.peak_offset for o in report.offsets}
    assert all(peaks[h] == h for h in selected), f"copier peaks {peaks}"
    (match,) = report.matches
    assert match.head is None and match.head_set == (1, 2)
    if selected == (1, 2):  # the classifier attends exactly to S*'s matches, weighted e^a
        assert match.correlation > 0.99, f"correlation {match.correlation}"


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
    report = probe_paper(gih_model((1, 2), math.inf), held_out, limit,
                    attention={"blocks.0.attn.hook_pattern": pattern})
    profiles = {o.head: o.profile for o in report.offsets}
    assert profiles[1] == (1.0, 0.0, 0.0) and profiles[2] == (0.0, 1.0, 0.0), "heads from 1"
    assert [o.self_mass for o in report.offsets[:2]] == [0.0, 0.0]
    last_row = report.matches[2]
    assert last_row.head == 3 and last_row.sequences == int((~none).sum())
    assert abs(last_row.correlation - 1) < 1e-12, f"correlation {last_row.correlation}"
    assert last_row.match_mass == pytest.approx(float((~none).mean())), "1 where a key matches"
    assert report.matches[0].match_mass < 1.0, "offset-1 attention is not the match pattern"


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
        peaks = {o.head: o.peak_offset for o in report.offsets}
        assert all(peaks[h] == h for h in head_set), f"{head_set}: copier peaks {peaks}"
        assert all(o.self_mass == 0.0 for o in report.offsets), "the window is 1..M"


@pytest.mark.parametrize("selected", [(1,), (2,), (1, 2), (2, 3)])
def test_paper_limiting_model_reads_as_the_selected_set(held_out, limit, selected):
    tf = InductionHeadModel.at_limit(PAPER_MODEL, D, selected_set=selected, a=LIMIT_A,
                                     dtype=torch.float64)
    report = probe_paper(tf, held_out, limit, attention=attention_taps(tf))
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
    profiles = {o.head: o.profile for o in report.offsets}
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
    report = probe_paper(tf, held_out, limit, attention=taps)
    copied = offsets or {h: h for h in selected}
    reads = tuple(sorted(copied.values()))  # the GIH set is the set of copied offsets
    eff = report.last.effective
    assert eff.head_set == reads and _selector_set(tf) == selected, (
        f"effective {eff.head_set}, copied offsets {reads}, selector {_selector_set(tf)}")
    assert eff.margin_se >= CLEAR_MARGIN_SE, f"margin over {eff.runner_up}: {eff.margin_se} SE"
    profiles = {o.head: o for o in report.offsets}
    assert sorted(profiles) == [1, 2, 3] and all(len(o.profile) == 3 for o in report.offsets)
    for h, o in copied.items():
        assert profiles[h].profile[o - 1] > HARD_COPY and profiles[h].peak_offset == o, (
            f"head {h} copies offset {o}: profile {profiles[h].profile}")
    context = torch.as_tensor(held_out[0][:, :L])
    own = tf.copier_attention(context, include_self=True).detach().numpy()  # (H, K)
    for o in report.offsets:
        row = (o.self_mass,) + o.profile if self_attention else o.profile
        gap = np.abs(np.array(row) - own[o.head - 1]).max()  # heads from 1
        assert gap <= READOUT_ATOL, (
            f"head {o.head}: probe {row}, model's read-out {own[o.head - 1]}")
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
    report = probe_paper(model.next_token_probs, held_out, limit, attention=taps)
    heads = [o for o in report.offsets if o.name == first]
    assert [o.head for o in heads] == [1, 2, 3], "heads from 1"
    assert all(len(o.profile) == PAPER_MODEL.window for o in heads), "offsets 1..M"
    assert [o.peak_offset for o in heads] == list(offsets), [o.profile for o in heads]
    for o, offset in zip(heads, offsets):
        assert o.profile[offset - 1] > HARD_COPY, f"head {o.head}: profile {o.profile}"
        assert o.self_mass < 1 - HARD_COPY, f"head {o.head}: self mass {o.self_mass}"
    assert [(m.name, m.head) for m in report.matches] == (
        [(first, h) for h in (1, 2, 3)] + [(last, 1)])


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
    probe_raises(r"received \(300, 3, 61, 4\); a per-position copier.*'copier_positions'",
            gih_model((1, 2), math.inf),
            held_out, limit, attention={"copier.attention": sigma})
    declared = probe_paper(gih_model((1, 2), math.inf), held_out, limit,
                      attention={"copier.attention": (sigma, "copier_positions")})
    assert [o.peak_offset for o in declared.offsets] == [1, 2, 3]
    probe_raises(r"shape \(n=300, heads, L=60, L=60\) of its layout 'pattern'.*\(300, 3, 61, 4\)",
            gih_model((1, 2), math.inf), held_out, limit,
            attention={"copier.attention": (sigma, "pattern")})
    probe_raises(r"layout: expected one of .*'offsets'", gih_model((1, 2), math.inf), held_out, limit,
            attention={"copier.attention": (sigma, "offsets")})
    with pytest.raises(InductionHeadsError, match="names: expected tap names"):
        attention_taps(lambda tokens, return_taps=False: None)
    with pytest.raises(InductionHeadsError, match="layouts: expected layouts among"):
        attention_taps(tf, layouts={"copier.position_attention": "rows"})
    with pytest.raises(InductionHeadsError, match="layouts: expected names among"):
        attention_taps(tf, layouts={"output": "query"})

