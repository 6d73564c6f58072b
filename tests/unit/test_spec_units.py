"""Durations and byte sizes as written in YAML."""

from __future__ import annotations

import pytest

from kdeps.spec import parse_byte_size, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("60s", 60.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("24h", 86400.0),
        ("1h30m", 5400.0),
        ("2.5s", 2.5),
        ("1.5h", 5400.0),
        (".5s", 0.5),
        ("250us", 0.00025),
        ("100ns", 1e-7),
        ("1h0m0s", 3600.0),
        ("7d", 604800.0),
        ("0", 0.0),
        ("30", 30.0),
        (" 10s ", 10.0),
        (30, 30.0),
        (1.5, 1.5),
        (0, 0.0),
    ],
)
def test_duration_accepted(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "abc", "10 minutes", "1x", "-1s", "s", "1s2", "1m 30s", "1.2.3s", "10S", True, None, [1], -5]
)
def test_duration_rejected(text: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (0, 0),
        (512, 512),
        ("512", 512),
        ("10b", 10),
        ("64KB", 65536),
        ("64kb", 65536),
        ("10MB", 10 * 1024**2),
        ("10M", 10 * 1024**2),
        ("1GiB", 1024**3),
        ("1.5MB", int(1.5 * 1024**2)),
        ("10 MB", 10 * 1024**2),
    ],
)
def test_byte_size_accepted(text: object, size: int) -> None:
    assert parse_byte_size(text) == size


@pytest.mark.parametrize("text", ["MB", "10XB", "10bb", "-1", -1, True, 1.5, "ten"])
def test_byte_size_rejected(text: object) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_byte_size(text)
