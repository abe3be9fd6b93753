// The contacts table (status badges, inline edit, Retry) and the form that adds a contact.

import { api, ApiError } from "./api.js";
import {
  announce, clearFieldErrors, formatTime, h, renderList, setAttr, setText, showFieldErrors, timeElement,
} from "./dom.js";

const FIELDS = ["name", "email", "phone"];
const LABELS = { name: "Name", email: "Email", phone: "Phone" };

/** The tooltip of a status badge: what the status means for this contact. */
export function statusExplanation(user) {
  switch (user.sync_status) {
    case "pending":
      return "pending: saved here, waiting to reach the CRM";
    case "synced":
      if (!user.last_synced_at) return "synced: the CRM has exactly this";
      return `synced: the CRM has exactly this (last synced ${formatTime(user.last_synced_at)})`;
    case "failed": {
      const reason = (user.last_error || "the CRM did not take the last change").replace(/\.$/, "");
      const next = user.next_retry_at
        ? `next retry at ${formatTime(user.next_retry_at)}, or re-queue now with Retry`
        : "no automatic retry is left; re-queue with Retry";
      return `failed: ${reason}; ${next}`;
    }
    default:
      return user.sync_status;
  }
}

export class Contacts {
  constructor(root, users) {
    this.users = users;
    this.body = root.querySelector('[data-testid="contacts-body"]');
    this.empty = root.querySelector('[data-testid="contacts-empty"]');
    this.form = root.querySelector('[data-testid="contact-form"]');
    this.formError = root.querySelector('[data-testid="contact-form-error"]');
    this.rows = new Map();
    this.editing = new Set();
    this.form.addEventListener("submit", (event) => this.create(event));
    users.subscribe((user, previous, bulk) => this.changed(user, previous, bulk));
  }

  changed(user, previous, bulk) {
    const row = this.rows.get(user.id);
    if (previous && row) this.fillRow(row, user);
    else if (!bulk) this.render();
    if (previous && previous.sync_status !== user.sync_status) {
      const who = user.name || user.email;
      announce(user.sync_status === "failed"
        ? `${who} failed to sync: ${user.last_error || "unknown error"}`
        : `${who} is now ${user.sync_status}.`);
    }
  }

  /** Bring the table in line with the records, reusing each contact's row. */
  render() {
    const count = renderList(this.body, this.users.values(), this.rows,
      (id) => this.buildRow(id), (row, user) => this.fillRow(row, user));
    this.empty.hidden = count > 0;
  }

  buildRow(id) {
    const cell = (name) => h("td", { dataset: { testid: `contact-${name}` } });
    const row = h("tr", { dataset: { testid: "contact-row", id } },
      cell("name"), cell("email"), cell("phone"), cell("status"), cell("crm-id"), cell("error"),
      cell("next-retry"), h("td", { class: "actions", dataset: { testid: "contact-actions" } }));
    return row;
  }

  fillRow(row, user) {
    const cells = Object.fromEntries([...row.children].map((td) => [td.dataset.testid.slice(8), td]));
    setAttr(row, "data-status", user.sync_status);
    if (!this.editing.has(user.id)) {
      for (const field of FIELDS) setText(cells[field], user[field]);
    }
    const explanation = statusExplanation(user);
    if (!cells.status.firstChild) {
      cells.status.append(
        h("span", { class: "badge", dataset: { testid: "contact-badge" } }),
        // The tooltip is for the mouse; screen readers get the same words here.
        h("span", { class: "visually-hidden", dataset: { testid: "contact-status-explanation" } }));
    }
    const [badge, spoken] = cells.status.children;
    setText(badge, user.sync_status);
    setAttr(badge, "class", `badge badge-${user.sync_status}`);
    setAttr(badge, "data-status", user.sync_status);
    setAttr(badge, "title", explanation);
    setText(spoken, ` (${explanation})`);
    setText(cells["crm-id"], user.crm_id || "");
    setAttr(cells["crm-id"], "class", user.crm_id ? "mono" : null);
    setText(cells.error, user.last_error || "");
    const retryCell = cells["next-retry"];
    if ((retryCell.dataset.value ?? "") !== (user.next_retry_at || "")) {
      retryCell.dataset.value = user.next_retry_at || "";
      retryCell.replaceChildren(...(user.next_retry_at ? [timeElement(user.next_retry_at)] : []));
    }
    this.fillActions(cells.actions, user);
  }

  fillActions(cell, user) {
    const editing = this.editing.has(user.id);
    const want = editing ? "editing" : `view:${user.sync_status === "failed"}`;
    if (cell.dataset.mode === want) return;
    cell.dataset.mode = want;
    if (editing) {
      const formId = `edit-${user.id}`;
      const form = h("form", {
        id: formId, class: "row-form", novalidate: true, onsubmit: (e) => this.save(e, user.id),
      });
      const error = h("p", { class: "form-error", role: "alert", dataset: { testid: "contact-edit-error" } });
      form.append(
        h("button", { type: "submit", dataset: { testid: "contact-save" } }, "Save"),
        h("button", { type: "button", class: "button-secondary", onclick: () => this.stopEditing(user.id) }, "Cancel"),
        error);
      cell.replaceChildren(form);
      return;
    }
    const who = user.name || user.email;
    const buttons = [h("button", {
      type: "button", class: "button-secondary", "aria-label": `Edit ${who}`, dataset: { testid: "contact-edit" },
      onclick: () => this.startEditing(user.id),
    }, "Edit")];
    if (user.sync_status === "failed") {
      buttons.push(h("button", {
        type: "button", "aria-label": `Retry syncing ${who}`, dataset: { testid: "contact-retry" },
        onclick: (e) => this.retry(e.currentTarget, user.id),
      }, "Retry"));
    }
    cell.replaceChildren(...buttons);
  }

  startEditing(id) {
    const row = this.rows.get(id);
    const user = this.users.get(id);
    if (!row || !user) return;
    this.editing.add(id);
    for (const field of FIELDS) {
      const cell = row.querySelector(`[data-testid="contact-${field}"]`);
      const input = h("input", {
        name: field, form: `edit-${id}`, value: user[field], "aria-label": `${LABELS[field]} of ${user.name}`,
        type: field === "email" ? "email" : field === "phone" ? "tel" : "text",
        dataset: { testid: `contact-edit-${field}` },
        onkeydown: (e) => { if (e.key === "Escape") this.stopEditing(id); },
      });
      cell.replaceChildren(input);
    }
    this.fillRow(row, user);
    row.querySelector('[data-testid="contact-edit-name"]').focus();
  }

  stopEditing(id) {
    this.editing.delete(id);
    const row = this.rows.get(id);
    if (row) {
      this.fillRow(row, this.users.get(id));
      row.querySelector('[data-testid="contact-edit"]')?.focus();
    }
  }

  async save(event, id) {
    event.preventDefault();
    const form = event.currentTarget;
    const row = this.rows.get(id);
    const current = this.users.get(id);
    const changes = {};
    for (const field of FIELDS) {
      const value = row.querySelector(`[data-testid="contact-edit-${field}"]`).value;
      if (value !== current[field]) changes[field] = value;
    }
    if (Object.keys(changes).length === 0) {
      this.stopEditing(id);
      return;
    }
    const error = form.querySelector('[data-testid="contact-edit-error"]');
    setBusy(form, true);
    try {
      const user = await api("PATCH", `/users/${encodeURIComponent(id)}`, changes);
      this.editing.delete(id);
      this.users.put(user);
      this.fillRow(row, this.users.get(id));
      row.querySelector('[data-testid="contact-edit"]')?.focus();
      announce(`Saved ${user.name}; sending the change to the CRM.`);
    } catch (err) {
      setBusy(form, false);
      for (const input of row.querySelectorAll("input")) {
        setAttr(input, "aria-invalid", err.fields?.[input.name] ? "true" : null);
      }
      const reasons = Object.entries(err.fields || {})
        .map(([field, why]) => `${LABELS[field] || field} ${String(why).replace(/\.$/, "")}.`);
      error.textContent = reasons.length ? reasons.join(" ") : describeError(err);
      row.querySelector('input[aria-invalid="true"]')?.focus();
    }
  }

  async retry(button, id) {
    button.disabled = true;
    try {
      this.users.put(await api("POST", `/users/${encodeURIComponent(id)}/sync`));
    } catch (err) {
      button.disabled = false;
      announce(`Could not queue the retry: ${describeError(err)}`);
    }
  }

  async create(event) {
    event.preventDefault();
    const form = this.form;
    clearFieldErrors(form);
    this.formError.textContent = "";
    const body = Object.fromEntries(FIELDS.map((f) => [f, form.elements.namedItem(f).value]));
    setBusy(form, true);
    try {
      const user = await api("POST", "/users", body);
      this.users.put(user);
      form.reset();
      form.elements.namedItem("name").focus();
      announce(`Added ${user.name}; sending it to the CRM.`);
    } catch (err) {
      if (!showFieldErrors(form, err.fields)) this.formError.textContent = describeError(err);
      else form.querySelector('[aria-invalid="true"]')?.focus();
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
  }
}

/** A sentence for an API error, with the per-field reasons when there are any. */
export function describeError(err) {
  if (!(err instanceof ApiError)) return String(err?.message || err);
  const reasons = Object.entries(err.fields || {}).map(([field, reason]) => `${field} ${reason}`);
  return reasons.length ? `${err.message} ${reasons.join("; ")}.` : err.message;
}

export function setBusy(form, busy) {
  form.toggleAttribute("aria-busy", busy);
  for (const button of form.querySelectorAll("button")) button.disabled = busy;
}
