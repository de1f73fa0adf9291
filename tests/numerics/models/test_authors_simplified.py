"""The library's TF with the authors' settings computes the authors' simplified model.

``_authors_forward`` transcribes, loop by loop and in float64, the forward of the simplified
two-layer model of the authors' code (its first layer, relative-position attention with per-head
bands, then the polynomial-kernel attention from the query row) as we read it:

* Layer 1, head ``h = 0..H-1`` (0-based): the ``(T+1)×(T+1)`` logits hold ``W[o-1, h]`` on the
  ``o``-th sub-diagonal for the band ``o = h+1..h+H`` and ``-inf`` elsewhere; a softmax per row,
  and a row without a finite logit (its softmax is NaN) becomes 0. The rows read ``X̃``: the
  one-hot context with a zero row appended for the query. Each row is normalised as
  ``v / (||v|| + 1e-7)``.
* Layer 2: components ``c = 0..H`` are ``X̃`` itself, then the H head outputs. The query is
  row ``T`` (the zero row of ``X̃`` in component 0), the keys are rows ``0..T-1`` and the values
  the one-hot tokens. Each component's inner product passes through a ReLU; a degree vector
  ``α ∈ {0, 1}^(H+1)`` with ``|α| <= D`` (their low-degree selection counts component 0 too) has
  the feature ``Π_c (relu(<q_c, k_c>) + 1e-24)^α_c`` and weight ``C_α²``. The query-key product
  is taken with zero keys, so the logit of position ``l`` is
  ``a · Σ_α C_α² feature_α(l) / Σ_{α: α_0 = 0} C_α²``: the normaliser runs over the degree
  vectors without the X component (their ``remain_pos``), which are exactly the library's head
  sets, ∅ included (:func:`test_their_sets_without_the_x_component_are_the_library_sets`). The
  output is the softmax over ``l`` of those logits applied to the one-hot tokens, and the loss
  ``CrossEntropyLoss`` of that probability vector (as logits) against the target.

The library runs :data:`numerics.experiments.OFFICIAL_MODEL` (their band windows) with
``norm_offset = 1e-7`` and ``loss="official_ce"`` on the same parameters: ``w[h, o-1] =
W[o-1, h]`` inside the band, ``C_S = C_α`` for ``α = (0, 1_S)``. The degree vectors with
``α_0 = 1`` carry a factor ``1e-24`` (the query's X component is 0), below the tolerance.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from numerics import InductionHeadModel
from numerics.experiments import OFFICIAL_MODEL, OFFICIAL_NORM_OFFSET
from numerics.models.inputs import INPUT_FORMS

AUTHORS_NORM_EPS = 1e-7
"""The offset their layer-1 normalisation adds to the norm."""
AUTHORS_LOG_EPS = 1e-24
"""The offset their layer 2 adds to each component's inner product before its log."""
AGREEMENT_ATOL = 1e-12
"""Float64 agreement of the transcription and the library: the same formula up to summation
order (~1e-16) and the ``1e-24`` terms; a missing 1e-7 offset already moves ŷ by more (checked)."""

CASES = (
    # d, L, n, seed
    (3, 12, 24, 0),
    (3, 40, 8, 1),
    (2, 8, 16, 2),
    (4, 7, 16, 3),
)


def _degree_vectors(heads: int, degree: int) -> list[tuple[int, ...]]:
    """Their layer 2's degree vectors over ``H + 1`` components, total degree <= D, in order."""
    return [alpha for alpha in itertools.product(range(2), repeat=heads + 1)
            if sum(alpha) <= degree]


def _authors_forward(tokens: np.ndarray, W: np.ndarray, C: dict[tuple[int, ...], float],
                     a: float, heads: int, d: int) -> np.ndarray:
    """ŷ (n, d) of their simplified model on contexts (n, T): module docstring, plain loops."""
    n, T = tokens.shape
    probs = np.zeros((n, d))
    for b in range(n):
        x_tilde = np.zeros((T + 1, d))
        for r in range(T):
            x_tilde[r, tokens[b, r]] = 1.0
        components = [x_tilde]
        for h in range(heads):
            v = np.zeros((T + 1, d))
            for r in range(T + 1):
                keys = [(r - o, W[o - 1, h]) for o in range(h + 1, h + heads + 1) if r - o >= 0]
                if not keys:
                    continue  # an all -inf row: NaN after the softmax, then 0
                top = max(logit for _, logit in keys)
                weights = [math.exp(logit - top) for _, logit in keys]
                total = sum(weights)
                for (col, _), weight in zip(keys, weights):
                    v[r] += weight / total * x_tilde[col]
                v[r] = v[r] / (math.sqrt(float(v[r] @ v[r])) + AUTHORS_NORM_EPS)
            components.append(v)
        normaliser = sum(c * c for alpha, c in C.items() if alpha[0] == 0)
        logits = np.zeros(T)
        for l in range(T):
            inner = [max(float(comp[T] @ comp[l]), 0.0) for comp in components]
            total = 0.0
            for alpha, c in C.items():
                feature = 1.0
                for comp_index, power in enumerate(alpha):
                    if power:
                        feature *= inner[comp_index] + AUTHORS_LOG_EPS
                total += c * c * feature
            logits[l] = a * total / normaliser
        weights = np.exp(logits - logits.max())
        weights /= weights.sum()
        for l in range(T):
            probs[b] += weights[l] * x_tilde[l]
    return probs


def _authors_loss(probs: np.ndarray, target: np.ndarray) -> float:
    """Their ``CrossEntropyLoss`` on ŷ read as logits, averaged over the batch."""
    losses = [-probs[b, y] + math.log(sum(math.exp(p) for p in probs[b])) for b, y in enumerate(target)]
    return sum(losses) / len(losses)


def _random_parameters(seed: int, seq_len: int):
    """Their parameters W (T, H), C over every degree vector, a; random."""
    rng = np.random.default_rng(seed)
    H, D = OFFICIAL_MODEL.heads, OFFICIAL_MODEL.degree
    W = rng.normal(0.0, 2.0, size=(seq_len, H))
    C = {alpha: float(rng.normal()) for alpha in _degree_vectors(H, D)}
    return W, C, float(rng.uniform(0.5, 20.0))


def _library_model(W: np.ndarray, C: dict[tuple[int, ...], float], a: float, d: int,
                   norm_offset: float = OFFICIAL_NORM_OFFSET) -> InductionHeadModel:
    model = InductionHeadModel(OFFICIAL_MODEL, d, norm_offset=norm_offset, dtype=torch.float64,
                               loss="official_ce")
    H = OFFICIAL_MODEL.heads
    with torch.no_grad():
        for h, window in enumerate(OFFICIAL_MODEL.windows):
            for o in window:
                model.w[h, o - 1] = float(W[o - 1, h])
        for k, s in enumerate(model.sets):
            alpha = (0,) + tuple(int(head in s) for head in range(1, H + 1))
            model.C[k] = C[alpha]
        model.a.fill_(a)
    return model


def test_the_official_model_is_the_authors_band() -> None:
    H = OFFICIAL_MODEL.heads
    # Their head h (0-based) fills the sub-diagonals o = j + h + 1, j = 0..H-1.
    theirs = tuple(tuple(j + h + 1 for j in range(H)) for h in range(H))
    assert OFFICIAL_MODEL.windows == theirs, (OFFICIAL_MODEL.windows, theirs)
    assert OFFICIAL_MODEL.window == 2 * H - 1
    assert OFFICIAL_NORM_OFFSET == AUTHORS_NORM_EPS


def test_their_sets_without_the_x_component_are_the_library_sets() -> None:
    H, D = OFFICIAL_MODEL.heads, OFFICIAL_MODEL.degree
    remain = [alpha for alpha in _degree_vectors(H, D) if alpha[0] == 0]
    as_sets = {tuple(h for h in range(1, H + 1) if alpha[h]) for alpha in remain}
    assert len(remain) == len(OFFICIAL_MODEL.sets)
    assert as_sets == set(OFFICIAL_MODEL.sets), (sorted(as_sets), OFFICIAL_MODEL.sets)


@pytest.mark.parametrize("form", INPUT_FORMS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"d{c[0]}-L{c[1]}-n{c[2]}")
def test_library_model_is_the_authors_forward(case: tuple, form: str) -> None:
    d, L, n, seed = case
    tokens = np.random.default_rng(100 + seed).integers(0, d, size=(n, L + 1))
    W, C, a = _random_parameters(seed, L)
    want = _authors_forward(tokens[:, :-1], W, C, a, OFFICIAL_MODEL.heads, d)  # (n, d)
    want_loss = _authors_loss(want, tokens[:, -1])
    model = _library_model(W, C, a, d)
    torch_tokens = torch.from_numpy(tokens)
    inputs = model.prepare_inputs(torch_tokens[:, :-1], form=form)
    with torch.no_grad():
        got = model(inputs).numpy()
        got_loss = float(model.loss(torch_tokens, inputs))
    gap = float(np.abs(got - want).max())
    assert gap <= AGREEMENT_ATOL, f"{form}: max |ŷ - authors| = {gap:.2e}\n{got}\n{want}"
    assert abs(got_loss - want_loss) <= AGREEMENT_ATOL, (form, got_loss, want_loss)


def test_the_tolerance_sees_the_norm_offset() -> None:
    d, L, n, seed = CASES[0]
    tokens = np.random.default_rng(100 + seed).integers(0, d, size=(n, L + 1))
    W, C, a = _random_parameters(seed, L)
    want = _authors_forward(tokens[:, :-1], W, C, a, OFFICIAL_MODEL.heads, d)
    model = _library_model(W, C, a, d, norm_offset=0.0)
    with torch.no_grad():
        got = model(torch.from_numpy(tokens[:, :-1])).numpy()
    gap = float(np.abs(got - want).max())
    assert gap > AGREEMENT_ATOL, f"without the 1e-7 offset the gap is only {gap:.2e}"
