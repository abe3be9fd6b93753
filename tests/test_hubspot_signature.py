"""X-HubSpot-Signature-v3: the vector HubSpot's Python client publishes, and every way a request is refused."""

from __future__ import annotations

import time

import pytest

from crmsync.crm.hubspot.signature import sign_v3, verify_v3
from crmsync.signatures import SignatureError

# The v3 test vector of HubSpot/hubspot-api-python (tests/spec/utils/test_signature.py).
SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
BODY = b"{'example_field':'example_value'}"
URI = "https://www.example.com/webhook_uri"
STAMP = "15000000"
SIGNATURE = "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="
NOW_MS = 15_000_000.0  # the moment the vector was "sent"


def _headers(signature: str = SIGNATURE, stamp: str = STAMP) -> dict[str, str]:
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": stamp}


def test_the_published_vector_is_signed_and_verified() -> None:
    assert sign_v3(SECRET, "POST", URI, BODY, STAMP) == SIGNATURE
    verify_v3([SECRET], "POST", URI, BODY, _headers(), now_ms=NOW_MS)


def test_any_of_several_secrets_verifies_during_a_rotation() -> None:
    verify_v3(["new-secret-value", SECRET], "POST", URI, BODY, _headers(), now_ms=NOW_MS)


def test_a_stamp_just_inside_the_window_either_way_is_accepted() -> None:
    verify_v3([SECRET], "POST", URI, BODY, _headers(), now_ms=NOW_MS + 300_000)
    verify_v3([SECRET], "POST", URI, BODY, _headers(), now_ms=NOW_MS - 300_000)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"secrets": ["another-secret"]}, "no signature matches"),
        ({"method": "PUT"}, "no signature matches"),
        ({"uri": URI + "?x=1"}, "no signature matches"),
        ({"body": BODY + b" "}, "no signature matches"),
        ({"headers": _headers(signature=SIGNATURE[:-2] + "x=")}, "no signature matches"),
        ({"headers": _headers(stamp="15000001")}, "no signature matches"),  # the stamp is signed too
        ({"now_ms": NOW_MS + 300_001}, "more than 5 minutes"),  # too old: a replay
        ({"now_ms": NOW_MS - 300_001}, "more than 5 minutes"),  # from the future
        ({"headers": {"X-HubSpot-Request-Timestamp": STAMP}}, "missing"),
        ({"headers": {"X-HubSpot-Signature-v3": SIGNATURE}}, "missing"),
        ({"headers": _headers(stamp="15000000.5")}, "milliseconds"),
        ({"headers": _headers(stamp="9" * 400)}, "milliseconds"),  # int() of it would overflow float arithmetic
        ({"headers": _headers(stamp="9" * 5000)}, "milliseconds"),  # past int()'s digit limit
        ({"headers": _headers(stamp="-15000000")}, "milliseconds"),
        ({"headers": _headers(stamp="\uff11\uff15000000")}, "milliseconds"),  # full-width digits are not ASCII
        ({"headers": _headers(signature="sïgnature")}, "ASCII"),
        ({"secrets": []}, "no signature matches"),
    ],
)
def test_a_request_that_is_not_provably_hubspots_is_refused(change: dict[str, object], reason: str) -> None:
    call: dict[str, object] = {"secrets": [SECRET], "method": "POST", "uri": URI, "body": BODY,
                               "headers": _headers(), "now_ms": NOW_MS, **change}  # fmt: skip
    with pytest.raises(SignatureError, match=reason):
        verify_v3(**call)  # type: ignore[arg-type]


def test_the_method_is_compared_in_capitals() -> None:
    verify_v3([SECRET], "post", URI, BODY, _headers(), now_ms=NOW_MS)


def test_without_a_clock_given_the_current_time_is_used() -> None:
    stamp = str(int(time.time() * 1000))
    signature = sign_v3(SECRET, "POST", URI, BODY, stamp)
    verify_v3([SECRET], "POST", URI, BODY, _headers(signature, stamp))
    with pytest.raises(SignatureError, match="more than 5 minutes"):
        verify_v3([SECRET], "POST", URI, BODY, _headers(), now_ms=None)  # the vector's 1970 stamp is long past
