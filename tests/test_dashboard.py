"""The dashboard at GET /, driven in headless Chromium against the real backend and mock CRM.

Playwright's async API runs in the test's own event loop, next to the backend and the mock CRM.
Without Debian's chromium or the playwright package these tests skip, except under CI=true, where
they fail so that CI cannot pass without running them. Each test saves a screenshot per state in
its tmp_path.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from .conftest import set_faults, sign_up

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-quic",
]  # fmt: skip
TIMEOUT_MS = 10_000
PASSWORD = "correct horse battery"

# Records every value the (first) meeting's progress indicator takes, from before the page's own
# scripts run, so a reload is watched from its first paint. Repeats are dropped.
STAGE_RECORDER = """
window.__stages = [];
new MutationObserver(() => {
  const progress = document.querySelector('[data-testid="meeting-progress"]');
  const stage = progress && progress.getAttribute("data-stage");
  if (stage && stage !== window.__stages[window.__stages.length - 1]) window.__stages.push(stage);
}).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-stage"] });
"""


def _missing_browser() -> str | None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install 'playwright>=1.40')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium; ./run.sh test installs it when run as root)"
    return None


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Any]:
    """A Chromium page; JavaScript errors on it fail the test."""
    if reason := _missing_browser():
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run under CI: {reason}", pytrace=False)
        pytest.skip(f"browser tests skipped: {reason}")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
        await context.add_init_script(STAGE_RECORDER)
        tab = await context.new_page()
        tab.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
        tab.on("console", lambda msg: errors.append(f"{msg.text} at {msg.location}") if msg.type == "error" else None)
        try:
            yield tab
        finally:
            await context.close()
            await browser.close()
        assert errors == [], f"JavaScript errors on the page: {errors}"


def _expect(locator: Any) -> Any:
    from playwright.async_api import expect

    return expect(locator)


async def _shot(page: Any, tmp_path: Path, state: str) -> None:
    await page.screenshot(path=tmp_path / f"{state}.png", full_page=True)


async def _fill_sign_up(page: Any, email: str) -> None:
    form = page.get_by_test_id("sign-up-form")
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Password", exact=True).fill(PASSWORD)
    await form.get_by_label("Repeat password").fill(PASSWORD)
    await form.get_by_role("button", name="Create account").click()


async def _open_signed_up(page: Any, backend: TestClient, tmp_path: Path, email: str) -> None:
    """Open the dashboard and create an account through its form."""
    await page.goto(str(backend.make_url("/")))
    await _expect(page.get_by_test_id("auth")).to_be_visible()
    await _shot(page, tmp_path, "signed-out")
    await _fill_sign_up(page, email)
    await _expect(page.get_by_test_id("account-email")).to_have_text(email)
    await _expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "live")
    assert await page.get_by_test_id("sign-up-error").text_content() == ""


async def _add_contact(page: Any, name: str, email: str, phone: str = "123-456-7890") -> Any:
    """Fill and send the contact form; return the contact's table row."""
    form = page.get_by_test_id("contact-form")
    await form.get_by_label("Name").fill(name)
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Phone").fill(phone)
    await form.get_by_role("button", name="Add contact").click()
    listed = page.get_by_test_id("contact-row").filter(has_text=email)
    await _expect(listed).to_have_count(1)
    # By id from here on: while the row is edited, its email is in an input, not in its text.
    return page.locator(f'[data-testid="contact-row"][data-id="{await listed.get_attribute("data-id")}"]')


async def _add_meeting(page: Any, title: str, attendee_ids: list[str]) -> Any:
    """Fill and send the meeting form; return the meeting's card."""
    form = page.get_by_test_id("meeting-form")
    await form.get_by_label("Title").fill(title)
    await form.get_by_label("Starts").fill("2026-12-01T15:00")
    await form.get_by_label("Ends").fill("2026-12-01T16:00")
    await form.get_by_label("Attendees").select_option(attendee_ids)
    await form.get_by_role("button", name="Add meeting").click()
    card = page.get_by_test_id("meeting-card").filter(has_text=title)
    await _expect(card.get_by_test_id("meeting-progress")).to_have_attribute("data-stage", "idle")
    return card


async def _stages(page: Any) -> list[str]:
    return await page.evaluate("window.__stages")


async def test_sign_up_add_a_contact_and_see_it_synced_live(
    page: Any, backend: TestClient, crm: TestServer, tmp_path: Path
) -> None:
    await _open_signed_up(page, backend, tmp_path, "ada@example.com")
    await _shot(page, tmp_path, "signed-in")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    row = await _add_contact(page, "Ann Lee", "ann@example.com")
    badge = row.get_by_test_id("contact-badge")
    await _expect(badge).to_have_text("synced", timeout=TIMEOUT_MS)
    await _expect(badge).to_have_attribute("title", re.compile(r"^synced: the CRM has exactly this"))
    await _expect(row.get_by_test_id("contact-crm-id")).to_have_text(re.compile(r"\S+"))
    await _shot(page, tmp_path, "contact-synced")

    # Inline edit: the row goes back to pending and turns synced again, still without a reload.
    await row.get_by_test_id("contact-edit").click()
    await row.get_by_test_id("contact-edit-name").fill("Ann Lee-Smith")
    await row.get_by_test_id("contact-save").click()
    await _expect(row.get_by_test_id("contact-name")).to_have_text("Ann Lee-Smith")
    await _expect(badge).to_have_text("synced")
    assert navigations == [], "the page reloaded"

    # Signing out returns to the forms; signing in brings the same contacts back.
    await page.get_by_test_id("sign-out").click()
    await _expect(page.get_by_test_id("sign-in-form")).to_be_visible()
    form = page.get_by_test_id("sign-in-form")
    await form.get_by_label("Email").fill("ada@example.com")
    await form.get_by_label("Password").fill(PASSWORD)
    await form.get_by_role("button", name="Sign in").click()
    await _expect(row.get_by_test_id("contact-badge")).to_have_text("synced")


async def test_meeting_sync_shows_each_step_and_survives_a_reload(
    page: Any, backend: TestClient, crm: TestServer, tmp_path: Path
) -> None:
    await _open_signed_up(page, backend, tmp_path, "ada@example.com")
    row = await _add_contact(page, "Ann Lee", "ann@example.com")
    await _expect(row.get_by_test_id("contact-badge")).to_have_text("synced")
    card = await _add_meeting(page, "Quarterly review", [await row.get_attribute("data-id")])
    progress = card.get_by_test_id("meeting-progress")
    await _shot(page, tmp_path, "meeting-created")

    await set_faults(crm, latency_ms=300)  # each CRM request now takes 300 ms: every step is seen
    await page.evaluate("window.__stages = []")
    await card.get_by_role("button", name="Sync to CRM").click()
    await _expect(progress).to_have_attribute("data-stage", "2")
    await _shot(page, tmp_path, "meeting-step-2")
    await _expect(progress).to_have_attribute("data-stage", "done")
    assert await _stages(page) == ["1", "2", "3", "done"]
    await _expect(card.get_by_test_id("meeting-result")).to_have_text(re.compile("^Last sync succeeded at "))
    await _shot(page, tmp_path, "meeting-done")

    # Sync again and reload in the middle: the new page starts where the sync stands, not at "idle".
    await set_faults(crm, latency_ms=700)
    await card.get_by_role("button", name="Sync to CRM").click()
    await _expect(progress).to_have_attribute("data-stage", "2")
    await page.reload()
    await _expect(progress).to_have_attribute("data-stage", re.compile("^[23]$"))
    await _expect(card.get_by_test_id("meeting-step-1")).to_have_attribute("data-state", "done")
    await _shot(page, tmp_path, "meeting-reloaded-mid-sync")
    await _expect(progress).to_have_attribute("data-stage", "done")
    after_reload = await _stages(page)
    assert after_reload in (["2", "3", "done"], ["3", "done"]), after_reload


async def test_failures_show_their_message_for_contacts_and_meetings(
    page: Any, backend: TestClient, crm: TestServer, tmp_path: Path
) -> None:
    await _open_signed_up(page, backend, tmp_path, "ada@example.com")

    await set_faults(crm, fail_next=1, fail_status=400)  # the CRM rejects the create: final at once
    row = await _add_contact(page, "Ann Lee", "ann@example.com")
    badge = row.get_by_test_id("contact-badge")
    await _expect(badge).to_have_text("failed")
    await _expect(row.get_by_test_id("contact-error")).to_have_text(re.compile(r"\S"))
    error = await row.get_by_test_id("contact-error").text_content()
    await _expect(badge).to_have_attribute(
        "title", f"failed: {error.rstrip('.')}; no automatic retry is left; re-queue with Retry"
    )
    await _shot(page, tmp_path, "contact-failed")
    await row.get_by_test_id("contact-retry").click()
    await _expect(badge).to_have_text("synced")
    await _expect(row.get_by_test_id("contact-error")).to_have_text("")
    await _expect(row.get_by_test_id("contact-retry")).to_have_count(0)

    card = await _add_meeting(page, "Quarterly review", [await row.get_attribute("data-id")])
    await set_faults(crm, fail_next=1, fail_status=400)  # stage 2's create meeting is rejected
    await card.get_by_role("button", name="Sync to CRM").click()
    await _expect(card.get_by_test_id("meeting-progress")).to_have_attribute("data-stage", "failed")
    await _expect(card.get_by_test_id("meeting-error")).to_have_text(re.compile("^The CRM rejected the meeting"))
    await _expect(card.get_by_test_id("meeting-step-1")).to_have_attribute("data-state", "done")
    await _expect(card.get_by_test_id("meeting-step-2")).to_have_attribute("data-state", "failed")
    await _expect(card.get_by_role("button", name="Sync to CRM")).to_be_enabled()
    await _shot(page, tmp_path, "meeting-failed")


async def test_polls_while_the_socket_is_down(page: Any, backend: TestClient, crm: TestServer, tmp_path: Path) -> None:
    async def refuse(socket: Any) -> None:
        await socket.close(code=1011, reason="the test keeps the socket down")

    await page.route_web_socket(re.compile(r"/events"), refuse)
    await page.goto(str(backend.make_url("/")))
    await _fill_sign_up(page, "ada@example.com")
    await _expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "polling")

    # A contact added elsewhere (another account, through the API) shows up by polling alone.
    other = await sign_up(backend, "grace@example.com")
    resp = await backend.post(
        "/users", json={"name": "Bob Ray", "email": "bob@example.com", "phone": "555-0100"}, headers=other
    )
    assert resp.status == 201, await resp.text()
    row = page.get_by_test_id("contact-row").filter(has_text="bob@example.com")
    await _expect(row.get_by_test_id("contact-badge")).to_have_text("synced")
    await _shot(page, tmp_path, "polling")


async def test_a_token_the_socket_refuses_returns_to_sign_in(page: Any, backend: TestClient, tmp_path: Path) -> None:
    async def unauthorized(socket: Any) -> None:
        await socket.close(code=4401, reason="unauthorized")

    await page.route_web_socket(re.compile(r"/events"), unauthorized)
    await page.goto(str(backend.make_url("/")))
    await _fill_sign_up(page, "ada@example.com")
    await _expect(page.get_by_test_id("auth-notice")).to_have_text("Your session has ended. Please sign in again.")
    await _expect(page.get_by_test_id("dashboard")).to_be_hidden()
    await _expect(page.get_by_test_id("sign-up-error")).to_have_text("")
    assert await page.evaluate("localStorage.length") == 0
    await _shot(page, tmp_path, "session-ended")
