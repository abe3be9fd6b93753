// The contacts list: newest first, searched and filtered by status, a page at a time (older contacts are read
// from the server as the person pages to them); the counts, "Retry all failed", and the form that adds a
// contact. Rows are drawn by contact_rows.js, acted on by contact_edit.js.

import { api } from "./api.js";
import { RowActions } from "./contact_edit.js";
import { FIELDS, buildRow, fillRow } from "./contact_rows.js";
import { announce, clearFieldErrors, renderList, setAttr, setText } from "./dom.js";
import { describeError, reportErrors, setBusy } from "./forms.js";

const PAGE_SIZES = [20, 50, 100, 500];
const RENDER_DELAY_MS = 50;
const FILTERS = ["all", "pending", "synced", "failed", "deleting"];

const number = (n) => n.toLocaleString("en");

/** Does the user match the search words (name, email or phone, any case)? */
function matches(user, query) {
  if (!query) return true;
  const needle = query.toLowerCase();
  const digits = needle.replace(/\D/g, "");
  return FIELDS.some((f) => (user[f] || "").toLowerCase().includes(needle))
    || (digits.length >= 3 && (user.phone || "").replace(/\D/g, "").includes(digits));
}

export class Contacts {
  /**
   * actions: details(id), retried() after "Retry all failed", search(params) to ask the server for the
   * contacts matching a search (q) or a status (sync_status) too, older() to read older contacts.
   */
  constructor(root, users, conflicts, actions) {
    this.users = users;
    this.conflicts = conflicts;
    this.actions = actions;
    const part = (testid) => root.querySelector(`[data-testid="${testid}"]`);
    this.body = part("contacts-body");
    this.empty = part("contacts-empty");
    this.form = part("contact-form");
    this.formError = part("contact-form-error");
    this.search = part("contact-search");
    this.filterButtons = [...root.querySelectorAll("[data-filter]")];
    this.retryAll = part("retry-all-failed");
    this.pageInfo = part("page-info");
    this.newer = part("page-newer");
    this.older = part("page-older");
    this.pageSize = part("page-size");
    this.rows = new Map();
    this.editing = new Set();
    this.query = "";
    this.filter = "all";
    this.page = 0;
    this.perPage = PAGE_SIZES[0];
    this.more = false; // the server has older contacts than those read
    this.counts = null;
    const rowActions = new RowActions(this, users);
    this.on = {
      details: (id) => actions.details(id),
      edit: (id) => rowActions.start(id),
      cancel: (id) => rowActions.stop(id),
      save: (event, id) => rowActions.save(event, id),
      retry: (button, id) => rowActions.retry(button, id),
      remove: (id) => rowActions.remove(id),
      dismiss: (conflict) => conflicts.dismiss(conflict),
    };
    this.form.addEventListener("submit", (event) => this.create(event));
    let typing;
    this.search.addEventListener("input", () => {
      window.clearTimeout(typing);
      typing = window.setTimeout(() => this.setQuery(this.search.value.trim()), 200);
    });
    for (const button of this.filterButtons) button.addEventListener("click", () => this.setFilter(button.dataset.filter));
    this.retryAll.addEventListener("click", () => this.retryAllFailed());
    this.newer.addEventListener("click", () => this.turn(-1));
    this.older.addEventListener("click", () => this.turn(1));
    this.pageSize.addEventListener("change", () => this.setPageSize(Number(this.pageSize.value)));
    users.subscribe((user, previous, bulk) => this.changed(user, previous, bulk));
    conflicts.subscribe(() => this.render());
  }

  changed(user, previous, bulk) {
    if (!user) {
      this.rows.get(previous.id)?.remove();
      this.rows.delete(previous.id);
      this.editing.delete(previous.id);
      this.renderSoon();
      return;
    }
    if (!bulk) this.renderSoon();
    if (previous && previous.sync_status !== user.sync_status) {
      const who = user.name || user.email;
      announce(user.sync_status === "failed"
        ? `${who} failed to sync: ${user.last_error || "unknown error"}`
        : `${who} is now ${user.sync_status}.`);
    }
  }

  setQuery(query) {
    if (query === this.query) return;
    this.query = query;
    this.page = 0;
    this.render();
    if (query) this.actions.search({ q: query });
  }

  setFilter(filter) {
    this.filter = FILTERS.includes(filter) ? filter : "all";
    this.page = 0;
    for (const button of this.filterButtons) setAttr(button, "aria-pressed", String(button.dataset.filter === this.filter));
    this.render();
    // The newest of this status may be older than the contacts read so far: ask the server for them too.
    if (this.filter !== "all" && this.more) this.actions.search({ sync_status: this.filter });
  }

  async turn(step) {
    const target = Math.max(0, this.page + step);
    // Past the contacts read so far: read older ones first (the button stays enabled while there are more).
    if (step > 0 && this.more && (target + 1) * this.perPage > this.visible().length) {
      this.older.disabled = true;
      await this.actions.older();
    }
    this.page = target;
    this.render();
    this.body.closest("section").scrollIntoView({ block: "start" });
  }

  setPageSize(size) {
    const first = this.page * this.perPage; // keep the first contact shown in view
    this.perPage = PAGE_SIZES.includes(size) ? size : PAGE_SIZES[0];
    this.page = Math.floor(first / this.perPage);
    this.render();
  }

  /** Whether the server has older contacts than those read: the pager then offers them. */
  setMore(more) {
    this.more = more;
    this.render();
  }

  /** The server's counts per status (GET /status): they count every contact, not just those loaded here. */
  setCounts(counts) {
    this.counts = counts;
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    for (const button of this.filterButtons) {
      const filter = button.dataset.filter;
      const count = filter === "all" ? total : counts[filter] ?? 0;
      setText(button.querySelector(".count"), `(${count})`);
      setAttr(button, "aria-label", `${button.firstChild.textContent.trim()}: ${count}`);
    }
    this.retryAll.disabled = !(counts.failed > 0);
    if (this.more) this.render(); // the page info counts contacts not read yet
  }

  /** The contacts to show: matching the search and filter, newest first. */
  visible() {
    return this.users.values()
      .filter((u) => (this.filter === "all" || u.sync_status === this.filter) && matches(u, this.query))
      .sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0));
  }

  /** Render once for a burst of live updates: thousands may arrive at once, and each render sorts them all. */
  renderSoon() {
    this.renderTimer ??= window.setTimeout(() => this.render(), RENDER_DELAY_MS);
  }

  /** Bring the table in line with the records, reusing each contact's row. */
  render() {
    window.clearTimeout(this.renderTimer);
    this.renderTimer = undefined;
    const all = this.visible();
    const pages = Math.max(1, Math.ceil(all.length / this.perPage));
    this.page = Math.min(this.page, pages - 1);
    const start = this.page * this.perPage;
    const shown = all.slice(start, start + this.perPage);
    const count = renderList(this.body, shown, this.rows, buildRow, (row, user) => this.fillRow(row, user));
    this.empty.hidden = count > 0;
    setText(this.empty, this.users.values().length === 0 ? "No contacts yet. Add one above." : "No contacts match.");
    const total = this.total(all.length);
    setText(this.pageInfo, all.length ? `${number(start + 1)}\u2013${number(start + shown.length)} of ${total}` : "");
    this.newer.disabled = this.page === 0;
    this.older.disabled = this.page >= pages - 1 && !this.more;
  }

  /** How many contacts the view holds in all: the server's count where it has one, else those read. */
  total(read) {
    const counted = this.counts && !this.query
      ? (this.filter === "all" ? Object.values(this.counts).reduce((a, b) => a + b, 0) : this.counts[this.filter])
      : undefined;
    if (this.more && counted !== undefined) return number(Math.max(counted, read));
    return `${number(read)}${this.more ? "+" : ""}`;
  }

  fillRow(row, user) {
    fillRow(row, user, { editing: this.editing.has(user.id), conflict: this.conflicts.latest(user.id), on: this.on });
  }

  async retryAllFailed() {
    this.retryAll.disabled = true;
    try {
      const { queued } = await api("POST", "/users/sync-failed");
      announce(`Queued ${queued} failed ${queued === 1 ? "contact" : "contacts"} to sync again.`);
      await this.actions.retried();
    } catch (err) {
      this.retryAll.disabled = false;
      announce(`Could not queue the retries: ${describeError(err)}`);
    }
  }

  async create(event) {
    event.preventDefault();
    const form = this.form;
    clearFieldErrors(form);
    this.formError.textContent = "";
    const body = Object.fromEntries(FIELDS.map((f) => [f, form.elements.namedItem(f).value]));
    const missing = Object.fromEntries(FIELDS.filter((f) => !body[f].trim()).map((f) => [f, "is required"]));
    if (Object.keys(missing).length) {
      reportErrors(form, this.formError, { fields: missing });
      return;
    }
    setBusy(form, true);
    try {
      const user = await api("POST", "/users", body);
      this.users.put(user);
      form.reset();
      form.elements.namedItem("name").focus();
      announce(`Added ${user.name}; sending it to the CRM.`);
    } catch (err) {
      reportErrors(form, this.formError, err);
    } finally {
      setBusy(form, false);
    }
  }

  reset() {
    this.rows.clear();
    this.editing.clear();
    this.body.replaceChildren();
    this.form.reset();
    clearFieldErrors(this.form);
    this.formError.textContent = "";
    this.search.value = "";
    this.query = "";
    this.setFilter("all");
  }
}
