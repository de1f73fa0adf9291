"""The limit the theory predicts for TF(M, H, d, D) trained on a source (docs/theory.md §3).

Only the head sets the model can express are ranked: ``𝒮 = {S ⊆ {1..H} : |S| <= D}``
(:func:`theory.spec.head_sets`; head h starts on offset h, so a head set is a set of offsets).
The selected set is

    S* = argmax_{S∈𝒮} G(S)      (or argmax G_L(S) when a finite context length L is given),

and the predicted limit is: selector ``c̃`` one-hot on ``S*``; copier head ``h ∈ S*`` one-hot on
offset ``h``, heads outside ``S*`` untouched (they get no gradient once ``c̃`` sits on ``S*``);
classifier ``a → ∞`` with similarity ``s_l = Π_{h∈S*} 1{x_{l-h} = x_{L+1-h}}``, i.e. the
generalized induction head (:func:`theory.predictors.gih_predict` at ``a = ∞``).

How sure the ranking is: ``margin = value(S*) - value(S2)`` (``S2`` the runner-up) is reported in
standard errors of the *paired* difference of the Monte Carlo estimate (``margin_se``) and, for a
training sample of ``n`` sequences of length ``L``, in units of the noise that sample carries,
``SD_seq(g^{S*} - g^{S2}) / sqrt(n)`` (``margin_train_noise``; ``g`` the per-sequence stage-1
signal). Both must reach :data:`DECIDABLE_Z` for ``decidable``.

Stage-wise training trains the selector first, against the *initial* copier (docs/theory.md
§3.7). With a context length ``L`` the prediction also ranks ``𝒮`` by the criterion at the
spec's initial copier attention (:func:`theory.copier.copier_attention`,
:func:`theory.criterion_estimates.copier_criterion`): its argmax ``stage1_set`` is the set
stage 1 reaches, and the set stage-wise training from that initialisation ends on. It equals
``S*`` when the initial copier is close enough to exact (the theorem's premise); its
decidability follows the same rule.

Adaptive Monte Carlo: with ``max_samples`` above ``samples``, a ranking whose margin is short of
:data:`DECIDABLE_Z` standard errors draws more sequences (``samples`` more at a time, so a draw
never needs more memory than the first; every set is scored on the same sequences) until the margin reaches the rule or the
budget ``max_samples`` is spent. The rule itself is unchanged; the prediction reports the
sequences each ranking used (``samples``, ``stage1_samples``). More Monte Carlo sharpens the
estimate of the population ranking only: the noise of a training sample of ``n`` sequences
(``margin_train_noise``) is a property of ``n``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from theory.copier import copier_attention
from theory.criterion_estimates import (
    CriterionEstimate,
    copier_criterion,
    expected_criterion,
    finite_length_criterion,
    sample_until_decided,
)
from theory.errors import require
from theory.notation import head_set_label
from theory.predictors import context_similarity
from theory.priors import Fixed
from theory.sizes import require_prediction_fits
from theory.spec import ModelSpec, Source
from theory.validation import as_int

__all__ = ["DECIDABLE_Z", "LEAVES", "UNTOUCHED", "LimitPrediction", "predict_limit"]

DECIDABLE_Z = 3.0
"""The margin must be >= 3 standard errors (of the estimate, and of a training sample when
``train_sequences`` is given) for the prediction to count as decidable: a one-sided 3σ gap."""

UNTOUCHED = "untouched"
"""The copier entry of a head outside ``S*``: it keeps its initialisation."""

LEAVES = "leaves"
"""The copier entry of a head of the reached set that is not in ``S*`` (stage 1 followed a soft
initial copier to a larger or other set): with ``c̃`` one-hot on that set, stage 2 maximises the
criterion of the offsets its heads copy, which ``S*``'s offsets do better than this head's own,
so the head moves off its offset toward them."""


def _json_float(x: float | None) -> float | str | None:
    """A float for JSON in the library's convention (``numerics.io``): a non-finite value (an
    exact margin is infinitely many SE) as the string ``"inf"``, ``"-inf"`` or ``"nan"``,
    which ``float()`` reads back."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else ("nan" if math.isnan(x) else ("inf" if x > 0 else "-inf"))


@dataclass(frozen=True, eq=False)
class LimitPrediction:
    """The predicted limit of training TF(M, H, d, D) on a source.

    Attributes:
        source: the source.
        model: the model's spec (sizes H, M, D and initialisation).
        seq_len: ``L`` when the ranking uses ``G_L``; None for the ``L → ∞`` criterion ``G``.
        samples: kernels (G) or sequences (G_L) in the Monte Carlo estimate.
        sets: the ranked sets ``𝒮`` in :func:`theory.spec.head_sets` order.
        criterion: ``(n_sets,)`` values of ``G`` or ``G_L`` (read-only).
        stderr: ``(n_sets,)`` their standard errors (0 for an exact value).
        criterion_kind: ``"G"`` or ``"G_L"``.
        selected_set: ``S*``, sorted offsets.
        runner_up: the second-best set ``S2``.
        asymptotic_set: ``argmax G`` (equals ``selected_set`` when ``seq_len`` is None).
        asymptotic_criterion: ``(n_sets,)`` values of ``G`` (the same array when ``seq_len`` is None).
        agrees_with_asymptotic: ``selected_set == asymptotic_set``.
        margin: ``value(S*) - value(S2)``.
        margin_se: the margin in standard errors of the paired difference (inf when exact).
        margin_train_noise: the margin over ``SD_seq(g^{S*} - g^{S2}) / sqrt(train_sequences)``,
            or None when ``train_sequences`` was not given.
        train_sequences: the training-sample size behind ``margin_train_noise``.
        decidable: ``margin_se >= DECIDABLE_Z`` and (if given) ``margin_train_noise >= DECIDABLE_Z``.
        copier: per head ``h = 1..H``: the offset it converges to (``h``), or ``"untouched"``.
        selector_weights: set → 1.0 for ``S*``, 0.0 otherwise (read-only mapping).
        missing_parents: parents of the source the model cannot express: offsets beyond ``H``,
            and, when more than ``D`` parents lie within ``1..H``, those left out of ``S*``.
        initial_criterion: ``(n_sets,)`` ``G_L`` at the spec's initial copier attention
            (read-only), or None without ``seq_len``.
        initial_stderr: ``(n_sets,)`` its standard errors, or None.
        stage1_set: ``argmax`` of ``initial_criterion``: the set stage 1 (and so stage-wise
            training from this initialisation) reaches; None without ``seq_len``.
        stage1_margin_se: its margin over the runner-up in paired standard errors, or None.
        stage1_margin_train_noise: that margin in units of a training sample's noise, or None.
        stage1_decidable: the decidability rule applied to ``initial_criterion``, or None.
        stage1_samples: sequences behind ``initial_criterion`` (more than ``samples`` drawn
            at first when adaptive sampling extended it), or None.
        max_samples: the adaptive budget: the most sequences one ranking may use (equal to
            the initial ``samples`` when sampling was not adaptive).
    """

    source: Source
    model: ModelSpec
    seq_len: int | None
    samples: int
    sets: tuple[tuple[int, ...], ...]
    criterion: np.ndarray
    stderr: np.ndarray
    criterion_kind: str
    selected_set: tuple[int, ...]
    runner_up: tuple[int, ...]
    asymptotic_set: tuple[int, ...]
    asymptotic_criterion: np.ndarray
    agrees_with_asymptotic: bool
    margin: float
    margin_se: float
    margin_train_noise: float | None
    train_sequences: int | None
    decidable: bool
    copier: tuple[int | str, ...]
    selector_weights: Mapping[tuple[int, ...], float]
    missing_parents: tuple[int, ...]
    initial_criterion: np.ndarray | None = None
    initial_stderr: np.ndarray | None = None
    stage1_set: tuple[int, ...] | None = None
    stage1_margin_se: float | None = None
    stage1_margin_train_noise: float | None = None
    stage1_decidable: bool | None = None
    stage1_samples: int | None = None
    max_samples: int | None = None

    @property
    def stage1_premise_holds(self) -> bool | None:
        """Whether stage 1 from the initial copier reaches ``S*`` (``stage1_set == selected_set``).

        False means the initial copier is too soft for the theorem's premise: stage-wise
        training is predicted to end on ``stage1_set``, not on ``S*``. None without ``seq_len``.
        """
        return None if self.stage1_set is None else self.stage1_set == self.selected_set

    @property
    def reached_set(self) -> tuple[int, ...]:
        """The set stage-wise training from the spec's initialisation should end on.

        ``stage1_set`` when the initial copier was ranked (a context length was given): stage 1
        takes the selector there and the later stages keep it; otherwise ``S*``.
        """
        return self.selected_set if self.stage1_set is None else self.stage1_set

    @property
    def reached_decidable(self) -> bool:
        """The decidability rule for :attr:`reached_set`: that of the ranking it comes from."""
        return self.decidable if self.stage1_set is None else bool(self.stage1_decidable)

    @property
    def reached_copier(self) -> tuple[int | str, ...]:
        """Copier limit of stage-wise training, per head ``h = 1..H``.

        ``h`` (its own offset) for a head of :attr:`reached_set` that is in ``S*``; ``"leaves"``
        (:data:`LEAVES`) for a head of the reached set outside ``S*``: with ``c̃`` on that set,
        stage 2 maximises ``G_L`` of the set of offsets its heads copy, and ``S*``'s offsets
        beat this head's own; ``"untouched"`` for a head outside the reached set (no gradient).
        """
        return tuple((h if h in self.selected_set else LEAVES) if h in self.reached_set
                     else UNTOUCHED for h in range(1, self.model.heads + 1))

    @property
    def reached_selector_weights(self) -> Mapping[tuple[int, ...], float]:
        """Selector limit of stage-wise training: one-hot on :attr:`reached_set`."""
        return MappingProxyType({s: (1.0 if s == self.reached_set else 0.0) for s in self.sets})

    def similarity(self, tokens: np.ndarray) -> np.ndarray:
        """Exact copier similarity on ``S*``: context ``x_1..x_L`` ``(n, L)`` → float64 ``(n, L)``.

        ``s_l = Π_{h∈S*} 1{l-h >= 1 and x_{l-h} = x_{L+1-h}}``
        (:func:`theory.predictors.context_similarity`).
        """
        return context_similarity(tokens, self.selected_set)

    def ranking(self) -> list[tuple[tuple[int, ...], float, float]]:
        """``(set, value, stderr)`` sorted by value, best first (ties keep head_sets order)."""
        order = sorted(range(len(self.sets)), key=lambda i: -self.criterion[i])
        return [(self.sets[i], float(self.criterion[i]), float(self.stderr[i])) for i in order]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists, set keys become strings like ``"(1, 2)"``)."""
        return {
            "source": self.source.to_dict(),
            "model": self.model.to_dict(),
            "seq_len": self.seq_len,
            "samples": self.samples,
            "criterion_kind": self.criterion_kind,
            "sets": [list(s) for s in self.sets],
            "criterion": [float(v) for v in self.criterion],
            "stderr": [float(v) for v in self.stderr],
            "asymptotic_criterion": [float(v) for v in self.asymptotic_criterion],
            "selected_set": list(self.selected_set),
            "runner_up": list(self.runner_up),
            "asymptotic_set": list(self.asymptotic_set),
            "agrees_with_asymptotic": self.agrees_with_asymptotic,
            "margin": float(self.margin),
            "margin_se": _json_float(self.margin_se),
            "margin_train_noise": _json_float(self.margin_train_noise),
            "train_sequences": self.train_sequences,
            "decidable": self.decidable,
            "decidable_threshold": DECIDABLE_Z,
            "copier": list(self.copier),
            "selector_weights": {head_set_label(s): w for s, w in self.selector_weights.items()},
            "missing_parents": list(self.missing_parents),
            "initial_criterion": _list_or_none(self.initial_criterion),
            "initial_stderr": _list_or_none(self.initial_stderr),
            "stage1_set": None if self.stage1_set is None else list(self.stage1_set),
            "stage1_margin_se": _json_float(self.stage1_margin_se),
            "stage1_margin_train_noise": _json_float(self.stage1_margin_train_noise),
            "stage1_decidable": self.stage1_decidable,
            "stage1_samples": self.stage1_samples,
            "max_samples": self.max_samples,
            "reached_set": list(self.reached_set),
            "reached_decidable": self.reached_decidable,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LimitPrediction:
        """Rebuild a prediction from :meth:`to_dict` (e.g. ``report.json``'s ``predicted``).

        Margins read as numbers or ``"inf"`` (an exact estimate: infinitely many standard
        errors); None, which older files hold for that, reads back as inf when the margin is
        positive. A dict without the initial-copier keys reads back
        with those fields None, so reports that lack them still load.

        Raises:
            InductionHeadsError: when keys are missing or the content is inconsistent.
        """
        require(isinstance(data, Mapping), "prediction", "a dict from LimitPrediction.to_dict",
                type(data).__name__)
        missing = sorted(set(_DICT_KEYS) - set(data))
        require(not missing, "prediction keys", f"all of {list(_DICT_KEYS)}", f"missing {missing}")
        model = ModelSpec.from_dict(dict(data["model"]))
        sets = tuple(tuple(int(h) for h in s) for s in data["sets"])
        require(sets == model.sets, "prediction sets", f"the model's head sets {model.sets}",
                sets)
        selected = tuple(int(h) for h in data["selected_set"])
        require(selected in sets, "selected_set", f"one of {sets}", selected)
        margin = float(data["margin"])

        def margin_units(value: Any) -> float:
            return (math.inf if margin > 0 else 0.0) if value is None else float(value)

        noise = data["margin_train_noise"]
        stage1 = _stage1_from_dict(data, sets)
        return cls(
            source=Source.from_dict(dict(data["source"])), model=model,
            seq_len=None if data["seq_len"] is None else int(data["seq_len"]),
            samples=int(data["samples"]), sets=sets,
            criterion=_read_only(np.asarray(data["criterion"], dtype=np.float64)),
            stderr=_read_only(np.asarray(data["stderr"], dtype=np.float64)),
            criterion_kind=str(data["criterion_kind"]), selected_set=selected,
            runner_up=tuple(int(h) for h in data["runner_up"]),
            asymptotic_set=tuple(int(h) for h in data["asymptotic_set"]),
            asymptotic_criterion=_read_only(np.asarray(data["asymptotic_criterion"],
                                                       dtype=np.float64)),
            agrees_with_asymptotic=bool(data["agrees_with_asymptotic"]), margin=margin,
            margin_se=margin_units(data["margin_se"]),
            margin_train_noise=(None if noise is None and data["train_sequences"] is None
                                else margin_units(noise)),
            train_sequences=(None if data["train_sequences"] is None
                             else int(data["train_sequences"])),
            decidable=bool(data["decidable"]),
            copier=tuple(c if c == UNTOUCHED else int(c) for c in data["copier"]),
            selector_weights=MappingProxyType({s: (1.0 if s == selected else 0.0) for s in sets}),
            missing_parents=tuple(int(p) for p in data["missing_parents"]),
            max_samples=None if data.get("max_samples") is None else int(data["max_samples"]),
            **stage1,
        )


def _list_or_none(values: np.ndarray | None) -> list[float] | None:
    return None if values is None else [float(v) for v in values]


def _stage1_from_dict(data: Mapping[str, Any], sets: tuple[tuple[int, ...], ...]
                      ) -> dict[str, Any]:
    """The initial-copier fields of :meth:`LimitPrediction.from_dict` (all None when absent)."""
    if data.get("initial_criterion") is None:
        return {}
    values = _read_only(np.asarray(data["initial_criterion"], dtype=np.float64))
    require(values.shape == (len(sets),), "initial_criterion", f"{len(sets)} values",
            values.shape)
    stage1 = tuple(int(h) for h in data["stage1_set"])
    require(stage1 in sets, "stage1_set", f"one of {sets}", stage1)
    margin = float(values[sets.index(stage1)] - np.max(np.delete(values, sets.index(stage1))))

    def units(value: Any) -> float | None:
        return (math.inf if margin > 0 else 0.0) if value is None else float(value)

    noise = data.get("stage1_margin_train_noise")
    return {"initial_criterion": values,
            "initial_stderr": _read_only(np.asarray(data["initial_stderr"], dtype=np.float64)),
            "stage1_set": stage1, "stage1_margin_se": units(data.get("stage1_margin_se")),
            "stage1_margin_train_noise": (None if noise is None and data["train_sequences"] is None
                                          else units(noise)),
            "stage1_decidable": bool(data["stage1_decidable"]),
            "stage1_samples": (None if data.get("stage1_samples") is None
                               else int(data["stage1_samples"]))}


_DICT_KEYS = ("source", "model", "seq_len", "samples", "criterion_kind", "sets", "criterion",
              "stderr", "asymptotic_criterion", "selected_set", "runner_up", "asymptotic_set",
              "agrees_with_asymptotic", "margin", "margin_se", "margin_train_noise",
              "train_sequences", "decidable", "copier", "missing_parents")


def _top_two(values: np.ndarray) -> tuple[int, int]:
    """Indices of the best and second-best values (first index on ties)."""
    order = sorted(range(values.size), key=lambda i: -values[i])
    return order[0], order[1]


def _in_units(margin: float, unit: float) -> float:
    """``margin / unit``; an exact estimate (unit 0) gives inf for a positive margin, else 0."""
    if unit > 0:
        return margin / unit
    return math.inf if margin > 0 else 0.0


def _decide(est: CriterionEstimate, train_sequences: int | None
            ) -> tuple[int, int, float, float, float | None, bool]:
    """Best and runner-up indices, margin, margin in SE, in training noise, and decidability."""
    values = np.asarray(est.values, dtype=np.float64)  # (n_sets,)
    best, second = _top_two(values)
    margin = float(values[best] - values[second])
    margin_se = _in_units(margin, est.difference_stderr(best, second))
    margin_train_noise = None
    if train_sequences is not None:
        per = np.asarray(est.per_sample)  # (samples, n_sets), per-sequence stage-1 signal
        diff_sd = float(np.std(per[:, best] - per[:, second], ddof=1))
        margin_train_noise = _in_units(margin, diff_sd / math.sqrt(train_sequences))
    decidable = margin_se >= DECIDABLE_Z and (
        margin_train_noise is None or margin_train_noise >= DECIDABLE_Z)
    return best, second, margin, margin_se, margin_train_noise, bool(decidable)


def _missing_parents(parents: tuple[int, ...], model: ModelSpec, selected: tuple[int, ...]
                     ) -> tuple[int, ...]:
    beyond = [p for p in parents if p > model.heads]
    within = [p for p in parents if p <= model.heads]
    excluded = [p for p in within if p not in selected] if len(within) > model.degree else []
    return tuple(sorted(beyond + excluded))


def _read_only(a: np.ndarray) -> np.ndarray:
    out = np.array(a, dtype=np.float64)
    out.setflags(write=False)
    return out


def predict_limit(source: Source, spec: ModelSpec, *, seq_len: int | None = None,
                  samples: int = 2000, rng: np.random.Generator | None = None,
                  train_sequences: int | None = None,
                  max_samples: int | None = None,
                  asymptotic_samples: int | None = None) -> LimitPrediction:
    """Predict the limit of TF(M, H, d, D) with spec ``spec`` trained on ``source``.

    Args:
        source: the source (d, P, prior).
        spec: the model (H, M, D and initialisation), as :func:`numerics.verify_case` takes it.
        seq_len: ``L``; when given, sets are ranked by ``G_L`` (sequences of ``L+1`` tokens),
            ``G`` is estimated too for ``asymptotic_set``, and ``G_L`` at the initial copier
            for ``stage1_set``. Needs ``L > max(H, max P)``.
        samples: Monte Carlo kernels / sequences, >= 2 (a Fixed prior's ``G`` is exact).
        rng: numpy generator, the only randomness (``G_L`` is drawn first, then ``G``, then the
            criterion at the initial copier); may be None only for a Fixed prior without
            ``seq_len``, where ``G`` is exact.
        train_sequences: size ``n`` of a training sample for ``margin_train_noise``; needs
            ``seq_len`` (the noise is that of ``n`` sequences of length ``L``).
        max_samples: adaptive budget (module docstring): a ``G_L`` ranking (exact and initial
            copier) short of :data:`DECIDABLE_Z` SE draws ``samples`` more sequences at a
            time, up to this many in all; None or ``samples`` for a fixed sample. Needs ``seq_len``. The extra
            sequences are drawn after every fixed draw, so a prediction that was decided at
            ``samples`` is the same with or without a budget.
        asymptotic_samples: kernels behind ``G`` when ``seq_len`` is given (it then only names
            ``asymptotic_set``, which no decision uses); None for ``samples``. Each kernel costs
            a stationary solve on ``d^r`` states, so callers with large windows pass fewer.

    Returns:
        The :class:`LimitPrediction`.

    Raises:
        InductionHeadsError: on a bad spec, a short ``seq_len``, a bad ``samples`` /
            ``train_sequences`` / ``rng``.
    """
    require(isinstance(source, Source), "source", "a theory.spec.Source", type(source).__name__)
    require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", type(spec).__name__)
    model = spec
    if rng is None:
        require(isinstance(source.prior, Fixed) and seq_len is None, "rng",
                "a numpy.random.Generator (None only for a Fixed prior without seq_len, "
                "where nothing is random)", rng)
    bound = max(model.heads, source.max_parent)
    if seq_len is not None:
        seq_len = as_int(seq_len, "seq_len (every set needs a context)", minimum=bound + 1,
                         symbol="L")
    if train_sequences is not None:
        train_sequences = as_int(train_sequences, "train_sequences", minimum=1)
        require(seq_len is not None, "seq_len",
                "a context length L when train_sequences is given (per-sequence noise)", seq_len)
    samples = as_int(samples, "samples", minimum=2)
    if max_samples is None:
        max_samples = samples
    else:
        max_samples = as_int(max_samples, f"max_samples (at least samples = {samples})",
                             minimum=samples)
        require(seq_len is not None or max_samples == samples, "max_samples",
                "None (or samples) unless seq_len is given: only G_L is sampled adaptively",
                max_samples)
    # Every draw, adaptive ones included, holds at most ``samples`` sequences.
    require_prediction_fits(source, model, samples=samples, seq_len=seq_len)
    sets = model.sets

    if seq_len is not None:
        est: CriterionEstimate = finite_length_criterion(source, sets, seq_len, samples=samples,
                                                         rng=rng)
        asym = expected_criterion(
            source, sets, rng=rng, kind="G",
            samples=samples if asymptotic_samples is None else as_int(
                asymptotic_samples, "asymptotic_samples", minimum=2))
    else:
        est = expected_criterion(source, sets, samples=samples, rng=rng, kind="G")
        asym = est
    stage1: dict[str, Any] = {}
    if seq_len is not None:
        # Drawn after G_L and G, so those keep their values for a given generator.
        init = copier_criterion(source, sets, seq_len, copier_attention(model), samples=samples,
                                rng=rng)
        # Adaptive draws come after every fixed one: a ranking decided at ``samples`` is
        # unchanged by a budget.
        est = sample_until_decided(
            est, lambda k: finite_length_criterion(source, sets, seq_len, samples=k, rng=rng),
            chunk=samples, budget=max_samples, z=DECIDABLE_Z)
        init = sample_until_decided(
            init, lambda k: copier_criterion(source, sets, seq_len, copier_attention(model),
                                             samples=k, rng=rng),
            chunk=samples, budget=max_samples, z=DECIDABLE_Z)
        first, _, _, first_se, first_noise, first_ok = _decide(init, train_sequences)
        stage1 = {"initial_criterion": _read_only(init.values),
                  "initial_stderr": _read_only(init.stderr), "stage1_set": sets[first],
                  "stage1_margin_se": first_se, "stage1_margin_train_noise": first_noise,
                  "stage1_decidable": bool(first_ok), "stage1_samples": int(init.samples)}
    values = np.asarray(est.values, dtype=np.float64)  # (n_sets,)
    best, second, margin, margin_se, margin_train_noise, decidable = _decide(est, train_sequences)
    selected = sets[best]
    asymptotic = sets[int(np.argmax(asym.values))]

    copier = tuple(h if h in selected else UNTOUCHED for h in range(1, model.heads + 1))
    weights = MappingProxyType({s: (1.0 if s == selected else 0.0) for s in sets})
    return LimitPrediction(
        source=source, model=model, seq_len=seq_len, samples=int(est.samples), sets=sets,
        criterion=_read_only(values), stderr=_read_only(est.stderr),
        criterion_kind=est.kind, selected_set=selected, runner_up=sets[second],
        asymptotic_set=asymptotic, asymptotic_criterion=_read_only(asym.values),
        agrees_with_asymptotic=selected == asymptotic, margin=margin, margin_se=margin_se,
        margin_train_noise=margin_train_noise, train_sequences=train_sequences,
        decidable=bool(decidable), copier=copier, selector_weights=weights,
        missing_parents=_missing_parents(source.parents, model, selected),
        max_samples=int(max_samples), **stage1,
    )
