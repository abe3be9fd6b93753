// Conflicts the CRM won: the newest per contact, from GET /conflicts, until the person dismisses it.

import { api } from "./api.js";
import { formatTime } from "./dom.js";

const DISMISSED_KEY = "crmsync.dismissed-conflicts";
const FIELD_WORDS = { name: "Name", email: "Email", phone: "Phone" };
const READ_LIMIT = 200;

const quote = (value) => (value === null || value === undefined || value === "" ? "nothing" : `“${value}”`);

/** One conflict in words: both values and who won (the CRM, the source of truth, always does). */
export function conflictSentence(conflict) {
  const field = FIELD_WORDS[conflict.field] || conflict.field;
  const when = conflict.at ? ` on ${formatTime(conflict.at)}` : "";
  const base = conflict.base_value === undefined ? "" : `, both were ${quote(conflict.base_value)} before`;
  return `${field} was changed here and in the CRM at once${when}: here to ${quote(conflict.local_value)}, `
    + `in the CRM to ${quote(conflict.crm_value)}${base}. The CRM's value won, so ${field} is now `
    + `${quote(conflict.crm_value)}.`;
}

/** The API's conflict item (from /conflicts or a history) in one shape. */
function normalise(item) {
  const at = item.resolved_at || item.at || "";
  const userId = item.user_id || item.user?.id || "";
  return {
    user_id: userId, field: item.field, at,
    local_value: item.local_value ?? item.local, crm_value: item.crm_value ?? item.crm,
    base_value: item.base_value ?? item.base,
    key: `${userId}|${item.field}|${at}`,
  };
}

export class Conflicts {
  constructor() {
    this.byUser = new Map();
    this.listeners = [];
    this.available = true; // false once the server said it has no GET /conflicts
    try {
      this.dismissed = new Set(JSON.parse(window.localStorage.getItem(DISMISSED_KEY) || "[]"));
    } catch {
      this.dismissed = new Set();
    }
  }

  subscribe(listener) {
    this.listeners.push(listener);
  }

  /** The newest conflict of a user still to be shown, or undefined. */
  latest(userId) {
    const conflict = this.byUser.get(userId);
    return conflict && !this.dismissed.has(conflict.key) ? conflict : undefined;
  }

  dismiss(conflict) {
    this.dismissed.add(conflict.key);
    // Keep the list short: only keys of conflicts still known matter.
    const known = new Set([...this.byUser.values()].map((c) => c.key));
    const kept = [...this.dismissed].filter((key) => known.has(key)).slice(-500);
    window.localStorage.setItem(DISMISSED_KEY, JSON.stringify(kept));
    this.changed();
  }

  /** Read the newest conflicts again; never throws. */
  async read() {
    if (!this.available) return;
    try {
      const data = await api("GET", `/conflicts?limit=${READ_LIMIT}`);
      const byUser = new Map();
      for (const item of (data.items || []).map(normalise)) {
        const had = byUser.get(item.user_id);
        if (!had || had.at < item.at) byUser.set(item.user_id, item);
      }
      this.byUser = byUser;
      this.changed();
    } catch (err) {
      if (err?.status === 404 || err?.status === 405) this.available = false;
    }
  }

  /** Take a contact's conflicts from its history (the detail view read them). */
  fromHistory(userId, items) {
    const newest = items.filter((i) => i.type === "conflict").map((i) => normalise({ ...i, user_id: userId }))[0];
    const had = this.byUser.get(userId);
    if (newest && (!had || had.at < newest.at)) {
      this.byUser.set(userId, newest);
      this.changed();
    }
  }

  clear() {
    this.byUser.clear();
    this.available = true;
  }

  changed() {
    for (const listener of this.listeners) listener();
  }
}
