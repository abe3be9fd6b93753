// The backend's JSON API: the signed-in session in localStorage and one request helper.

const SESSION_KEY = "crmsync.session";

/** The API's error body {error, message, fields?}, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || (status ? `The server answered ${status}.` : "The server could not be reached."));
    this.status = status;
    this.code = body?.error || (status ? "http_error" : "network_error");
    this.fields = body?.fields || {};
  }
}

/** {token, email, expiresAt} of the signed-in account, or null when signed out or expired. */
export function loadSession() {
  try {
    const session = JSON.parse(window.localStorage.getItem(SESSION_KEY) || "null");
    if (!session?.token || (session.expiresAt && Date.parse(session.expiresAt) <= Date.now())) return null;
    return session;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  window.localStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export function clearSession() {
  window.localStorage.removeItem(SESSION_KEY);
}

/** Called with the ApiError when a signed-in request is answered 401. */
let onUnauthorized = () => {};
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/** Send a request; resolves to the JSON body, rejects with ApiError. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const session = loadSession();
  if (session) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
    });
  } catch {
    throw new ApiError(0, null);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && session) onUnauthorized(error);
    throw error;
  }
  return data;
}

/**
 * Pages of a list endpoint from a cursor (null: the first page), up to maxPages of 500: the items read and the
 * cursor to go on from, null once the list has ended.
 */
export async function listPages(path, maxPages, params = {}, from = null) {
  const items = [];
  let cursor = from;
  for (let page = 0; page < maxPages; page += 1) {
    const query = new URLSearchParams({ ...params, limit: "500" });
    if (cursor) query.set("cursor", cursor);
    const data = await api("GET", `${path}?${query}`);
    items.push(...data.items);
    cursor = data.next_cursor;
    if (!cursor) break;
  }
  return { items, cursor };
}

/** Every item of a paged list endpoint, following next_cursor (bounded, to stay responsive). */
export async function listAll(path, maxPages = 20, params = {}) {
  return (await listPages(path, maxPages, params)).items;
}
