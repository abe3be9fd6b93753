"""The dashboard at GET /, driven in headless Chromium against the real backend and mock CRM.

Signing up and in, live updates and polling, the meeting progress indicator, failures; the page
fixture and the shared steps are in tests/browser.py. Each test saves a screenshot per state.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from .browser import PASSWORD, TIMEOUT_MS, add_contact, add_meeting, expect, fill_sign_up, open_signed_up, shot
from .browser import page as page  # the fixture
from .conftest import set_faults, sign_up


async def _stages(page: Any) -> list[str]:
    return await page.evaluate("window.__stages")


async def test_sign_up_add_a_contact_and_see_it_synced_live(
    page: Any, backend: TestClient, crm: TestServer, tmp_path: Path
) -> None:
    await open_signed_up(page, backend, tmp_path, "ada@example.com")
    await shot(page, tmp_path, "signed-in")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    row = await add_contact(page, "Ann Lee", "ann@example.com")
    badge = row.get_by_test_id("contact-badge")
    await expect(badge).to_have_text("synced", timeout=TIMEOUT_MS)
    await expect(badge).to_have_attribute("title", re.compile(r"^synced: the CRM has exactly this"))
    await expect(row.get_by_test_id("contact-crm-id")).to_have_text(re.compile(r"\S+"))
    await shot(page, tmp_path, "contact-synced")

    # Inline edit: the row goes back to pending and turns synced again, still without a reload.
    await row.get_by_test_id("contact-edit").click()
    await row.get_by_test_id("contact-edit-name").fill("Ann Lee-Smith")
    await row.get_by_test_id("contact-save").click()
    await expect(row.get_by_test_id("contact-name")).to_have_text("Ann Lee-Smith")
    await expect(badge).to_have_text("synced")
    assert navigations == [], "the page reloaded"

    # Signing out returns to the forms; signing in brings the same contacts back.
    await page.get_by_test_id("sign-out").click()
    await expect(page.get_by_test_id("sign-in-form")).to_be_visible()
    form = page.get_by_test_id("sign-in-form")
    await form.get_by_label("Email").fill("ada@example.com")
    await form.get_by_label("Password").fill(PASSWORD)
    await form.get_by_role("button", name="Sign in").click()
    await expect(row.get_by_test_id("contact-badge")).to_have_text("synced")


async def test_meeting_sync_shows_each_step_and_survives_a_reload(
    page: Any, backend: TestClient, crm: TestServer, tmp_path: Path
) -> None:
    await open_signed_up(page, backend, tmp_path, "ada@example.com")
    row = await add_contact(page, "Ann Lee", "ann@example.com")
    await expect(row.get_by_test_id("contact-badge")).to_have_text("synced")
    card = await add_meeting(page, "Quarterly review", [await row.get_attribute("data-id")])
    progress = card.get_by_test_id("meeting-progress")
    await shot(page, tmp_path, "meeting-created")

    await set_faults(crm, latency_ms=300)  # each CRM request now takes 300 ms: every step is seen
    # The recorder notes the stage on any change to the page (the header's status poll, too): start it
    # from the stage the card is in, so that only real changes are added.
    await page.evaluate("window.__stages = ['idle']")
    await card.get_by_role("button", name="Sync to CRM").click()
    await expect(progress).to_have_attribute("data-stage", "2")
    await shot(page, tmp_path, "meeting-step-2")
    await expect(progress).to_have_attribute("data-stage", "done")
    assert await _stages(page) == ["idle", "1", "2", "3", "done"]
    await expect(card.get_by_test_id("meeting-result")).to_have_text(re.compile("^Last sync succeeded at "))
    await shot(page, tmp_path, "meeting-done")

    # Sync again and reload in the middle: the new page starts where the sync stands, not at "idle".
    await set_faults(crm, latency_ms=700)
    await card.get_by_role("button", name="Sync to CRM").click()
    await expect(progress).to_have_attribute("data-stage", "2")
    await page.reload()
    await expect(progress).to_have_attribute("data-stage", re.compile("^[23]$"))
    await expect(card.get_by_test_id("meeting-step-1")).to_have_attribute("data-state", "done")
    await shot(page, tmp_path, "meeting-reloaded-mid-sync")
    await expect(progress).to_have_attribute("data-stage", "done")
    after_reload = await _stages(page)
    assert after_reload in (["2", "3", "done"], ["3", "done"]), after_reload


async def test_failures_show_their_message_for_contacts_and_meetings(
    page: Any, backend: TestClient, crm: TestServer, tmp_path: Path
) -> None:
    await open_signed_up(page, backend, tmp_path, "ada@example.com")

    await set_faults(crm, fail_next=1, fail_status=400)  # the CRM rejects the create: final at once
    row = await add_contact(page, "Ann Lee", "ann@example.com")
    badge = row.get_by_test_id("contact-badge")
    await expect(badge).to_have_text("failed")
    await expect(row.get_by_test_id("contact-error")).to_have_text(re.compile(r"\S"))
    error = await row.get_by_test_id("contact-error").text_content()
    await expect(badge).to_have_attribute(
        "title", f"failed: {error.rstrip('.')}; no automatic retry is left; re-queue with Retry"
    )
    await shot(page, tmp_path, "contact-failed")
    await row.get_by_test_id("contact-retry").click()
    await expect(badge).to_have_text("synced")
    await expect(row.get_by_test_id("contact-error")).to_have_text("")
    await expect(row.get_by_test_id("contact-retry")).to_have_count(0)

    card = await add_meeting(page, "Quarterly review", [await row.get_attribute("data-id")])
    await set_faults(crm, fail_next=1, fail_status=400)  # stage 2's create meeting is rejected
    await card.get_by_role("button", name="Sync to CRM").click()
    await expect(card.get_by_test_id("meeting-progress")).to_have_attribute("data-stage", "failed")
    await expect(card.get_by_test_id("meeting-error")).to_have_text(re.compile("^The CRM rejected the meeting"))
    await expect(card.get_by_test_id("meeting-step-1")).to_have_attribute("data-state", "done")
    await expect(card.get_by_test_id("meeting-step-2")).to_have_attribute("data-state", "failed")
    await expect(card.get_by_test_id("meeting-sync")).to_have_text("Retry")
    await expect(card.get_by_test_id("meeting-sync")).to_be_enabled()
    await shot(page, tmp_path, "meeting-failed")


async def test_polls_while_the_socket_is_down(page: Any, backend: TestClient, crm: TestServer, tmp_path: Path) -> None:
    async def refuse(socket: Any) -> None:
        await socket.close(code=1011, reason="the test keeps the socket down")

    await page.route_web_socket(re.compile(r"/events"), refuse)
    await page.goto(str(backend.make_url("/")))
    await fill_sign_up(page, "ada@example.com")
    await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "polling")

    # A contact added elsewhere (another account, through the API) shows up by polling alone.
    other = await sign_up(backend, "grace@example.com")
    resp = await backend.post(
        "/users", json={"name": "Bob Ray", "email": "bob@example.com", "phone": "555-0100"}, headers=other
    )
    assert resp.status == 201, await resp.text()
    row = page.get_by_test_id("contact-row").filter(has_text="bob@example.com")
    await expect(row.get_by_test_id("contact-badge")).to_have_text("synced")
    await shot(page, tmp_path, "polling")


async def test_a_token_the_socket_refuses_returns_to_sign_in(page: Any, backend: TestClient, tmp_path: Path) -> None:
    async def unauthorized(socket: Any) -> None:
        await socket.close(code=4401, reason="unauthorized")

    await page.route_web_socket(re.compile(r"/events"), unauthorized)
    await page.goto(str(backend.make_url("/")))
    await fill_sign_up(page, "ada@example.com")
    await expect(page.get_by_test_id("auth-notice")).to_have_text("Your session has ended. Please sign in again.")
    await expect(page.get_by_test_id("dashboard")).to_be_hidden()
    await expect(page.get_by_test_id("sign-up-error")).to_have_text("")
    assert await page.evaluate("localStorage.length") == 0
    await shot(page, tmp_path, "session-ended")
