"""check_name's shortcut for printable ASCII names gives the verdict of the full per-character check."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.validation import check_name


def full_check(value: str) -> str | None:
    """What check_name answered before it had a shortcut."""
    if not value.strip():
        return "must not be blank"
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value):
        return "must not contain control characters or line breaks"
    if len(value) > 200:
        return "must be at most 200 characters"
    return None


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=210) | st.text(st.characters(max_codepoint=0x7F), max_size=210))
def test_any_name_gets_the_full_checks_verdict(value: str) -> None:
    assert check_name(value) == full_check(value)


def test_listed_names_get_the_full_checks_verdict() -> None:
    for value in ("Ada", " ", "", "a\tb", "a\x7fb", "a\x00", "Zoë", "a\u2028b", "a\u2029", "x" * 201, "\u00a0"):
        assert check_name(value) == full_check(value), repr(value)
