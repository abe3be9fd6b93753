"""Driving the dashboard in headless Chromium: the page fixture and the steps the browser tests share.

Playwright's async API runs in the test's own event loop, next to the backend and the mock CRM.
Without Debian's chromium or the playwright package the browser tests skip, except under CI=true,
where they fail so that CI cannot pass without running them. Screenshots go to the test's tmp_path,
and also to the folder named by CRMSYNC_SCREENSHOTS when it is set (screenshots/ is gitignored).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

SCREENSHOTS = Path(os.environ["CRMSYNC_SCREENSHOTS"]) if os.environ.get("CRMSYNC_SCREENSHOTS") else None
WIDTHS = (1280, 390)
# What must never happen at any width: the page or the contacts table scrolling sideways, a table
# cell whose content is wider than the cell (clipped or spilling over), a row's button or message
# outside the window.
OVERFLOW_CHECK = """() => {
  const problems = [];
  const doc = document.documentElement;
  const width = doc.clientWidth;
  if (doc.scrollWidth > width) problems.push(`the page is ${doc.scrollWidth} px wide in a ${width} px window`);
  const wrap = document.querySelector(".table-wrap");
  if (wrap && wrap.scrollWidth > wrap.clientWidth + 1) {
    problems.push(`the contacts table is ${wrap.scrollWidth} px wide in ${wrap.clientWidth} px`);
  }
  for (const cell of document.querySelectorAll('[data-testid="contacts-body"] td')) {
    if (cell.scrollWidth > cell.clientWidth + 1) {
      problems.push(`${cell.dataset.testid} of row ${cell.parentElement.dataset.id} spills over: ${cell.scrollWidth} > ${cell.clientWidth}`);
    }
  }
  const visible = '[data-testid="contacts-body"] button, [data-testid="contacts-body"] .form-error,'
    + ' [data-testid="contacts-body"] .field-error, [data-testid="meetings-list"] button';
  for (const el of document.querySelectorAll(visible)) {
    const box = el.getBoundingClientRect();
    if (box.width === 0) continue;
    if (box.left < 0 || box.right > width + 0.5) {
      problems.push(`"${el.textContent.trim()}" lies outside the window (${box.left}..${box.right} of ${width})`);
    }
  }
  return problems;
}"""
PASSWORD = "correct horse battery"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-quic",
]  # fmt: skip
TIMEOUT_MS = 10_000

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


def missing_browser() -> str | None:
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
    if reason := missing_browser():
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
        tab.on("console", lambda msg: errors.append(f"{msg.text} at {msg.location}") if counts(msg) else None)
        try:
            yield tab
        finally:
            await context.close()
            await browser.close()
        assert errors == [], f"JavaScript errors on the page: {errors}"


def counts(message: Any) -> bool:
    """A console error that fails the test: any error but Chromium's notes on answers the page expects.

    Those are a 422 (a form's field errors, shown on the fields), the 404 of GET /conflicts on a backend
    without that route (the dashboard then does without it), and a refused connection once the test's
    backend has stopped, before the page closes.
    """
    if message.type != "error":
        return False
    text, url = message.text, message.location.get("url", "")
    if text.startswith("Failed to load resource"):
        expected = ("status of 422" in text or ("status of 404" in text and "/conflicts?" in url)
                    or "ERR_CONNECTION_REFUSED" in text)  # fmt: skip
        return not expected
    return True


def expect(locator: Any) -> Any:
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(locator)


async def shot(page: Any, tmp_path: Path, state: str) -> None:
    """A full-page screenshot at the page's current width, in tmp_path (and SCREENSHOTS, when set)."""
    await page.screenshot(path=tmp_path / f"{state}.png", full_page=True)
    if SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=SCREENSHOTS / f"{state}.png", full_page=True)


async def shots(page: Any, tmp_path: Path, state: str) -> None:
    """Screenshots at 1280 and 390 px wide, each checked first for anything that scrolls sideways."""
    size = page.viewport_size
    try:
        for width in WIDTHS:
            await page.set_viewport_size({"width": width, "height": size["height"]})
            await assert_no_sideways_scroll(page, f"{state} at {width} px")
            await shot(page, tmp_path, f"{state}-{width}")
    finally:
        await page.set_viewport_size(size)


async def assert_no_sideways_scroll(page: Any, where: str) -> None:
    """Neither the page nor the contacts table scrolls sideways, and no cell's content spills out of it."""
    problems = await page.evaluate(OVERFLOW_CHECK)
    assert problems == [], f"{where}: {problems}"


async def fill_sign_up(page: Any, email: str) -> None:
    form = page.get_by_test_id("sign-up-form")
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Password", exact=True).fill(PASSWORD)
    await form.get_by_label("Repeat password").fill(PASSWORD)
    await form.get_by_role("button", name="Create account").click()


async def open_signed_up(page: Any, backend: TestClient, tmp_path: Path, email: str) -> None:
    """Open the dashboard and create an account through its form."""
    await page.goto(str(backend.make_url("/")))
    await expect(page.get_by_test_id("auth")).to_be_visible()
    await shot(page, tmp_path, "signed-out")
    await fill_sign_up(page, email)
    await expect(page.get_by_test_id("account-email")).to_have_text(email)
    await expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "live")
    assert await page.get_by_test_id("sign-up-error").text_content() == ""


async def add_contact(page: Any, name: str, email: str, phone: str = "123-456-7890") -> Any:
    """Fill and send the contact form; return the contact's table row."""
    form = page.get_by_test_id("contact-form")
    await form.get_by_label("Name").fill(name)
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Phone").fill(phone)
    await form.get_by_role("button", name="Add contact").click()
    listed = page.get_by_test_id("contact-row").filter(has_text=email)
    await expect(listed).to_have_count(1)
    # By id from here on: while the row is edited, its email is in an input, not in its text.
    return page.locator(f'[data-testid="contact-row"][data-id="{await listed.get_attribute("data-id")}"]')


async def add_meeting(page: Any, title: str, attendee_ids: list[str]) -> Any:
    """Fill and send the meeting form; return the meeting's card."""
    form = page.get_by_test_id("meeting-form")
    await form.get_by_label("Title").fill(title)
    await form.get_by_label("Starts").fill("2026-12-01T15:00")
    await form.get_by_label("Ends").fill("2026-12-01T16:00")
    await form.get_by_label("Attendees").select_option(attendee_ids)
    await form.get_by_role("button", name="Add meeting").click()
    card = page.get_by_test_id("meeting-card").filter(has_text=title)
    await expect(card.get_by_test_id("meeting-progress")).to_have_attribute("data-stage", "idle")
    return card


def row_of(page: Any, user_id: str) -> Any:
    """A contact's row (or card, on a narrow screen) by id."""
    return page.locator(f'[data-testid="contact-row"][data-id="{user_id}"]')


async def sign_in(page: Any, email: str) -> None:
    """Sign in through the form (the account exists)."""
    form = page.get_by_test_id("sign-in-form")
    await form.get_by_label("Email").fill(email)
    await form.get_by_label("Password").fill(PASSWORD)
    await form.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_test_id("account-email")).to_have_text(email)
