"""What the mock CRM offers tests of several crmsync replicas: webhooks spread over URLs, in-flight intervals."""

from __future__ import annotations

import asyncio
import json

import pytest

from mock_crm import keys
from mock_crm.config import ConfigError, MockConfig
from mock_crm.inflight import InFlight
from tests.mock_crm.conftest import MakeReceiver
from tests.mock_crm.helpers import ALICE, WEBHOOK_SECRET, MakeClient, bearer, eventually


async def test_webhooks_go_to_several_urls_in_turn_and_a_failed_delivery_is_retried_at_another(
    make_mock: MakeClient, make_receiver: MakeReceiver
) -> None:
    receivers = [await make_receiver() for _ in range(3)]
    urls = " ".join(receiver.url for receiver in receivers)
    client = await make_mock(webhook_url=urls, webhook_secret=WEBHOOK_SECRET, webhook_backoff=0.01)
    auth = await bearer(client)
    created = await (await client.post("/crm/users", json=ALICE, headers=auth)).json()
    for n in range(6):
        resp = await client.patch(f"/crm/users/{created['crm_id']}", json={"name": f"Alice {n}"}, headers=auth)
        assert resp.status == 200
    stats = client.app[keys.stats]
    await eventually(lambda: stats.webhooks_delivered == 6)
    assert [len(receiver.hits) for receiver in receivers] == [2, 2, 2]  # round robin, one turn per event
    assert stats.to_json()["webhook_attempts_by_url"] == {receiver.url: 2 for receiver in receivers}

    # The replica whose turn comes next fails the delivery: the retry goes to the next replica.
    turn = stats.webhooks_emitted % 3  # the next event's first URL
    receivers[turn].script = [503]
    before = [len(receiver.hits) for receiver in receivers]
    await client.patch(f"/crm/users/{created['crm_id']}", json={"name": "Alice failed over"}, headers=auth)
    await eventually(lambda: stats.webhooks_delivered == 7)
    gained = [len(receiver.hits) - was for receiver, was in zip(receivers, before, strict=True)]
    assert gained[turn] == 1 and gained[(turn + 1) % 3] == 1 and sum(gained) == 2
    retried = [json.loads(receivers[i].hits[-1][1])["event_id"] for i in (turn, (turn + 1) % 3)]
    assert retried[0] == retried[1]  # the same event, at another URL


async def test_the_intervals_of_requests_carrying_one_idempotency_key_are_recorded_and_overlaps_shown(
    make_mock: MakeClient,
) -> None:
    client = await make_mock()
    auth = await bearer(client)
    await client.put("/crm/_admin/faults", json={"latency_ms": 200}, headers=auth)
    one = {**auth, "Idempotency-Key": "key-overlapping"}
    # Two senders of one key at once (what two replicas must never do), then a batch with a key of its own.
    first, second = await asyncio.gather(
        client.post("/crm/users", json=ALICE, headers=one), client.post("/crm/users", json=ALICE, headers=one)
    )
    assert {first.status, second.status} == {201}
    item = {**ALICE, "email": "alice.batch@example.com", "idempotency_key": "key-alone"}
    assert (await client.post("/crm/users/batch", json={"items": [item]}, headers=auth)).status == 200
    body = await (await client.get("/crm/_admin/intervals", headers=auth)).json()
    assert (body["keys"], body["requests"]) == (2, 3)
    assert set(body["overlaps"]) == {"key-overlapping"}
    (start_a, end_a), (start_b, _) = body["overlaps"]["key-overlapping"]
    assert start_a <= start_b < end_a and end_a - start_a >= 0.2  # latency counts: it starts at arrival
    assert len(body["intervals"]["key-alone"]) == 1


def test_intervals_one_after_another_do_not_overlap_however_they_are_nested() -> None:
    record = InFlight()
    record.record("k", 0.0, 10.0)
    record.record("k", 10.0, 11.0)  # touching is not overlapping
    record.record("j", 0.0, 10.0)
    record.record("j", 2.0, 3.0)
    record.record("j", 4.0, 5.0)  # inside the first, though not the one before it
    assert set(record.overlaps()) == {"j"}


def test_webhook_urls_are_read_from_one_setting_separated_by_spaces() -> None:
    env = {"MOCK_CRM_CLIENT_SECRET": "s3cret", "MOCK_CRM_WEBHOOK_SECRET": WEBHOOK_SECRET,
           "MOCK_CRM_WEBHOOK_URL": " http://127.0.0.1:8080/webhook  http://127.0.0.1:8082/webhook "}  # fmt: skip
    config = MockConfig.from_env(env)
    assert config.webhook_urls == ("http://127.0.0.1:8080/webhook", "http://127.0.0.1:8082/webhook")
    with pytest.raises(ConfigError, match="MOCK_CRM_WEBHOOK_URL"):
        MockConfig.from_env({**env, "MOCK_CRM_WEBHOOK_URL": "http://127.0.0.1:8080/webhook ftp://elsewhere"})
