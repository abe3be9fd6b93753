"""The HubSpot fake's auth: the static token, the OAuth refresh-token grant, and 401s in HubSpot's error body."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.mock_crm.hubspot_helpers import (
    AUTH,
    CLIENT_ID,
    CLIENT_SECRET,
    CONTACTS,
    REFRESH_TOKEN,
    create,
    hubspot_error,
)

FORM = {"grant_type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN}  # fmt: skip


async def test_static_token_reads_and_writes(hubspot: TestClient) -> None:
    contact = await create(hubspot, 1)
    resp = await hubspot.get(f"{CONTACTS}/{contact['id']}", headers=AUTH)
    assert resp.status == 200


async def test_no_token_or_a_wrong_one_is_401_invalid_authentication(hubspot: TestClient) -> None:
    await hubspot_error(await hubspot.get(f"{CONTACTS}/1"), 401, "INVALID_AUTHENTICATION")
    wrong = {"Authorization": "Bearer not-the-token"}
    await hubspot_error(await hubspot.get(f"{CONTACTS}/1", headers=wrong), 401, "INVALID_AUTHENTICATION")
    await hubspot_error(await hubspot.get("/_fake/stats", headers=wrong), 401, "INVALID_AUTHENTICATION")


async def test_refresh_grant_gives_a_30_minute_access_token_that_works(hubspot: TestClient) -> None:
    resp = await hubspot.post("/oauth/v1/token", data=FORM)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["expires_in"] == 1800 and body["token_type"] == "bearer"
    assert body["refresh_token"] == REFRESH_TOKEN and body["access_token"]
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    resp = await hubspot.post(CONTACTS, json={"properties": {"email": "oauth@example.com"}}, headers=headers)
    assert resp.status == 201, await resp.text()


async def test_refresh_grant_refusals_name_the_reason(hubspot: TestClient) -> None:
    cases = {
        "BAD_REFRESH_TOKEN": {**FORM, "refresh_token": "stolen"},
        "BAD_CLIENT_SECRET": {**FORM, "client_secret": "guess"},
        "BAD_CLIENT_ID": {**FORM, "client_id": "other-app"},
        "BAD_GRANT_TYPE": {**FORM, "grant_type": "client_credentials"},
    }
    for reason, form in cases.items():
        resp = await hubspot.post("/oauth/v1/token", data=form)
        assert resp.status == 400, reason
        body = await resp.json()
        assert body["status"] == reason and body["message"] and body["correlationId"]


async def test_expired_access_token_is_401_expired_authentication_and_a_refresh_recovers(hubspot: TestClient) -> None:
    token = (await (await hubspot.post("/oauth/v1/token", data=FORM)).json())["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    resp = await hubspot.post("/_fake/tokens/expire", headers=AUTH)
    assert (await resp.json())["expired"] == 1
    await hubspot_error(await hubspot.get(f"{CONTACTS}/1", headers=headers), 401, "EXPIRED_AUTHENTICATION")
    fresh = (await (await hubspot.post("/oauth/v1/token", data=FORM)).json())["access_token"]
    resp = await hubspot.get(f"{CONTACTS}/1", headers={"Authorization": f"Bearer {fresh}"})
    assert resp.status == 404  # authenticated; there is simply no contact 1


async def test_refresh_grant_is_off_without_a_client_secret(make_hubspot) -> None:  # type: ignore[no-untyped-def]
    client = await make_hubspot(client_secret="")
    resp = await client.post("/oauth/v1/token", data=FORM)
    assert resp.status == 400 and (await resp.json())["status"] == "BAD_CLIENT_ID"
