"""The authors' full model, transcribed loop by loop, against the library's official configuration.

The transcription below restates, in plain loops over sequences, heads and positions, what the
authors' released code computes for their full model (its first layer, a relative-position
attention with trained query, key and output-value matrices and one LayerNorm for all heads; its
second layer, the polynomial-kernel attention of degree <= 2 with ``standard_LN`` off, as their
two-layer model wires them; their cross-entropy on the output probabilities). It keeps their
parameter layout: ``W`` (L, H) with head h's offset i read from ``W[i-1, h]``, ``q``, ``k``,
``ov`` (d, d, H) with ``q[:, :, h] @ k[:, :, h]ᵀ`` the bilinear form between the query's token
(rows) and the key's token (columns) and ``ov`` applied to the copy as a row vector, one LayerNorm
gain and bias (d,), ``C`` over every degree vector of the H+1 feature blocks (the raw token block
first) and ``a``. The library's model, ``FullInductionHeadModel(official_full_spec(w_plus), d,
loss="official_ce", **OFFICIAL_FULL_OPTIONS)``, gets these parameters mapped
(:func:`_map_into`) and must give the same probabilities, loss and gradients.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from numerics import OFFICIAL_FULL_OPTIONS, FullInductionHeadModel
from numerics.experiments import official_full_spec

H, D, VOCAB, L, N = 3, 2, 3, 12, 3
"""Their sizes H = 3, D = 2 (``low_degree``), d = 3; a short context (L > M = 5) and 3 sequences."""
SELF_LOGIT = 1e-6
"""The fixed logit their code writes on the diagonal of every head's attention."""
LN_EPS = 1e-5
"""``nn.LayerNorm``'s default ε, which their LayerNorm keeps."""
PRODUCT_FLOOR = 1e-24
"""Their kernel computes each similarity's power as ``exp(δ·log(relu(k) + 1e-24))``."""
TOL = 1e-12
"""Float64 agreement relative to each quantity's largest entry: round-off through a few thousand
operations (measured up to ~1e-14) plus the 1e-24 floor above, which the library's product has
not (its effect is below 1e-20 here)."""
SCALE_FLOOR = 1e-300
"""Keeps a relative gap finite for a quantity that is exactly 0 on both sides."""
DEAD_TOL = 1e-20
"""Bound on the gradient of a C entry whose term holds the raw token block: that block's
similarity is exactly 0 (the query's token row is the zero vector), so the term is ~1e-24·C²."""


def _degrees() -> list[tuple[int, ...]]:
    """Their degree vectors over the H+1 blocks (token block first), total degree <= D, in the
    lexicographic order of their C entries."""
    return [deg for deg in itertools.product((0, 1), repeat=H + 1) if sum(deg) <= D]


def _set_of(deg: tuple[int, ...]) -> tuple[int, ...]:
    """The 1-based head set of a degree vector without the token block."""
    return tuple(c for c in range(1, H + 1) if deg[c])


# ------------------------------------------------------------------------- the transcription
def _authors_probabilities(p: dict[str, torch.Tensor], context: torch.Tensor) -> torch.Tensor:
    """ŷ (n, d) of their full model, by loops (module docstring); float64."""
    n, T = context.shape
    d = VOCAB
    live = [deg for deg in _degrees() if deg[0] == 0]
    norm = sum(p["C"][_degrees().index(deg)] ** 2 for deg in live)
    out = []
    for b in range(n):
        rows = [torch.nn.functional.one_hot(context[b, r], d).double() for r in range(T)]
        rows.append(torch.zeros(d, dtype=torch.float64))                # the query row T+1
        blocks = [rows]                                                 # block 0: raw tokens
        for h in range(H):
            form = p["q"][:, :, h] @ p["k"][:, :, h].T                  # (d, d) query x key
            normed = []
            for r in range(T + 1):
                # the keys this row may see: itself (fixed logit) and r - (h+1) ... r - (h+H)
                columns = [r] + [r - i for i in range(h + 1, h + H + 1) if r - i >= 0]
                scores = torch.stack([
                    (SELF_LOGIT if c == r else p["W"][r - c - 1, h]) + rows[r] @ form @ rows[c]
                    for c in columns])
                weights = torch.softmax(scores, 0)
                mixture = sum(wt * rows[c] for wt, c in zip(weights, columns))
                value = mixture @ p["ov"][:, :, h]                       # row vector times OV
                centred = value - value.mean()
                scale = torch.sqrt((centred ** 2).mean() + LN_EPS)
                normed.append(p["gain"] * centred / scale + p["shift"])
            blocks.append(normed)
        shifts = []
        for s in range(T):
            sims = [torch.relu(blk[T] @ blk[s]) for blk in blocks]      # per block, H+1
            total = 0.0
            for j, deg in enumerate(_degrees()):
                term = 1.0
                for c, power in enumerate(deg):
                    term = term * (sims[c] + PRODUCT_FLOOR) ** power
                total = total + p["C"][j] ** 2 * term
            shifts.append(total / norm)
        attention = torch.softmax(p["a"] * torch.stack(shifts), 0)
        out.append(sum(attention[s] * rows[s] for s in range(T)))
    return torch.stack(out)


def _authors_loss(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Their criterion: cross-entropy with ŷ in the place of logits, averaged over sequences."""
    return torch.stack([torch.logsumexp(probs[b], 0) - probs[b, target[b]]
                        for b in range(len(target))]).mean()


def _authors_init(w_plus: float) -> dict[str, torch.Tensor]:
    """Their initial parameters (train.py: w_- = 0.01, proj_init = C = a = 0.01)."""
    W = torch.full((L, H), 0.01, dtype=torch.float64)
    W[torch.arange(H), torch.arange(H)] = w_plus
    eye = torch.eye(VOCAB, dtype=torch.float64)[:, :, None].repeat(1, 1, H) * 0.01
    return {"W": W, "q": eye.clone(), "k": eye.clone(), "ov": eye.clone(),
            "gain": torch.ones(VOCAB, dtype=torch.float64),
            "shift": torch.zeros(VOCAB, dtype=torch.float64),
            "C": torch.full((len(_degrees()),), 0.01, dtype=torch.float64),
            "a": torch.tensor(0.01, dtype=torch.float64)}


def _authors_random(seed: int, w_plus: float, *, projections: bool = True
                    ) -> dict[str, torch.Tensor]:
    """Their initial parameters moved at random, away from every symmetry of the initialisation:
    noise on W, the LayerNorm, C and a, and random q, k, ov unless ``projections`` is False
    (then they keep 0.01·I, where their frozen runs hold them)."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return torch.randn(shape, generator=g, dtype=torch.float64) * scale

    p = _authors_init(w_plus)
    p.update({"W": p["W"] + randn(L, H), "gain": 1.0 + randn(VOCAB, scale=0.3),
              "shift": randn(VOCAB, scale=0.3), "C": randn(len(_degrees())),
              "a": torch.rand((), generator=g, dtype=torch.float64) * 4 + 0.5})
    if projections:
        p.update({"q": randn(VOCAB, VOCAB, H, scale=0.7), "k": randn(VOCAB, VOCAB, H, scale=0.7),
                  "ov": randn(VOCAB, VOCAB, H, scale=0.5)})
    return p


# ------------------------------------------------------------------------------ the mapping
def _model(w_plus: float, **changes) -> FullInductionHeadModel:
    return FullInductionHeadModel(official_full_spec(w_plus), VOCAB, loss="official_ce",
                                  dtype=torch.float64, **{**OFFICIAL_FULL_OPTIONS, **changes})


def _map_into(model: FullInductionHeadModel, p: dict[str, torch.Tensor]) -> None:
    """Their parameters written into the library's: band entries of W, Q = q, K = k,
    V_h = ov_hᵀ (their row-vector product), the shared LayerNorm, the live C entries, a."""
    state = model.state_dict()
    with torch.no_grad():
        for h in range(H):
            for i in range(h + 1, h + H + 1):
                state["w"][h, model.logit_offsets.index(i)] = p["W"][i - 1, h]
            state["Q"][h], state["K"][h] = p["q"][:, :, h], p["k"][:, :, h]
            state["V"][h] = p["ov"][:, :, h].T
        state["ln_weight"].copy_(p["gain"])
        state["ln_bias"].copy_(p["shift"])
        for j, deg in enumerate(_degrees()):
            if deg[0] == 0:
                state["C"][model.sets.index(_set_of(deg))] = p["C"][j]
        state["a"].fill_(float(p["a"]))


def _mapped_gradients(model: FullInductionHeadModel, grads: dict[str, torch.Tensor]
                      ) -> dict[str, torch.Tensor]:
    """Their gradients in the library's layout (the inverse of :func:`_map_into`)."""
    out = {"w": torch.zeros_like(model.w), "C": torch.zeros_like(model.C), "a": grads["a"]}
    for h in range(H):
        for i in range(h + 1, h + H + 1):
            out["w"][h, model.logit_offsets.index(i)] = grads["W"][i - 1, h]
    if "q" in grads:
        out["Q"], out["K"] = grads["q"].permute(2, 0, 1), grads["k"].permute(2, 0, 1)
    if "ov" in grads:
        out["V"] = grads["ov"].permute(2, 1, 0)
    out["ln_weight"], out["ln_bias"] = grads["gain"], grads["shift"]
    for j, deg in enumerate(_degrees()):
        if deg[0] == 0:
            out["C"][model.sets.index(_set_of(deg))] = grads["C"][j]
    return out


def _gap(x: torch.Tensor, y: torch.Tensor) -> float:
    """max |x - y| / max |y|: the gap relative to the quantity's scale."""
    x, y = x.detach(), y.detach()
    return ((x - y).abs().max() / y.abs().max().clamp_min(SCALE_FLOOR)).item()


def _tokens(seed: int) -> torch.Tensor:
    return torch.randint(0, VOCAB, (N, L + 1), generator=torch.Generator().manual_seed(seed))


def _compare(w_plus: float, p: dict[str, torch.Tensor], tokens: torch.Tensor, *,
             train_qk: bool, train_ov: bool) -> dict[str, float]:
    """Gaps (relative, :func:`_gap`) between the two models on ``tokens``, by quantity."""
    model = _model(w_plus, train_content=train_qk, train_values=train_ov)
    _map_into(model, p)
    trained = {"W", "gain", "shift", "C", "a"} | ({"q", "k"} if train_qk else set()) | (
        {"ov"} if train_ov else set())
    theirs = {k: v.clone().requires_grad_(k in trained) for k, v in p.items()}
    context, target = tokens[:, :-1], tokens[:, -1]
    probs = _authors_probabilities(theirs, context)
    loss = _authors_loss(probs, target)
    grads = dict(zip(sorted(trained), torch.autograd.grad(
        loss, [theirs[k] for k in sorted(trained)])))
    ours_probs = model(context)
    ours_loss = model.loss(tokens)
    named = dict(model.named_parameters())
    ours_grads = dict(zip(named, torch.autograd.grad(ours_loss, list(named.values()))))
    expected = _mapped_gradients(model, grads)
    gaps = {"probabilities": _gap(ours_probs, probs), "loss": _gap(ours_loss, loss)}
    assert set(ours_grads) == set(expected), f"trained {sorted(ours_grads)} vs {sorted(expected)}"
    gaps.update({f"grad {k}": _gap(ours_grads[k], expected[k]) for k in expected})
    dead = [grads["C"][j].abs().item() for j, deg in enumerate(_degrees()) if deg[0]]
    gaps["grad of C on the token block"] = max(dead)
    unused = torch.ones(L, H, dtype=torch.bool)
    for h in range(H):
        unused[h:h + H, h] = False
    gaps["grad of W outside the band"] = grads["W"][unused].abs().max().item()
    return gaps


def _check(gaps: dict[str, float]) -> None:
    for name, gap in gaps.items():
        bound = DEAD_TOL if name.startswith("grad of") else TOL
        assert gap <= bound, f"{name}: library vs transcription differ by {gap:.2e} > {bound}"


# ------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("w_plus", [1.0, 3.0])
def test_official_configuration_starts_at_the_authors_initialisation(w_plus):
    model = _model(w_plus)
    reference = _model(w_plus)
    _map_into(reference, _authors_init(w_plus))
    for name, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), (
            f"{name}: library init {model.state_dict()[name]} vs authors' {value}")
    assert model.constructor_options() == OFFICIAL_FULL_OPTIONS


@pytest.mark.parametrize("w_plus", [1.0, 3.0])
@pytest.mark.parametrize("where", ["initial", "random"])
def test_forward_loss_and_gradients_equal_the_transcription(w_plus, where):
    p = _authors_init(w_plus) if where == "initial" else _authors_random(int(w_plus), w_plus)
    _check(_compare(w_plus, p, _tokens(int(w_plus) + 10), train_qk=True, train_ov=True))


@pytest.mark.parametrize(("train_qk", "train_ov"), [(False, True), (False, False)])
@pytest.mark.parametrize("projections", [False, True])
@pytest.mark.parametrize("w_plus", [1.0, 3.0])
def test_frozen_parts_equal_the_transcription(w_plus, projections, train_qk, train_ov):
    p = _authors_random(7, w_plus, projections=projections)
    _check(_compare(w_plus, p, _tokens(8), train_qk=train_qk, train_ov=train_ov))


def test_parameter_groups_are_what_their_optimizer_trains():
    # Their SGD trains every parameter of the model: W (L, H) of which head h reads the H band
    # entries, q, k, ov (d, d, H), the LayerNorm's gain and bias (d,), C over the degree vectors
    # and a. The library trains the same live entries; their W rows outside the band and their C
    # entries on the token block get a zero (or ~1e-24) gradient (checked above).
    model = _model(1.0)
    groups = model.parameter_groups()
    assert [[id(t) for t in ts] for ts in groups.values()] == [
        [id(model.C)], [id(t) for t in (model.w, model.Q, model.K, model.V, model.ln_weight,
                                        model.ln_bias)], [id(model.a)]]
    assert sorted(id(t) for ts in groups.values() for t in ts) == sorted(
        id(t) for t in model.parameters())
    band = int(model.window_mask[:, 1:].sum())
    live_c = sum(1 for deg in _degrees() if deg[0] == 0)
    counts = {"band logits": band, "q": model.Q.numel(), "k": model.K.numel(),
              "ov": model.V.numel(), "gain": model.ln_weight.numel(),
              "shift": model.ln_bias.numel(), "live C": model.C.numel(), "a": model.a.numel()}
    theirs = {"band logits": H * H, "q": VOCAB * VOCAB * H, "k": VOCAB * VOCAB * H,
              "ov": VOCAB * VOCAB * H, "gain": VOCAB, "shift": VOCAB, "live C": live_c, "a": 1}
    assert counts == theirs, f"library {counts} vs authors' {theirs}"
    assert len(_degrees()) - live_c == 4 and live_c == len(model.sets) == 7
    frozen = _model(1.0, train_content=False, train_values=False)
    assert [t.shape for t in frozen.parameter_groups()["w"]] == [
        (H, 5), (VOCAB,), (VOCAB,)], "frozen Q, K, V must leave the copier group"
    assert {"Q", "K", "V"} <= set(frozen.state_dict()), "frozen parts must be saved"
    assert {"Q", "K", "V"}.isdisjoint(name for name, _ in frozen.named_parameters())
