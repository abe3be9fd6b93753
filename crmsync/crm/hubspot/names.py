"""Our one `name` field against HubSpot's `firstname` and `lastname` properties."""

from __future__ import annotations


def split_name(name: str) -> tuple[str, str]:
    """Our name as HubSpot's (firstname, lastname).

    The rule: surrounding whitespace goes and every run of whitespace (any Unicode space) counts as one
    space; the first word is the first name and everything after it, as written, is the last name.
    "Ada" is ("Ada", ""); "Mary Ann  Smith" is ("Mary", "Ann Smith"); "Gabriel García Márquez" is
    ("Gabriel", "García Márquez"); "Ludwig van Beethoven" is ("Ludwig", "van Beethoven"). Scripts
    without spaces between the parts of a name ("毛泽东") cannot be split safely, so the whole name is the
    first name. join_name(*split_name(n)) gives n back with its whitespace normalised; a first name of
    several words coming from HubSpot ("Mary Ann", "Smith") joins to a name that splits differently, which
    is why the adapter only sends these properties when our name itself changed.
    """
    first, _, last = " ".join(name.split()).partition(" ")
    return first, last


def join_name(firstname: str | None, lastname: str | None) -> str:
    """HubSpot's firstname and lastname as our one name: each trimmed, joined by one space, empty ones left out."""
    parts = (" ".join((part or "").split()) for part in (firstname, lastname))
    return " ".join(part for part in parts if part)
