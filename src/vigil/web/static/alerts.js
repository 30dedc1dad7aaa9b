// Live alerts: the queue is loaded from GET /api/alerts, then kept up to date by the
// Server-Sent Events stream GET /api/alerts/stream (event "alert"), without reloading.
// Each alert shows the camera's face beside the watchlist image; a person records the decision.
import { api, announce, badge, busy, can, h, main, oneIn, score, showError, time } from "./common.js";

const list = document.getElementById("alert-list");
const emptyNote = document.getElementById("queue-empty");
const countEl = document.getElementById("queue-count");
const connection = document.getElementById("connection");
const connectionText = document.getElementById("connection-text");
const announcer = document.getElementById("alert-announcer");
const showDecided = document.getElementById("show-decided");
const deploymentId = main.dataset.deploymentId || "";

const alerts = new Map(); // alert_id -> {data, el}
let maxId = 0;
let source = null;

const DECISIONS = [
  ["confirmed", "Confirmed: the same person"],
  ["false_alert", "False alert: a different person"],
  ["unverified", "Could not verify"],
];
const OUTCOMES = [["no_action", "No action"], ["engaged", "Engaged (spoke to the person)"], ["arrested", "Arrested"]];

function query(extra = {}) {
  const params = new URLSearchParams();
  if (deploymentId) params.set("deployment_id", deploymentId);
  if (!showDecided.checked) params.set("undecided", "true");
  for (const [k, v] of Object.entries(extra)) params.set(k, v);
  return params.toString();
}

function updateCount() {
  const undecided = [...alerts.values()].filter((a) => !a.data.decision).length;
  countEl.textContent = `(${undecided} awaiting a decision)`;
  emptyNote.hidden = alerts.size > 0;
}

function decisionSummary(a) {
  return h("div", { class: "decision-summary" },
    h("p", {}, "Decision: ", badge(a.decision), " · outcome: ", (a.outcome || "no_action").replace(/_/g, " ")),
    h("p", {}, `Recorded by ${a.decided_by || "–"}`, a.case_ref ? ` · case ${a.case_ref}` : ""),
    a.notes ? h("p", {}, "Notes: ", a.notes) : null);
}

function decisionForm(a) {
  const id = a.alert_id;
  const form = h("form", { class: "decide", "aria-label": `Decision for alert ${id}` },
    h("fieldset", {},
      h("legend", {}, "Decision"),
      DECISIONS.map(([value, label]) => h("div", { class: "radio" },
        h("input", { type: "radio", name: "decision", id: `a${id}-${value}`, value, required: true }),
        h("label", { for: `a${id}-${value}` }, label)))),
    h("div", { class: "field" },
      h("label", { for: `a${id}-outcome` }, "Outcome"),
      h("select", { id: `a${id}-outcome`, name: "outcome" },
        OUTCOMES.map(([value, label]) => h("option", { value }, label)))),
    h("div", { class: "field" },
      h("label", { for: `a${id}-case` }, "Case reference (optional)"),
      h("input", { id: `a${id}-case`, name: "case_ref", maxlength: 200 })),
    h("div", { class: "field" },
      h("label", { for: `a${id}-notes` }, "Notes"),
      h("textarea", { id: `a${id}-notes`, name: "notes", rows: 2, maxlength: 4000 })),
    h("button", { type: "submit", class: "button" }, "Record decision"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    if (!data.get("decision")) {
      showError("choose a decision first", `Alert ${id}`);
      form.querySelector("input[type=radio]").focus();
      return;
    }
    busy(form.querySelector("[type=submit]"), async () => {
      const decided = await api(`/api/alerts/${id}/decision`, {
        method: "POST",
        json: { decision: data.get("decision"), outcome: data.get("outcome"), notes: data.get("notes") || "",
          case_ref: data.get("case_ref") || "" },
      });
      upsert({ ...a, ...decided }, { replace: true });
      announce(`Decision recorded for alert ${id}: ${decided.decision.replace(/_/g, " ")}.`);
      const card = alerts.get(id).el;
      card.querySelector("h3").focus();
    }, `Alert ${id}`);
  });
  return form;
}

function frameDetails(a) {
  const img = h("img", { alt: `Full camera frame for alert ${a.alert_id}`, decoding: "async" });
  const details = h("details", { class: "frame-details" }, h("summary", {}, "Show the full camera frame"), img);
  details.addEventListener("toggle", () => {
    if (details.open && !img.getAttribute("src")) img.src = `/api/alerts/${a.alert_id}/frame.jpg`;
  });
  return details;
}

function card(a, isNew) {
  const id = a.alert_id;
  const images = a.has_images === false
    ? h("p", { class: "empty" }, "Images deleted by retention.")
    : h("div", { class: "compare" },
      h("figure", {},
        h("img", { src: `/api/alerts/${id}/probe.jpg`, alt: `Face seen by camera ${a.camera}`, width: 160, height: 160 }),
        h("figcaption", {}, `Camera ${a.camera}`)),
      h("figure", {},
        h("img", { src: `/api/alerts/${id}/watchlist.jpg`, alt: `Watchlist image of ${a.name}`, width: 160, height: 160 }),
        h("figcaption", {}, "Watchlist")));
  const info = h("div", {},
    h("dl", { class: "facts" },
      h("dt", {}, "Score"), h("dd", {}, `${score(a.score)} (threshold ${score(a.threshold)})`),
      h("dt", {}, "Chance of a false match"), h("dd", {}, oneIn(a.fmr)),
      a.runner_up ? [h("dt", {}, "Next closest on the watchlist"),
        h("dd", {}, `${a.runner_up.name}: ${score(a.runner_up.score)} (threshold ${score(a.runner_up.threshold)})`)] : null,
      h("dt", {}, "Camera"), h("dd", {}, a.camera),
      h("dt", {}, "Deployment"), h("dd", {}, h("a", { href: `/deployments/${a.deployment_id}` }, a.deployment || `#${a.deployment_id}`)),
      h("dt", {}, "Time in stream"), h("dd", {}, `${Number(a.time).toFixed(1)} s`),
      h("dt", {}, "Alert raised"), h("dd", {}, time(a.utc))),
    a.lookalike_warning ? h("p", { class: "warning", role: "note" }, `Look-alike: ${a.lookalike_warning}`) : null,
    a.decision ? null : h("p", { class: "hint" }, "A match cannot exclude close relatives (a twin, a sibling) of the listed person."),
    a.has_images === false ? null : frameDetails(a));
  const decision = a.decision ? decisionSummary(a) : can("alert.decide") ? decisionForm(a)
    : h("p", { class: "empty" }, "Awaiting a decision (your role cannot decide alerts).");
  return h("li", { id: `alert-${id}`, dataset: { alertId: id } },
    h("article", {
      class: `alert-card${isNew ? " is-new" : ""}${a.decision ? " is-decided" : ""}`,
      "aria-labelledby": `alert-${id}-title`,
    },
    h("h3", { id: `alert-${id}-title`, tabindex: -1 }, `Alert ${id}: possible match with ${a.name} `,
      a.category ? badge(a.category, "badge-info") : null, " ",
      a.decision ? badge(a.decision) : badge("awaiting decision", "badge-warn")),
    images, info, h("div", { class: "decision" }, decision)));
}

/** Add or update one alert card; new ones go to the top (newest first). */
function upsert(a, { isNew = false, replace = false } = {}) {
  const existing = alerts.get(a.alert_id);
  if (existing && !replace) return false;
  const el = card(a, isNew);
  if (existing) existing.el.replaceWith(el);
  else {
    const after = [...list.children].find((li) => Number(li.dataset.alertId) < a.alert_id);
    list.insertBefore(el, after || null);
  }
  alerts.set(a.alert_id, { data: a, el });
  maxId = Math.max(maxId, a.alert_id);
  updateCount();
  return !existing;
}

async function load({ reset = false } = {}) {
  try {
    const rows = await api(`/api/alerts?${query()}`);
    if (reset) {
      alerts.clear();
      list.replaceChildren();
    }
    for (const a of rows) upsert(a);
    updateCount();
  } catch (err) {
    showError(err, "Loading alerts");
  }
}

function setConnection(state, text) {
  connection.dataset.state = state;
  connectionText.textContent = text;
}

function connect() {
  if (source) source.close();
  const params = new URLSearchParams();
  if (maxId) params.set("after_id", String(maxId));
  source = new EventSource(`/api/alerts/stream?${params}`);
  source.addEventListener("open", () => {
    setConnection("live", "Live: new alerts appear here as they arrive.");
    load(); // fills any gap between the first load and the stream starting (duplicates are ignored)
  });
  source.addEventListener("alert", (event) => {
    const a = JSON.parse(event.data);
    if (deploymentId && String(a.deployment_id) !== deploymentId) return;
    if (a.decision && !showDecided.checked) return;
    if (upsert(a, { isNew: true })) {
      announcer.textContent = `New alert ${a.alert_id}: possible match with ${a.name}, camera ${a.camera}, score ${score(a.score)}.`;
    }
  });
  source.addEventListener("error", () => {
    // EventSource reconnects by itself; a 401 (session ended) closes it for good.
    if (source.readyState === EventSource.CLOSED) {
      setConnection("lost", "Disconnected from the live alert stream. Reload the page or log in again.");
    } else {
      setConnection("lost", "Connection lost; reconnecting…");
    }
  });
}

// Keyboard triage (the keys are listed on the page): j / k next / previous alert, c confirmed,
// f false alert, u could not verify (each chooses the decision and moves to "Record decision",
// which Enter presses), o the outcome, n the notes, Escape back to the alert. Keys typed into a
// field are the field's.
const KEY_DECISIONS = { c: "confirmed", f: "false_alert", u: "unverified" };
let current = null;

function cards() {
  return [...list.querySelectorAll(":scope > li")];
}

function focusCard(li) {
  if (!li) return;
  current = Number(li.dataset.alertId);
  li.querySelector("h3").focus();
  li.scrollIntoView({ block: "nearest" });
}

function cardInFocus() {
  const active = document.activeElement;
  const li = active && active.closest ? active.closest("#alert-list > li") : null;
  return li || (current !== null && alerts.has(current) ? alerts.get(current).el : null);
}

document.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  const inField = event.target.matches && event.target.matches("input:not([type=radio]), textarea, select");
  if (inField) {
    if (event.key === "Escape") focusCard(cardInFocus());
    return;
  }
  const all = cards();
  if (!all.length) return;
  const li = cardInFocus();
  const at = li ? all.indexOf(li) : -1;
  const key = event.key.toLowerCase();
  if (key === "j") focusCard(all[Math.min(at + 1, all.length - 1)]);
  else if (key === "k") focusCard(all[Math.max(at - 1, 0)]);
  else if (li && KEY_DECISIONS[key]) {
    const radio = li.querySelector(`input[name=decision][value=${KEY_DECISIONS[key]}]`);
    if (!radio) return; // already decided
    radio.checked = true;
    current = Number(li.dataset.alertId);
    li.querySelector("form.decide [type=submit]").focus();
    announce(`${radio.labels[0].textContent}: press Enter to record it.`);
  } else if (li && key === "o") li.querySelector("select[name=outcome]")?.focus();
  else if (li && key === "n") li.querySelector("textarea[name=notes]")?.focus();
  else return;
  event.preventDefault();
});

showDecided.addEventListener("change", () => load({ reset: true }));
window.addEventListener("pagehide", () => source && source.close());

await load();
connect();
