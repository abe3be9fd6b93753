// Acting on one contact's row: edit it in place (errors under the field that is wrong), Retry, Delete.

import { api } from "./api.js";
import { FIELDS } from "./contact_rows.js";
import { announce, confirmAction, h } from "./dom.js";
import { describeError, reportErrors, setBusy } from "./forms.js";

const LABELS = { name: "Name", email: "Email", phone: "Phone" };

export class RowActions {
  /** list: the contacts list, whose rows, editing set and fillRow(row, user) these actions use. */
  constructor(list, users) {
    this.list = list;
    this.users = users;
  }

  start(id) {
    const row = this.list.rows.get(id);
    const user = this.users.get(id);
    if (!row || !user) return;
    this.list.editing.add(id);
    this.list.fillRow(row, user);
    for (const field of FIELDS) {
      const cell = row.querySelector(`[data-testid="contact-${field}"]`);
      const errorId = `edit-${id}-${field}-error`;
      const input = h("input", {
        name: field, form: `edit-${id}`, value: user[field], "aria-label": `${LABELS[field]} of ${user.name}`,
        type: field === "email" ? "email" : field === "phone" ? "tel" : "text", "aria-describedby": errorId,
        dataset: { testid: `contact-edit-${field}` },
        onkeydown: (e) => { if (e.key === "Escape") this.stop(id); },
      });
      cell.replaceChildren(input, h("span", {
        class: "field-error", id: errorId, dataset: { errorFor: field, testid: `contact-edit-${field}-error` },
      }));
    }
    row.querySelector('[data-testid="contact-edit-name"]').focus();
  }

  stop(id) {
    this.list.editing.delete(id);
    const row = this.list.rows.get(id);
    const user = this.users.get(id);
    if (row && user) {
      this.list.fillRow(row, user);
      row.querySelector('[data-testid="contact-edit"]')?.focus();
    }
  }

  async save(event, id) {
    event.preventDefault();
    const form = event.currentTarget;
    const row = this.list.rows.get(id);
    const current = this.users.get(id);
    const changes = {};
    const missing = {};
    for (const field of FIELDS) {
      const value = row.querySelector(`[data-testid="contact-edit-${field}"]`).value;
      if (!value.trim()) missing[field] = "is required";
      if (value !== current[field]) changes[field] = value;
    }
    const error = form.querySelector('[data-testid="contact-edit-error"]');
    // The inputs belong to the form through form=, but live in other cells: look for them in the row.
    if (Object.keys(missing).length) {
      reportErrors(row, error, { fields: missing });
      return;
    }
    if (Object.keys(changes).length === 0) {
      this.stop(id);
      return;
    }
    setBusy(form, true);
    try {
      const user = await api("PATCH", `/users/${encodeURIComponent(id)}`, changes);
      this.list.editing.delete(id);
      this.users.put(user);
      this.list.fillRow(row, this.users.get(id));
      row.querySelector('[data-testid="contact-edit"]')?.focus();
      announce(`Saved ${user.name}; sending the change to the CRM.`);
    } catch (err) {
      setBusy(form, false);
      reportErrors(row, error, err);
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

  async remove(id) {
    const user = this.users.get(id);
    if (!user) return;
    const where = user.crm_id ? "here and in the CRM" : "here";
    if (!(await confirmAction(`Delete ${user.name} (${user.email})? It is deleted ${where}; this cannot be undone.`))) {
      return;
    }
    try {
      const reply = await api("DELETE", `/users/${encodeURIComponent(id)}`);
      if (reply) this.users.put(reply);
      else this.users.remove(id);
      announce(reply ? `Deleting ${user.name} in the CRM.` : `Deleted ${user.name}.`);
    } catch (err) {
      if (err.status === 404) this.users.remove(id);
      else announce(`Could not delete ${user.name}: ${describeError(err)}`);
    }
  }
}
