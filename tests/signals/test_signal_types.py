"""The contract every registered signal type keeps (as pytx's ``SignalTypeHashTest``), and
the registry's lookups. A new signal type is checked here without a line of test code."""

from __future__ import annotations

import io
import secrets

import pytest

from sentinelle.errors import InvalidHashError
from sentinelle.formats import csv_format
from sentinelle.formats.entry import EntryIn, normalize_signal_hash
from sentinelle.signals.signal_types import (
    BUILTIN_SIGNAL_TYPES,
    SignalType,
    by_hma_name,
    by_threatexchange_name,
    by_vics_name,
    find_signal_type,
    get_signal_type,
    register_signal_type,
    signal_type_names,
    signal_types,
)

TYPES = [pytest.param(st, id=st.name) for st in signal_types()]


@pytest.mark.parametrize("st", TYPES)
def test_validate_normalizes_and_rejects(st: SignalType) -> None:
    h = secrets.token_hex(st.hex_length // 2)
    assert st.validate(" " + h.upper() + "\n") == h
    for bad in (h[:-1], h + "0", "z" * st.hex_length, ""):
        with pytest.raises(InvalidHashError):
            st.validate(bad)
    assert normalize_signal_hash(st.name.upper(), h.upper()) == (st.name, h)


@pytest.mark.parametrize("st", TYPES)
def test_distance_and_threshold_semantics(st: SignalType) -> None:
    a = secrets.token_hex(st.hex_length // 2)
    flipped = format(int(a, 16) ^ 1, f"0{st.hex_length}x")  # one bit away
    assert st.distance(a, a) == 0 and st.matches(0, st.default_threshold)
    assert st.distance(a, flipped) == st.distance(flipped, a) >= 1
    if st.exact:
        assert st.default_threshold == 0 and st.max_threshold == 0 and st.index == "exact"
        assert not st.matches(st.distance(a, flipped), st.default_threshold)
    else:
        assert st.distance(a, flipped) == 1
        assert 0 < st.default_threshold <= st.max_threshold == st.hex_length * 4
        assert st.matches(st.default_threshold, st.default_threshold)
        assert not st.matches(st.default_threshold + 1, st.default_threshold)
    assert st.index in ("exact", "pdq", "vpdq")


@pytest.mark.parametrize("st", TYPES)
def test_format_names_lead_back_to_the_type(st: SignalType) -> None:
    for n in st.hma_names:
        assert by_hma_name(n) is st
    for n in st.threatexchange_names:
        assert by_threatexchange_name(n) is st
    for n in st.vics_names:
        assert by_vics_name(n.upper()) is st
    assert st.description and st.computed_from


@pytest.mark.parametrize("st", TYPES)
def test_a_bank_file_carries_every_type(st: SignalType) -> None:
    h = secrets.token_hex(st.hex_length // 2)
    buf = io.StringIO()
    assert csv_format.write([EntryIn(st.name, h)], buf) == 1
    buf.seek(0)
    assert [(e.signal_type, e.hash) for e in csv_format.parse(buf)] == [(st.name, h)]


def test_registry_lookups() -> None:
    names = signal_type_names()
    assert names[:5] == ("md5", "sha1", "sha256", "pdq", "vpdq")  # media types first
    assert {cls.name for cls in BUILTIN_SIGNAL_TYPES} <= set(names)
    assert find_signal_type("nope") is None
    with pytest.raises(InvalidHashError, match="unknown signal type 'nope'"):
        get_signal_type("nope")
    assert by_hma_name("video_md5") is get_signal_type("md5")
    assert by_threatexchange_name("video_sha256") is get_signal_type("sha256")
    assert by_vics_name("SHA-1") is get_signal_type("sha1")


def test_registering_is_idempotent_and_names_are_unique() -> None:
    md5 = get_signal_type("md5")
    assert register_signal_type(type(md5)) is md5

    class OtherMD5(SignalType):
        name = "md5"
        description = "an impostor"
        hex_length = 32
        exact = True
        default_threshold = 0
        index = "exact"
        computed_from = ("file",)

    with pytest.raises(ValueError, match="already registered"):
        register_signal_type(OtherMD5)
    assert get_signal_type("md5") is md5
