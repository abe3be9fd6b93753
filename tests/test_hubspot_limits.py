"""HubSpot's rate-limit headers as the pacer's RateLimit, and a 429's policyName as what to do about it."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from crmsync.crm import pacer as pacer_module
from crmsync.crm.hubspot.limits import Throttled, read_rate_limit, seconds_until_midnight, throttled
from crmsync.crm.pacer import Pacer
from crmsync.crm.types import RateLimit

HEADERS = {
    "X-HubSpot-RateLimit-Max": "190",
    "X-HubSpot-RateLimit-Remaining": "42",
    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
}
NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_the_ten_second_window_becomes_requests_per_second() -> None:
    assert read_rate_limit(HEADERS) == RateLimit(19.0, 42.0, 10.0, window=10.0)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-HubSpot-RateLimit-Max": "190"},
        {**HEADERS, "X-HubSpot-RateLimit-Max": "0"},
        {**HEADERS, "X-HubSpot-RateLimit-Max": "lots"},
        {**HEADERS, "X-HubSpot-RateLimit-Interval-Milliseconds": "-5"},
        {**HEADERS, "X-HubSpot-RateLimit-Max": "inf"},
        {**HEADERS, "X-HubSpot-RateLimit-Max": "nan"},
        {"X-RateLimit-Limit": "20"},  # the mock's header is not HubSpot's
    ],
)
def test_headers_that_name_no_usable_limit_are_ignored(headers: dict[str, str]) -> None:
    assert read_rate_limit(headers) is None


def test_a_missing_or_unreadable_remaining_still_gives_the_rate() -> None:
    headers = {**HEADERS, "X-HubSpot-RateLimit-Remaining": "many"}
    assert read_rate_limit(headers) == RateLimit(19.0, None, 10.0, window=10.0)


def test_the_pacer_paces_to_the_advertised_hubspot_rate() -> None:
    pacer = Pacer(read_rate_limit)
    pacer.observe(HEADERS)
    # 190 a rolling 10 s: 180 whole requests (95 %) evenly in each window, a hair apart.
    assert pacer.rate == pytest.approx(18.0, rel=0.002)


def test_a_daily_429_waits_until_midnight_in_the_accounts_zone() -> None:
    body = {"status": "error", "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT",
            "policyName": "DAILY"}  # fmt: skip
    assert throttled(body, {"Retry-After": "3"}, NOON, UTC) == Throttled(True, 12 * 3600.0, "DAILY")
    # 12:00 UTC is 08:00 in New York (EDT from 8 March 2026): 16 hours to go there.
    assert throttled(body, {}, NOON, ZoneInfo("America/New_York")).wait_seconds == 16 * 3600.0


def test_a_ten_secondly_429_is_waited_out_for_retry_after_or_else_one_interval() -> None:
    body = {"status": "error", "policyName": "TEN_SECONDLY_ROLLING"}
    assert throttled(body, {"Retry-After": "2"}, NOON, UTC) == Throttled(False, 2.0, "TEN_SECONDLY_ROLLING")
    assert throttled(body, HEADERS, NOON, UTC) == Throttled(False, 10.0, "TEN_SECONDLY_ROLLING")
    assert throttled(body, {}, NOON, UTC) == Throttled(False, 1.0, "TEN_SECONDLY_ROLLING")


@pytest.mark.parametrize("body", [None, "rate limited", [], {}, {"policyName": 7}, {"policyName": "SECONDLY"}])
def test_a_429_of_any_other_shape_is_a_rolling_wait(body: object) -> None:
    result = throttled(body, {}, NOON, UTC)
    assert not result.daily and result.wait_seconds == 1.0


@pytest.mark.parametrize(
    ("now", "zone", "seconds"),
    [
        (datetime(2026, 3, 10, 23, 59, 30, tzinfo=UTC), UTC, 30.0),
        (datetime(2026, 3, 10, 0, 0, tzinfo=UTC), UTC, 86400.0),
        # New York springs forward at 02:00 on 8 March 2026: that local day has 23 hours.
        (datetime(2026, 3, 8, 5, 0, tzinfo=UTC), ZoneInfo("America/New_York"), 23 * 3600.0),
        (datetime(2026, 3, 10, 12, 0, tzinfo=UTC), ZoneInfo("Asia/Tokyo"), 3 * 3600.0),
    ],
)
def test_seconds_until_midnight_count_real_seconds_across_dst(now: datetime, zone: ZoneInfo, seconds: float) -> None:
    assert seconds_until_midnight(now, zone) == seconds


@pytest.mark.parametrize(("most", "interval_ms"), [(5, 1000), (10, 1000), (100, 10_000), (190, 10_000), (3, 1000)])
@pytest.mark.parametrize("share", [1.0, 0.5])
def test_the_pacer_never_overfills_a_rolling_window(
    most: int, interval_ms: int, share: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All requests at once: the slots the pacer hands out put at most the window's share into any window."""
    monkeypatch.setattr(pacer_module.time, "monotonic", lambda: 1000.0)
    pacer = Pacer(read_rate_limit)
    pacer.observe({"X-HubSpot-RateLimit-Max": str(most), "X-HubSpot-RateLimit-Interval-Milliseconds": str(interval_ms)})
    pacer.share = share
    sends = sorted(1000.0 + pacer.reserve() for _ in range(400))
    window = interval_ms / 1000
    allowed = most * share
    for i, start in enumerate(sends):
        inside = bisect.bisect_left(sends, start + window) - i
        assert inside <= max(1, allowed), (start, inside)
