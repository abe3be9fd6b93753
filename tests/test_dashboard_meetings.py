"""The dashboard's meetings in Chromium: edit in place, delete, Retry when failed, the next try's time
while a failed step waits; screenshots at 1280 and 390 px, each checked for sideways scrolling."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from crmsync.app import create_app
from crmsync.config import Config

from .browser import add_contact, add_meeting, expect, open_signed_up, shots
from .browser import page as page  # the fixture
from .conftest import set_faults, sign_up


async def test_edit_a_meeting_in_place_then_delete_it(
    page: Any, backend: TestClient, crm: TestServer, tmp_path: Path
) -> None:
    await open_signed_up(page, backend, tmp_path, "ada@example.com")
    ann = await add_contact(page, "Ann Lee", "ann@example.com")
    bob = await add_contact(page, "Bob Ray", "bob@example.com", "555-010-2000")
    card = await add_meeting(page, "Quarterly review", [await ann.get_attribute("data-id")])
    meeting_id = await card.get_attribute("data-id")

    await card.get_by_test_id("meeting-edit").click()
    form = card.get_by_test_id("meeting-edit-form")
    await expect(form.get_by_label("Title")).to_have_value("Quarterly review")
    await expect(form.get_by_label("Starts")).to_have_value("2026-12-01T15:00")
    await form.get_by_label("Title").fill("")
    await form.get_by_label("Ends").fill("2026-12-01T14:30")
    await form.get_by_role("button", name="Save").click()
    await expect(form.locator('[data-error-for="title"]')).to_have_text("Title is required")
    await expect(form.locator('[data-error-for="ends_at"]')).to_have_text("Ends must be after Starts")
    await expect(form.get_by_label("Ends")).to_have_attribute("aria-invalid", "true")
    await shots(page, tmp_path, "meeting-edit-errors")
    await form.get_by_label("Title").fill("Quarterly review, moved")
    await form.get_by_label("Ends").fill("2026-12-01T17:00")
    await form.get_by_label("Attendees").select_option([await bob.get_attribute("data-id")])
    await form.get_by_role("button", name="Save").click()
    await expect(form).to_have_count(0)
    await expect(card.get_by_test_id("meeting-title")).to_have_text("Quarterly review, moved")
    await expect(card.get_by_test_id("meeting-attendees")).to_have_text("Attendees: Bob Ray")
    auth = await sign_up(backend, "api@example.com")
    assert (await backend.get(f"/meetings/{meeting_id}", headers=auth)).status == 404  # another account's
    await shots(page, tmp_path, "meeting-edited")

    await card.get_by_test_id("meeting-delete").click()
    await expect(page.get_by_test_id("confirm-text")).to_have_text(re.compile("^Delete the meeting Quarterly review"))
    await page.get_by_test_id("confirm-cancel").click()
    await expect(card).to_have_count(1)
    await card.get_by_test_id("meeting-delete").click()
    await page.get_by_test_id("confirm-ok").click()
    await expect(card).to_have_count(0)
    await expect(page.get_by_test_id("meetings-empty")).to_be_visible()
    await page.reload()
    await expect(page.get_by_test_id("meetings-empty")).to_be_visible()


async def test_a_failing_meeting_shows_its_next_try_then_retry_when_it_failed(
    page: Any,
    aiohttp_client: Callable[..., Awaitable[TestClient]],
    make_config: Callable[..., Config],
    crm: TestServer,
    tmp_path: Path,
) -> None:
    # One retry, 4 s after the first failed try: long enough to be seen waiting.
    backend = await aiohttp_client(create_app(make_config(job_backoff=(4.0,), job_retries=1)))
    await open_signed_up(page, backend, tmp_path, "ada@example.com")
    ann = await add_contact(page, "Ann Lee", "ann@example.com")
    await expect(ann.get_by_test_id("contact-badge")).to_have_text("synced")
    card = await add_meeting(page, "Quarterly review", [await ann.get_attribute("data-id")])

    await set_faults(crm, fail_next=6, fail_status=503)  # both tries of stage 2 fail (3 requests each)
    await card.get_by_test_id("meeting-sync").click()
    next_try = card.get_by_test_id("meeting-next-retry")
    await expect(next_try).to_have_text(re.compile(r"^ Next try at .+\.$"))
    await expect(card.get_by_test_id("meeting-retry-error")).to_have_text(re.compile("503"))
    await expect(card.locator('[data-state="retrying"]')).to_have_count(1)
    await shots(page, tmp_path, "meeting-retrying")

    # The retry fails too: the run ends failed, and the button says Retry.
    await expect(card.get_by_test_id("meeting-progress")).to_have_attribute("data-stage", "failed", timeout=15_000)
    await expect(next_try).to_have_count(0)
    sync = card.get_by_test_id("meeting-sync")
    await expect(sync).to_have_text("Retry")
    await shots(page, tmp_path, "meeting-failed-retry")
    await sync.click()
    await expect(card.get_by_test_id("meeting-progress")).to_have_attribute("data-stage", "done")
    await expect(sync).to_have_text("Sync to CRM")
