// Meetings: the form that adds one, and a card per meeting with "Sync to CRM" and its three steps,
// Retry with the time of the next try while a failed step waits; edit and delete are meeting_actions.js.

import { api } from "./api.js";
import { announce, clearFieldErrors, formatTime, h, renderList, setAttr, setText, timeElement } from "./dom.js";
import { describeError, reportErrors, setBusy } from "./forms.js";
import { MeetingActions } from "./meeting_actions.js";
import { readMeetingForm } from "./meeting_form.js";
import { meetingStage } from "./state.js";

const STEPS = [
  { key: "contacts", label: "Contacts", doing: "making sure every attendee is in the CRM" },
  { key: "meeting", label: "Meeting", doing: "creating or updating the meeting in the CRM" },
  { key: "associations", label: "Associations", doing: "linking the attendees to the CRM meeting" },
];

/** Where one step stands: "done", "running", "retrying", "failed" or "waiting". */
function stepState(meeting, index) {
  const running = meeting.in_progress_sync_status;
  const times = meeting.stages?.[STEPS[index].key] || {};
  if (running) {
    if (index + 1 < running) return "done";
    if (index + 1 > running) return "waiting";
    return meeting.next_retry_at ? "retrying" : "running";
  }
  if (times.finished_at) return "done";
  if (times.started_at && meeting.last_sync_success === false) return "failed";
  return "waiting";
}

/** One sentence on where the sync stands, shown under the steps. */
function stageSentence(meeting) {
  const running = meeting.in_progress_sync_status;
  if (running) {
    const base = `Step ${running} of 3: ${STEPS[running - 1].doing}…`;
    return meeting.next_retry_at ? `${base} The last try failed; it will try again.` : base;
  }
  return { done: "Synced to the CRM.", failed: "The sync stopped with an error.", idle: "Not synced yet." }[
    meetingStage(meeting)];
}

export class Meetings {
  constructor(root, meetings, users) {
    this.meetings = meetings;
    this.users = users;
    this.list = root.querySelector('[data-testid="meetings-list"]');
    this.empty = root.querySelector('[data-testid="meetings-empty"]');
    this.form = root.querySelector('[data-testid="meeting-form"]');
    this.formError = root.querySelector('[data-testid="meeting-form-error"]');
    this.attendees = this.form.elements.namedItem("attendee_ids");
    this.cards = new Map();
    this.editing = new Set();
    this.actions = new MeetingActions(this, meetings, users);
    this.form.addEventListener("submit", (event) => this.create(event));
    meetings.subscribe((meeting, previous, bulk) => this.changed(meeting, previous, bulk));
    users.subscribe((user, previous, bulk) => { if (!bulk) this.usersChanged(); });
  }

  changed(meeting, previous, bulk) {
    if (!meeting) {
      this.cards.get(previous.id)?.remove();
      this.cards.delete(previous.id);
      this.editing.delete(previous.id);
      this.render();
      return;
    }
    const card = this.cards.get(meeting.id);
    if (card) this.fillCard(card, meeting);
    else if (!bulk) this.render();
    const stage = meetingStage(meeting);
    if (previous && meetingStage(previous) !== stage) {
      const title = meeting.title;
      if (stage === "done") announce(`${title}: synced to the CRM.`);
      else if (stage === "failed") announce(`${title}: the sync failed. ${meeting.last_sync_error || ""}`);
      else if (stage !== "idle") announce(`${title}: step ${stage} of 3, ${STEPS[Number(stage) - 1].label}.`);
    }
  }

  render() {
    const count = renderList(this.list, this.meetings.values(), this.cards,
      (id) => this.buildCard(id), (card, meeting) => this.fillCard(card, meeting));
    this.empty.hidden = count > 0;
  }

  usersChanged() {
    for (const meeting of this.meetings.values()) {
      const card = this.cards.get(meeting.id);
      if (card) this.fillAttendees(card, meeting);
    }
    this.fillAttendeeOptions();
  }

  buildCard(id) {
    const titleId = `meeting-${id}-title`;
    const steps = h("ol", { class: "steps", dataset: { testid: "meeting-progress" }, "aria-label": "Sync progress" },
      STEPS.map((step, i) => h("li", { class: "step", dataset: { step: step.key, testid: `meeting-step-${i + 1}` },
        title: `Step ${i + 1}: ${step.doing}` },
      h("span", { class: "step-number", "aria-hidden": "true" }, String(i + 1)),
      h("span", { class: "step-label" }, step.label),
      h("span", { class: "visually-hidden step-state" }))));
    return h("li", { class: "card meeting", dataset: { testid: "meeting-card", id }, "aria-labelledby": titleId },
      h("div", { class: "meeting-head" },
        h("div", {},
          h("h3", { id: titleId, dataset: { testid: "meeting-title" } }),
          h("p", { class: "muted", dataset: { testid: "meeting-when" } }),
          h("p", { class: "attendees", dataset: { testid: "meeting-attendees" } })),
        h("div", { class: "row-buttons meeting-buttons" },
          h("button", { type: "button", dataset: { testid: "meeting-sync" }, onclick: () => this.sync(id) },
            "Sync to CRM"),
          h("button", { type: "button", class: "button-secondary", dataset: { testid: "meeting-edit" },
            onclick: () => this.actions.start(id) }, "Edit"),
          h("button", { type: "button", class: "button-danger", dataset: { testid: "meeting-delete" },
            onclick: () => this.actions.remove(id) }, "Delete"))),
      h("div", { class: "meeting-edit", dataset: { testid: "meeting-edit-slot" } }),
      steps,
      h("p", { class: "stage-text", dataset: { testid: "meeting-stage-text" } }),
      h("p", { class: "result", dataset: { testid: "meeting-result" } }),
      h("p", { class: "muted crm-id", dataset: { testid: "meeting-crm-id" } }));
  }

  fillCard(card, meeting) {
    const part = (name) => card.querySelector(`[data-testid="${name}"]`);
    const stage = meetingStage(meeting);
    setAttr(card, "data-stage", stage);
    setText(part("meeting-title"), meeting.title);
    const when = formatTime(meeting.starts_at) + (meeting.ends_at ? ` – ${formatTime(meeting.ends_at)}` : "");
    setText(part("meeting-when"), when);
    this.fillAttendees(card, meeting);
    const progress = part("meeting-progress");
    setAttr(progress, "data-stage", stage);
    STEPS.forEach((step, i) => {
      const item = progress.children[i];
      const state = stepState(meeting, i);
      setAttr(item, "data-state", state);
      setAttr(item, "aria-current", state === "running" || state === "retrying" ? "step" : null);
      setText(item.querySelector(".step-state"), ` (${state})`);
    });
    setText(part("meeting-stage-text"), stageSentence(meeting));
    this.fillResult(part("meeting-result"), meeting);
    setText(part("meeting-crm-id"), meeting.crm_meeting_id ? `CRM meeting id ${meeting.crm_meeting_id}` : "");
    const button = part("meeting-sync");
    const running = Boolean(meeting.in_progress_sync_status);
    // aria-disabled rather than disabled: the button keeps keyboard focus while the sync runs.
    setAttr(button, "aria-disabled", running ? "true" : null);
    const label = running ? "Syncing…" : stage === "failed" ? "Retry" : "Sync to CRM";
    setText(button, label);
    setAttr(button, "aria-label", `${label} ${meeting.title}`);
    for (const name of ["meeting-edit", "meeting-delete"]) {
      setAttr(part(name), "aria-label", `${name === "meeting-edit" ? "Edit" : "Delete"} ${meeting.title}`);
    }
  }

  fillResult(el, meeting) {
    const running = Boolean(meeting.in_progress_sync_status);
    let key;
    let children;
    if (meeting.last_sync_success === false && !running) {
      key = `failed:${meeting.last_sync_at}:${meeting.last_sync_error}`;
      children = [
        h("span", { class: "result-label result-failed" }, "Last sync failed"),
        meeting.last_sync_at ? ` at ${formatTime(meeting.last_sync_at)}: ` : ": ",
        h("span", { class: "error-text", dataset: { testid: "meeting-error" } },
          meeting.last_sync_error || "unknown error"),
      ];
    } else if (meeting.next_retry_at) {
      key = `retrying:${meeting.last_sync_error}:${meeting.next_retry_at}`;
      children = [
        h("span", { class: "result-label result-retrying" }, "Last try failed"),
        ": ",
        h("span", { class: "error-text", dataset: { testid: "meeting-retry-error" } }, meeting.last_sync_error || ""),
        h("span", { class: "next-try", dataset: { testid: "meeting-next-retry" } },
          // The time may have passed while the page waited for news: the try is then under way.
          ...(Date.parse(meeting.next_retry_at) > Date.now()
            ? [" Next try at ", timeElement(meeting.next_retry_at), "."] : [" Trying again now."])),
      ];
    } else if (running && meeting.last_sync_success === false) {
      key = "running-again";
      children = ["Syncing again after a failed sync."];
    } else if (meeting.last_sync_success === true) {
      key = `ok:${meeting.last_sync_at}`;
      children = [h("span", { class: "result-label result-ok" }, "Last sync succeeded"),
        ` at ${formatTime(meeting.last_sync_at)}`];
    } else {
      key = "none";
      children = ["Never synced."];
    }
    if (el.dataset.key !== key) {
      el.dataset.key = key;
      el.replaceChildren(...children);
    }
  }

  fillAttendees(card, meeting) {
    const names = meeting.attendee_ids.map((id) => {
      const user = this.users.get(id);
      return user ? user.name || user.email : "unknown contact";
    });
    setText(card.querySelector('[data-testid="meeting-attendees"]'),
      names.length ? `Attendees: ${names.join(", ")}` : "No attendees");
  }

  fillAttendeeOptions() {
    const select = this.attendees;
    const chosen = new Set([...select.selectedOptions].map((o) => o.value));
    const users = this.users.values();
    const wanted = users.map((u) => `${u.id}\u0000${u.name} (${u.email})`).join("\n");
    if (select.dataset.options === wanted) return;
    select.dataset.options = wanted;
    select.replaceChildren(...users.map((u) => h("option", { value: u.id, selected: chosen.has(u.id) },
      `${u.name} (${u.email})`)));
  }

  async sync(id) {
    const meeting = this.meetings.get(id);
    if (!meeting || meeting.in_progress_sync_status) return;
    // The server starts at step 1 before it answers; show that now rather than after the reply.
    const now = new Date().toISOString();
    const previous = this.meetings.guess({
      ...meeting, in_progress_sync_status: 1, stage: "contacts",
      stages: { contacts: { started_at: now, finished_at: null }, meeting: {}, associations: {} },
    });
    try {
      this.meetings.put(await api("POST", `/meetings/${encodeURIComponent(id)}/sync`));
    } catch (err) {
      if (previous) this.meetings.restore(previous);
      const message = `Could not start the sync: ${describeError(err)}`;
      announce(message);
      const card = this.cards.get(id);
      if (card) setText(card.querySelector('[data-testid="meeting-stage-text"]'), message);
    }
  }

  async create(event) {
    event.preventDefault();
    const form = this.form;
    clearFieldErrors(form);
    this.formError.textContent = "";
    const { body, errors } = readMeetingForm(form);
    if (Object.keys(errors).length) {
      reportErrors(form, this.formError, { fields: errors });
      return;
    }
    setBusy(form, true);
    try {
      const meeting = await api("POST", "/meetings", body);
      this.meetings.put(meeting);
      form.reset();
      for (const option of this.attendees.options) option.selected = false;
      announce(`Added the meeting ${meeting.title}.`);
    } catch (err) {
      reportErrors(form, this.formError, err);
    } finally {
      setBusy(form, false);
    }
  }

  reset() {
    this.cards.clear();
    this.editing.clear();
    this.list.replaceChildren();
    this.form.reset();
    clearFieldErrors(this.form);
    this.formError.textContent = "";
  }
}
