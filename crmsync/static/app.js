// The dashboard: sign-up and sign-in, then contacts and meetings kept live over /events.

import { api, clearSession, listAll, loadSession, saveSession, setUnauthorizedHandler } from "./api.js";
import { Contacts, describeError, setBusy } from "./contacts.js";
import { announce, clearFieldErrors, showFieldErrors } from "./dom.js";
import { Live } from "./live.js";
import { Meetings } from "./meetings.js";
import { Records, meetingVersion, userVersion } from "./state.js";

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
let contacts;
let meetingsView;
let live = null;
let refreshing = null;
let refreshAgain = false;

function showSignedOut(notice) {
  live?.stop();
  live = null;
  users.clear();
  meetings.clear();
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
  else if (message.type === "meeting" && message.meeting) meetings.put(message.meeting);
  // "webhook" events are followed by the user event that carries their effect.
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
    const [userList, meetingList] = await Promise.all([listAll("/users"), listAll("/meetings")]);
    if (!session || live !== session) return; // signed out (or in again) meanwhile
    users.putAll(userList);
    meetings.putAll(meetingList);
    contacts.render();
    meetingsView.render();
    meetingsView.fillAttendeeOptions();
  } catch (err) {
    if (err?.status !== 401) console.warn("crmsync: refresh failed", err);
  }
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
    if (!showFieldErrors(form, err.fields)) errorBox.textContent = describeError(err);
    else form.querySelector('[aria-invalid="true"]')?.focus();
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
  contacts = new Contacts($("contacts"), users);
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
