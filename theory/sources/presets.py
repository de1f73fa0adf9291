"""Named presets: the in-context Markov settings of the field's papers as sources of this library.

A :class:`Preset` holds a :class:`theory.sources.spec.Source`, the context length ``L`` whose next
token ``x_{L+1}`` is predicted, the start mode of :func:`theory.sample_sequences_np` and a
citation: authors, year, title, venue, and where in the paper or its code each value comes from,
with every value the paper does not fix marked as chosen here. :data:`PRESETS` maps each name to
its preset; :func:`preset` looks one up.

- ``edelman-bigram``: in-context bigrams, every row of the transition matrix ``Dirichlet(1)``.
- ``nichani-single-parent``: the single-parent chain, ``d = 10``, ``Dirichlet(0.1)``.
- ``varre-trigram``: in-context trigrams, ``d = 5``, ``P = (1, 2)``, ``α = 0.5``, ``L = 32``.
- ``selective-lags``: a :class:`theory.sources.priors.Switching` source over the lags 1, 2, 3.
- ``park-mixture``: a :class:`theory.sources.priors.FiniteMixture` of 16 chains drawn once.

Sources here express a parent as a fixed offset only; each citation says what of its paper's
setting that leaves out. JSON form: :meth:`Preset.to_dict` (keys :data:`PRESET_KEYS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from theory.errors import InductionHeadsError, require
from theory.sources.priors import Dirichlet, FiniteMixture, Switching, SwitchingComponent
from theory.sources.sequences import START_MODES
from theory.sources.spec import Source
from theory.validation import as_int, check_keys

__all__ = ["Preset", "PRESETS", "PRESET_KEYS", "preset"]

PRESET_KEYS = ("name", "source", "seq_len", "start", "citation")
"""The keys of a preset's dict, all required."""


@dataclass(frozen=True)
class Preset:
    """A named setting of the literature: source, context length, start mode and citation.

    Attributes:
        name: the preset's name, e.g. ``"varre-trigram"``.
        source: the source the sequences are drawn from.
        seq_len: ``L > max(P)``, the context whose next token ``x_{L+1}`` is predicted.
        start: ``"uniform"`` or ``"stationary"`` (:data:`theory.sources.sequences.START_MODES`).
        citation: authors, year, title, venue or arXiv id, and where each value comes from.
    """

    name: str
    source: Source
    seq_len: int
    start: str
    citation: str

    def __post_init__(self) -> None:
        require(isinstance(self.name, str) and self.name != "", "preset name",
                "a non-empty string", self.name)
        require(isinstance(self.source, Source), "preset source", "a theory.Source",
                type(self.source).__name__)
        seq_len = as_int(self.seq_len, "seq_len", minimum=self.source.max_parent + 1, symbol="L")
        object.__setattr__(self, "seq_len", seq_len)
        require(isinstance(self.start, str) and self.start in START_MODES, "start",
                f"one of {START_MODES}", self.start)
        require(isinstance(self.citation, str) and self.citation != "", "citation",
                "a non-empty string", self.citation)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict (keys :data:`PRESET_KEYS`; the source as in
        :mod:`theory.sources.spec`)."""
        return {"name": self.name, "source": self.source.to_dict(), "seq_len": self.seq_len,
                "start": self.start, "citation": self.citation}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preset:
        """Inverse of :meth:`to_dict`; refuses missing and unknown keys."""
        require(isinstance(data, dict), "preset", "a dict", type(data).__name__)
        check_keys(data, "preset", PRESET_KEYS)
        return cls(data["name"], Source.from_dict(data["source"]), data["seq_len"],
                   data["start"], data["citation"])


_EDELMAN = Preset(
    "edelman-bigram", Source(2, (1,), Dirichlet(1.0)), 100, "stationary",
    "B. L. Edelman, E. Edelman, S. Goel, E. Malach, N. Tsilivis (2024), 'The Evolution of "
    "Statistical Induction Heads: In-Context Learning Markov Chains', NeurIPS 2024, "
    "arXiv:2402.11004. From their code (github.com/EzraEdelman/Evolution-of-Statistical-"
    "Induction-Heads): the default config of training_pipeline.py (vocab_size = 2, "
    "block_size = 100: d = 2, L = 100, n = 2: bigrams, P = (1,)) and the ngrams dataset of "
    "datasets.py (every row Dirichlet(1), i.e. uniform over transition matrices; the first "
    "token from the chain's stationary law). Their plots.ipynb also sets vocab_size = 3; d = 2 is "
    "the code's default.")

_NICHANI = Preset(
    "nichani-single-parent", Source(10, (1,), Dirichlet(0.1)), 20, "stationary",
    "E. Nichani, A. Damian, J. D. Lee (2024), 'How Transformers Learn Causal Structure with "
    "Gradient Descent', ICML 2024, arXiv:2402.14735. From their code (github.com/eshnich/"
    "transformers-learn-causal-structure), single_parent.py's defaults (vocab_size = 10, "
    "seq_len = 20, alpha = 0.1, dag = 'chain') and problems.py's InContextTree (rows "
    "Dirichlet(alpha), the first token from the chain's stationary law). Mapping: the "
    "'chain' DAG gives every position the previous one as its parent, the parent offset 1. "
    "Left out: their other single-parent DAGs (a parent per position, 'random' or the "
    "'icl' pairing), which no fixed offset expresses; their query token, the 20th, drawn "
    "uniformly (here x_L comes from the chain, L = 20); and their loss against the true "
    "next-token law rather than a sampled token (the same expectation).")

_VARRE = Preset(
    "varre-trigram", Source(5, (1, 2), Dirichlet(0.5)), 32, "uniform",
    "A. Varre, G. Yüce, N. Flammarion (2025), 'Learning In-context n-grams with Transformers: "
    "Sub-n-grams Are Near-stationary Points', ICML 2025, arXiv:2508.12837. Experiments (Section 5): a "
    "trigram model (n = 3) over S = 5 tokens, sequences of T = 32 tokens, transition rows "
    "Dir(alpha 1) with alpha = 0.5; code github.com/tml-epfl/sub-n-grams-are-stationary "
    "(problems.py InContextDAG; util.py generate_markov_dag with order 2: parents (1, 2); "
    "the 32 tokens are the context and the 33rd is predicted). Start: their first two "
    "tokens have no parents and are drawn i.i.d. from one Dirichlet(alpha) vector per "
    "sequence (InContextDAG.sample), which no start mode here expresses; 'uniform' keeps "
    "each start token's marginal law and its independence of the kernel, without the "
    "dependence between the two start tokens.")

_SELECTIVE = Preset(
    "selective-lags",
    Source(3, (1, 2, 3), Switching(tuple(SwitchingComponent((lag,), 1.0 / 3.0, alpha=1.0)
                                         for lag in (1, 2, 3)))),
    64, "uniform",
    "F. D'Angelo, F. Croce, N. Flammarion (2025), 'Selective Induction Heads: How "
    "Transformers Select Causal Structures In Context', arXiv:2509.08184. Their setting "
    "interleaves Markov chains with different lags, so the causal structure (the lag) "
    "varies across sequences; here each sequence draws its lag from {1}, {2}, {3} with "
    "equal weights, then its kernel on that lag with rows Dirichlet(alpha). Their abstract "
    "keeps the transition probabilities fixed while the lag varies; here the kernel is "
    "drawn per sequence, as in the other in-context presets. Chosen here: d = 3, "
    "alpha = 1, L = 64, uniform start (not taken from the paper).")

_PARK = Preset(
    "park-mixture",
    Source(10, (1,), FiniteMixture.draw(16, 1.0, seed=0, vocab_size=10, order=1)),
    511, "stationary",
    "C. F. Park, E. S. Lubana, I. Pres, H. Tanaka (2025), 'Competition Dynamics Shape "
    "Algorithmic Phases of In-Context Learning', ICLR 2025, arXiv:2412.01003. From their "
    "code (github.com/cfpark00/markov-mixtures): make_yamls.ipynb and utils.py's "
    "MarkovMixtureDataset (k = 10 states: d = 10; sequences of l = 512 tokens; each of the N "
    "chains 'dense', every row Dirichlet(1); a sequence starts from its chain's stationary "
    "law). N = 16 chosen from their sweep N = 4 .. 2048; the chains are drawn here once "
    "with numpy default_rng(seed 0), not from their per-chain seeds; equal weights chosen "
    "(their weights are uniform random numbers normalised, seed 42); L = 511 chosen: the "
    "context of the last prediction in their 512-token sequences.")

PRESETS: dict[str, Preset] = {p.name: p for p in (_EDELMAN, _NICHANI, _VARRE, _SELECTIVE,
                                                  _PARK)}
"""The presets by name, in the order of the module docstring."""


def preset(name: str) -> Preset:
    """The preset called ``name``.

    Raises:
        InductionHeadsError: for a name not in :data:`PRESETS` (the message lists them).
    """
    if not (isinstance(name, str) and name in PRESETS):
        raise InductionHeadsError(f"preset: expected one of {', '.join(PRESETS)}, received "
                                  f"{name!r}")
    return PRESETS[name]
