// The header's CRM connection (from the server's last real exchange with the CRM) and the filter counts.

import { api } from "./api.js";
import { announce, formatTime, setAttr, setText } from "./dom.js";

const EVERY_MS = 5000;
const SOON_MS = 400;

/** The header badge's words for the server's CRM state. */
export function crmWords(crm) {
  if (crm.state === "ok") {
    return { text: "CRM: connected", tip: `The last exchange with the CRM worked (${formatTime(crm.last_success_at)}).` };
  }
  if (crm.state === "failing") {
    const since = crm.failing_since ? ` since ${formatTime(crm.failing_since)}` : "";
    const error = crm.last_error || "unknown error";
    return { text: `CRM: failing${since}. Last error: ${error}`, tip: `Failing${since}. Last error: ${error}` };
  }
  return { text: "CRM: not contacted yet", tip: "The server has not talked to the CRM since it started." };
}

export class ServerStatus {
  /** onCounts(counts) gets the contacts per sync status. */
  constructor(badge, onCounts) {
    this.badge = badge;
    this.onCounts = onCounts;
    this.timer = null;
    this.soon = null;
    this.running = false;
  }

  start() {
    this.running = true;
    this.read();
  }

  stop() {
    this.running = false;
    window.clearTimeout(this.timer);
    window.clearTimeout(this.soon);
  }

  /** Read again shortly: something changed (coalesced, so a burst of events costs one read). */
  poke() {
    if (!this.running || this.soon) return;
    this.soon = window.setTimeout(() => {
      this.soon = null;
      this.read();
    }, SOON_MS);
  }

  async read() {
    window.clearTimeout(this.timer);
    try {
      const status = await api("GET", "/status");
      if (!this.running) return;
      this.show(status.crm);
      this.onCounts(status.contacts);
    } catch {
      // The next read tries again; the connection badge already says when the server is unreachable.
    } finally {
      if (this.running) this.timer = window.setTimeout(() => this.read(), EVERY_MS);
    }
  }

  show(crm) {
    const { text, tip } = crmWords(crm);
    const was = this.badge.dataset.state;
    setAttr(this.badge, "data-state", crm.state);
    setText(this.badge, text);
    setAttr(this.badge, "title", tip);
    if (was !== crm.state && crm.state === "failing") announce(`The CRM is failing: ${crm.last_error || "unknown error"}`);
    if (was === "failing" && crm.state === "ok") announce("The CRM answers again.");
  }
}
