// Small DOM helpers. Text always goes in through textContent, never as HTML.

/** Build an element: h("td", {class: "x", dataset: {testid: "y"}}, "text", child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "text") el.textContent = value;
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Set text only when it changed, so live updates do not disturb selection or screen readers. */
export function setText(el, text) {
  const value = text ?? "";
  if (el.textContent !== value) el.textContent = value;
}

/** Set or remove an attribute only when it changed. */
export function setAttr(el, name, value) {
  if (value === null || value === undefined || value === false) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== String(value)) {
    el.setAttribute(name, String(value));
  }
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** An ISO time as local date and time; "" for null. */
export function formatTime(iso) {
  if (!iso) return "";
  const moment = new Date(iso);
  return Number.isNaN(moment.getTime()) ? iso : dateTime.format(moment);
}

/** A <time> element for an ISO time, or an em dash when there is none. */
export function timeElement(iso) {
  if (!iso) return h("span", { class: "muted", "aria-label": "none" }, "—");
  return h("time", { datetime: iso, title: iso }, formatTime(iso));
}

// What people call the API's fields; an API name never reaches the page.
const FIELD_WORDS = {
  name: "Name", email: "Email", phone: "Phone", title: "Title", starts_at: "Starts", ends_at: "Ends",
  attendee_ids: "Attendees", password: "Password", password_confirmation: "Repeat password",
};
// Only the names no sentence would use as words ("email" in a reason is the word, not the field).
const FIELD_NAME = new RegExp(`\\b(${Object.keys(FIELD_WORDS).filter((n) => n.includes("_")).join("|")})\\b`, "g");

/** A field's reason as a sentence: "Email is required", "Ends must not be before Starts". */
export function sayFieldError(label, reason) {
  const words = String(reason).replace(FIELD_NAME, (name) => FIELD_WORDS[name]).replace(/\.$/, "");
  return `${label} ${words}`;
}

/** Show per-field reasons under the inputs they are about; returns the reasons no input of the form took. */
export function showFieldErrors(form, fields = {}) {
  clearFieldErrors(form);
  const rest = {};
  for (const [name, reason] of Object.entries(fields)) {
    const input = fieldOf(form, name);
    const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    if (!slot) {
      rest[name] = reason;
      continue;
    }
    if (input instanceof Element) input.setAttribute("aria-invalid", "true");
    slot.textContent = sayFieldError(labelOf(form, name), reason);
  }
  return rest;
}

export function clearFieldErrors(form) {
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  for (const slot of form.querySelectorAll("[data-error-for]")) slot.textContent = "";
}

/** Every reason in people's words, for a message that is not next to a field. */
export function sayFieldErrors(fields = {}) {
  return Object.entries(fields).map(([name, why]) =>
    name === "body" ? `${String(why).replace(FIELD_NAME, (n) => FIELD_WORDS[n])}.` : `${sayFieldError(FIELD_WORDS[name] || "This", why)}.`)
    .join(" ");
}

/** The input named `name` in a form, or in any other container (a table row edited in place). */
function fieldOf(form, name) {
  return form.elements?.namedItem(name) || form.querySelector(`[name="${CSS.escape(name)}"]`);
}

function labelOf(form, name) {
  const input = fieldOf(form, name);
  const label = input instanceof Element && input.id ? form.querySelector(`label[for="${input.id}"]`) : null;
  // The label without its hint, e.g. "Ends (optional)" is "Ends".
  const text = label ? [...label.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent).join("").trim() : "";
  return text || FIELD_WORDS[name] || "This";
}

/** Ask before something that cannot be undone; resolves true when the person confirmed. */
export function confirmAction(message, action = "Delete") {
  const dialog = document.querySelector('[data-testid="confirm"]');
  dialog.querySelector('[data-testid="confirm-text"]').textContent = message;
  dialog.querySelector('[data-testid="confirm-ok"]').textContent = action;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    dialog.querySelector('[data-testid="confirm-cancel"]').focus();
  });
}

/** Say something to screen readers through the page's polite live region (the last few stay). */
export function announce(message) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.append(h("p", {}, message));
  while (region.childElementCount > 3) region.firstElementChild.remove();
}

/**
 * Bring a container's children in line with records, in order, reusing each record's element:
 * build(id) makes a new one, fill(element, record) updates it. Returns how many records there were.
 */
export function renderList(container, records, elements, build, fill) {
  let before = container.firstElementChild;
  for (const record of records) {
    let element = elements.get(record.id);
    if (!element) {
      element = build(record.id);
      elements.set(record.id, element);
    }
    fill(element, record);
    if (element !== before) container.insertBefore(element, before);
    else before = before.nextElementSibling;
  }
  // Whatever is left was shown before and is not now (filtered out, on another page, deleted).
  while (before) {
    const next = before.nextElementSibling;
    before.remove();
    before = next;
  }
  return records.length;
}
