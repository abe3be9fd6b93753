// A contact's detail view: its fields, CRM id, and everything that happened to its sync, in words.

import { api } from "./api.js";
import { conflictSentence } from "./conflicts.js";
import { statusExplanation } from "./contact_rows.js";
import { announce, confirmAction, h, setText, timeElement } from "./dom.js";
import { describeError } from "./forms.js";

const LIFECYCLE = {
  delete_requested: "Delete requested here; the CRM record is being deleted",
  deleted: "Deleted",
  deleted_in_crm: "Deleted in the CRM",
  created_in_crm: "Created in the CRM and brought here",
  linked: "Linked to a CRM record with the same email",
  unlinked: "Unlinked from its CRM record",
  recreated: "Created in the CRM again",
};

function attemptWords(item) {
  const op = { create: "Create in the CRM", update: "Update in the CRM", delete: "Delete in the CRM" }[item.operation]
    || `CRM ${item.operation || "request"}`;
  const outcome = ["success", "ok", "succeeded"].includes(item.outcome) ? "succeeded"
    : String(item.outcome || "ended").replaceAll("_", " ");
  const status = item.http_status ? ` (HTTP ${item.http_status})` : "";
  const took = item.duration_ms !== null && item.duration_ms !== undefined ? ` in ${item.duration_ms} ms` : "";
  return `${op}, try ${item.attempt}: ${outcome}${status}${took}${item.error ? `. ${item.error}` : ""}`;
}

function webhookWords(item) {
  let changed = "";
  try {
    const detail = item.detail ? JSON.parse(item.detail) : null;
    const fields = Object.keys(detail?.changed_fields || {});
    if (fields.length) changed = `; changed ${fields.join(", ")}`;
  } catch {
    changed = item.detail ? `; ${item.detail}` : "";
  }
  return `Change from the CRM (${item.source || "webhook"}): ${String(item.result || "").replaceAll("_", " ")}${changed}`;
}

function lifecycleWords(item) {
  const words = LIFECYCLE[item.event] || String(item.event).replaceAll("_", " ");
  const crm = item.crm_id ? ` (CRM record ${item.crm_id})` : "";
  return `${words}${crm}${item.detail ? `: ${item.detail}` : ""}`;
}

export function historyWords(item) {
  switch (item.type) {
    case "sync_attempt": return attemptWords(item);
    case "webhook_event": return webhookWords(item);
    case "conflict": return conflictSentence(item);
    case "lifecycle": return lifecycleWords(item);
    default: return item.type;
  }
}

export class ContactDetail {
  constructor(dialog, users, conflicts) {
    this.dialog = dialog;
    this.users = users;
    this.conflicts = conflicts;
    this.title = dialog.querySelector('[data-testid="detail-title"]');
    this.body = dialog.querySelector('[data-testid="detail-body"]');
    this.id = null;
    this.reading = null;
    dialog.querySelector('[data-testid="detail-close"]').addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      this.id = null;
    });
    users.subscribe((user, previous) => {
      const id = user?.id ?? previous?.id;
      if (id && id === this.id) this.show();
    });
  }

  open(id) {
    this.id = id;
    this.history = null;
    this.show();
    if (!this.dialog.open) this.dialog.showModal();
  }

  /** Draw the contact as it is now, and read its history again (coalesced: one read at a time). */
  show() {
    const user = this.users.get(this.id);
    if (!user) {
      setText(this.title, "Contact deleted");
      this.body.replaceChildren(h("p", { dataset: { testid: "detail-gone" } }, "This contact no longer exists."));
      return;
    }
    setText(this.title, user.name || user.email);
    this.draw(user);
    this.readHistory();
  }

  readHistory() {
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    const id = this.id;
    this.reading = (async () => {
      try {
        do {
          this.readAgain = false;
          const data = await api("GET", `/users/${encodeURIComponent(id)}/history`);
          if (this.id !== id) return;
          this.history = data.items;
          this.conflicts.fromHistory(id, data.items);
          const user = this.users.get(id);
          if (user) this.draw(user);
        } while (this.readAgain && this.id === id);
      } catch (err) {
        if (this.id === id && err.status !== 404) this.history = { error: describeError(err) };
      } finally {
        this.reading = null;
      }
    })();
  }

  draw(user) {
    const row = (label, value, testid) => [h("dt", {}, label), h("dd", { dataset: { testid } }, value)];
    const fields = h("dl", { class: "detail-fields" },
      row("Name", user.name, "detail-name"), row("Email", user.email, "detail-email"),
      row("Phone", user.phone, "detail-phone"),
      row("Sync status", statusExplanation(user), "detail-status"),
      row("CRM id", user.crm_id || (user.deleted_in_crm ? `none (was ${user.deleted_in_crm.crm_id})` : "none yet"),
        "detail-crm-id"),
      row("Added", timeElement(user.created_at), "detail-created"),
      row("Last synced", timeElement(user.last_synced_at), "detail-last-synced"));
    const parts = [fields];
    if (user.deleted_in_crm) parts.push(this.deletedChoices(user));
    const conflicts = Array.isArray(this.history) ? this.history.filter((i) => i.type === "conflict") : [];
    if (conflicts.length) {
      parts.push(h("h3", {}, "Conflicts"), h("ul", { class: "detail-conflicts" },
        conflicts.map((c) => h("li", { class: "notice notice-warn", dataset: { testid: "detail-conflict" } },
          conflictSentence(c)))));
    }
    parts.push(h("h3", {}, "History"), this.historyList());
    this.body.replaceChildren(...parts);
  }

  deletedChoices(user) {
    const who = user.name || user.email;
    return h("div", { class: "notice notice-warn choices", dataset: { testid: "detail-deleted-in-crm" } },
      h("p", {}, `${who} was deleted in the CRM (record ${user.deleted_in_crm.crm_id}). What should happen here?`),
      h("div", { class: "row-buttons" },
        h("button", { type: "button", dataset: { testid: "detail-recreate" }, onclick: (e) => this.recreate(e, user) },
          "Create it in the CRM again"),
        h("button", { type: "button", class: "button-danger", dataset: { testid: "detail-delete-here" },
          onclick: () => this.deleteHere(user) }, "Delete it here")));
  }

  historyList() {
    if (this.history === null) return h("p", { class: "muted" }, "Reading the history…");
    if (!Array.isArray(this.history)) return h("p", { class: "form-error" }, this.history.error);
    if (!this.history.length) return h("p", { class: "muted" }, "Nothing has happened yet.");
    return h("ol", { class: "history", dataset: { testid: "detail-history" } },
      this.history.map((item) => h("li", { dataset: { testid: "history-item", type: item.type } },
        timeElement(item.at), " ", h("span", {}, historyWords(item)))));
  }

  async recreate(event, user) {
    event.currentTarget.disabled = true;
    try {
      this.users.put(await api("POST", `/users/${encodeURIComponent(user.id)}/sync`));
      announce(`Creating ${user.name} in the CRM again.`);
    } catch (err) {
      announce(`Could not queue it: ${describeError(err)}`);
      this.show();
    }
  }

  async deleteHere(user) {
    if (!(await confirmAction(`Delete ${user.name} (${user.email}) here? The CRM no longer has it.`))) return;
    try {
      const reply = await api("DELETE", `/users/${encodeURIComponent(user.id)}`);
      if (reply) this.users.put(reply);
      else this.users.remove(user.id);
      announce(`Deleted ${user.name}.`);
      if (!reply) this.dialog.close();
    } catch (err) {
      announce(`Could not delete ${user.name}: ${describeError(err)}`);
    }
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }
}
