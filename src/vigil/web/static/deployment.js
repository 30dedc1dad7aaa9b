// One deployment: summary, the actions the user's role allows (authorise, start, stop,
// record outcomes), the running status (polled every second while it runs) and the record.
import { announce, api, badge, can, facts, fill, h, main, onSubmit, showError, time } from "./common.js";

const id = main.dataset.deploymentId;
const summaryEl = document.getElementById("summary");
const badgeEl = document.getElementById("status-badge");
const actionsEl = document.getElementById("actions");
const liveEl = document.getElementById("live");
const recordEl = document.getElementById("record");

let shownState = null; // re-render the action forms only when the state changes (keeps focus)
let timer = null;
let previous = null; // {at, frames: {camera: n}} for frames per second

function renderSummary(d) {
  fill(badgeEl, badge(d.status), d.trial ? [" ", badge("trial", "badge-warn")] : null);
  fill(summaryEl, facts([
    ["Name", d.name],
    ["Location", d.location || "–"],
    ["Purpose", d.purpose || "–"],
    ["Legal basis", d.legal_basis || "–"],
    ["Watchlists", d.watchlists.join(", ") || "–"],
    ["Cameras", d.cameras.map((c) => (c.source ? `${c.camera} (${c.source})` : c.camera)).join("; ")],
    ["Window", [time(d.window_start), " to ", time(d.window_end)]],
    ["Accepted false alert rate", String(d.false_alert_rate)],
    ["Created by", d.created_by],
    ["Authorised by", d.authorised_by ? [d.authorised_by, " at ", time(d.authorised_at)] : "not yet authorised"],
    ["Started", time(d.started_at)],
    ["Ended", time(d.ended_at)],
  ]));
}

function authoriseForm() {
  const form = h("form", { class: "card inline-form", id: "authorise-form" },
    h("div", { class: "field" }, h("label", { for: "auth-note" }, "Authorisation note"),
      h("input", { id: "auth-note", name: "note", size: 40 })),
    h("button", { type: "submit", class: "button" }, "Authorise deployment"));
  onSubmit(form, async (data) => {
    await api(`/api/deployments/${id}/authorise`, { method: "POST", json: { note: data.get("note") || "" } });
    announce("Deployment authorised.");
    await refresh(true);
  }, "Authorising");
  return form;
}

function rejectForm() {
  const form = h("form", { class: "card inline-form", id: "reject-form" },
    h("div", { class: "field" }, h("label", { for: "reject-reason" }, "Reason for rejecting (the planner reads it)"),
      h("input", { id: "reject-reason", name: "reason", size: 40, required: true })),
    h("button", { type: "submit", class: "button button-danger" }, "Reject deployment"));
  onSubmit(form, async (data) => {
    await api(`/api/deployments/${id}/reject`, { method: "POST", json: { reason: data.get("reason") || "" } });
    announce("Deployment rejected.");
    await refresh(true);
  }, "Rejecting");
  return form;
}

async function renderReview(d) {
  const reviewEl = document.getElementById("review");
  if (!reviewEl) return;
  if (d.status !== "draft" && d.status !== "authorised") {
    fill(reviewEl, h("p", { class: "empty" }, "Only a plan (draft or authorised) is reviewed here."));
    return;
  }
  const v = await api(`/api/deployments/${id}/authorisation`);
  const pct = (x) => (x === null || x === undefined ? "unknown" : `${(100 * x).toFixed(1)}%`);
  fill(reviewEl,
    v.problems.length ? h("ul", { class: "notice notice-bad" }, v.problems.map((p) => h("li", {}, p))) : null,
    h("div", { class: "table-wrap" }, h("table", { id: "review-watchlists" },
      h("caption", {}, `Watchlists: ${v.watchlist_entries === 1 ? "1 person" : `${v.watchlist_entries} people`} in all`),
      h("thead", {}, h("tr", {}, ["Watchlist", "People", "Category", "Authorised", "Expires"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, v.watchlists_detail.map((w) => h("tr", {},
        h("th", { scope: "row" }, w.name), h("td", { class: "num" }, w.subjects), h("td", {}, w.category),
        h("td", {}, w.authorised ? `yes (${w.authorised_by})` : badge("no", "badge-warn")),
        h("td", {}, w.expired ? badge("expired", "badge-warn") : (w.expires_at ? time(w.expires_at) : "never"))))))),
    h("div", { class: "table-wrap" }, h("table", { id: "review-thresholds" },
      h("caption", {}, `What the settings mean (calibration: ${v.calibration})`),
      h("thead", {}, h("tr", {}, ["Applies to", "False alerts accepted per 10,000 faces", "Threshold", "Expected misses"]
        .map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, Object.entries(v.thresholds).map(([key, t]) => h("tr", {},
        h("th", { scope: "row" }, key === "default" ? "every category" : key.replace("category:", "category ")),
        h("td", { class: "num" }, String(t.accepted_false_alerts_per_10000_faces)),
        h("td", { class: "num" }, t.threshold.toFixed(3)), h("td", { class: "num" }, pct(t.expected_miss_rate))))))),
    h("p", { class: "hint", id: "review-photos" }, photosNote(v)),
    h("p", { class: "hint" }, v.miss_rate_note));
}

function photosNote(v) {
  // a subject enrolled from several photos is one entry averaging up to photos_averaged_at_most of them
  const by = {};
  v.watchlists_detail.forEach((w) => Object.entries(w.subjects_by_photos).forEach(([k, n]) => { by[k] = (by[k] || 0) + n; }));
  const parts = Object.entries(by).map(([k, n]) => `${n} from ${k} photo${k === "1" ? "" : "s"}`);
  const extra = Object.entries(v.thresholds.default.by_photos || {}).map(
    ([k, t]) => `entries averaging ${k} photos: threshold ${t.threshold.toFixed(3)}, expected misses ${t.expected_miss_rate === null ? "unknown" : (100 * t.expected_miss_rate).toFixed(1) + "%"}`);
  return `Each person is one entry averaging up to ${v.photos_averaged_at_most} of their photos: ${parts.join(", ") || "none enrolled"}.` +
    (extra.length ? ` ${extra.join("; ")}.` : "");
}

function startForm() {
  const form = h("form", { class: "card inline-form", id: "start-form" },
    h("div", { class: "field check" },
      h("input", { type: "checkbox", id: "start-fast", name: "fast" }),
      h("label", { for: "start-fast" }, "Process recorded video as fast as possible (not at real time)")),
    h("div", { class: "field" }, h("label", { for: "start-max" }, "Stop after (seconds, optional)"),
      h("input", { id: "start-max", name: "max_seconds", type: "number", min: 1, step: 1 })),
    h("button", { type: "submit", class: "button" }, "Start deployment"));
  onSubmit(form, async (data) => {
    const max = Number(data.get("max_seconds"));
    await api(`/api/deployments/${id}/start`, {
      method: "POST", json: { fast: data.get("fast") === "on", max_seconds: max > 0 ? max : null },
    });
    announce("Deployment started.");
    await refresh(true);
  }, "Starting");
  return form;
}

function stopForm() {
  const form = h("form", { class: "card inline-form", id: "stop-form" },
    h("p", {}, "Stopping ends the deployment: its counts are recorded and its frozen watchlist copies deleted."),
    h("button", { type: "submit", class: "button button-danger" }, "Stop deployment"));
  onSubmit(form, async () => {
    await api(`/api/deployments/${id}/stop`, { method: "POST" });
    announce("Deployment stopped.");
    await refresh(true);
  }, "Stopping");
  return form;
}

function outcomesForm(record) {
  const form = h("form", { class: "card inline-form", id: "outcomes-form" },
    h("div", { class: "field" }, h("label", { for: "out-engagements" }, "Engagements"),
      h("input", { id: "out-engagements", name: "engagements", type: "number", min: 0, value: record.engagements ?? 0 })),
    h("div", { class: "field" }, h("label", { for: "out-arrests" }, "Arrests"),
      h("input", { id: "out-arrests", name: "arrests", type: "number", min: 0, value: record.arrests ?? 0 })),
    h("button", { type: "submit", class: "button" }, "Record outcomes"));
  onSubmit(form, async (data) => {
    const rec = await api(`/api/deployments/${id}/outcomes`, {
      method: "POST", json: { engagements: Number(data.get("engagements")), arrests: Number(data.get("arrests")) },
    });
    renderRecord(rec);
    announce("Outcomes recorded.");
  }, "Recording outcomes");
  return form;
}

function renderActions(d) {
  const running = d.status === "running";
  const liveHere = Boolean(d.live && d.live.running);
  const state = `${d.status}:${liveHere}`;
  if (state === shownState) return;
  shownState = state;
  const parts = [];
  if (d.status === "draft" && can("deployment.authorise")) parts.push(authoriseForm(), rejectForm());
  if (d.status === "draft" && !can("deployment.authorise")) {
    parts.push(h("p", {}, "Waiting for a supervisor to authorise this deployment."));
  }
  if (d.status === "authorised" && can("deployment.run")) parts.push(startForm());
  if (running && !liveHere) {
    parts.push(h("p", {}, d.runner_stale
      ? "Its runner has stopped sending heartbeats (its process died): stopping marks it failed and erases its snapshot."
      : "Running outside this server (for example with vigil watch): it stops at its next heartbeat."));
  }
  if (running && can("deployment.run")) parts.push(stopForm());
  if (d.status === "ended" && can("deployment.record")) parts.push(outcomesForm(d.record));
  if (!parts.length) parts.push(h("p", { class: "empty" }, "No actions for your role at this stage."));
  fill(actionsEl, h("div", { class: "actions" }, parts));
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// A deployment placed on the cluster: each camera's node, health, lag and dropped frames as
// the recorder last saw them (GET /api/deployments/{id} "cameras"), or why no node runs it.
function renderCluster(d) {
  const num = (v, digits = 0) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
  fill(liveEl,
    h("p", {}, `Placed on the cluster (${d.placement}): vigil node processes run its cameras.`),
    h("div", { class: "table-wrap" }, h("table", { id: "cluster-cameras-table" },
      h("caption", { class: "visually-hidden" }, "Where each camera runs"),
      h("thead", {}, h("tr", {}, ["Camera", "Node", "State", "Health", "Lag (s)", "Frames", "Dropped",
        "Last report (s ago)", "Why"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, d.cameras.map((c) => h("tr", {},
        h("th", { scope: "row" }, c.camera),
        h("td", {}, c.node || "–"),
        h("td", {}, c.state ? badge(c.state, c.state === "running" ? "badge-ok" : c.state === "unplaced" ? "badge-bad" : "badge") : "–"),
        h("td", {}, c.health || "–"),
        h("td", { class: "num" }, num(c.lag_s, 1)),
        h("td", { class: "num" }, num(c.frames)),
        h("td", { class: "num" }, num(c.dropped)),
        h("td", { class: "num" }, num(c.heartbeat_age_s, 1)),
        h("td", {}, c.reason || "")))))));
}

function renderLive(live) {
  if (!live) {
    previous = null;
    fill(liveEl, h("p", {}, "Not running in this server."));
    return;
  }
  const now = performance.now();
  const fps = {};
  for (const [cam, p] of Object.entries(live.pipelines || {})) {
    if (previous && previous.frames[cam] !== undefined && now > previous.at) {
      fps[cam] = ((p.frames - previous.frames[cam]) * 1000) / (now - previous.at);
    }
  }
  previous = { at: now, frames: Object.fromEntries(Object.entries(live.pipelines || {}).map(([c, p]) => [c, p.frames])) };
  const summary = live.summary;
  const facesSeen = Object.values(live.pipelines || {}).reduce((n, p) => n + (p.tracks || 0), 0);
  fill(liveEl,
    h("p", {}, live.running ? badge("running") : badge("finished", "badge"),
      ` · ${plural(live.alerts, "alert")} · ${plural(summary ? summary.faces_seen : facesSeen, "face")} seen`,
      summary ? ` · ${summary.fps} frames per second overall` : ""),
    live.error ? h("p", { class: "notice notice-bad" }, `Stopped with an error: ${live.error}`) : null,
    h("div", { class: "table-wrap" }, h("table", { id: "cameras-table" },
      h("caption", { class: "visually-hidden" }, "Cameras"),
      h("thead", {}, h("tr", {}, ["Camera", "Health", "Frames read", "Frames processed", "Frames per second", "Dropped",
        "Faces compared", "Face tracks", "Seconds since last frame", "Reconnects"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, (live.cameras || []).map((c) => {
        const p = (live.pipelines || {})[c.camera] || {};
        const rate = fps[c.camera];
        return h("tr", {},
          h("th", { scope: "row" }, c.camera),
          h("td", {}, badge(c.status, c.status === "ok" ? "badge-ok" : c.status === "ended" ? "badge" : "badge-warn"),
            c.error ? ` ${c.error}` : ""),
          h("td", { class: "num" }, c.frames),
          h("td", { class: "num" }, p.frames ?? "–"),
          h("td", { class: "num" }, rate === undefined ? "–" : rate.toFixed(1)),
          h("td", { class: "num" }, c.dropped),
          h("td", { class: "num" }, p.faces_compared ?? "–"),
          h("td", { class: "num" }, p.tracks ?? "–"),
          h("td", { class: "num" }, c.seconds_since_frame ?? "–"),
          h("td", { class: "num" }, c.reconnects ?? 0));
      })))));
}

const RECORD_FIELDS = [
  ["status", "Status"], ["date", "Date"], ["duration_minutes", "Duration (minutes)"], ["watchlist_size", "Watchlist size"],
  ["faces_seen", "Faces seen"], ["alerts", "Alerts"], ["true_alerts", "Confirmed alerts"], ["false_alerts", "False alerts"],
  ["unverified_alerts", "Unverified alerts"], ["undecided_alerts", "Undecided alerts"], ["false_alert_rate", "False alert rate"],
  ["engagements", "Engagements"], ["arrests", "Arrests"], ["frames", "Frames"], ["frames_dropped", "Frames dropped"],
  ["threshold", "Threshold"], ["accepted_false_alert_rate", "Accepted false alert rate"],
  ["expected_miss_rate", "Expected miss rate at this threshold (calibration data)"],
];

function renderRecord(rec) {
  const value = (v) => (v === null || v === undefined ? "–" : typeof v === "number" ? String(Number(v.toPrecision(4))) : String(v));
  fill(recordEl, facts(RECORD_FIELDS.map(([key, label]) => [label, value(rec[key])])),
    rec.notes && rec.notes.length ? h("ul", {}, rec.notes.map((n) => h("li", {}, n))) : null);
}

async function refresh(force = false) {
  try {
    const d = await api(`/api/deployments/${id}`);
    if (force) shownState = null;
    renderSummary(d);
    if (force || shownState === null) await renderReview(d);
    renderActions(d);
    if (d.placement && d.placement !== "local") renderCluster(d);
    else renderLive(d.live);
    renderRecord(d.record);
    const active = d.status === "running" || (d.live && d.live.running);
    clearTimeout(timer);
    if (active) timer = setTimeout(refresh, 1000);
    return d;
  } catch (err) {
    showError(err, "Loading the deployment");
    return null;
  }
}

refresh();
