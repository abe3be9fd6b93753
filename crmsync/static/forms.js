// What every form does with a request: busy while it runs, then errors in people's words where they belong.

import { ApiError } from "./api.js";
import { sayFieldErrors, showFieldErrors } from "./dom.js";

/** A sentence for an error: the API's message, with its per-field reasons in people's words. */
export function describeError(err) {
  if (!(err instanceof ApiError)) return String(err?.message || err);
  const reasons = sayFieldErrors(err.fields);
  return reasons ? `${err.message} ${reasons}` : err.message;
}

export function setBusy(form, busy) {
  form.toggleAttribute("aria-busy", busy);
  for (const button of form.querySelectorAll("button")) button.disabled = busy;
}

/**
 * Show an error on the form: each field's reason under its input, anything else in errorBox;
 * focus the first field that is wrong.
 */
export function reportErrors(form, errorBox, err) {
  const fields = err?.fields || {};
  const rest = showFieldErrors(form, fields);
  const shown = Object.keys(fields).length - Object.keys(rest).length;
  if (shown === 0) errorBox.textContent = describeError(err);
  else if (Object.keys(rest).length) errorBox.textContent = sayFieldErrors(rest);
  else errorBox.textContent = "";
  form.querySelector('[aria-invalid="true"]')?.focus();
}
