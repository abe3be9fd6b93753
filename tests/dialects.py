"""The product against either CRM: the mock CRM or the HubSpot fake, each served over real HTTP with webhooks
reaching a running backend. A test asks the driver to act as a person in the CRM, to read what the CRM holds
and to inject faults, in our own field names, so that one test body proves both dialects."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import attrs
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from crmsync.app import create_app
from crmsync.config import Config, HubSpotSettings
from crmsync.crm.hubspot.names import join_name, split_name
from mock_crm import keys as mock_keys
from mock_crm.app import create_app as create_mock_app
from mock_crm.config import MockConfig
from mock_crm.hubspot import keys as hubspot_keys
from mock_crm.hubspot.app import create_app as create_hubspot_app

from .conftest import CLIENT_ID, CLIENT_SECRET, JOHN, JWT_SECRET, WEBHOOK_SECRET, crm_call, sign_up, wait_status
from .mock_crm.hubspot_helpers import APP_SECRET, AUTH, REFRESH_TOKEN, STATIC_TOKEN, hubspot_config
from .mock_crm.hubspot_helpers import CLIENT_ID as CLIENT_ID_HS
from .mock_crm.hubspot_helpers import CLIENT_SECRET as CLIENT_SECRET_HS

DIALECTS = ("mock", "hubspot")


@attrs.define
class Driver:
    """One CRM dialect, running, and the backend it feeds."""

    dialect: str
    crm: TestServer
    backend: TestClient
    auth: dict[str, str]

    @property
    def app(self) -> web.Application:
        return self.crm.app

    async def _call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        if self.dialect == "mock":
            return await crm_call(self.crm, method, path, **kwargs)
        async with (
            aiohttp.ClientSession(base_url=self.crm.make_url("/")) as session,
            session.request(method, path, headers=AUTH, **kwargs) as resp,
        ):
            return resp.status, await resp.json(content_type=None)

    async def create_as_person(self, **fields: str) -> str:
        """A person adds a contact in the CRM (a webhook follows); its crm_id."""
        if self.dialect == "mock":
            status, body = await self._call("POST", "/crm/_admin/users", json=fields)
            assert status == 201, body
            return str(body["crm_id"])
        status, body = await self._call("POST", "/_fake/contacts", json={"properties": _properties(fields)})
        assert status == 201, body
        return str(body["id"])

    async def edit_as_person(self, crm_id: str, **fields: str) -> None:
        """A person edits the contact in the CRM (a webhook follows)."""
        if self.dialect == "mock":
            status, body = await self._call("POST", f"/crm/_admin/users/{crm_id}/edit", json=fields)
        else:
            status, body = await self._call(
                "PATCH", f"/_fake/contacts/{crm_id}", json={"properties": _properties(fields)}
            )
        assert status == 200, body

    def edit_silently(self, crm_id: str, **fields: str) -> None:
        """Change the contact in the CRM's store without any webhook (one that was lost, say)."""
        if self.dialect == "mock":
            self.app[mock_keys.store].update_user(crm_id, fields)
        else:
            self.app[hubspot_keys.store].update("contacts", crm_id, _properties(fields))

    def lose_silently(self, crm_id: str) -> None:
        """The CRM loses the contact without telling anyone (a restore from an old backup, say)."""
        if self.dialect == "mock":
            self.app[mock_keys.store].delete_user(crm_id)
        else:
            self.app[hubspot_keys.store].archive("contacts", crm_id)

    async def set_rate_limit(self, per_second: int) -> None:
        """The CRM allows this many requests a second (the mock's token bucket, HubSpot's rolling window)."""
        if self.dialect == "mock":
            await self.set_faults(rate_limit=per_second, rate_burst=per_second)
        else:
            await self.set_faults(rate_max=per_second, rate_interval_ms=1000)

    async def stats(self) -> dict[str, Any]:
        """The CRM's counters (rate_limited, injected failures, lost replies, ...)."""
        status, body = await self._call("GET", "/crm/_admin/stats" if self.dialect == "mock" else "/_fake/stats")
        assert status == 200, body
        return dict(body)

    async def delete_as_person(self, crm_id: str) -> None:
        """A person deletes the contact in the CRM (a webhook follows)."""
        path = f"/crm/_admin/users/{crm_id}" if self.dialect == "mock" else f"/_fake/contacts/{crm_id}"
        status, body = await self._call("DELETE", path)
        assert status == 204, body

    async def set_faults(self, **faults: Any) -> None:
        """failure_rate, lost_reply_rate, latency_ms, fail_next (the names both fakes share)."""
        path = "/crm/_admin/faults" if self.dialect == "mock" else "/_fake/faults"
        status, body = await self._call("PUT", path, json=faults)
        assert status == 200, body

    def records(self) -> dict[str, dict[str, str]]:
        """Every live contact the CRM holds, by crm_id, in our field names."""
        if self.dialect == "mock":
            return {
                crm_id: {"name": user.name, "email": user.email, "phone": user.phone}
                for crm_id, user in self.app[mock_keys.store].users.items()
            }
        found = {}
        for crm_id, record in self.app[hubspot_keys.store].contacts.items():
            props = record.properties
            fields = {"name": join_name(props.get("firstname"), props.get("lastname"))}
            fields.update({f: v for f in ("email", "phone") if (v := props.get(f))})
            found[crm_id] = fields
        return found

    def meeting_contacts(self) -> dict[str, set[str]]:
        """Every meeting the CRM holds, by id, with the crm_ids of its contacts."""
        if self.dialect == "mock":
            return {mid: set(m.contact_ids) for mid, m in self.app[mock_keys.store].meetings.items()}
        return {mid: set(m.associations) for mid, m in self.app[hubspot_keys.store].meetings.items()}

    def meeting_titles(self) -> dict[str, str]:
        """Every meeting's title, by id."""
        if self.dialect == "mock":
            return {mid: m.title for mid, m in self.app[mock_keys.store].meetings.items()}
        return {
            mid: str(m.properties.get("hs_meeting_title")) for mid, m in self.app[hubspot_keys.store].meetings.items()
        }


def _properties(fields: dict[str, str]) -> dict[str, str]:
    props = {f: v for f, v in fields.items() if f in ("email", "phone")}
    if "name" in fields:
        props["firstname"], props["lastname"] = split_name(fields["name"])
    return props


def backend_config(dialect: str, crm: TestServer, database_url: str, oauth: bool = False) -> Config:
    """A backend Config for the dialect's CRM, tuned for tests (short backoffs, no timers); for HubSpot a static
    token, or with oauth the refresh-token grant."""
    url = str(crm.make_url("")).rstrip("/")
    hubspot = None
    if dialect == "hubspot":
        app_id = crm.app[hubspot_keys.config].app_id
        if oauth:
            hubspot = HubSpotSettings(url=url, client_id=CLIENT_ID_HS, client_secret=CLIENT_SECRET_HS,
                                      refresh_token=REFRESH_TOKEN, app_secrets=(APP_SECRET,), app_id=app_id)  # fmt: skip
        else:
            hubspot = HubSpotSettings(url=url, token=STATIC_TOKEN, app_secrets=(APP_SECRET,), app_id=app_id)
    return Config(
        crm_client_secret=CLIENT_SECRET,
        jwt_secret=JWT_SECRET,
        webhook_secrets=(WEBHOOK_SECRET,),
        database_url=database_url,
        crm=dialect,
        hubspot=hubspot,
        crm_url=url,
        crm_client_id=CLIENT_ID,
        workers=4,
        crm_backoff=0.01,
        job_backoff=(0.2,) * 5,
        reconcile_interval=0,
        shutdown_timeout=2.0,
    )


async def start(
    dialect: str,
    database_url: str,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    port: int,
    oauth: bool = False,
    **overrides: Any,
) -> Driver:
    """Start the dialect's CRM, delivering webhooks to a backend on `port`, and the backend with its workers."""
    if dialect == "mock":
        mock = MockConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, seed=7,
                          webhook_url=f"http://127.0.0.1:{port}/webhook", webhook_secret=WEBHOOK_SECRET,
                          webhook_backoff=0.05)  # fmt: skip
        crm = await aiohttp_server(create_mock_app(mock))
    else:
        fake = hubspot_config(webhook_url=f"http://127.0.0.1:{port}/webhook/hubspot", webhook_backoff=0.05)
        crm = await aiohttp_server(create_hubspot_app(fake))
    config = attrs.evolve(backend_config(dialect, crm, database_url, oauth), **overrides)
    backend = await aiohttp_client(create_app(config), server_kwargs={"port": port})
    return Driver(dialect, crm, backend, await sign_up(backend))


Start = Callable[..., Awaitable[Driver]]


def factory(
    dialect: str,
    new_database: Callable[[], Awaitable[str]],
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    ports: Callable[[], int],
) -> Start:
    """A fixture's builder: each call starts the dialect's CRM and a backend on a new database."""

    async def build(**overrides: Any) -> Driver:
        return await start(dialect, await new_database(), aiohttp_server, aiohttp_client, ports(), **overrides)

    return build


async def create_synced(crm: Driver, **fields: str) -> dict[str, Any]:
    """POST /users (John Smith, with any fields replaced) and wait until the user is synced."""
    resp = await crm.backend.post("/users", json={**JOHN, **fields}, headers=crm.auth)
    assert resp.status == 201, await resp.text()
    return await wait_status(crm.backend, crm.auth, (await resp.json())["id"], "synced")
