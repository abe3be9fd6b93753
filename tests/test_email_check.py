"""normalise_email's fast path (plain ASCII addresses at a domain already checked) answers exactly as a full
email_validator check does: the same normalised address, or the same reason, for any input."""

from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync import validation
from crmsync.validation import normalise_email


def full_check(value: str) -> tuple[str | None, str | None]:
    """What normalise_email answered before it had a fast path."""
    if len(value) > 254:
        return None, "must be at most 254 characters"
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        return None, f"is not a valid email address: {exc}"
    return checked.normalized.lower(), None


LOCALS = [
    "a", "A.b", "bench-abc-1-1", "x+tag", "o'neil", "a..b", ".a", "a.", "", "a b", '"quoted"', "ü", "a\n",
    "postmaster", "POSTMASTER", "a" * 64, "a" * 65, "a@b", "{}|~^`=?", "Bob <a", "\x00", "a\u0301",
]  # fmt: skip
DOMAINS = [
    "example.com", "EXAMPLE.COM", "localhost", "test", "b", "123.456", "-x.com", "x-.com", "ab--cd.com",
    "xn--bcher-kva.ch", "Bücher.CH", "exämple.com", "example.com.", ".example.com", "example..com", "[127.0.0.1]",
    "example.com ", " example.com", "a.invalid", "a.local", "a.onion", "x.arpa", "ex_ample.com", "例え.jp",
    ("l" * 63 + ".") * 3 + "com", ("l" * 64) + ".com", "a.b.c.d.e.f.g.h.example.org", "example.c0m", "e.x",
]  # fmt: skip


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("local", LOCALS)
def test_every_listed_address_gets_the_full_checks_answer(local: str, domain: str) -> None:
    value = f"{local}@{domain}"
    assert normalise_email(value) == full_check(value)
    assert normalise_email(value) == full_check(value)  # again, with the domain's verdict cached


def test_long_addresses_at_a_cached_domain_still_fail_on_length() -> None:
    domain = ("l" * 60 + ".") * 3 + "com"
    assert normalise_email(f"a@{domain}")[0] is not None  # the domain is now known to be valid
    for local in ("a" * 60, "a" * 64, "a" * 65):
        value = f"{local}@{domain}"
        assert normalise_email(value) == full_check(value)


ATEXT = st.sampled_from("abcXYZ019.!#$%&'*+/=?^_`{|}~- @\"\\äü\x00\n")


@settings(max_examples=400, deadline=None)
@given(
    local=st.text(ATEXT, max_size=70),
    domain=st.one_of(st.sampled_from(DOMAINS), st.text(st.sampled_from("abcXZ09.-_ä"), max_size=70)),
)
def test_generated_addresses_get_the_full_checks_answer(local: str, domain: str) -> None:
    value = f"{local}@{domain}"
    assert normalise_email(value) == full_check(value)


@settings(max_examples=200, deadline=None)
@given(value=st.emails() | st.text(max_size=80))
def test_any_text_gets_the_full_checks_answer(value: str) -> None:
    assert normalise_email(value) == full_check(value)


def test_the_fast_path_skips_the_full_check_for_a_plain_address_at_a_known_domain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert normalise_email("First@Known-Domain.example.org") == ("first@known-domain.example.org", None)
    calls: list[str] = []

    def counting(value: str, **options: object) -> object:
        calls.append(value)
        return validate_email(value, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(validation, "validate_email", counting)
    assert normalise_email("Second.One@known-domain.example.org") == ("second.one@known-domain.example.org", None)
    assert calls == []
    assert normalise_email("Ünicode@known-domain.example.org")[0] == "ünicode@known-domain.example.org"
    assert calls == ["Ünicode@known-domain.example.org"]
