// A contact's row: built once, then filled from the user's latest state (only what changed is touched).
// On a narrow screen the same row is a card (style.css); each cell carries its label for that.

import { conflictSentence } from "./conflicts.js";
import { formatTime, h, setAttr, setText, timeElement } from "./dom.js";

export const FIELDS = ["name", "email", "phone"];

/** The tooltip of a status badge: what the status means for this contact. */
export function statusExplanation(user) {
  switch (user.sync_status) {
    case "pending":
      return "pending: saved here, waiting to reach the CRM";
    case "synced":
      if (!user.last_synced_at) return "synced: the CRM has exactly this";
      return `synced: the CRM has exactly this (last synced ${formatTime(user.last_synced_at)})`;
    case "deleting":
      return "deleting: its CRM record is being deleted; then it is removed here";
    case "failed": {
      if (user.deleted_in_crm) {
        return "failed: deleted in the CRM; open Details to create it in the CRM again or delete it here";
      }
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

export function buildRow(id) {
  const cell = (name, label) => h("td", { dataset: { testid: `contact-${name}`, label } });
  const status = h("td", { class: "status", dataset: { testid: "contact-state", label: "Sync status" } },
    h("span", { class: "badge", dataset: { testid: "contact-badge" } }),
    // The tooltip is for the mouse; screen readers get the same words here.
    h("span", { class: "visually-hidden", dataset: { testid: "contact-status-explanation" } }),
    h("p", { class: "row-error", dataset: { testid: "contact-error" } }),
    h("p", { class: "row-note muted", dataset: { testid: "contact-next-retry" } }),
    h("div", { class: "row-notices", dataset: { testid: "contact-notices" } }),
    h("p", { class: "row-note mono muted", dataset: { testid: "contact-crm-id" } }));
  return h("tr", { dataset: { testid: "contact-row", id } },
    cell("name", "Name"), cell("email", "Email"), cell("phone", "Phone"), status,
    h("td", { class: "actions", dataset: { testid: "contact-actions" } }));
}

/**
 * Show the user in its row. view: {editing, conflict (the CRM-won conflict to notice, or undefined),
 * on: {details, retry, edit, remove, save, cancel, dismiss}}.
 */
export function fillRow(row, user, view) {
  const cells = Object.fromEntries([...row.children].map((td) => [td.dataset.testid.slice(8), td]));
  setAttr(row, "data-status", user.sync_status);
  setAttr(row, "data-deleted-in-crm", user.deleted_in_crm ? "true" : null);
  if (!view.editing) {
    for (const field of FIELDS) setText(cells[field], user[field]);
  }
  const part = (testid) => cells.state.querySelector(`[data-testid="${testid}"]`);
  const badge = part("contact-badge");
  const explanation = statusExplanation(user);
  setText(badge, user.deleted_in_crm ? "deleted in the CRM" : user.sync_status);
  setAttr(badge, "class", `badge badge-${user.sync_status}`);
  setAttr(badge, "data-status", user.sync_status);
  setAttr(badge, "title", explanation);
  setText(part("contact-status-explanation"), ` (${explanation})`);
  setText(part("contact-error"), user.deleted_in_crm ? "" : user.last_error || "");
  const retry = part("contact-next-retry");
  if ((retry.dataset.value ?? "") !== (user.next_retry_at || "")) {
    retry.dataset.value = user.next_retry_at || "";
    retry.replaceChildren(...(user.next_retry_at ? ["Next retry ", timeElement(user.next_retry_at)] : []));
  }
  setText(part("contact-crm-id"), user.crm_id ? `CRM id ${user.crm_id}` : "");
  fillNotices(part("contact-notices"), user, view);
  fillActions(cells.actions, user, view);
}

function fillNotices(box, user, { conflict, on }) {
  const key = `${user.deleted_in_crm ? "gone" : ""}|${conflict ? conflict.key : ""}`;
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  const notices = [];
  if (user.deleted_in_crm) {
    notices.push(h("p", { class: "notice notice-warn", dataset: { testid: "contact-deleted-notice" } },
      "Deleted in the CRM. Retry creates it there again; Delete removes it here."));
  }
  if (conflict) {
    notices.push(h("p", { class: "notice notice-warn", dataset: { testid: "contact-conflict" } },
      conflictSentence(conflict), " ",
      h("button", { type: "button", class: "link-button", onclick: () => on.dismiss(conflict),
        "aria-label": `Dismiss the notice about ${user.name}` }, "Dismiss")));
  }
  box.replaceChildren(...notices);
}

function fillActions(cell, user, { editing, on }) {
  const want = editing ? "editing" : `view:${user.sync_status}`;
  if (cell.dataset.mode === want) return;
  cell.dataset.mode = want;
  if (editing) {
    const form = h("form", {
      id: `edit-${user.id}`, class: "row-form", novalidate: true, onsubmit: (e) => on.save(e, user.id),
    });
    form.append(
      h("button", { type: "submit", dataset: { testid: "contact-save" } }, "Save"),
      h("button", { type: "button", class: "button-secondary", onclick: () => on.cancel(user.id) }, "Cancel"),
      h("p", { class: "form-error", role: "alert", dataset: { testid: "contact-edit-error" } }));
    cell.replaceChildren(form);
    return;
  }
  const who = user.name || user.email;
  const button = (label, testid, onclick, kind = "button-secondary") => h("button", {
    type: "button", class: kind, "aria-label": `${label} ${who}`, dataset: { testid }, onclick,
  }, label);
  const buttons = [button("Details", "contact-details", () => on.details(user.id))];
  if (user.sync_status === "failed") {
    buttons.push(h("button", {
      type: "button", "aria-label": `Retry syncing ${who}`, dataset: { testid: "contact-retry" },
      onclick: (e) => on.retry(e.currentTarget, user.id),
    }, "Retry"));
  }
  if (user.sync_status !== "deleting") {
    buttons.push(button("Edit", "contact-edit", () => on.edit(user.id)));
    buttons.push(button("Delete", "contact-delete", () => on.remove(user.id), "button-danger"));
  }
  cell.replaceChildren(h("div", { class: "row-buttons" }, buttons));
}
