"""The backend's OpenAPI document: served as kept, valid, route for route, and honoured by the app."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import itertools
import json
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import jsonschema
import requests
import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core import NOT_SET
from schemathesis.errors import FailureGroup

from crmsync.api.pages import OPENAPI
from crmsync.app import create_app
from crmsync.config import Config
from tests.conftest import JWT_SECRET, WEBHOOK_SECRET, set_faults, sign_up, wait_status

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
)
# The WebSocket, the HTML page and static files are described but not fuzzed.
NOT_FUZZED = ("GET /events", "GET /", "GET /static/{path}")
EXAMPLES = 25  # per operation and generation mode


def load(path: Path) -> dict[str, Any]:
    """The document kept in the repository."""
    return json.loads(path.read_text(encoding="utf-8"))


def _template(path: str) -> str:
    """'/users/{user_id:[0-9a-f-]+}' -> '/users/{user_id}'."""
    return re.sub(r"\{([^{}:]+)(?::[^{}]*)?\}", r"{\1}", path)


def app_routes(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, path template) of every route the app registers, as an OpenAPI document names it.

    aiohttp adds a HEAD route beside every GET; those are left out. A static route is a path prefix
    and is named "<prefix>/{path}".
    """
    routes = list(app.router.routes())
    with_get = {id(route.resource) for route in routes if route.method == "GET"}
    found = set()
    for route in routes:
        resource = route.resource
        assert resource is not None, f"a route without a resource: {route!r}"
        if route.method == "HEAD" and id(resource) in with_get:
            continue
        path = resource.canonical
        if isinstance(resource, web.StaticResource):
            path = path.rstrip("/") + "/{path}"
        found.add((route.method, _template(path)))
    return found


def document_routes(document: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path template) of every operation in an OpenAPI document."""
    return {
        (method.upper(), _template(path))
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def route_diff(served: set[tuple[str, str]], documented: set[tuple[str, str]]) -> str:
    """Say which routes only one side has."""

    def show(routes: Iterable[tuple[str, str]]) -> str:
        return "".join(f"\n  {method} {path}" for method, path in sorted(routes, key=lambda r: (r[1], r[0])))

    return (
        f"served but not documented:{show(served - documented) or ' none'}\n"
        f"documented but not served:{show(documented - served) or ' none'}"
    )


def operations(document: Mapping[str, Any]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path, operation) for each operation in a document."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, operation


def lint(document: Mapping[str, Any], secured_status: str = "401") -> list[str]:
    """House rules beyond the OpenAPI schema: ids, summaries, and the errors every operation can give."""
    problems = []
    ids = [op.get("operationId") for _, _, op in operations(document)]
    problems += [f"operationId {i!r} is used twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
    for method, path, op in operations(document):
        where = f"{method} {path}"
        if not op.get("operationId") or not op.get("summary"):
            problems.append(f"{where}: needs an operationId and a summary")
        secured = op.get("security", document.get("security", [])) not in ([], [{}])
        if secured and secured_status not in op["responses"]:
            problems.append(f"{where}: needs a token but does not document {secured_status}")
        if "requestBody" in op and not {"400", "422"} & set(op["responses"]):
            problems.append(f"{where}: takes a body but documents no 400 or 422")
    return problems


# --- the document itself ----------------------------------------------------------------------


def test_document_is_valid_openapi_3_1() -> None:
    document = load(OPENAPI)
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises with the first problem found
    assert lint(document) == []


def _app(tmp_path: Path) -> web.Application:
    """The backend as built, not started (the factory does no I/O)."""
    config = Config(
        crm_client_secret="unused", jwt_secret=JWT_SECRET, webhook_secrets=(WEBHOOK_SECRET,),
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
    )  # fmt: skip
    return create_app(config)


def test_document_lists_exactly_the_routes_the_app_serves(tmp_path: Path) -> None:
    served, documented = app_routes(_app(tmp_path)), document_routes(load(OPENAPI))
    assert served == documented, route_diff(served, documented)


def test_public_operations_are_the_ones_without_a_token(tmp_path: Path) -> None:
    public = set()
    for route in _app(tmp_path).router.routes():
        resource = route.resource
        assert resource is not None
        if isinstance(resource, web.StaticResource):
            public.add(_template(resource.canonical.rstrip("/") + "/{path}"))
        elif getattr(route.handler, "__crmsync_public__", False):
            public.add(_template(resource.canonical))
    document = load(OPENAPI)
    documented = {path for _, path, op in operations(document) if op.get("security") == []}
    assert documented == public, (
        f"public in the document only: {documented - public}; in the app only: {public - documented}"
    )


async def test_served_document_is_the_file(backend: TestClient) -> None:
    resp = await backend.get("/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert await resp.read() == OPENAPI.read_bytes()


# --- schemathesis: every operation, positive and negative data ---------------------------------


@attrs.frozen
class Finding:
    """One distinct contract breach: the first failing request per operation, check and status."""

    operation: str
    mode: str
    report: str


# Turns a generated case into the exact body to send and the headers that sign it.
Signer = Callable[[Any], tuple[bytes, dict[str, str]]]


def fuzz(
    document: dict[str, Any],
    base_url: str,
    headers: Mapping[str, str],
    *,
    exclude: tuple[str, ...] = (),  # operation labels, "METHOD /path"
    path_parameters: Mapping[str, str] | None = None,
    signers: Mapping[str, Signer] | None = None,  # by operation label
    examples: int = EXAMPLES,
) -> tuple[list[Finding], Counter[str]]:
    """Send schemathesis-generated requests to every operation; return the findings and requests per operation.

    Runs synchronously (schemathesis calls through `requests`): call it in a worker thread while the
    event loop serves the app. Each operation gets `examples` positive and `examples` negative cases,
    derandomized, so a run is repeatable. An operation is run once more with the path parameters named
    in `path_parameters` fixed, so it also reaches a record that exists, and once more signed when
    `signers` has a signer for it.
    """
    schema = schemathesis.openapi.from_dict(copy.deepcopy(document), config=schemathesis.Config())
    for label in exclude:
        schema = schema.exclude(name=label)
    findings: dict[tuple[str, str, int | None], Finding] = {}
    counter: Counter[str] = Counter()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            variants: list[tuple[dict[str, str], Signer | None]] = [({}, None)]
            fixed = {k: v for k, v in (path_parameters or {}).items() if f"{{{k}}}" in operation.path}
            # Deleting the seeded record would leave the operations after it only 404s.
            if fixed and operation.method.upper() != "DELETE":
                variants.append((fixed, None))
            if signer := (signers or {}).get(operation.label):
                variants.append(({}, signer))
            for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
                for params, signer in variants:
                    strategy = operation.as_strategy(generation_mode=mode, path_parameters=params or None)
                    label = f"{mode} data" + (", signed" if signer else "") + (", existing record" if params else "")
                    send = _sender(session, base_url, headers, signer, label, findings, counter)
                    test = settings(
                        max_examples=examples, derandomize=True, database=None, deadline=None,
                        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                    )(given(case=strategy)(send))  # fmt: skip
                    try:
                        test()
                    except Unsatisfiable:
                        # Nothing to make invalid: no parameters and no body (e.g. GET /healthz).
                        assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label
    return list(findings.values()), counter


def _sender(
    session: requests.Session,
    base_url: str,
    headers: Mapping[str, str],
    signer: Signer | None,
    label: str,
    findings: dict[tuple[str, str, int | None], Finding],
    counter: Counter[str],
) -> Callable[[Any], None]:
    """The body of one Hypothesis test: send the case, keep the first failure of each kind."""

    def send(case: Any) -> None:
        counter[case.operation.label] += 1
        sent_headers, body = dict(headers), {}
        if signer is not None:
            raw, signature = signer(case)
            sent_headers.update(signature)
            body = {"data": raw}
        try:
            case.call_and_validate(
                base_url=base_url, session=session, headers=sent_headers, checks=list(CHECKS), timeout=15, **body
            )
        except FailureGroup as group:
            for failure in group.exceptions:
                key = (case.operation.label, failure.title, getattr(failure, "status_code", None))
                findings.setdefault(key, Finding(case.operation.label, label, str(group)))

    return send


def report(findings: list[Finding]) -> str:
    """All findings, each with schemathesis's reproduction."""
    return f"{len(findings)} contract breach(es):\n\n" + "\n\n".join(
        f"=== {f.operation} ({f.mode})\n{f.report}" for f in findings
    )


async def _seed(backend: TestClient, auth: dict[str, str]) -> dict[str, str]:
    """A synced contact and a meeting, so the {id} operations and webhooks reach their success paths too."""
    contact = {"name": "Fuzz Target", "email": "fuzz.target@example.com", "phone": "+1 555 010 9999"}
    resp = await backend.post("/users", json=contact, headers=auth)
    assert resp.status == 201, await resp.text()
    user = await wait_status(backend, auth, (await resp.json())["id"], "synced")
    meeting = {"title": "Fuzz meeting", "starts_at": "2030-01-01T10:00:00Z", "attendee_ids": [user["id"]]}
    resp = await backend.post("/meetings", json=meeting, headers=auth)
    assert resp.status == 201, await resp.text()
    return {"user_id": user["id"], "meeting_id": (await resp.json())["id"], "crm_id": user["crm_id"]}


def webhook_signer(crm_id: str) -> Signer:
    """Sign each generated webhook body as the CRM would; every other one names a contact that exists."""
    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    count = itertools.count()

    def sign(case: Any) -> tuple[bytes, dict[str, str]]:
        n = next(count)
        body = None if case.body is NOT_SET else case.body
        if isinstance(body, dict) and isinstance(body.get("crm_id"), str) and n % 2:
            body = {**body, "crm_id": crm_id}
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()  # negative cases may be any bytes
        event_id = body.get("event_id") if isinstance(body, dict) else None
        usable = isinstance(event_id, str) and event_id.isascii() and event_id.isprintable()
        msg_id = event_id if usable and event_id == event_id.strip() and 0 < len(event_id) <= 256 else f"evt_fuzz_{n}"
        stamp = str(int(time.time()))
        # Standard Webhooks: v1, base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"
        mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + raw, hashlib.sha256).digest()
        return raw, {
            "webhook-id": msg_id,
            "webhook-timestamp": stamp,
            "webhook-signature": "v1," + base64.b64encode(mac).decode(),
            "Content-Type": "application/json",
        }

    return sign


async def test_schemathesis_finds_no_server_error_and_no_contract_breach(backend: TestClient) -> None:
    auth = await sign_up(backend, "fuzzer@example.com")
    ids = await _seed(backend, auth)
    base_url = str(backend.make_url("")).rstrip("/")
    document = load(OPENAPI)
    findings, sent = await asyncio.to_thread(
        fuzz, document, base_url, auth, exclude=NOT_FUZZED, path_parameters=ids,
        signers={"POST /webhook": webhook_signer(ids["crm_id"])},
    )  # fmt: skip
    assert not findings, report(findings)
    assert set(sent) == {f"{m} {p}" for m, p in document_routes(document)} - set(NOT_FUZZED)


# --- documented answers that the fuzzing above cannot provoke ----------------------------------


def assert_documented(document: Mapping[str, Any], method: str, path: str, status: int, body: Any) -> None:
    """The status is documented for the operation and the JSON body matches its schema."""
    responses = document["paths"][path][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {path} does not document {status}"
    response = responses[str(status)]
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    # The response schema's $refs point into the document, so validate with the components beside it.
    schema = {**response["content"]["application/json"]["schema"], "components": document["components"]}
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    validator.validate(body)


async def test_documented_errors_of_a_failing_crm_and_an_oversized_body(
    backend: TestClient, crm: TestServer, auth: dict[str, str]
) -> None:
    document = load(OPENAPI)
    resp = await backend.post("/users", data=b'{"name": "' + b"x" * 70_000 + b'"}', headers=auth)
    assert resp.status == 413
    assert_documented(document, "POST", "/users", 413, await resp.json())

    contact = {"name": "Ada", "email": "ada@example.com", "phone": "+44 20 7946 0001"}
    resp = await backend.post("/users", json=contact, headers=auth)
    user = await wait_status(backend, auth, (await resp.json())["id"], "synced")
    await set_faults(crm, failure_rate=1)
    resp = await backend.post(f"/users/{user['id']}/reconcile", headers=auth)
    assert resp.status == 503
    assert_documented(document, "POST", "/users/{user_id}/reconcile", 503, await resp.json())
    await set_faults(crm, failure_rate=0, fail_next=1, fail_status=400)
    resp = await backend.post(f"/users/{user['id']}/reconcile", headers=auth)
    assert resp.status == 502
    assert_documented(document, "POST", "/users/{user_id}/reconcile", 502, await resp.json())

    resp = await backend.put("/healthz")  # the document promises 405 with Allow, as an Error
    assert resp.status == 405 and resp.headers["Allow"]
    jsonschema.validate(await resp.json(), document["components"]["schemas"]["Error"])


async def test_readiness_reports_a_crm_that_cannot_be_reached(
    aiohttp_client: Callable[..., Awaitable[TestClient]], make_config: Callable[..., Config]
) -> None:
    client = await aiohttp_client(create_app(make_config(crm_url="http://127.0.0.1:9")))
    resp = await client.get("/readyz")
    assert resp.status == 200  # degraded: writes still go to the outbox (503 is for the database, test_disk_full)
    body = await resp.json()
    assert body["status"] == "degraded" and body["checks"]["crm"].startswith("failed: ")
    assert_documented(load(OPENAPI), "GET", "/readyz", 200, body)
