"""Sweep specs: a grid or random draws of verify cases, each with a stable id.

A sweep spec is a JSON (or TOML) object with exactly one of ``grid`` and ``random``, and these
settings shared by every case:

    model_kind          a name in the model-kind registry (:data:`numerics.training.KINDS`;
                        default ``"simplified"``)
    heldout             held-out sequences per case (default 2000)
    prediction_samples  Monte Carlo sequences of the prediction (default 2000)
    probe_history       probe the model at every logged step (default true)
    device              torch device of every case (default ``"cpu"``: rows replay exactly)
    train               ``{mode: {TrainConfig field: value}}`` replacing fields of
                        :func:`numerics.training.default_config` for that mode (not ``mode``,
                        ``sequences`` or ``seq_len``: the case sets those)
    seed                seed of the random draws (required with ``random``)

``grid`` lists values and the cases are their cartesian product, in the order
``sources x models x seeds x modes x seq_len x sequences``: ``sources`` (``Source.to_dict`` dicts,
or paths of source JSON files relative to the spec file) and ``models`` (``ModelSpec.to_dict``
dicts) are required; ``seeds`` (default ``[0]``), ``modes`` (``["stagewise"]``), ``seq_len``
(``[100]``) and ``sequences`` (``[2000]``) are optional.

``random`` draws ``count`` cases with ``np.random.default_rng(spec["seed"])``, each field in turn:
``vocab_size``, ``heads``, ``seq_len``, ``sequences`` are inclusive integer ranges
``[low, high]``; ``alpha`` (the Dirichlet concentration) is a range drawn log-uniformly (kept to
6 significant digits);
``parents`` is a list of parent lists to choose from. Optional: ``degree`` (integer range,
capped at the drawn H; default ``min(H, 2)``), ``extra_window`` (``M - H``, integer range,
default ``[0, 0]``), ``modes`` (choices, default ``["stagewise"]``) and ``seeds`` (integer range,
default ``[0, 2**32 - 1]``).

Every field is type-checked before any case is built, each failure one
:class:`~theory.errors.InductionHeadsError` line: sizes and seeds are integers (never strings,
``null`` or lists), ``alpha`` is finite and positive, seeds lie in ``[0, SEED_MAX]``, every mode
(of ``grid.modes``, ``random.modes`` and the keys of ``train``) is a training mode, and a spec
nested deeper than Python's recursion limit is refused. A sweep of more than :data:`MAX_CASES`
cases is refused from the lengths of its lists (or ``random.count``) before it is expanded.

Every case is a JSON dict (:attr:`Case.config`: model kind, source, model, seed, mode, sizes and
the resolved train config); its id is the first 16 hex digits of the SHA-256 of that dict as
canonical JSON, so the same case has the same id in every sweep.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from numerics.training.config import MODES
from numerics.training.kinds import KIND_NAMES, get_kind
from theory.errors import InductionHeadsError, require
from theory.sources.spec import ModelSpec, Source, load_source
from theory.validation import as_float, as_int, check_keys, read_text_file

try:  # stdlib from Python 3.11
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    tomllib = None

__all__ = ["SPEC_KEYS", "GRID_KEYS", "RANDOM_KEYS", "SEED_MAX", "MAX_CASES", "Case",
           "case_id", "count_cases", "load_sweep_spec", "expand_cases"]

"""Model kinds a sweep trains (both take ``n`` training sequences and a :class:`TrainConfig`)."""
SPEC_KEYS = ("grid", "random", "model_kind", "heldout", "prediction_samples", "probe_history",
             "device", "train", "seed")
"""Top-level keys of a sweep spec (module docstring)."""
GRID_KEYS = (("sources", "models"), ("seeds", "modes", "seq_len", "sequences"))
"""Required and optional keys of ``grid``."""
RANDOM_KEYS = (("count", "vocab_size", "parents", "alpha", "heads", "seq_len", "sequences"),
               ("degree", "extra_window", "modes", "seeds"))
"""Required and optional keys of ``random``."""
SEED_RANGE = (0, 2**32 - 1)
"""Default range of the drawn case seeds."""
SEED_MAX = 2**64 - 1
"""Largest case seed: the largest ``torch.manual_seed`` accepts (an unsigned 64-bit integer),
so a seed means the same to every generator a case may seed."""
MAX_CASES = 100_000
"""Most cases one sweep spec may hold. Each case trains a model (seconds to minutes of CPU), so
100,000 cases are already days of work on a workstation, and the expanded cases and the table
are held in memory; a larger count is a mistake in the spec (a list too long, a product of many
lists) and is refused before the cases are built."""
_DRAW_MAX = 2**63 - 1
"""Largest upper end of a drawn integer range (numpy's 64-bit draws)."""
_GRID_DEFAULTS = {"seeds": [0], "modes": ["stagewise"], "seq_len": [100], "sequences": [2000]}
_CASE_FIXED = ("mode", "sequences", "seq_len")


@dataclass(frozen=True)
class Case:
    """One verify case of a sweep.

    Attributes:
        case_id: :func:`case_id` of ``config``.
        config: the case as a JSON dict: ``model_kind``, ``source``, ``model``, ``seed``,
            ``mode``, ``seq_len``, ``sequences``, ``heldout``, ``prediction_samples``,
            ``probe_history`` and ``train`` (a ``TrainConfig.to_dict``).
    """

    case_id: str
    config: dict[str, Any]

    @property
    def config_json(self) -> str:
        """``config`` as canonical JSON (sorted keys, no spaces): what the id hashes."""
        return canonical_json(self.config)


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and no spaces, the same text for equal dicts."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def case_id(config: Mapping[str, Any]) -> str:
    """The first 16 hex digits of the SHA-256 of ``config`` as canonical JSON."""
    return hashlib.sha256(canonical_json(dict(config)).encode("utf-8")).hexdigest()[:16]


def load_sweep_spec(path: str | Path) -> tuple[dict[str, Any], Path]:
    """Read a sweep spec file (``.toml`` as TOML, anything else as JSON).

    Returns:
        The spec dict and the directory that relative source paths are read from.

    Raises:
        InductionHeadsError: when the file is missing, not UTF-8, or not valid JSON / TOML.
    """
    path = Path(path)
    text = read_text_file(path, f"sweep spec {str(path)!r}")
    toml = path.suffix == ".toml"
    require(not toml or tomllib is not None, "sweep spec",
            "a JSON file (TOML needs Python >= 3.11)", str(path))
    kind = "TOML" if toml else "JSON"
    try:
        data = tomllib.loads(text) if toml else json.loads(text)
    except ValueError as err:  # json.JSONDecodeError and tomllib.TOMLDecodeError
        raise InductionHeadsError(f"sweep spec: expected valid {kind}, received {str(path)!r} "
                                  f"({err})") from None
    except RecursionError:
        raise InductionHeadsError(f"sweep spec: expected {kind} nested less deeply than "
                                  f"Python's recursion limit, received {str(path)!r}, "
                                  "nested deeper") from None
    return data, path.parent


def _list(value: Any, what: str) -> list[Any]:
    require(isinstance(value, list) and len(value) > 0, what, "a non-empty list", value)
    return value


def _int_range(value: Any, what: str, minimum: int, maximum: int = _DRAW_MAX
               ) -> tuple[int, int]:
    require(isinstance(value, list) and len(value) == 2, what, "a range [low, high]", value)
    low, high = (as_int(v, what, minimum=minimum) for v in value)
    require(low <= high, what, "a range [low, high] with low <= high", value)
    require(high <= maximum, what, f"a range [low, high] with high <= {maximum}", value)
    return low, high


def _ints(values: list[Any], what: str, minimum: int, maximum: int | None = None) -> list[int]:
    """Every entry of a grid axis as an integer in ``[minimum, maximum]``."""
    out = [as_int(v, what, minimum=minimum) for v in values]
    for v in out:
        require(maximum is None or v <= maximum, what,
                f"an integer in [{minimum}, {maximum}]", v)
    return out


def _modes(values: list[Any], what: str) -> list[str]:
    """Every entry a training mode (:data:`numerics.training.config.MODES`)."""
    for mode in values:
        require(isinstance(mode, str) and mode in MODES, what, f"modes among {MODES}", mode)
    return values


def _seed(rng: np.random.Generator, low: int, high: int) -> int:
    """A seed drawn in ``[low, high]`` (64-bit unsigned draws only where int64 cannot hold
    ``high``, so the draws of every smaller range stay as they are)."""
    if high <= _DRAW_MAX:
        return int(rng.integers(low, high + 1))
    return int(rng.integers(low, high + 1, dtype=np.uint64))


def _train_config(spec: Mapping[str, Any], mode: str, sequences: int, seq_len: int,
                  source: Source, model: ModelSpec) -> dict[str, Any]:
    """The resolved ``TrainConfig.to_dict`` of one case (spec ``train`` over the defaults)."""
    require(mode in MODES, "mode", f"one of {MODES}", mode)
    kind = get_kind(spec.get("model_kind", "simplified"))
    sizes = {"sequences": sequences} if kind.fixed_sample else {}
    base = kind.default_config(mode, seq_len=seq_len, device=spec.get("device", "cpu"),
                               vocab_size=source.vocab_size, degree=model.degree,
                               **sizes).to_dict()
    overrides = dict(spec.get("train", {}).get(mode, {}))
    fixed = sorted(set(overrides) & set(_CASE_FIXED))
    require(not fixed, f"train.{mode}", f"no {list(_CASE_FIXED)} (the case sets them)", fixed)
    unknown = sorted(set(overrides) - set(base))
    require(not unknown, f"train.{mode}", f"only TrainConfig keys {sorted(base)}", unknown)
    return kind.config_class.from_dict({**base, **overrides}).to_dict()


def _settings(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The settings every case shares, checked."""
    kind = spec.get("model_kind", "simplified")
    require(kind in KIND_NAMES, "model_kind", f"one of {KIND_NAMES}", kind)
    probe = spec.get("probe_history", True)
    require(isinstance(probe, bool), "probe_history", "true or false", probe)
    train = spec.get("train", {})
    require(isinstance(train, dict) and all(isinstance(v, dict) for v in train.values()),
            "train", "an object {mode: {TrainConfig field: value}}", train)
    unknown = sorted(set(train) - set(MODES))
    require(not unknown, "train", f"modes among {MODES} as keys", unknown)
    device = spec.get("device", "cpu")
    require(isinstance(device, str), "device", "a device name such as 'cpu'", device)
    return {"model_kind": kind,
            "heldout": as_int(spec.get("heldout", 2000), "heldout", minimum=2),
            "prediction_samples": as_int(spec.get("prediction_samples", 2000),
                                         "prediction_samples", minimum=2),
            "probe_history": probe}


def _case(spec: Mapping[str, Any], settings: dict[str, Any], source: Source, model: ModelSpec,
          seed: int, mode: str, seq_len: int, sequences: int) -> Case:
    seed = as_int(seed, "seed", minimum=0)
    require(seed <= SEED_MAX, "seed", f"an integer in [0, {SEED_MAX}]", seed)
    seq_len = as_int(seq_len, "seq_len", minimum=2)
    sequences = as_int(sequences, "sequences", minimum=1)
    require(seq_len > model.window, "seq_len", f"L > window M = {model.window}", seq_len)
    config = {**settings, "source": source.to_dict(), "model": model.to_dict(),
              "seed": seed, "mode": mode, "seq_len": seq_len, "sequences": sequences,
              "train": _train_config(spec, mode, sequences, seq_len, source, model)}
    return Case(case_id(config), config)


def _grid_axes(spec: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The lists of ``grid``, each checked to be a non-empty list (defaults filled in)."""
    grid = spec["grid"]
    require(isinstance(grid, dict), "grid", "an object of lists", type(grid).__name__)
    check_keys(grid, "grid", *GRID_KEYS)
    return {k: _list(grid.get(k, _GRID_DEFAULTS.get(k)), f"grid.{k}")
            for k in GRID_KEYS[0] + GRID_KEYS[1]}


def _random_count(spec: Mapping[str, Any]) -> int:
    draws = spec["random"]
    require(isinstance(draws, dict), "random", "an object of ranges", type(draws).__name__)
    check_keys(draws, "random", *RANDOM_KEYS)
    return as_int(draws["count"], "random.count", minimum=1)


def count_cases(spec: Mapping[str, Any]) -> int:
    """How many cases ``spec`` holds, from its list lengths (or ``random.count``) alone.

    Raises:
        InductionHeadsError: on a spec that is not an object with one of ``grid`` and
            ``random``, or whose lists are not non-empty lists.
    """
    require(isinstance(spec, Mapping), "sweep spec", "a JSON object", type(spec).__name__)
    require(("grid" in spec) != ("random" in spec), "sweep spec",
            "exactly one of 'grid' and 'random'", sorted(k for k in ("grid", "random")
                                                         if k in spec))
    if "random" in spec:
        return _random_count(spec)
    return math.prod(len(axis) for axis in _grid_axes(spec).values())


def _grid(spec: Mapping[str, Any], settings: dict[str, Any], base: Path) -> list[Case]:
    axes = _grid_axes(spec)
    axes["seeds"] = _ints(axes["seeds"], "grid.seeds", 0, SEED_MAX)
    axes["seq_len"] = _ints(axes["seq_len"], "grid.seq_len", 2)
    axes["sequences"] = _ints(axes["sequences"], "grid.sequences", 1)
    axes["modes"] = _modes(axes["modes"], "grid.modes")
    sources = [load_source(base / s if isinstance(s, str) else s) for s in axes["sources"]]
    models = [ModelSpec.from_dict(m) for m in axes["models"]]
    return [_case(spec, settings, *combo) for combo in itertools.product(
        sources, models, axes["seeds"], axes["modes"], axes["seq_len"], axes["sequences"])]


def _random(spec: Mapping[str, Any], settings: dict[str, Any]) -> list[Case]:
    draws = spec["random"]
    count = _random_count(spec)
    require("seed" in spec, "seed", "a top-level 'seed' for the random draws", "no seed")
    rng = np.random.default_rng(as_int(spec["seed"], "seed", minimum=0))
    ranges = {k: _int_range(draws[k], f"random.{k}", low) for k, low in
              (("vocab_size", 2), ("heads", 1), ("seq_len", 2), ("sequences", 1))}
    degree = _int_range(draws["degree"], "random.degree", 1) if "degree" in draws else None
    extra = _int_range(draws.get("extra_window", [0, 0]), "random.extra_window", 0)
    seeds = _int_range(draws.get("seeds", list(SEED_RANGE)), "random.seeds", 0, SEED_MAX)
    alpha = draws["alpha"]
    expected = "a range [low, high] of finite positive numbers, low <= high"
    require(isinstance(alpha, list) and len(alpha) == 2, "random.alpha", expected, alpha)
    try:
        low, high = (as_float(a, "random.alpha", positive=True) for a in alpha)
    except InductionHeadsError:
        raise InductionHeadsError(f"random.alpha: expected {expected}, received {alpha!r}"
                                  ) from None
    require(low <= high, "random.alpha", expected, alpha)
    alpha = [low, high]
    parents = _list(draws["parents"], "random.parents")
    modes = _modes(_list(draws.get("modes", ["stagewise"]), "random.modes"), "random.modes")
    cases = []
    for _ in range(count):
        d = int(rng.integers(ranges["vocab_size"][0], ranges["vocab_size"][1] + 1))
        h = int(rng.integers(ranges["heads"][0], ranges["heads"][1] + 1))
        a = float(np.exp(rng.uniform(np.log(alpha[0]), np.log(alpha[1]))))
        p = parents[int(rng.integers(len(parents)))]
        deg = min(h, 2) if degree is None else min(h, int(rng.integers(degree[0], degree[1] + 1)))
        m = h + int(rng.integers(extra[0], extra[1] + 1))
        mode = modes[int(rng.integers(len(modes)))]
        L = int(rng.integers(ranges["seq_len"][0], ranges["seq_len"][1] + 1))
        n = int(rng.integers(ranges["sequences"][0], ranges["sequences"][1] + 1))
        seed = _seed(rng, *seeds)
        source = Source.from_dict({"vocab_size": d, "parents": p,
                                   "prior": {"kind": "dirichlet", "alpha": float(f"{a:.6g}")}})
        cases.append(_case(spec, settings, source, ModelSpec(h, m, deg), seed, mode, L, n))
    return cases


def expand_cases(spec: Mapping[str, Any], *, base: str | Path = ".") -> list[Case]:
    """The cases of a sweep spec (module docstring), in expansion order.

    Args:
        spec: the parsed spec.
        base: the directory relative source paths of a grid are read from.

    Returns:
        The cases; the same spec gives the same cases and ids.

    Raises:
        InductionHeadsError: on a bad spec (unknown or missing keys, bad values, two cases with
            the same id, more than :data:`MAX_CASES` cases, nesting deeper than the recursion
            limit), naming the key, the expected and the received value.
    """
    try:
        return _expand(spec, Path(base))
    except RecursionError:
        raise InductionHeadsError("sweep spec: expected values nested less deeply than "
                                  "Python's recursion limit, received a spec nested deeper"
                                  ) from None


def _expand(spec: Mapping[str, Any], base: Path) -> list[Case]:
    require(isinstance(spec, Mapping), "sweep spec", "a JSON object", type(spec).__name__)
    check_keys(spec, "sweep spec", (), SPEC_KEYS)
    count = count_cases(spec)
    if count > MAX_CASES:
        counted = "random.count" if "random" in spec else "the product of the grid's lengths"
        raise InductionHeadsError(f"sweep spec: expected at most {MAX_CASES:,} cases "
                                  f"(MAX_CASES), received {count:,} ({counted}); split the "
                                  "sweep into smaller specs")
    require("seed" not in spec or "random" in spec, "seed",
            "no top-level seed with a grid (each case's seed comes from grid.seeds)",
            spec.get("seed"))
    settings = _settings(spec)
    cases = _grid(spec, settings, base) if "grid" in spec else _random(spec, settings)
    ids = [c.case_id for c in cases]
    repeated = sorted(i for i, k in Counter(ids).items() if k > 1)
    require(not repeated, "sweep spec", "distinct cases (no case listed twice)",
            f"repeated case ids {repeated}")
    return cases
