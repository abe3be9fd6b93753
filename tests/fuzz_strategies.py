"""Hostile HTTP input for property tests: JSON values, raw bodies, header values, path ids, and the checks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import attrs
from hypothesis import HealthCheck, currently_in_test_context, event, settings
from hypothesis import strategies as st

# Deterministic and bounded: the same examples on every run, no example database, no deadline (a
# request through a real server varies in time), and fixtures shared across examples on purpose.
FUZZ = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

BIG = 70 * 1024  # past both apps' 64 KiB body limit

ODD_STRINGS: tuple[str, ...] = (
    "", " ", "\t", "\n", "\x00", "a\x00b", "\x01", "\x7f", "\x85", "\ud800", "\udfff", "x\udc80y",
    "\u202e", "\u200b", "\u200d", "\ufeff", "\u2028", "\u2029", "e\u0301", "Z\u0335\u0336\u0337",
    "🙂", "🙂" * 60, "\U0001d54f\U0001d550", "مرحبا", "\u202eevil\u202c", "١٢٣٤٥٦٧٨",
    "\uff11\uff12\uff13\uff14\uff15\uff16\uff17", "x" * 201, "x" * 5000,
    "NaN", "null", "true", "0", "-1", "1e309", "[]", "{}", "<script>", "'; DROP TABLE users;--", "%00",
    "../../etc/passwd", "${jndi:ldap://x}", "\\", '"', "  padded  ",
    "a@b.c", "@", "@@", "a@", "@b.com", "x@example.com", "X@EXAMPLE.COM", "a@b@c.com", "用户@例子.广告",
    "+1 (555) 010-2000", "1234567", "+" + "9" * 16, "1" + " " * 45 + "234567", "1234567\n", "(((((((1234567",
    "2026-11-21T18:42:37.123456Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-13-45T99:99:99Z",
)  # fmt: skip

_odd_chars = st.characters(categories=("Cc", "Cf", "Cs", "Co", "Zl", "Zp", "Zs", "Mn", "Nd", "So"))
odd_text = st.one_of(
    st.sampled_from(ODD_STRINGS),
    st.text(max_size=30),
    st.text(st.one_of(_odd_chars, st.characters(codec="utf-8")), max_size=30),
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**31, 2**63, -(2**63) - 1, 2**64, 10**30, -(10**300)]),
    st.floats(),  # nan and ±inf included: json.dumps writes them as NaN/Infinity
    odd_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(odd_text, inner, max_size=4)),
    max_leaves=12,
)

DEEP: tuple[bytes, ...] = (b"[" * 10_000, b'{"a":' * 5_000)  # past Python's recursion limit
RAW_BODIES: tuple[bytes, ...] = (
    b"", b" ", b"null", b"true", b"0", b'"text"', b"[]", b"[1,2]", b"{", b"}", b"{}}", b"{'a': 1}",
    *DEEP, b"{" * 10_000, b"[" * 900 + b"]" * 900,
    b"\xff\xfe\xfd", b'{"name": "\xc3\x28"}', b'{"name": "\xed\xa0\x80"}', b"\xef\xbb\xbf{}",
    b'{"name": "\\ud800"}', b'{"name": "\\udc00\\ud800"}', b'{"name": "\\u0000"}', b"\x00", b'{"a": 1}\x00',
    b'{"a": 1} {"b": 2}', b"NaN", b"-Infinity", b"1e999999", b"9" * 5_000, b'{"limit": 1e999999}',
    b'{"name": "a", "name": "b"}', b'{"email": 1, "email": 2}', b'{"": 1, "": 2}',
    '{"name": "x"}'.encode("utf-16"), '{"name": "x"}'.encode("utf-32"),
    b"name=a&email=b", b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--x--\r\n",
    b"x" * BIG, b'{"name": "' + b"x" * BIG + b'"}', b"[" + b"1," * (BIG // 2) + b"1]",
)  # fmt: skip


def dump(value: Any, ensure_ascii: bool = True) -> bytes:
    """Serialise any JSON value; lone surrogates become \\ud800 escapes or (non-ASCII mode) raw CESU bytes."""
    return json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


def duplicate_keys(body: Mapping[str, Any], extra: Any) -> bytes:
    """An object whose first key appears twice (Python's json would silently keep the last)."""
    pairs = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in body.items()]
    key = next(iter(body), "name")
    pairs.append(f"{json.dumps(key)}: {json.dumps(extra)}")
    return ("{" + ", ".join(pairs) + "}").encode("utf-8", "surrogatepass")


def objects(fields: Mapping[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with some of the right keys (right or wrong values), and sometimes extra keys."""
    known = st.fixed_dictionaries({}, optional={k: st.one_of(v, json_values) for k, v in fields.items()})
    extra = st.dictionaries(odd_text, json_values, max_size=2)
    return st.builds(lambda a, b: {**b, **a}, known, st.one_of(st.just({}), extra))


@st.composite
def near(
    draw: st.DrawFn, valid: st.SearchStrategy[dict[str, Any]], fields: Mapping[str, st.SearchStrategy[Any]]
) -> dict[str, Any]:
    """A valid object as is, or with one field replaced or dropped, or one key added: deep-reaching input."""
    body = dict(draw(valid))
    how = draw(st.sampled_from(["as-is", "replace", "replace", "drop", "extra"]))
    if how == "replace":
        key = draw(st.sampled_from(sorted(fields)))
        body[key] = draw(st.one_of(fields[key], json_values))
    elif how == "drop" and body:
        del body[draw(st.sampled_from(sorted(body)))]
    elif how == "extra":
        body[draw(odd_text)] = draw(json_values)
    return body


def bodies(shaped: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    """Request bodies: shaped objects (mostly), any JSON value, duplicate keys, hostile raw bytes, noise."""
    return st.one_of(
        st.builds(dump, shaped, st.booleans()),
        st.builds(dump, shaped, st.booleans()),
        st.builds(dump, shaped, st.booleans()),
        st.builds(dump, json_values, st.booleans()),
        st.builds(duplicate_keys, shaped, json_values),
        st.sampled_from(RAW_BODIES),
        st.binary(max_size=64),
    )


CONTENT_TYPES = (
    "application/json", "application/json; charset=utf-8", "application/json; charset=latin-1",
    "application/json; charset=utf-16", "text/plain", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", "application/xml", "*/*", "", "application/json; foo=\"unclosed",
)  # fmt: skip
# Header text the HTTP client can send (no CR/LF/NUL and no other control characters, which the
# server's parser rejects with a plain-text 400 before any application code runs).
header_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=40)
content_types = st.one_of(st.sampled_from(CONTENT_TYPES), header_text)
idempotency_keys = st.one_of(header_text, st.sampled_from(["", " ", "k" * 256, "k" * 4000, "🙂" * 100, "ключ"]))


def headers(content_type: str | None, idempotency_key: str | None = None) -> dict[str, str]:
    """A header dict without the entries that are None."""
    out = {"Content-Type": content_type, "Idempotency-Key": idempotency_key}
    return {k: v for k, v in out.items() if v is not None}


ODD_IDS = ("", ".", "..", "%", "%00", "%2F", "%FF", " ", "\x00", "null", "0", "-1", "x" * 4000, "🙂", "\ud800",
           "00000000-0000-0000-0000-000000000000", "batch", "_admin")  # fmt: skip
ids = st.one_of(st.sampled_from(ODD_IDS), st.text(max_size=40), st.text(_odd_chars, max_size=10))


def quote_id(raw: str) -> str:
    """Percent-encode an id for a path segment (lone surrogates as their surrogatepass bytes)."""
    return quote(raw.encode("utf-8", "surrogatepass"), safe="")


def query_string(pairs: Sequence[tuple[str, str]]) -> str:
    """Percent-encode query pairs byte for byte (lone surrogates included)."""
    return "&".join(f"{quote_id(k)}={quote_id(v)}" for k, v in pairs)


def fits_request_line(pairs: Sequence[tuple[str, str]]) -> bool:
    """Past aiohttp's 8190-byte request line the parser answers in plain text, before the app sees it."""
    return len(query_string(pairs)) < 7000


@attrs.frozen
class Answer:
    """A response as the checks see it."""

    status: int
    content_type: str
    text: str

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.text)


async def answer(resp: Any) -> Answer:
    """Read an aiohttp client response."""
    return Answer(resp.status, resp.content_type, (await resp.read()).decode("utf-8", "replace"))


def check_answer(ans: Answer, request: object) -> Any:
    """A 2xx, or a 4xx with a JSON {"error", "message"} body; never a 5xx or a traceback. Returns the JSON."""
    if currently_in_test_context():
        event(f"status {ans.status}")  # shown by pytest --hypothesis-show-statistics
    assert ans.status < 500, (request, ans)
    assert "Traceback" not in ans.text, (request, ans)
    if ans.status == 204:
        return None
    assert ans.content_type == "application/json", (request, ans)
    body = ans.json()
    if ans.status >= 400:
        assert isinstance(body, dict), (request, ans)
        assert isinstance(body.get("error"), str) and body["error"], (request, ans)
        assert isinstance(body.get("message"), str) and body["message"], (request, ans)
    return body


def tracebacks(records: Sequence[logging.LogRecord]) -> list[str]:
    """Log lines that carry a traceback or report an unhandled error."""
    return [
        f"{r.name}: {r.getMessage()}"
        for r in records
        if r.exc_info or r.getMessage() in ("unhandled_error", "job_crashed", "Error handling request")
    ]


def sign_raw(secret: str, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Standard Webhooks headers for any body bytes (the standardwebhooks package only signs text)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    stamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode("utf-8", "surrogatepass") + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
        "Content-Type": "application/json",
    }


# Header bytes HTTP allows (visible ASCII, space, tab, obs-text 0x80-0xFF), which a str-based client
# cannot always send: a lone 0xFF byte is not UTF-8.
raw_header_values = st.one_of(
    st.binary(max_size=40).map(lambda b: bytes(c for c in b if c >= 0x80 or 0x20 <= c < 0x7F or c == 0x09)),
    st.sampled_from([b"\xff", b"Bearer \xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"Bearer " + b"\x80" * 300]),
)


async def raw_request(
    host: str, port: int, method: str, target: bytes, header_lines: Sequence[tuple[bytes, bytes]], body: bytes = b""
) -> Answer:
    """Send one HTTP/1.1 request byte for byte over a fresh connection and read the whole answer."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        head = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: " + host.encode(), b"Connection: close"]
        head += [name + b": " + value for name, value in header_lines]
        head.append(b"Content-Length: " + str(len(body)).encode())
        writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
        await writer.wait_closed()
    head_bytes, _, payload = data.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    content_type = fields.get("content-type", "").split(";")[0].strip()
    return Answer(status, content_type, payload.decode("utf-8", "replace"))
