// Acting on one meeting's card: edit it in place (errors under the field that is wrong), delete it.

import { api } from "./api.js";
import { announce, clearFieldErrors, confirmAction, h } from "./dom.js";
import { describeError, reportErrors, setBusy } from "./forms.js";
import { editFields, readMeetingForm } from "./meeting_form.js";

export class MeetingActions {
  /** list: the meetings list, whose cards and editing set these actions use. */
  constructor(list, meetings, users) {
    this.list = list;
    this.meetings = meetings;
    this.users = users;
  }

  start(id) {
    const meeting = this.meetings.get(id);
    const card = this.list.cards.get(id);
    if (!meeting || !card) return;
    this.list.editing.add(id);
    const slot = card.querySelector('[data-testid="meeting-edit-slot"]');
    const error = h("p", { class: "form-error", role: "alert", dataset: { testid: "meeting-edit-error" } });
    const form = h("form", { class: "inline-form edit-form", novalidate: true, dataset: { testid: "meeting-edit-form" },
      onsubmit: (e) => this.save(e, id) },
    editFields(meeting, this.users.values()),
    h("div", { class: "form-actions row-buttons" },
      h("button", { type: "submit", dataset: { testid: "meeting-save" } }, "Save"),
      h("button", { type: "button", class: "button-secondary", onclick: () => this.stop(id) }, "Cancel")),
    error);
    slot.replaceChildren(form);
    form.elements.namedItem("title").focus();
  }

  stop(id) {
    this.list.editing.delete(id);
    const card = this.list.cards.get(id);
    if (!card) return;
    card.querySelector('[data-testid="meeting-edit-slot"]').replaceChildren();
    card.querySelector('[data-testid="meeting-edit"]').focus();
  }

  async save(event, id) {
    event.preventDefault();
    const form = event.currentTarget;
    const error = form.querySelector('[data-testid="meeting-edit-error"]');
    clearFieldErrors(form);
    error.textContent = "";
    const { body, errors } = readMeetingForm(form, true);
    if (Object.keys(errors).length) {
      reportErrors(form, error, { fields: errors });
      return;
    }
    setBusy(form, true);
    try {
      this.meetings.put(await api("PATCH", `/meetings/${encodeURIComponent(id)}`, body));
      this.stop(id);
      announce(`Saved the meeting ${body.title}.`);
    } catch (err) {
      setBusy(form, false);
      reportErrors(form, error, err);
    }
  }

  async remove(id) {
    const meeting = this.meetings.get(id);
    if (!meeting) return;
    if (!(await confirmAction(`Delete the meeting ${meeting.title}? It is deleted here; this cannot be undone.`))) return;
    try {
      await api("DELETE", `/meetings/${encodeURIComponent(id)}`);
      this.meetings.remove(id);
      announce(`Deleted the meeting ${meeting.title}.`);
    } catch (err) {
      if (err.status === 404) this.meetings.remove(id);
      else announce(`Could not delete the meeting: ${describeError(err)}`);
    }
  }
}
