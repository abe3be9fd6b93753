"""Field checks for request bodies: each returns the clean value or raises InvalidData with reasons."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from mock_crm.clock import parse_ts
from mock_crm.errors import InvalidData

Check = Callable[[Any], Any]

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")
_PHONE = re.compile(r"\+?[0-9 ().\-]+")
_MAX_UNKNOWN = 20
# Control, lone surrogate, line and paragraph separator; format characters such as ZWNJ are fine.
_BANNED = frozenset({"Cc", "Cs", "Zl", "Zp"})


def _text(value: Any, max_len: int) -> str:
    """Return value if it is printable text of 1..max_len characters, else raise ValueError."""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if not value.strip():
        raise ValueError("must not be empty")
    if len(value) > max_len:
        raise ValueError(f"must be at most {max_len} characters")
    if any(unicodedata.category(ch) in _BANNED for ch in value):
        raise ValueError("must not contain control characters, line breaks or lone surrogates")
    return value


def check_name(value: Any) -> str:
    """A person's or meeting's name: 1-200 printable characters."""
    return _text(value, 200)


def check_email(value: Any) -> str:
    """A plausible e-mail address of at most 254 characters."""
    text = _text(value, 254)
    if not _EMAIL.fullmatch(text):
        raise ValueError("must be an e-mail address like name@example.com")
    return text


def check_phone(value: Any) -> str:
    """7-15 digits with an optional leading + and spaces, dashes, dots or parentheses."""
    text = _text(value, 40)
    digits = sum(ch.isascii() and ch.isdigit() for ch in text)
    if not _PHONE.fullmatch(text) or not 7 <= digits <= 15:
        raise ValueError("must have 7 to 15 digits, optionally a leading + and spaces, -, . or ( )")
    return text


def check_timestamp(value: Any) -> datetime:
    """An ISO-8601 timestamp with a time zone."""
    return parse_ts(value)


def check_optional_timestamp(value: Any) -> datetime | None:
    """An ISO-8601 timestamp with a time zone, or null."""
    return None if value is None else parse_ts(value)


def check_key(value: Any) -> str:
    """An idempotency key: 1-255 printable characters."""
    return _text(value, 255)


USER_FIELDS: dict[str, Check] = {"name": check_name, "email": check_email, "phone": check_phone}
MEETING_FIELDS: dict[str, Check] = {
    "title": check_name,
    "starts_at": check_timestamp,
    "ends_at": check_optional_timestamp,
}


def require_object(body: Any) -> Mapping[str, Any]:
    """Return body if it is a JSON object, else raise InvalidData."""
    if not isinstance(body, dict):
        raise InvalidData("The request body must be a JSON object.", {})
    return body


def validate(
    body: Any, checks: Mapping[str, Check], *, required: tuple[str, ...] = (), partial: bool = False
) -> dict[str, Any]:
    """Check a JSON object against per-field checks; unknown keys and missing required keys fail."""
    data = require_object(body)
    fields: dict[str, str] = {}
    clean: dict[str, Any] = {}
    unknown = [key for key in data if key not in checks]
    for key in unknown[:_MAX_UNKNOWN]:
        fields[_short(key)] = "unknown field"
    for key in required:
        if key not in data:
            fields[key] = "is required"
    for key, check in checks.items():
        if key in data:
            try:
                clean[key] = check(data[key])
            except ValueError as exc:
                fields[key] = str(exc)
    if partial and not data:
        raise InvalidData("Give at least one field to change.", {})
    if fields:
        raise InvalidData("Some fields are invalid.", fields)
    return clean


def _short(key: str) -> str:
    """Shorten an unknown key so a hostile one cannot bloat the error body."""
    return key if len(key) <= 64 else key[:61] + "..."
