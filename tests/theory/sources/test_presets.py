"""The named presets (theory.sources.presets): each builds, round-trips through JSON, holds the
setting its citation names, and an unknown name is refused with the list of known ones."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from theory import (
    PRESETS,
    Dirichlet,
    FiniteMixture,
    InductionHeadsError,
    Preset,
    Source,
    Switching,
    preset,
    sample_sequences_np,
)
from theory.sources.presets import PRESET_KEYS

NAMES = ("edelman-bigram", "nichani-single-parent", "varre-trigram", "selective-lags",
         "park-mixture")
"""Every preset, by the names the command line and the docs use."""


def test_the_presets_are_exactly_the_named_ones():
    assert tuple(PRESETS) == NAMES, f"presets {tuple(PRESETS)}, expected {NAMES}"
    for name, p in PRESETS.items():
        assert p.name == name and preset(name) is p


@pytest.mark.parametrize("name", NAMES)
def test_every_preset_round_trips_through_json(name):
    p = preset(name)
    text = json.dumps(p.to_dict())
    back = Preset.from_dict(json.loads(text))
    assert back == p, f"{name}: {back} read back, {p} written"
    assert tuple(p.to_dict()) == PRESET_KEYS
    assert Source.from_dict(json.loads(json.dumps(p.source.to_dict()))) == p.source


@pytest.mark.parametrize("name", NAMES)
def test_every_preset_draws_its_sequences(name):
    p = preset(name)
    tokens = sample_sequences_np(p.source, 8, p.seq_len + 1, rng=np.random.default_rng(0),
                                 start=p.start)
    assert tokens.shape == (8, p.seq_len + 1)
    assert 0 <= tokens.min() and tokens.max() < p.source.vocab_size


@pytest.mark.parametrize("name", NAMES)
def test_every_citation_names_a_year_an_arxiv_id_and_its_authors(name):
    citation = preset(name).citation
    assert re.search(r"\(20\d\d\)", citation), f"{name}: no year in {citation!r}"
    assert re.search(r"arXiv:\d{4}\.\d{4,5}", citation), f"{name}: no arXiv id in {citation!r}"
    assert "'" in citation and ", " in citation.split("(")[0], f"{name}: {citation!r}"


def test_varre_trigram_is_their_section_5_setting():
    p = preset("varre-trigram")
    assert p.source == Source(5, (1, 2), Dirichlet(0.5)), p.source
    assert p.source.vocab_size == 5 and p.source.parents == (1, 2)
    assert p.source.prior.alpha == 0.5
    assert p.seq_len == 32 and p.start == "uniform", (p.seq_len, p.start)


def test_selective_lags_switch_over_lags_one_two_three_equally():
    source = preset("selective-lags").source
    assert isinstance(source.prior, Switching)
    comps = source.prior.components
    assert [c.parents for c in comps] == [(1,), (2,), (3,)]
    assert all(c.weight == pytest.approx(1 / 3, abs=1e-15) for c in comps)
    assert all(c.kernel is None and c.alpha is not None for c in comps), "Dirichlet rows"
    assert source.parents == (1, 2, 3)


def test_park_mixture_is_a_seeded_finite_mixture():
    source = preset("park-mixture").source
    prior = source.prior
    assert isinstance(prior, FiniteMixture) and prior.drawn is not None
    alpha, seed = prior.drawn
    again = FiniteMixture.draw(prior.count, alpha, seed=seed, vocab_size=source.vocab_size,
                               order=source.order)
    assert np.array_equal(again.kernels, prior.kernels), "the same seed draws other chains"
    assert prior.count == 16 and source.vocab_size == 10 and source.parents == (1,)


@pytest.mark.parametrize("name", ["varre", "", None, 3])
def test_an_unknown_name_is_refused_with_the_known_ones(name):
    with pytest.raises(InductionHeadsError) as caught:
        preset(name)
    message = str(caught.value)
    missing = [known for known in NAMES if known not in message]
    assert not missing, f"the message {message!r} does not list {missing}"


def test_a_preset_dict_with_an_unknown_key_is_refused():
    data = preset("edelman-bigram").to_dict()
    data["extra"] = 1
    with pytest.raises(InductionHeadsError, match="extra"):
        Preset.from_dict(data)


@pytest.mark.parametrize("field, value, fragment", [
    ("seq_len", 1, "seq_len"), ("start", "burn-in", "start"), ("citation", "", "citation"),
])
def test_a_bad_preset_field_is_refused(field, value, fragment):
    data = preset("varre-trigram").to_dict()
    data[field] = value
    with pytest.raises(InductionHeadsError, match=fragment):
        Preset.from_dict(data)
