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

/** Show the API's per-field reasons next to the form's inputs; returns true if any was shown. */
export function showFieldErrors(form, fields = {}) {
  clearFieldErrors(form);
  let shown = false;
  for (const [name, reason] of Object.entries(fields)) {
    const input = form.elements.namedItem(name);
    const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    if (input instanceof Element) input.setAttribute("aria-invalid", "true");
    if (slot) {
      slot.textContent = `${labelOf(form, name)} ${reason}`;
      shown = true;
    }
  }
  return shown;
}

export function clearFieldErrors(form) {
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  for (const slot of form.querySelectorAll("[data-error-for]")) slot.textContent = "";
}

function labelOf(form, name) {
  const input = form.elements.namedItem(name);
  const label = input instanceof Element && input.id ? form.querySelector(`label[for="${input.id}"]`) : null;
  return label ? label.textContent.trim() : name;
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
  return records.length;
}
