"""parse_json: the orjson fast path gives json's answer, and a key written twice is refused whichever way
it is written (the fast path keeps the last of duplicate keys silently, so it must never be the one to answer)."""

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.errors import BadRequest
from crmsync.validation import parse_json

KEYS = st.sampled_from(["name", "email", "phone", "n", "é", "a b", "crm_id", "x"])
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=12,
)


@given(VALUES)
@settings(max_examples=300, deadline=None)
def test_any_json_without_duplicates_parses_as_json_does(value: Any) -> None:
    for raw in (json.dumps(value), json.dumps(value, ensure_ascii=False), json.dumps(value, indent=1)):
        assert parse_json(raw.encode()) == json.loads(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "a", "name": "b"}',
        b'{"name":"a","email":"e","name":"a"}',
        b'{"name" : "a" ,\n "name"\t: "a"}',
        b'{"n\\u0061me": "a", "name": "b"}',  # the same key, written two ways
        b'{"user": {"id": 1, "id": 2}}',
        b'[{"x": 1}, {"x": 1, "x": 2}]',
        b'{"a": [1, 2, 3, 4, 5, {"k": 1, "k": 1}]}',
        '{"é": 1, "é": 2}'.encode(),
    ],
)
def test_a_key_written_twice_is_refused(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_json(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "name"}',  # a key's text again as a value: the exact path, still accepted
        b'{"a": {"name": 1}, "b": {"name": 2}}',  # the same key in two objects
        b'{"name": "\\"name\\""}',
    ],
)
def test_a_key_text_seen_twice_without_a_duplicate_is_accepted(raw: bytes) -> None:
    assert parse_json(raw) == json.loads(raw)


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff", b'{"a": 1} x', b"[" * 100_000])
def test_what_is_not_json_is_a_bad_request(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_json(raw)
