"""Request parsing: JSON bodies into attrs classes with one strict converter and per-field reasons."""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from typing import Any, TypeVar

import attrs
import cattrs
import orjson
from aiohttp import web
from cattrs.errors import AttributeValidationNote, ClassValidationError, ForbiddenExtraKeysError
from email_validator import EmailNotValidError, validate_email

from .errors import BadRequest, ValidationFailed

T = TypeVar("T")

MAX_BODY = 64 * 1024
_PHONE = re.compile(r"^\+?[0-9 ().-]+$")
# A plain local part (RFC 5322 dot-atom, ASCII): email_validator accepts every one of at most 64 characters
# and leaves it as it is, so at a valid domain the address is valid.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")


class _Unset:
    """Marks a field a PATCH body did not mention (null is an error, not 'absent')."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def _strict_str(value: object, _: type) -> str:
    # cattrs would turn 123 into "123"; a contract that says "string" means string.
    if not isinstance(value, str):
        raise TypeError("must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid unicode text") from None
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _strict_str_list(value: object, _: type) -> list[str]:
    # cattrs would split a string into characters; a list means a list.
    if not isinstance(value, list):
        raise TypeError("must be a list of strings")
    return [_strict_str(item, str) for item in value]


def _optional_str(value: object, _: type) -> str | None:
    return None if value is None else _strict_str(value, str)


converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
converter.register_structure_hook(str, _strict_str)
converter.register_structure_hook_func(lambda t: t == list[str], _strict_str_list)
converter.register_structure_hook_func(lambda t: t == str | None, _optional_str)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate keys in JSON object")
    return result


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """Read the body as one JSON object; 413 when too large, 400 when not a JSON object."""
    return parse_json_object(await request.read())  # client_max_size bounds the read: 413 past it


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """Parse bytes as one JSON object, or raise BadRequest."""
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    return body


def parse_json(raw: bytes) -> Any:
    """Parse bytes as JSON of any shape (objects without duplicate keys), or raise BadRequest.

    orjson parses a small body in a tenth of the time json takes with a duplicate-key hook, but keeps the
    last of duplicate keys silently. So its result stands only when no key can have come twice (see
    _no_key_twice); anything else, and whatever orjson refuses (it is stricter), takes the exact path.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    else:
        if _no_key_twice(raw, value):
            return value
    try:
        return json.loads(raw, object_pairs_hook=_reject_duplicate_keys)
    except (ValueError, RecursionError):
        raise BadRequest("The body must be valid JSON (UTF-8, no duplicate keys).") from None


_FEW_OBJECTS = 4  # a contact, a webhook: past this many objects the count below costs more than it saves


def _no_key_twice(raw: bytes, value: Any) -> bool:
    """True when no object of value can have held a key twice in raw.

    Without a backslash in raw a key is written in exactly one way, "key", so a key written twice shows
    as its quoted text occurring twice. A key whose text occurs again for another reason (another
    object's key, a value) only sends the body down the exact path.
    """
    if b"\\" in raw:
        return False
    objects, pending = 0, [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            objects += 1
            if objects > _FEW_OBJECTS:
                return False
            for key, inner in item.items():
                if raw.count(b'"' + key.encode() + b'"') > 1:
                    return False
                pending.append(inner)
        elif isinstance(item, list):
            if len(item) > _FEW_OBJECTS:
                return False
            pending.extend(item)
    return True


def structure(body: dict[str, Any], cls: type[T]) -> T:
    """Structure a JSON object into cls, or raise ValidationFailed with a reason per field."""
    try:
        return converter.structure(body, cls)
    except ClassValidationError as exc:
        raise ValidationFailed(_field_errors(exc)) from None


def _field_errors(exc: ClassValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in exc.exceptions:
        if isinstance(error, ForbiddenExtraKeysError):
            for name in sorted(error.extra_fields):
                fields[str(name)[:100]] = "is not a known field"
            continue
        notes = [n for n in getattr(error, "__notes__", []) if isinstance(n, AttributeValidationNote)]
        name = notes[0].name if notes else "body"
        fields[name] = "is required" if isinstance(error, KeyError) else str(error)
    return fields


def check_name(value: str) -> str | None:
    """Return a reason when the name is unacceptable."""
    if not value.strip():
        return "must not be blank"
    # Printable ASCII has no control character (Cc) and no line or paragraph separator (Zl, Zp, not ASCII).
    if not (value.isascii() and value.isprintable()) and any(
        unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value
    ):
        return "must not contain control characters or line breaks"
    if len(value) > 200:
        return "must be at most 200 characters"
    return None


def normalise_email(value: str) -> tuple[str | None, str | None]:
    """Return (normalised email, None) or (None, reason)."""
    if len(value) > 254:
        return None, "must be at most 254 characters"
    # Checking a domain (IDNA, UTS 46) is most of email_validator's cost, and a domain comes again and again:
    # a plain ASCII address at a domain known to be valid skips the full check, with the same outcome.
    local, _, domain = value.rpartition("@")
    if len(local) <= 64 and _DOT_ATOM.match(local) and domain.isascii() and _plain_domain(domain.lower()):
        return value.lower(), None
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        return None, f"is not a valid email address: {exc}"
    return checked.normalized.lower(), None


@functools.lru_cache(maxsize=1024)
def _plain_domain(domain: str) -> bool:
    """Whether email_validator accepts an address at this lower-case ASCII domain and keeps the domain as it
    is: then every length it checks is the input's. Punycode (xn--) domains, which it turns into Unicode,
    and invalid ones answer False and take the full check."""
    try:
        return validate_email(f"user@{domain}", check_deliverability=False).domain == domain
    except EmailNotValidError:
        return False


def check_phone(value: str) -> str | None:
    """Return a reason when the phone is not 7-15 digits with common separators."""
    digits = sum(ch.isdigit() for ch in value)
    if len(value) > 40 or not _PHONE.match(value) or not 7 <= digits <= 15:
        return (
            "must have 7 to 15 digits, with an optional leading + and spaces, dashes, dots or parentheses"
            " (40 characters at most)"
        )
    return None


@attrs.frozen
class ContactFields:
    """Validated name, email and phone, any of which may be UNSET in a partial update."""

    name: str = UNSET
    email: str = UNSET
    phone: str = UNSET

    def present(self) -> dict[str, str]:
        """The fields this body set."""
        return {k: v for k in ("name", "email", "phone") if (v := getattr(self, k)) is not UNSET}


def validate_contact(body: dict[str, Any], partial: bool) -> dict[str, str]:
    """Check a user body (all fields, or a non-empty subset when partial); return normalised values."""
    fields = _contact_fields(body)
    if partial and not fields:
        raise ValidationFailed({"body": "must set at least one of name, email, phone"})
    clean, errors = normalise_contact(fields)
    if not partial:
        errors.update({k: "is required" for k in ("name", "email", "phone") if k not in fields})
    if errors:
        raise ValidationFailed(errors)
    return clean


_CONTACT_KEYS = frozenset(("name", "email", "phone"))


def _contact_fields(body: dict[str, Any]) -> dict[str, str]:
    """The contact fields a body sets, checked like ContactFields; plain string fields skip cattrs (the
    common case, a fifth of a webhook's parse), anything else gets its per-field reasons from it."""
    if body.keys() <= _CONTACT_KEYS:
        try:
            return {key: _strict_str(value, str) for key, value in body.items()}
        except (TypeError, ValueError):
            pass
    return structure(body, ContactFields).present()


def normalise_contact(fields: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Check each present field on its own; return (normalised valid fields, reasons for the others)."""
    clean: dict[str, str] = {}
    errors: dict[str, str] = {}
    if "name" in fields:
        if reason := check_name(fields["name"]):
            errors["name"] = reason
        else:
            # Runs of spaces are one space: what a CRM that splits names into words (HubSpot) gives back.
            clean["name"] = " ".join(fields["name"].split())
    if "email" in fields:
        email, reason = normalise_email(fields["email"])
        if email is None:
            errors["email"] = reason or "is not valid"
        else:
            clean["email"] = email
    if "phone" in fields:
        if reason := check_phone(fields["phone"]):
            errors["phone"] = reason
        else:
            clean["phone"] = fields["phone"].strip()
    return clean, errors
