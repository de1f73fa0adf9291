"""The selector and the temperature trained together: a joint run's path (docs/theory.md §3.8).

A joint run trains ``C``, ``w`` and ``a`` at once, so the set the selector favours is decided
along the way, at the temperature ``a`` reached at each step
(:mod:`theory.dynamics.finite_temperature`).
This module predicts that path with the reduced model of that module: the exact copier (head
``h`` copies offset ``h``), head-set products ``K_S(l)``, ``c̃ = C²/ΣC²``,
``s_l = Σ_S c̃_S K_S(l)``, ``p = softmax_l(a s_l)`` and ``ŷ = Σ_l p_l e(x_l)``.

**Approximation.** The copier's own learning is left out: the real run starts from a soft copier
(``softmax(w_h)`` puts most, not all, of its mass on offset ``h``) and sharpens it while the
selector moves; here every head copies its own offset exactly from the first step. The path is
therefore the selector's and the temperature's, driven by the limit of the copier.

**Method.** One fixed Monte Carlo sample of ``n`` sequences drawn from the source plays the
training sample. Plain full-batch SGD is iterated on ``C`` and ``a`` with the exact mean
gradients of the loss on that sample:

    -∂ℓ/∂C_S = (2C_S/ΣC²)(f_S - Σ_T c̃_T f_T),   f_T = -Σ_l (∂ℓ/∂s_l) K_T(l)

(:func:`theory.selector_growth`) and, with ``g = ∂ℓ/∂ŷ`` (``nll``: ``-1{e=y}/ŷ_y``, 0 at the
loss floor; ``official_ce``: ``softmax(ŷ) - e(y)``, the cross-entropy of ``ŷ`` as logits),

    ∂ℓ/∂a = Σ_l p_l (s_l - E_p s) g_{x_l},

since ``∂p_l/∂a = p_l (s_l - E_p s)``; ``∂ℓ/∂s_l = a p_l (g_{x_l} - <g, ŷ>)``. Both are
vectorised over sequences and positions; ``K_S`` is computed once.

**Leader and switch.** A set leads at a step when its weight ``c̃_S`` is at least ``lead``
(default 1/2, a majority, so at most one set leads) and exceeds every other set's by at least
``margin`` (:data:`JOINT_MARGIN`), and takes the lead when it leads for ``hold`` consecutive
steps (:func:`selector_leads`). The first set to take the lead is the
initial leader; the switch step is the first step at which another set takes it. Its
standard error comes from batch means: the sample is split into ``groups`` equal parts, the
path is rerun on each part, and the spread of their switch steps over ``√groups`` is the
standard error (a part has fewer sequences, so this is the standard error of an ``n/groups``
sample scaled by ``1/√groups``). The switch is decided when every part agrees on whether and
to which set it switches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from theory.criterion.values import check_head_set
from theory.errors import require
from theory.predictors.reference import LOSS_FLOOR, context_similarity
from theory.sources.sequences import sample_sequences_np
from theory.sources.spec import ModelSpec, Source
from theory.validation import as_int, is_real

__all__ = ["JOINT_LEAD", "JOINT_HOLD", "JOINT_MARGIN", "JOINT_GROUPS", "JointSample", "JointPath",
           "joint_loss_gradients", "selector_leads", "read_leads", "joint_path_on_sample",
           "predict_joint_path"]

JOINT_LEAD = 0.5
"""Weight ``c̃_S`` at which a set leads: a majority, so that at most one set leads at a step."""

JOINT_HOLD = 5
"""Consecutive steps a set must lead to take the lead: learning rate 1 can throw ``c̃`` onto a
set for a single step (``C_S`` overshooting through 0) before the selector settles."""

JOINT_MARGIN = 0.1
"""Lead of ``c̃_S`` over the runner-up for ``S`` to lead: a split selector (two sets near 1/2)
has no leader, and the path's approximation (the copier exact from the first step) moves ``c̃``
by at most 0.03 against the real run's on the property tier's joint cases (docs/theory.md §3.8),
so a lead of 0.1 survives it on both sides."""

JOINT_GROUPS = 4
"""Parts the sample is split into for the batch-means standard error of the switch step."""

_LOSSES = ("nll", "official_ce")


@dataclass(frozen=True, eq=False)
class JointSample:
    """A fixed sample prepared for the reduced model.

    Attributes:
        sets: the head sets.
        products: float64 (n, |𝒮|, L), ``K_S(l)``.
        onehot: float64 (n, L, d), ``e(x_l)``.
        targets: int64 (n,), ``y = x_{L+1}``.
    """

    sets: tuple[tuple[int, ...], ...]
    products: np.ndarray
    onehot: np.ndarray
    targets: np.ndarray

    @classmethod
    def of(cls, tokens: Any, sets: Any, *, vocab_size: int) -> JointSample:
        """The sample of integer ``tokens`` (n, L+1), context then target."""
        tok = np.asarray(tokens)
        require(tok.ndim == 2 and tok.shape[1] >= 2 and np.issubdtype(tok.dtype, np.integer)
                and int(tok.min()) >= 0, "tokens", "an integer array (n, L+1) of tokens >= 0",
                (tok.shape, str(tok.dtype)))
        d = as_int(vocab_size, "vocab_size", minimum=2, symbol="d")
        require(int(tok.max()) < d, "tokens", f"values in 0..{d - 1}", int(tok.max()))
        checked = tuple(check_head_set(s) for s in sets)
        require(len(checked) >= 1, "sets", "at least one head set", sets)
        ctx = tok[:, :-1].astype(np.int64)
        prods = np.stack([context_similarity(ctx, s) for s in checked], axis=1)  # (n, |𝒮|, L)
        onehot = (ctx[:, :, None] == np.arange(d)).astype(np.float64)  # (n, L, d)
        return cls(checked, prods, onehot, tok[:, -1].astype(np.int64))

    def part(self, index: np.ndarray) -> JointSample:
        """The sequences ``index`` of this sample."""
        return JointSample(self.sets, self.products[index], self.onehot[index],
                           self.targets[index])


def joint_loss_gradients(sample: JointSample, selector: Any, a: float, *, loss: str = "nll"
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-sequence ``(ℓ, ∂ℓ/∂C, ∂ℓ/∂a)``: float64 (n,), (n, |𝒮|), (n,) (module docstring).

    Args:
        sample: the prepared sample.
        selector: ``C`` (|𝒮|,), not all zero.
        a: the temperature, finite.
        loss: ``"nll"`` or ``"official_ce"``.
    """
    require(loss in _LOSSES, "loss", f"one of {_LOSSES}", loss)
    c = np.asarray(selector, dtype=np.float64)
    require(c.shape == (len(sample.sets),) and bool(np.all(np.isfinite(c)))
            and float(c @ c) > 0, "selector", f"C: {len(sample.sets)} finite numbers, not all 0",
            selector)
    require(is_real(a) and math.isfinite(float(a)), "a", "a finite number", a)
    a = float(a)
    total = float(c @ c)
    c_tilde = c * c / total
    sim = np.einsum("s,nsl->nl", c_tilde, sample.products)  # (n, L)
    z = a * sim
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)  # (n, L)
    y_hat = np.einsum("nl,nld->nd", p, sample.onehot)  # (n, d)
    rows = np.arange(y_hat.shape[0])
    hot = np.zeros_like(y_hat)
    hot[rows, sample.targets] = 1.0  # (n, d)
    picked = y_hat[rows, sample.targets]  # (n,)
    if loss == "nll":
        inv = np.divide(1.0, picked, out=np.zeros_like(picked), where=picked > LOSS_FLOOR)
        value = -np.log(np.maximum(picked, LOSS_FLOOR))
        grad_y = -hot * inv[:, None]  # (n, d)
    else:
        top = y_hat.max(axis=1, keepdims=True)
        q = np.exp(y_hat - top)
        norm = q.sum(axis=1, keepdims=True)
        value = (top + np.log(norm))[:, 0] - picked
        grad_y = q / norm - hot  # (n, d)
    at_token = np.einsum("nld,nd->nl", sample.onehot, grad_y)  # (n, L): g_{x_l}
    mean_g = (grad_y * y_hat).sum(axis=1, keepdims=True)  # (n, 1): <g, ŷ> = E_p g_{x_l}
    dl_ds = a * p * (at_token - mean_g)  # (n, L)
    fitness = -np.einsum("nl,nsl->ns", dl_ds, sample.products)  # (n, |𝒮|)
    dl_dc = -(2.0 * c / total)[None, :] * (fitness - (fitness @ c_tilde)[:, None])
    centred = sim - (p * sim).sum(axis=1, keepdims=True)  # (n, L): s_l - E_p s
    dl_da = (p * centred * at_token).sum(axis=1)  # (n,)
    return value, dl_dc, dl_da


@dataclass(frozen=True, eq=False)
class JointPath:
    """The predicted path of a joint run.

    Attributes:
        sets: the head sets.
        steps: int64 (T,), updates done, ``0..steps``.
        selector: float64 (T, |𝒮|), ``c̃`` after each step count.
        a: float64 (T,), the temperature.
        loss: float64 (T,), the mean loss on the sample.
        leader: int64 (T,), index of the set with ``c̃ >= lead``, -1 where none leads.
        first_leader: the set that takes the lead first, None if none ever does.
        switch_step: the first step at which a set other than ``first_leader`` takes the lead,
            or None.
        final_leader: the set leading at the last step, None if none leads there.
        switch_stderr: batch-means standard error of ``switch_step`` (nan when not every part
            switches, or without parts).
        decided: whether every part agrees on the first leader, on whether and to which
            set the selector switches and on the final leader (False without parts).
    """

    sets: tuple[tuple[int, ...], ...]
    steps: np.ndarray
    selector: np.ndarray
    a: np.ndarray
    loss: np.ndarray
    leader: np.ndarray
    first_leader: tuple[int, ...] | None
    switch_step: int | None
    final_leader: tuple[int, ...] | None
    switch_stderr: float
    decided: bool

    @property
    def final_selector(self) -> np.ndarray:
        """``c̃`` after the last step, float64 (|𝒮|,)."""
        return self.selector[-1]

    def leads_at(self, steps: Any, *, lead: float = JOINT_LEAD, hold: int = JOINT_HOLD,
                 margin: float = JOINT_MARGIN) -> tuple[tuple[int, ...] | None, int | None,
                                                        tuple[int, ...] | None]:
        """The first leader, the switch step and the set switched to, read at ``steps`` only.

        A logged history has rows at some steps; reading the path at the same steps applies
        :func:`selector_leads` to both on one grid (``hold`` then counts rows,
        :func:`read_leads`).

        Args:
            steps: int (T,), increasing step counts in ``0..self.steps[-1]``.

        Returns:
            ``(first, switch_step, switched_to)``: sets, or None where there is none.
        """
        grid = np.asarray(steps)
        require(grid.ndim == 1 and grid.size >= 1 and np.issubdtype(grid.dtype, np.integer)
                and int(grid.min()) >= 0 and int(grid.max()) <= int(self.steps[-1])
                and bool(np.all(np.diff(grid) > 0)), "steps",
                f"increasing integer steps in 0..{int(self.steps[-1])}", steps)
        return read_leads(self.selector[grid], self.sets, grid, lead=lead, hold=hold,
                          margin=margin)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the sets, the per-step ``c̃``, ``a`` and loss, and the summary."""
        return {"sets": [list(s) for s in self.sets], "steps": self.steps.tolist(),
                "selector": self.selector.tolist(), "a": self.a.tolist(),
                "loss": self.loss.tolist(), "leader": self.leader.tolist(),
                "first_leader": None if self.first_leader is None else list(self.first_leader),
                "switch_step": self.switch_step,
                "final_leader": None if self.final_leader is None else list(self.final_leader),
                "switch_stderr": None if not math.isfinite(self.switch_stderr)
                else self.switch_stderr, "decided": self.decided}

    @classmethod
    def from_dict(cls, data: Any) -> JointPath:
        """The path :meth:`to_dict` wrote.

        Raises:
            InductionHeadsError: when keys are missing.
        """
        keys = ("sets", "steps", "selector", "a", "loss", "leader", "first_leader",
                "switch_step", "final_leader", "switch_stderr", "decided")
        require(isinstance(data, dict) and all(k in data for k in keys), "joint path",
                f"a dict from JointPath.to_dict with keys {list(keys)}",
                sorted(data) if isinstance(data, dict) else type(data).__name__)
        sets = tuple(tuple(int(h) for h in s) for s in data["sets"])

        def as_set(value: Any) -> tuple[int, ...] | None:
            return None if value is None else tuple(int(h) for h in value)

        stderr = data["switch_stderr"]
        return cls(sets, np.asarray(data["steps"], dtype=np.int64),
                   np.asarray(data["selector"], dtype=np.float64),
                   np.asarray(data["a"], dtype=np.float64),
                   np.asarray(data["loss"], dtype=np.float64),
                   np.asarray(data["leader"], dtype=np.int64),
                   as_set(data["first_leader"]), data["switch_step"],
                   as_set(data["final_leader"]), math.nan if stderr is None else float(stderr),
                   bool(data["decided"]))


def _run(sample: JointSample, c0: np.ndarray, a0: float, lr_C: float, lr_a: float, steps: int,
         loss: str, momentum: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SGD (torch's convention: ``b ← μ b + g``, ``θ ← θ - lr b``) on ``C`` and ``a``."""
    c, a = c0.copy(), float(a0)
    buf_c, buf_a = np.zeros_like(c), 0.0
    selectors = np.empty((steps + 1, c.size))
    temps = np.empty(steps + 1)
    losses = np.empty(steps + 1)
    for t in range(steps + 1):
        value, dl_dc, dl_da = joint_loss_gradients(sample, c, a, loss=loss)
        selectors[t] = c * c / float(c @ c)
        temps[t], losses[t] = a, float(value.mean())
        if t < steps:
            grad_c, grad_a = dl_dc.mean(axis=0), float(dl_da.mean())
            buf_c = grad_c if t == 0 else momentum * buf_c + grad_c
            buf_a = grad_a if t == 0 else momentum * buf_a + grad_a
            c = c - lr_C * buf_c
            a = a - lr_a * buf_a
    return selectors, temps, losses


def selector_leads(selector: Any, *, lead: float = JOINT_LEAD, hold: int = JOINT_HOLD,
                   margin: float = JOINT_MARGIN) -> tuple[np.ndarray, int | None, int | None]:
    """The leading set along a selector path and the step at which it changes hands.

    A set leads at row ``t`` when ``c̃_S >= lead`` there and ``c̃_S`` exceeds every other
    set's by at least ``margin``; it takes the lead at ``t`` when it leads at ``t`` and at
    every one of the next ``hold - 1`` rows (or to the last row), so that a one-step overshoot
    of a large learning rate does not count.

    Args:
        selector: float (T, |𝒮|), ``c̃`` at consecutive steps.
        lead: weight at which a set leads, in [1/2, 1].
        hold: rows a lead must last, >= 1.
        margin: lead over the runner-up, in [0, 1].

    Returns:
        ``(leader, first, switch)``: int64 (T,) index of the leading set (-1 where none), the
        index of the first set to take the lead (None if none), and the first row at which
        another set takes the lead (None if none).
    """
    sel = np.asarray(selector, dtype=np.float64)
    require(sel.ndim == 2 and sel.shape[0] >= 1 and sel.shape[1] >= 1, "selector",
            "a (T, |𝒮|) array of weights", sel.shape)
    require(is_real(lead) and 0.5 <= float(lead) <= 1.0, "lead", "a weight in [1/2, 1]", lead)
    hold = as_int(hold, "hold", minimum=1)
    require(is_real(margin) and 0.0 <= float(margin) <= 1.0, "margin", "a weight in [0, 1]",
            margin)
    top = sel.argmax(axis=1)
    ordered = np.sort(sel, axis=1)  # (T, |𝒮|)
    gap = ordered[:, -1] - (ordered[:, -2] if sel.shape[1] > 1 else 0.0)  # (T,)
    leader = np.where((sel[np.arange(len(top)), top] >= float(lead)) & (gap >= float(margin)),
                      top, -1)
    T = leader.size
    takes = [t for t in range(T) if leader[t] >= 0
             and bool(np.all(leader[t:min(t + hold, T)] == leader[t]))]
    if not takes:
        return leader, None, None
    first = int(leader[takes[0]])
    switch = next((t for t in takes if leader[t] != first), None)
    return leader, first, switch


def read_leads(selector: Any, sets: tuple[tuple[int, ...], ...], steps: Any, *,
               lead: float = JOINT_LEAD, hold: int = JOINT_HOLD, margin: float = JOINT_MARGIN
               ) -> tuple[tuple[int, ...] | None, int | None, tuple[int, ...] | None]:
    """:func:`selector_leads` of ``c̃`` rows ``(T, |𝒮|)`` logged at ``steps`` ``(T,)``, in sets and
    steps: ``(first leader, switch step, set switched to)``, None where there is none."""
    leader, first, switch = selector_leads(selector, lead=lead, hold=hold, margin=margin)
    at = np.asarray(steps)
    return (None if first is None else sets[first],
            None if switch is None else int(at[switch]),
            None if switch is None else sets[int(leader[switch])])


def joint_path_on_sample(sample: JointSample, *, lr_C: float, lr_a: float, steps: int,
                         loss: str = "nll", c_init: Any = 0.01, a_init: float = 0.01,
                         momentum: float = 0.0, lead: float = JOINT_LEAD,
                         hold: int = JOINT_HOLD, margin: float = JOINT_MARGIN,
                         groups: int = JOINT_GROUPS) -> JointPath:
    """:func:`predict_joint_path` on a given sample (e.g. a real run's training sample).

    ``c_init``: one number for every ``C_S`` or an array (|𝒮|,); ``momentum``: SGD momentum in
    ``[0, 1)``; ``groups``: parts for the standard error (0 for none, else >= 2 and at most
    ``n/2``).
    """
    require(loss in _LOSSES, "loss", f"one of {_LOSSES}", loss)
    require(is_real(momentum) and 0.0 <= float(momentum) < 1.0, "momentum",
            "a number in [0, 1)", momentum)
    for name, value in (("lr_C", lr_C), ("lr_a", lr_a), ("a_init", a_init)):
        require(is_real(value) and math.isfinite(float(value)) and float(value) >= 0, name,
                "a finite number >= 0", value)
    steps = as_int(steps, "steps", minimum=0)
    size = len(sample.sets)
    c0 = np.broadcast_to(np.asarray(c_init, dtype=np.float64), (size,)).copy()
    require(bool(np.all(np.isfinite(c0))) and float(c0 @ c0) > 0, "c_init",
            f"C: one number or {size} finite numbers, not all 0", c_init)
    n = int(sample.targets.shape[0])
    groups = as_int(groups, "groups", minimum=0)
    require(groups == 0 or 2 <= groups <= n // 2, "groups", f"0, or 2..{n // 2}", groups)
    run = (float(a_init), float(lr_C), float(lr_a), steps, loss, float(momentum))
    selectors, temps, losses = _run(sample, c0, *run)
    leader, first, switch = selector_leads(selectors, lead=lead, hold=hold, margin=margin)
    stderr, decided = math.nan, False
    if groups:
        outcomes = []
        for index in np.array_split(np.arange(n), groups):
            part_sel, _, _ = _run(sample.part(index), c0, *run)
            part_leader, part_first, part_switch = selector_leads(part_sel, lead=lead,
                                                                  hold=hold, margin=margin)
            target = None if part_switch is None else int(part_leader[part_switch])
            outcomes.append((part_first, target, int(part_leader[-1]), part_switch))
        whole = (first, None if switch is None else int(leader[switch]), int(leader[-1]))
        decided = {o[:3] for o in outcomes} == {whole}
        switched = [o[3] for o in outcomes if o[3] is not None]
        if len(switched) == groups:
            stderr = float(np.std(switched, ddof=1) / math.sqrt(groups))
    final = int(leader[-1])
    return JointPath(
        sample.sets, np.arange(steps + 1), selectors, temps, losses, leader,
        None if first is None else sample.sets[first], switch,
        None if final < 0 else sample.sets[final], stderr, decided)


def predict_joint_path(source: Source, spec: ModelSpec, seq_len: int, *, lr_C: float,
                       lr_a: float, steps: int, samples: int, rng: np.random.Generator,
                       loss: str = "nll", c_init: Any = None, a_init: float | None = None,
                       momentum: float = 0.0, lead: float = JOINT_LEAD, hold: int = JOINT_HOLD,
                       margin: float = JOINT_MARGIN, groups: int = JOINT_GROUPS) -> JointPath:
    """The predicted path of a joint run of TF(M, H, d, D) on ``source`` (module docstring).

    Args:
        source: the source.
        spec: the model sizes; its head sets ``spec.sets`` (head ``h`` copies offset ``h``)
            and, unless given, its ``c_init`` and ``a_init``.
        seq_len: ``L`` (context tokens), above every offset and parent.
        lr_C: learning rate on ``C``.
        lr_a: learning rate on ``a``.
        steps: full-batch SGD steps.
        samples: sequences of the fixed sample, >= 2.
        rng: numpy generator, the only randomness.
        loss: ``"nll"`` or ``"official_ce"``.
        c_init: initial ``C`` (one number or (|𝒮|,)); None for ``spec.c_init``.
        a_init: initial ``a``; None for ``spec.a_init``.
        momentum: SGD momentum in ``[0, 1)``.
        lead: weight at which a set leads.
        hold: steps a lead must last to count (:func:`selector_leads`).
        margin: lead over the runner-up a leader needs.
        groups: parts of the sample for the switch step's standard error (0 for none).

    Returns:
        :class:`JointPath`.
    """
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", type(spec).__name__)
    require(isinstance(rng, np.random.Generator), "rng", "a numpy.random.Generator",
            type(rng).__name__)
    require(spec.heads >= 1, "spec", "a spec with heads", spec)
    bound = max(source.max_parent, spec.heads)
    seq_len = as_int(seq_len, "seq_len", minimum=bound + 1, symbol="L")
    samples = as_int(samples, "samples", minimum=2)
    tokens = sample_sequences_np(source, samples, seq_len + 1, rng=rng)  # (n, L+1)
    sample = JointSample.of(tokens, spec.sets, vocab_size=source.vocab_size)
    return joint_path_on_sample(
        sample, lr_C=lr_C, lr_a=lr_a, steps=steps, loss=loss,
        c_init=spec.c_init if c_init is None else c_init,
        a_init=spec.a_init if a_init is None else a_init, momentum=momentum, lead=lead,
        hold=hold, margin=margin, groups=groups)
