"""The crossing benchmark's ``--memory-limit``: sizes people write parse to the bytes they mean."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.cgroup import parse_size

UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@given(st.integers(min_value=64, max_value=1 << 20), st.sampled_from(["M", "MB", "MiB", "m", "mib"]))
def test_a_size_in_mebibytes_parses_to_its_bytes(n: int, unit: str) -> None:
    assert parse_size(f"{n}{unit}") == n << 20


@given(st.integers(min_value=1, max_value=64), st.sampled_from(["G", "GiB", "g"]))
def test_a_size_in_gibibytes_parses_to_its_bytes(n: int, unit: str) -> None:
    assert parse_size(f"{n}{unit}") == n << 30


def test_a_fraction_and_plain_bytes_parse() -> None:
    assert parse_size("1.5G") == 3 << 29
    assert parse_size(str(128 << 20)) == 128 << 20


@pytest.mark.parametrize("text", ["", "lots", "-1G", "1X", "1 G B", "0x10M"])
def test_garbage_is_refused_naming_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


@pytest.mark.parametrize("text", ["1M", "63M", "1000"])
def test_a_limit_no_engine_can_start_in_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="below 64 MiB"):
        parse_size(text)
