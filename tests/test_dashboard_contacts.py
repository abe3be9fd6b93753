"""The dashboard's contacts in Chromium: layout at 1280 and 390 px, search, filters, pages, delete,
Retry all failed, the detail view, CRM-won conflicts, deleted in the CRM, the CRM status, form errors.

Every test saves screenshots at 1280 and 390 px (tests/browser.py: shots), each after checking that
nothing scrolls sideways.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from .browser import add_contact, assert_no_sideways_scroll, expect, open_signed_up, row_of, shots
from .browser import page as page  # the fixture
from .conftest import Live, LiveFactory, crm_call, eventually, get_user, set_faults, sign_up, wait_status
from .test_bulk import post_batch

LONG_NAME = "Maximiliana Bartholomew-Featherstonehaugh-Cholmondeley-Worcestershire"
LONG_EMAIL = "maximiliana.bartholomew-featherstonehaugh.cholmondeley@a-very-long-subdomain.example-company.com"


async def _api_contact(client: TestClient, auth: dict[str, str], name: str, email: str, phone: str) -> dict[str, Any]:
    resp = await client.post("/users", json={"name": name, "email": email, "phone": phone}, headers=auth)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_no_sideways_scrolling_with_failed_rows_long_errors_and_an_inline_edit(
    page: Any, backend: TestClient, crm: TestServer, tmp_path: Path
) -> None:
    await open_signed_up(page, backend, tmp_path, "ada@example.com")
    auth = await sign_up(backend, "api@example.com")
    for i in range(3):
        user = await _api_contact(backend, auth, f"Synced Person {i}", f"synced{i}@example.com", f"555-010-{i:04d}")
        await wait_status(backend, auth, user["id"], "synced")
    await set_faults(crm, fail_next=2, fail_status=400)  # the CRM rejects both creates: failed, with the error
    failed = [await _api_contact(backend, auth, LONG_NAME, LONG_EMAIL, "+44 (0) 20 7946 0958 00")]
    failed.append(await _api_contact(backend, auth, "Bob Ray", "bob@example.com", "555-010-9999"))
    for user in failed:
        await wait_status(backend, auth, user["id"], "failed")
    row = row_of(page, failed[0]["id"])
    await expect(row.get_by_test_id("contact-error")).to_have_text(re.compile(r"\S"))
    for width in (1280, 1440, 1920):
        await page.set_viewport_size({"width": width, "height": 900})
        await assert_no_sideways_scroll(page, f"failed rows at {width} px")
        # Every row's actions are inside the window, without scrolling: the Retry of a failed row too.
        for button in ("contact-retry", "contact-edit", "contact-delete", "contact-details"):
            await expect(row.get_by_test_id(button)).to_be_in_viewport()
    await page.set_viewport_size({"width": 1280, "height": 900})
    await shots(page, tmp_path, "failed-rows")

    # Inline edit of the long row, with an error under a field: controls and messages stay inside the row.
    await row.get_by_test_id("contact-edit").click()
    await row.get_by_test_id("contact-edit-email").fill("")
    await row.get_by_test_id("contact-save").click()
    await expect(row.get_by_test_id("contact-edit-email-error")).to_have_text("Email is required")
    await expect(row.get_by_test_id("contact-save")).to_be_in_viewport()
    await shots(page, tmp_path, "inline-edit-error")
    await row.get_by_test_id("contact-edit-email").fill("not-an-email")
    await row.get_by_test_id("contact-save").click()
    await expect(row.get_by_test_id("contact-edit-email-error")).to_have_text(re.compile("^Email is not a valid"))
    await shots(page, tmp_path, "inline-edit-server-error")
    await page.set_viewport_size({"width": 390, "height": 800})
    await row.get_by_test_id("contact-save").scroll_into_view_if_needed()
    await expect(row.get_by_test_id("contact-save")).to_be_in_viewport(ratio=1)
    await expect(row.get_by_test_id("contact-edit-email-error")).to_be_in_viewport(ratio=1)


async def test_search_filters_with_counts_pages_newest_first_and_retry_all_failed(
    page: Any, backend: TestClient, crm: TestServer, tmp_path: Path
) -> None:
    auth = await sign_up(backend, "api@example.com")
    made = []
    for i in range(22):
        made.append(
            await _api_contact(backend, auth, f"Person {i:02d}", f"person{i:02d}@example.com", f"555-020-{i:04d}")
        )
    for user in made:
        await wait_status(backend, auth, user["id"], "synced")
    await set_faults(crm, fail_next=1, fail_status=400)
    zed = await _api_contact(backend, auth, "Zed Quigley", "zed@example.com", "555-777-1234")
    await wait_status(backend, auth, zed["id"], "failed")
    await open_signed_up(page, backend, tmp_path, "ada@example.com")

    # Newest first, 20 a page: the failed Zed (the newest) leads page 1; page 2 has the 3 oldest.
    rows = page.get_by_test_id("contact-row")
    await expect(rows).to_have_count(20)
    await expect(rows.first).to_have_attribute("data-id", zed["id"])
    await expect(page.get_by_test_id("page-info")).to_have_text("1\u201320 of 23")
    await expect(page.get_by_test_id("filter-all")).to_contain_text("(23)")
    await expect(page.get_by_test_id("filter-failed")).to_contain_text("(1)")
    await expect(page.get_by_test_id("filter-synced")).to_contain_text("(22)")
    await shots(page, tmp_path, "contacts-page-1")
    await page.get_by_test_id("page-older").click()
    await expect(rows).to_have_count(3)
    await expect(rows.last).to_have_attribute("data-id", made[0]["id"])
    await expect(page.get_by_test_id("page-older")).to_be_disabled()
    await page.get_by_test_id("page-newer").click()
    await expect(rows).to_have_count(20)

    # The status filter.
    await page.get_by_test_id("filter-failed").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-id", zed["id"])
    await shots(page, tmp_path, "contacts-failed-only")

    # Retry all failed: the failed contact syncs, leaves this filter, and the counts follow.
    await page.get_by_test_id("retry-all-failed").click()
    await expect(rows).to_have_count(0)
    await expect(page.get_by_test_id("filter-failed")).to_contain_text("(0)")
    await expect(page.get_by_test_id("filter-synced")).to_contain_text("(23)")
    await expect(page.get_by_test_id("retry-all-failed")).to_be_disabled()
    await page.get_by_test_id("filter-all").click()

    # Search: name, email or phone, any case; the server is asked too (GET /users?q=).
    async with page.expect_request(lambda r: "/users?" in r.url and "q=QUIG" in r.url):
        await page.get_by_test_id("contact-search").fill("QUIG")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-id", zed["id"])
    await page.get_by_test_id("contact-search").fill("555-020-0003")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("person03@example.com")
    await page.get_by_test_id("contact-search").fill("nobody-like-this")
    await expect(page.get_by_test_id("contacts-empty")).to_have_text("No contacts match.")
    await shots(page, tmp_path, "contacts-search-empty")


async def test_pages_run_newest_first_past_the_contacts_read_at_first(
    page: Any, backend: TestClient, crm: TestServer, tmp_path: Path
) -> None:
    # More contacts than the page reads at first (20 pages of 500): the newest lead, and paging on reads older
    # ones from the server until the very first contact.
    auth = await sign_up(backend, "api@example.com")
    total, ids = 10_050, []
    for start in range(0, total, 1000):
        people = [
            {"name": f"Person {n:05d}", "email": f"p{n:05d}@example.com", "phone": f"555-{n:07d}"}
            for n in range(start, min(start + 1000, total))
        ]
        status, body = await post_batch(backend, auth, people)
        assert status == 207 and body["created"] == len(people), body
        ids += [item["id"] for item in body["items"]]

    async def all_synced() -> bool:  # first: the page then reads a settled list, not one event per push
        resp = await backend.get("/status", headers=auth)
        return (await resp.json())["contacts"]["synced"] == total

    await eventually(all_synced, timeout=120)
    await open_signed_up(page, backend, tmp_path, "ada@example.com")
    rows, info = page.get_by_test_id("contact-row"), page.get_by_test_id("page-info")
    await expect(rows.first).to_have_attribute("data-id", ids[-1])
    await expect(info).to_have_text("1\u201320 of 10,050")  # the server's count: not all are read yet
    await page.get_by_test_id("page-size").select_option("500")
    await expect(info).to_have_text("1\u2013500 of 10,050")
    await expect(rows.nth(499)).to_have_attribute("data-id", ids[-500])
    older = page.get_by_test_id("page-older")
    for first in range(501, 10_001, 500):
        await older.click()
        await expect(info).to_have_text(f"{first:,}\u2013{first + 499:,} of 10,050")
    async with page.expect_request(lambda r: "order=newest" in r.url and "cursor=" in r.url):
        await older.click()  # past the first 10,000: read from the server
    await expect(info).to_have_text("10,001\u201310,050 of 10,050")
    await expect(rows).to_have_count(50)
    await expect(rows.first).to_have_attribute("data-id", ids[49])
    await expect(rows.last).to_have_attribute("data-id", ids[0])
    await expect(older).to_be_disabled()
    await shots(page, tmp_path, "contacts-oldest-page")
    await page.get_by_test_id("page-newer").click()
    await expect(info).to_have_text("9,501\u201310,000 of 10,050")


async def test_delete_asks_first_then_deletes_here_and_in_the_crm(
    page: Any, backend: TestClient, crm: TestServer, tmp_path: Path
) -> None:
    await open_signed_up(page, backend, tmp_path, "ada@example.com")
    row = await add_contact(page, "Ann Lee", "ann@example.com")
    await expect(row.get_by_test_id("contact-badge")).to_have_text("synced")
    user_id = await row.get_attribute("data-id")

    await row.get_by_test_id("contact-delete").click()
    confirm = page.get_by_test_id("confirm")
    await expect(confirm).to_be_visible()
    await expect(page.get_by_test_id("confirm-text")).to_have_text(re.compile("^Delete Ann Lee .*here and in the CRM"))
    await shots(page, tmp_path, "delete-confirm")
    await page.get_by_test_id("confirm-cancel").click()
    await expect(confirm).to_be_hidden()
    assert (await get_user(backend, await sign_up(backend, "api@example.com"), user_id))["sync_status"] == "synced"

    await row.get_by_test_id("contact-delete").click()
    await page.get_by_test_id("confirm-ok").click()
    await expect(row).to_have_count(0)  # deleting, then gone once the CRM record is deleted
    auth = await sign_up(backend, "api2@example.com")
    resp = await backend.get(f"/users/{user_id}", headers=auth)
    assert resp.status == 404
    await expect(page.get_by_test_id("filter-all")).to_contain_text("(0)")


async def test_details_show_fields_history_and_a_conflict_the_crm_won(
    page: Any, make_live: LiveFactory, tmp_path: Path
) -> None:
    live = await make_live()
    await open_signed_up(page, live.backend, tmp_path, "ada@example.com")
    row = await add_contact(page, "Ann Lee", "ann@example.com")
    await expect(row.get_by_test_id("contact-badge")).to_have_text("synced")
    user = await get_user(live.backend, live.auth, await row.get_attribute("data-id"))
    await _conflict_on_phone(live, user)
    await expect(row.get_by_test_id("contact-phone")).to_have_text("999-000-0000")

    await row.get_by_test_id("contact-details").click()
    detail = page.get_by_test_id("contact-detail")
    await expect(detail).to_be_visible()
    await expect(detail.get_by_test_id("detail-crm-id")).to_have_text(user["crm_id"])
    await expect(detail.get_by_test_id("detail-phone")).to_have_text("999-000-0000")
    conflict = detail.get_by_test_id("detail-conflict")
    await expect(conflict).to_have_count(1)
    await expect(conflict).to_contain_text("here to “111-000-0000”, in the CRM to “999-000-0000”")
    await expect(conflict).to_contain_text("The CRM's value won")
    history = detail.get_by_test_id("history-item")
    await expect(history.filter(has_text="Create in the CRM, try 1: succeeded")).to_have_count(1)
    await expect(history.and_(page.locator('[data-type="conflict"]'))).to_have_count(1)
    await shots(page, tmp_path, "detail-conflict")
    await page.get_by_test_id("detail-close").click()
    # Once seen in the history, the row says so too.
    await expect(row.get_by_test_id("contact-conflict")).to_contain_text("The CRM's value won")


async def test_a_conflict_the_crm_won_is_noticed_on_the_row_without_opening_it(
    page: Any, make_live: LiveFactory, tmp_path: Path
) -> None:
    live = await make_live()
    await open_signed_up(page, live.backend, tmp_path, "ada@example.com")
    row = await add_contact(page, "Ann Lee", "ann@example.com")
    await expect(row.get_by_test_id("contact-badge")).to_have_text("synced")
    await _conflict_on_phone(live, await get_user(live.backend, live.auth, await row.get_attribute("data-id")))
    await page.reload()  # what a page opened later sees
    notice = row.get_by_test_id("contact-conflict")
    await expect(notice).to_contain_text("Phone was changed here and in the CRM at once")
    await shots(page, tmp_path, "row-conflict")
    await notice.get_by_role("button", name="Dismiss").click()
    await expect(notice).to_have_count(0)


async def _conflict_on_phone(live: Live, user: dict[str, Any]) -> None:
    """A local edit to the phone while, in the CRM, a person changes the phone too: the CRM wins."""
    await set_faults(live.crm, latency_ms=300)
    resp = await live.backend.patch(f"/users/{user['id']}", json={"phone": "111-000-0000"}, headers=live.auth)
    assert resp.status == 200
    status, _ = await crm_call(
        live.crm, "POST", f"/crm/_admin/users/{user['crm_id']}/edit", json={"phone": "999-000-0000"}
    )
    assert status == 200
    await set_faults(live.crm, latency_ms=0)

    async def resolved() -> bool:
        now = await get_user(live.backend, live.auth, user["id"])
        return now["sync_status"] == "synced" and now["phone"] == "999-000-0000"

    await eventually(resolved)


async def test_deleted_in_the_crm_offers_both_choices(page: Any, make_live: LiveFactory, tmp_path: Path) -> None:
    live = await make_live()
    await open_signed_up(page, live.backend, tmp_path, "ada@example.com")
    kept = await add_contact(page, "Ann Lee", "ann@example.com")
    dropped = await add_contact(page, "Bob Ray", "bob@example.com", "555-010-2000")
    for row in (kept, dropped):
        await expect(row.get_by_test_id("contact-badge")).to_have_text("synced")
    users = [await get_user(live.backend, live.auth, await row.get_attribute("data-id")) for row in (kept, dropped)]
    for user in users:  # a person deletes both records in the CRM
        status, _ = await crm_call(live.crm, "DELETE", f"/crm/_admin/users/{user['crm_id']}")
        assert status == 204
    for row in (kept, dropped):
        await expect(row.get_by_test_id("contact-badge")).to_have_text("deleted in the CRM")
        await expect(row.get_by_test_id("contact-deleted-notice")).to_be_visible()
    await shots(page, tmp_path, "deleted-in-crm-rows")

    # Ann: create her in the CRM again.
    await kept.get_by_test_id("contact-details").click()
    choices = page.get_by_test_id("detail-deleted-in-crm")
    await expect(choices).to_contain_text(f"deleted in the CRM (record {users[0]['crm_id']})")
    await shots(page, tmp_path, "deleted-in-crm-detail")
    await choices.get_by_test_id("detail-recreate").click()
    await expect(page.get_by_test_id("detail-status")).to_have_text(re.compile("^synced"))
    new_crm_id = await page.get_by_test_id("detail-crm-id").text_content()
    assert new_crm_id and new_crm_id != users[0]["crm_id"]
    await page.get_by_test_id("detail-close").click()
    await expect(kept.get_by_test_id("contact-badge")).to_have_text("synced")

    # Bob: delete him here.
    await dropped.get_by_test_id("contact-details").click()
    await page.get_by_test_id("detail-delete-here").click()
    await page.get_by_test_id("confirm-ok").click()
    await expect(dropped).to_have_count(0)
    assert (await live.backend.get(f"/users/{users[1]['id']}", headers=live.auth)).status == 404


async def test_the_header_shows_the_crm_connection_from_real_exchanges(
    page: Any, backend: TestClient, crm: TestServer, tmp_path: Path
) -> None:
    await open_signed_up(page, backend, tmp_path, "ada@example.com")
    row = await add_contact(page, "Ann Lee", "ann@example.com")
    await expect(row.get_by_test_id("contact-badge")).to_have_text("synced")
    status = page.get_by_test_id("crm-status")
    await expect(status).to_have_attribute("data-state", "ok")
    await expect(status).to_have_text("CRM: connected")

    await set_faults(crm, fail_next=1_000, fail_status=503)  # the CRM is down; the page's socket is not
    await add_contact(page, "Bob Ray", "bob@example.com", "555-010-2000")
    await expect(status).to_have_attribute("data-state", "failing")
    await expect(status).to_have_text(re.compile(r"^CRM: failing since .+\. Last error: .*503"))
    await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "live")
    await shots(page, tmp_path, "crm-failing")
    await set_faults(crm, fail_next=0)
    await page.get_by_test_id("filter-failed").click()
    await page.get_by_test_id("retry-all-failed").click()
    await expect(status).to_have_attribute("data-state", "ok")


async def test_form_errors_are_in_peoples_words_on_the_field(page: Any, backend: TestClient, tmp_path: Path) -> None:
    await open_signed_up(page, backend, tmp_path, "ada@example.com")
    form = page.get_by_test_id("contact-form")
    await form.get_by_role("button", name="Add contact").click()
    await expect(form.locator("#contact-name-error")).to_have_text("Name is required")
    await expect(form.locator("#contact-email-error")).to_have_text("Email is required")
    await expect(form.locator("#contact-phone-error")).to_have_text("Phone is required")
    await expect(form.get_by_label("Name")).to_be_focused()
    await form.get_by_label("Name").fill("Ann Lee")
    await form.get_by_label("Email").fill("ann@")
    await form.get_by_label("Phone").fill("12")
    await form.get_by_role("button", name="Add contact").click()
    await expect(form.locator("#contact-email-error")).to_have_text(re.compile("^Email is not a valid email address"))
    await expect(form.locator("#contact-phone-error")).to_have_text(re.compile("^Phone must have 7 to 15 digits"))
    await expect(form.locator("#contact-name-error")).to_have_text("")
    await expect(page.get_by_test_id("contact-form-error")).to_have_text("")

    meeting = page.get_by_test_id("meeting-form")
    await meeting.get_by_role("button", name="Add meeting").click()
    await expect(meeting.locator("#meeting-title-error")).to_have_text("Title is required")
    await expect(meeting.locator("#meeting-starts-error")).to_have_text("Starts is required")
    await meeting.get_by_label("Title").fill("Review")
    await meeting.get_by_label("Starts").fill("2026-12-01T15:00")
    await meeting.get_by_label("Ends").fill("2026-12-01T14:00")
    await meeting.get_by_role("button", name="Add meeting").click()
    await expect(meeting.locator("#meeting-ends-error")).to_have_text("Ends must be after Starts")
    await shots(page, tmp_path, "form-errors")
    text = await page.locator("main").inner_text()
    for api_name in ("starts_at", "ends_at", "attendee_ids", "sync_status"):
        assert api_name not in text
