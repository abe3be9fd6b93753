// Contacts and meetings as last heard from the server, by id.
//
// Replies and live events travel on different connections, so an older state can arrive after a
// newer one (a POST's reply after the socket's "synced", a poll after an event). Every record gets a
// version that only grows, and an older version never replaces a newer one.

const GUESS = Symbol("guessed; the version of the state it replaced");

/** Compare two arrays element by element: -1, 0 or 1. */
function compare(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i += 1) {
    if (a[i] < b[i]) return -1;
    if (a[i] > b[i]) return 1;
  }
  return 0;
}

/** A user's version: local edits move updated_at, every sync outcome adds to sync_attempts. */
export function userVersion(user) {
  return [user.updated_at || "", user.sync_attempts || 0, user.last_synced_at || ""];
}

/** A meeting's version: which run (its start) and how far it got (stage 1-3, then 4 once ended). */
export function meetingVersion(meeting) {
  const run = meeting.stages?.contacts?.started_at || "";
  return [run, meeting.in_progress_sync_status ?? (run ? 4 : 0)];
}

/** The stage the progress indicator shows: "1", "2", "3" while running, then "done", "failed" or "idle". */
export function meetingStage(meeting) {
  if (meeting.in_progress_sync_status) return String(meeting.in_progress_sync_status);
  if (meeting.last_sync_success === true) return "done";
  if (meeting.last_sync_success === false) return "failed";
  return "idle";
}

export class Records {
  /** version(record) orders states of one record; listeners get (record, previous or undefined, bulk). */
  constructor(version) {
    this.version = version;
    this.items = new Map();
    this.listeners = [];
    this.stamps = new Map(); // id -> the clock when its state last came in
    this.clock = 0;
    this.gone = new Set(); // deleted ids: a late event about one must not bring it back
  }

  /** A moment to pass to putAll: records that came in after it and are missing from the listing stay. */
  now() {
    return this.clock;
  }

  subscribe(listener) {
    this.listeners.push(listener);
  }

  get(id) {
    return this.items.get(id);
  }

  values() {
    return [...this.items.values()];
  }

  /** The version of a stored record; a guess keeps the version of the state it replaced. */
  versionOf(record) {
    return record[GUESS] ?? this.version(record);
  }

  /**
   * Take a state from the server unless a newer one is already here; returns whether it was taken.
   * Listeners hear `bulk` for each record of a full listing, after which the caller renders once.
   */
  put(record, bulk = false) {
    if (this.gone.has(record.id)) return false;
    const previous = this.items.get(record.id);
    if (previous) {
      const order = compare(this.version(record), this.versionOf(previous));
      // A guess gives way only to a state really newer than the one it replaced.
      if (order < 0 || (order === 0 && GUESS in previous)) return false;
    }
    this.items.set(record.id, record);
    this.stamps.set(record.id, ++this.clock);
    for (const listener of this.listeners) listener(record, previous, bulk);
    return true;
  }

  /** Forget a record the server deleted; listeners hear (undefined, previous). */
  remove(id) {
    const previous = this.items.get(id);
    this.gone.add(id);
    if (!previous) return;
    this.items.delete(id);
    this.stamps.delete(id);
    for (const listener of this.listeners) listener(undefined, previous, false);
  }

  /** Show at once a state we expect the server to reach; returns what it replaced, for restore(). */
  guess(record) {
    const previous = this.items.get(record.id);
    const guessed = { ...record, [GUESS]: previous ? this.versionOf(previous) : [] };
    this.items.set(record.id, guessed);
    for (const listener of this.listeners) listener(guessed, previous);
    return previous;
  }

  /** Put back what a guess replaced when the action failed, unless the server has moved on since. */
  restore(previous) {
    const current = this.items.get(previous.id);
    if (!current || !(GUESS in current)) return;
    this.items.set(previous.id, previous);
    for (const listener of this.listeners) listener(previous, current);
  }

  /**
   * Take a full listing read since the moment `since` (from now()): newer states already here stay,
   * the listing's (creation) order is kept, and records missing from it are dropped (deleted meanwhile)
   * unless their state came in after `since`.
   */
  putAll(records, since = Infinity) {
    for (const record of records) this.put(record, true);
    const ordered = new Map();
    for (const record of records) ordered.set(record.id, this.items.get(record.id));
    // Records that events added after the listing was read come last, as the newest.
    for (const [id, record] of this.items) {
      if (ordered.has(id)) continue;
      if ((this.stamps.get(id) ?? 0) > since) ordered.set(id, record);
      else this.stamps.delete(id);
    }
    this.items = ordered;
  }

  clear() {
    this.items.clear();
    this.stamps.clear();
    this.gone.clear();
  }
}
