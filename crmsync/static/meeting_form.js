// A meeting's fields as a form reads them: checked in people's words before anything is sent.

import { h } from "./dom.js";

/** An ISO time as the value of a datetime-local input, in the browser's time zone. */
export function toLocalInput(iso) {
  if (!iso) return "";
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())}`
    + `T${pad(moment.getHours())}:${pad(moment.getMinutes())}`;
}

/**
 * {body, errors} from a meeting form: title, starts_at, ends_at (null when cleared on an edit) and the
 * chosen attendees; errors are reasons per field, said after the field's label ("is required").
 */
export function readMeetingForm(form, editing = false) {
  const body = { title: form.elements.namedItem("title").value };
  const errors = {};
  if (!body.title.trim()) errors.title = "is required";
  for (const name of ["starts_at", "ends_at"]) {
    const value = form.elements.namedItem(name).value;
    if (!value) {
      if (editing && name === "ends_at") body.ends_at = null;
      continue;
    }
    const moment = new Date(value); // datetime-local: the browser's time zone
    if (Number.isNaN(moment.getTime())) errors[name] = "is not a date and time";
    else body[name] = moment.toISOString();
  }
  if (!body.starts_at && !errors.starts_at) errors.starts_at = "is required";
  if (body.starts_at && body.ends_at && body.ends_at <= body.starts_at) errors.ends_at = "must be after Starts";
  const select = form.elements.namedItem("attendee_ids");
  body.attendee_ids = [...select.selectedOptions].map((o) => o.value);
  return { body, errors };
}

/** The fields of a meeting's edit form, with ids unique to the meeting. */
export function editFields(meeting, users) {
  const id = (name) => `meeting-edit-${meeting.id}-${name}`;
  const field = (name, label, input, wide = false) => h("div", { class: wide ? "field field-wide" : "field" },
    h("label", { for: id(name) }, label), input,
    h("span", { class: "field-error", id: `${id(name)}-error`, dataset: { errorFor: name } }));
  const input = (name, type, value) => h("input", {
    id: id(name), name, type, value, autocomplete: "off", "aria-describedby": `${id(name)}-error`,
    dataset: { testid: `meeting-edit-${name.replace("_at", "")}` },
  });
  const chosen = new Set(meeting.attendee_ids);
  const select = h("select", { id: id("attendee_ids"), name: "attendee_ids", multiple: true, size: 4,
    "aria-describedby": `${id("attendee_ids")}-error` },
  users.map((u) => h("option", { value: u.id, selected: chosen.has(u.id) }, `${u.name} (${u.email})`)));
  return [
    field("title", "Title", input("title", "text", meeting.title), true),
    field("starts_at", "Starts", input("starts_at", "datetime-local", toLocalInput(meeting.starts_at))),
    field("ends_at", "Ends", input("ends_at", "datetime-local", toLocalInput(meeting.ends_at))),
    field("attendee_ids", "Attendees", select, true),
  ];
}
