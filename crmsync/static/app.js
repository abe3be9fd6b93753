// The dashboard: sign-up and sign-in, then contacts and meetings kept live over /events.

import { api, clearSession, listAll, listPages, loadSession, saveSession, setUnauthorizedHandler } from "./api.js";
import { Conflicts } from "./conflicts.js";
import { Contacts } from "./contacts.js";
import { ContactDetail } from "./detail.js";
import { announce, clearFieldErrors } from "./dom.js";
import { reportErrors, setBusy } from "./forms.js";
import { Live } from "./live.js";
import { Meetings } from "./meetings.js";
import { Records, meetingVersion, userVersion } from "./state.js";
import { ServerStatus } from "./status.js";

const CONNECTION_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  polling: "Reconnecting; checking every 2 s",
};
const CONNECTION_TIPS = {
  connecting: "Opening the live connection to the server.",
  live: "Changes appear as they happen.",
  polling: "The live connection is down; the page asks the server every 2 seconds until it is back.",
};

const $ = (testid) => document.querySelector(`[data-testid="${testid}"]`);

const users = new Records(userVersion);
const meetings = new Records(meetingVersion);
const conflicts = new Conflicts();
let contacts;
let detail;
let serverStatus;
let meetingsView;
let live = null;
let refreshing = null;
let refreshAgain = false;
// Contacts are read newest first, 500 a page: this many pages at once, then more as the person pages past them.
const FIRST_USER_PAGES = 20;
const MORE_USER_PAGES = 2;
let userPages = FIRST_USER_PAGES;
let olderUsers = null; // the cursor of the contacts older than those read; null when every one is here
let readingOlder = null;

function showSignedOut(notice) {
  live?.stop();
  live = null;
  serverStatus?.stop();
  detail?.close();
  users.clear();
  userPages = FIRST_USER_PAGES;
  olderUsers = null;
  meetings.clear();
  conflicts.clear();
  contacts.reset();
  meetingsView.reset();
  $("dashboard").hidden = true;
  $("account").hidden = true;
  $("auth").hidden = false;
  for (const form of [$("sign-in-form"), $("sign-up-form")]) clearFieldErrors(form);
  $("sign-in-error").textContent = "";
  $("sign-up-error").textContent = "";
  const box = $("auth-notice");
  box.textContent = notice || "";
  box.hidden = !notice;
  document.title = "Sign in · crmsync";
}

function showSignedIn(session) {
  $("auth").hidden = true;
  $("dashboard").hidden = false;
  $("account").hidden = false;
  $("account-email").textContent = session.email;
  document.title = "crmsync";
  contacts.render();
  meetingsView.render();
  live = new Live(session.token, {
    onEvent: handleEvent,
    refresh,
    onState: setConnection,
    onUnauthorized: () => signOut("Your session has ended. Please sign in again."),
  });
  refresh();
  live.start();
  serverStatus.start();
}

function setConnection(state) {
  const badge = $("connection");
  const was = badge.dataset.state;
  badge.dataset.state = state;
  badge.textContent = CONNECTION_TEXT[state];
  badge.title = CONNECTION_TIPS[state];
  if (was === "live" && state === "polling") announce("Live updates lost; checking for changes every 2 seconds.");
  if (was === "polling" && state === "live") announce("Live updates are back.");
}

function handleEvent(message) {
  if (message.type === "user" && message.user) users.put(message.user);
  else if (message.type === "user_deleted") users.remove(message.user_id);
  else if (message.type === "meeting" && message.meeting) meetings.put(message.meeting);
  else if (message.type === "meeting_deleted") meetings.remove(message.meeting_id);
  // A change from the CRM may have been a conflict the CRM won: read the newest conflicts again.
  if (message.type === "webhook") readConflictsSoon();
  if (message.type === "user" || message.type === "user_deleted") serverStatus.poke();
}

let conflictTimer = null;
function readConflictsSoon() {
  if (conflictTimer) return;
  conflictTimer = window.setTimeout(() => {
    conflictTimer = null;
    conflicts.read();
  }, 300);
}

/** Ask the server for the newest contacts matching a search or status: finds those beyond what this page read. */
async function searchServer(params) {
  try {
    const found = await listAll("/users", 2, { ...params, order: "newest" });
    for (const user of found) users.put(user, true);
    contacts.render();
  } catch (err) {
    if (err?.status !== 401) console.warn("crmsync: search failed", err);
  }
}

/**
 * Read contacts and meetings again. It never throws; a call during a read starts one more read
 * after it, since the read in flight may have started before the change the caller knows about.
 */
function refresh() {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    try {
      do {
        refreshAgain = false;
        await readEverything();
      } while (refreshAgain && live);
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

async function readEverything() {
  const session = live;
  try {
    const since = [users.now(), meetings.now()];
    const [userRead, meetingList] = await Promise.all([
      listPages("/users", userPages, { order: "newest" }),
      listAll("/meetings"),
      conflicts.read(),
    ]);
    if (!session || live !== session) return; // signed out (or in again) meanwhile
    users.putAll(userRead.items, since[0]);
    olderUsers = userRead.cursor;
    contacts.setMore(Boolean(olderUsers));
    meetings.putAll(meetingList, since[1]);
    contacts.render();
    meetingsView.render();
    meetingsView.fillAttendeeOptions();
  } catch (err) {
    if (err?.status !== 401) console.warn("crmsync: refresh failed", err);
  }
}

/** Read the next older contacts, past those the page has: the person paged beyond them. Never throws. */
function readOlderUsers() {
  readingOlder ??= (async () => {
    const session = live;
    const from = olderUsers;
    try {
      if (!from) return;
      const read = await listPages("/users", MORE_USER_PAGES, { order: "newest" }, from);
      if (!session || live !== session || olderUsers !== from) return; // a refresh read them meanwhile
      for (const user of read.items) users.put(user, true);
      userPages += MORE_USER_PAGES;
      olderUsers = read.cursor;
      contacts.setMore(Boolean(olderUsers));
    } catch (err) {
      if (err?.status !== 401) console.warn("crmsync: reading older contacts failed", err);
    } finally {
      readingOlder = null;
    }
  })();
  return readingOlder;
}

function signOut(notice) {
  clearSession();
  showSignedOut(notice);
  $("sign-in-form").elements.namedItem("email").focus();
}

async function submitAuth(event, path, errorBox) {
  event.preventDefault();
  const form = event.currentTarget;
  clearFieldErrors(form);
  errorBox.textContent = "";
  const body = Object.fromEntries(new FormData(form));
  setBusy(form, true);
  let reply;
  try {
    reply = await api("POST", path, body);
  } catch (err) {
    reportErrors(form, errorBox, err);
    return;
  } finally {
    setBusy(form, false);
  }
  const email = reply.email || body.email.trim().toLowerCase();
  saveSession({ token: reply.auth_token, email, expiresAt: reply.expires_at });
  form.reset();
  showSignedIn(loadSession());
  document.getElementById("main").focus();
  announce(`Signed in as ${email}.`);
}

function start() {
  contacts = new Contacts($("contacts"), users, conflicts, {
    details: (id) => detail.open(id),
    retried: () => Promise.all([refresh(), serverStatus.read()]),
    search: searchServer,
    older: readOlderUsers,
  });
  detail = new ContactDetail($("contact-detail"), users, conflicts);
  serverStatus = new ServerStatus($("crm-status"), (counts) => contacts.setCounts(counts));
  meetingsView = new Meetings($("meetings"), meetings, users);
  $("sign-in-form").addEventListener("submit", (e) => submitAuth(e, "/authenticate", $("sign-in-error")));
  $("sign-up-form").addEventListener("submit", (e) => submitAuth(e, "/accounts", $("sign-up-error")));
  $("sign-out").addEventListener("click", () => signOut("You have signed out."));
  setUnauthorizedHandler(() => signOut("Your session has ended. Please sign in again."));
  // Another tab signing in or out changes what this one may show.
  window.addEventListener("storage", (event) => {
    if (event.key !== null && event.key !== "crmsync.session") return;
    const session = loadSession();
    if (!session) showSignedOut("You signed out in another tab.");
    else if (session.email !== $("account-email").textContent || $("auth").hidden === false) {
      showSignedOut();
      showSignedIn(session);
    }
  });
  const session = loadSession();
  if (session) showSignedIn(session);
  else showSignedOut();
}

start();
