// Live alerts: the queue is loaded from GET /api/alerts (one page at a time, newest first), then
// kept up to date by the Server-Sent Events stream GET /api/alerts/stream (event "alert"),
// without reloading. Filters: one deployment, one subject (their history), decided alerts too.
// Each alert shows the camera's face beside the watchlist face, both aligned the same way and
// at the same size (probe_face.jpg, watchlist_face.jpg), enlarged on a click; a person decides.
import {
  announce, api, badge, busy, can, fill, h, main, oneIn, pageOf, score, showError, time, withPage,
} from "./common.js";

const list = document.getElementById("alert-list");
const emptyNote = document.getElementById("queue-empty");
const countEl = document.getElementById("queue-count");
const titleEl = document.getElementById("queue-title");
const summaryEl = document.getElementById("filter-summary");
const connection = document.getElementById("connection");
const connectionText = document.getElementById("connection-text");
const announcer = document.getElementById("alert-announcer");
const filterForm = document.getElementById("filter-form");
const deploymentSelect = document.getElementById("f-deployment");
const subjectInput = document.getElementById("f-subject");
const subjectChoices = document.getElementById("subject-choices");
const showDecided = document.getElementById("show-decided");
const loadMoreButton = document.getElementById("load-more");
const dialog = document.getElementById("image-dialog");
const dialogTitle = document.getElementById("image-dialog-title");
const dialogBody = document.getElementById("image-dialog-body");

const PAGE = 50;
const alerts = new Map(); // alert id -> {data, el}
const subjects = new Map(); // subject_id -> name, for the subject filter's suggestions
let maxId = 0;
let nextCursor = null;
let source = null;

// The filters come from the address (/alerts?deployment_id=3&subject_id=S...&decided=1), so a
// filtered view can be linked to and reloaded.
const initial = new URLSearchParams(location.search);
const filters = {
  deployment: initial.get("deployment_id") || main.dataset.deploymentId || "",
  subject: (initial.get("subject_id") || "").trim(),
  decided: initial.get("decided") === "1" || Boolean(initial.get("subject_id")),
};
deploymentSelect.value = filters.deployment;
subjectInput.value = filters.subject;
showDecided.checked = filters.decided;

const DECISIONS = [
  ["confirmed", "Confirmed: the same person"],
  ["false_alert", "False alert: a different person"],
  ["unverified", "Could not verify"],
];
const OUTCOMES = [["no_action", "No action"], ["engaged", "Engaged (spoke to the person)"], ["arrested", "Arrested"]];

function query() {
  const params = new URLSearchParams();
  if (filters.deployment) params.set("deployment_id", filters.deployment);
  if (filters.subject) params.set("subject_id", filters.subject);
  if (!filters.decided) params.set("undecided", "true");
  return params;
}

/** Whether an alert belongs in the list as filtered (the stream sends every alert). */
function matches(a) {
  if (filters.deployment && String(a.deployment_id) !== filters.deployment) return false;
  if (filters.subject && a.subject_id !== filters.subject) return false;
  if (!filters.decided && a.decision) return false;
  return true;
}

function subjectLabel(id) {
  return subjects.has(id) ? `${subjects.get(id)} (${id})` : id;
}

function describeFilters() {
  const parts = [];
  if (filters.deployment) {
    const option = deploymentSelect.selectedOptions[0];
    parts.push(`deployment ${option && option.value ? option.textContent : filters.deployment}`);
  }
  if (filters.subject) parts.push(`subject ${subjectLabel(filters.subject)}`);
  parts.push(filters.decided ? "decided and undecided" : "awaiting a decision only");
  summaryEl.textContent = `Showing: ${parts.join(" · ")}.`;
  titleEl.textContent = filters.subject ? `Alerts for ${subjectLabel(filters.subject)}` : "Alert queue";
}

function updateCount() {
  const undecided = [...alerts.values()].filter((a) => !a.data.decision).length;
  countEl.textContent = filters.decided
    ? `(${alerts.size} shown, ${undecided} awaiting a decision)` : `(${undecided} awaiting a decision)`;
  emptyNote.textContent = filters.decided || filters.subject || filters.deployment
    ? "No alerts match these filters. New ones appear here as they arrive."
    : "No alerts awaiting a decision. New alerts appear here as they arrive, without reloading the page.";
  emptyNote.hidden = alerts.size > 0;
}

function rememberSubject(a) {
  if (!a.subject_id || subjects.has(a.subject_id)) return;
  subjects.set(a.subject_id, a.name);
  subjectChoices.append(h("option", { value: a.subject_id, label: a.name }));
}

// --- the decision ------------------------------------------------------------------------
function decisionSummary(a) {
  return h("div", { class: "decision-summary" },
    h("p", {}, "Decision: ", badge(a.decision), " · outcome: ", (a.outcome || "no_action").replace(/_/g, " ")),
    h("p", {}, `Recorded by ${a.decided_by || "–"}`, a.case_ref ? ` · case ${a.case_ref}` : ""),
    a.notes ? h("p", {}, "Notes: ", a.notes) : null);
}

function decisionForm(a) {
  const id = a.id;
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

// --- the enlarged view (a modal <dialog>: Escape closes it, focus returns to the opener) --------
let opener = null;

function openDialog(title, content, from) {
  opener = from || document.activeElement;
  dialogTitle.textContent = title;
  dialogBody.replaceChildren(...content);
  dialog.showModal();
  document.getElementById("image-dialog-close").focus();
}

dialog.addEventListener("close", () => {
  dialogBody.replaceChildren(); // the images leave the page with the view
  if (opener && opener.isConnected) opener.focus();
  opener = null;
});
document.getElementById("image-dialog-close").addEventListener("click", () => dialog.close());
dialog.addEventListener("click", (event) => {
  // a click on the backdrop (outside the dialog's box; its own padding is inside it) closes it
  const box = dialog.getBoundingClientRect();
  const outside = event.clientX < box.left || event.clientX > box.right || event.clientY < box.top
    || event.clientY > box.bottom;
  if (event.target === dialog && outside) dialog.close();
});

function probeAlt(a) {
  return `Face seen by camera ${a.camera}`;
}

function watchlistAlt(a) {
  return `Watchlist image of ${a.name}`;
}

/** Both faces at full size, side by side; a button swaps them for the images as stored. */
function openCompare(a, from) {
  const id = a.id;
  const probe = h("img", { src: `/api/alerts/${id}/probe_face.jpg`, alt: `${probeAlt(a)}, enlarged`, width: 448, height: 448 });
  const listed = h("img", { src: `/api/alerts/${id}/watchlist_face.jpg`, alt: `${watchlistAlt(a)}, enlarged`, width: 448, height: 448 });
  const probeCaption = h("figcaption", {}, `Camera ${a.camera}, aligned`);
  const listedCaption = h("figcaption", {}, `Watchlist: ${a.name}, aligned`);
  let stored = false;
  const toggle = h("button", { type: "button", class: "button button-secondary", "aria-pressed": "false" },
    "Show the images as stored");
  toggle.addEventListener("click", () => {
    stored = !stored;
    probe.src = `/api/alerts/${id}/${stored ? "probe" : "probe_face"}.jpg`;
    listed.src = `/api/alerts/${id}/${stored ? "watchlist" : "watchlist_face"}.jpg`;
    probeCaption.textContent = stored ? `Camera ${a.camera}, as stored (others washed out)` : `Camera ${a.camera}, aligned`;
    listedCaption.textContent = stored ? `Watchlist: ${a.name}, the photograph as enrolled` : `Watchlist: ${a.name}, aligned`;
    toggle.setAttribute("aria-pressed", String(stored));
    announce(stored ? "Showing the images as stored." : "Showing the aligned faces.");
  });
  openDialog(`Alert ${id}: compare ${a.name} at full size`, [
    h("div", { class: "compare compare-large" },
      h("figure", {}, probe, probeCaption),
      h("figure", {}, listed, listedCaption)),
    h("p", {}, `Score ${a.score_words || `${score(a.score)} (threshold ${score(a.threshold)})`}.`),
    toggle,
  ], from);
}

function openFrame(a, from) {
  openDialog(`Alert ${a.id}: the camera frame`, [
    h("figure", { class: "frame-large" },
      h("img", { src: `/api/alerts/${a.id}/frame.jpg`, alt: `Full camera frame for alert ${a.id}, enlarged` }),
      h("figcaption", {}, `Camera ${a.camera}. Everyone but the alerted face is washed out.`)),
  ], from);
}

// --- the card ----------------------------------------------------------------------------
function faceFigure(a, which, alt, caption) {
  const button = h("button", { type: "button", class: "enlarge", "aria-haspopup": "dialog", dataset: { face: which } },
    // lazy: each face is aligned by the server when asked for; cards out of sight wait
    h("img", { src: `/api/alerts/${a.id}/${which}_face.jpg`, alt, width: 224, height: 224, decoding: "async",
      loading: "lazy" }),
    h("span", { class: "visually-hidden" }, " (enlarge)"));
  button.addEventListener("click", () => openCompare(a, button));
  return h("figure", {}, button, h("figcaption", {}, caption));
}

function frameDetails(a) {
  const img = h("img", { alt: `Full camera frame for alert ${a.id}`, decoding: "async" });
  const button = h("button", { type: "button", class: "enlarge", "aria-haspopup": "dialog" }, img,
    h("span", { class: "visually-hidden" }, " (enlarge)"));
  button.addEventListener("click", () => openFrame(a, button));
  const details = h("details", { class: "frame-details" },
    h("summary", {}, "Show the full camera frame (other people washed out)"), button);
  details.addEventListener("toggle", () => {
    if (details.open && !img.getAttribute("src")) img.src = `/api/alerts/${a.id}/frame.jpg`;
  });
  return details;
}

function listing(a) {
  if (a.subject_on_record === false) return "– (the subject has been erased)";
  return a.reference || "none recorded";
}

function watchlistFacts(a) {
  if (!a.watchlist) return a.watchlist_id ? `#${a.watchlist_id} (deleted)` : "–";
  return [a.watchlist, a.watchlist_status === "expired" ? [" ", badge("expired")] : null, " · ",
    a.watchlist_expires_at ? ["expires ", time(a.watchlist_expires_at)] : "no expiry date"];
}

function card(a, isNew) {
  const id = a.id;
  const images = a.has_images === false
    ? h("p", { class: "empty" }, "Images deleted by retention.")
    : h("div", { class: "compare" },
      faceFigure(a, "probe", probeAlt(a), `Camera ${a.camera}`),
      faceFigure(a, "watchlist", watchlistAlt(a), `Watchlist: ${a.name}`),
      h("p", { class: "hint compare-hint" }, "Both faces aligned the same way, at the same size. Click one to enlarge."));
  const runnerUp = a.runner_up
    ? a.runner_up_words || `${a.runner_up.name}: ${score(a.runner_up.score)} (threshold ${score(a.runner_up.threshold)})`
    : null;
  const others = filters.subject === a.subject_id ? null
    : h("a", { href: `/alerts?${new URLSearchParams({ subject_id: a.subject_id, decided: "1" })}`, class: "subject-history" },
      `Other alerts for ${a.name}`);
  const info = h("div", { class: "alert-info" },
    h("dl", { class: "facts" },
      h("dt", {}, "Score"), h("dd", { class: "score-words" }, a.score_words || `${score(a.score)} (threshold ${score(a.threshold)})`),
      h("dt", {}, "Chance of a false match"), h("dd", {}, oneIn(a.fmr)),
      runnerUp ? [h("dt", {}, "Runner-up (next closest)"), h("dd", { class: "runner-up" }, runnerUp)] : null,
      h("dt", {}, "Category"), h("dd", {}, a.category || "–"),
      h("dt", {}, "Reference"), h("dd", { class: "reference" }, listing(a)),
      h("dt", {}, "Watchlist"), h("dd", { class: "watchlist" }, watchlistFacts(a)),
      h("dt", {}, "Subject"), h("dd", {}, h("code", {}, a.subject_id), others),
      h("dt", {}, "Camera"), h("dd", {}, a.camera),
      h("dt", {}, "Deployment"), h("dd", {}, h("a", { href: `/deployments/${a.deployment_id}` }, a.deployment || `#${a.deployment_id}`)),
      h("dt", {}, "Time in stream"), h("dd", {}, `${Number(a.time).toFixed(1)} s`),
      h("dt", {}, "Alert raised"), h("dd", {}, time(a.utc))),
    a.lookalike_warning ? h("p", { class: "warning", role: "note" }, h("strong", {}, "Look-alike: "),
      a.lookalike_warning.replace(/^look-alike:\s*/i, "")) : null,
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

/** Add or update one alert card; the list stays newest first. */
function upsert(a, { isNew = false, replace = false } = {}) {
  const existing = alerts.get(a.id);
  if (existing && !replace) return false;
  const el = card(a, isNew);
  if (existing) existing.el.replaceWith(el);
  else {
    const after = [...list.children].find((li) => Number(li.dataset.alertId) < a.id);
    list.insertBefore(el, after || null);
  }
  alerts.set(a.id, { data: a, el });
  rememberSubject(a);
  maxId = Math.max(maxId, a.id);
  updateCount();
  return !existing;
}

// --- loading, one page at a time ---------------------------------------------------------------
async function fetchAlerts(cursor) {
  const page = pageOf(await api(withPage(`/api/alerts?${query()}`, { limit: PAGE, cursor })));
  return { items: page.items.filter(matches), next: page.next };
}

async function load({ reset = false } = {}) {
  try {
    const { items, next } = await fetchAlerts(null);
    if (reset) {
      alerts.clear();
      list.replaceChildren();
    }
    // a reload after a reconnect merges the newest page; an older page already shown stays
    if (reset || !nextCursor || alerts.size === 0) nextCursor = next;
    for (const a of items) upsert(a);
    loadMoreButton.hidden = !nextCursor;
    describeFilters();
    updateCount();
  } catch (err) {
    showError(err, "Loading alerts");
  }
}

loadMoreButton.addEventListener("click", () => busy(loadMoreButton, async () => {
  const { items, next } = await fetchAlerts(nextCursor);
  nextCursor = next;
  const before = alerts.size;
  for (const a of items) upsert(a);
  loadMoreButton.hidden = !nextCursor;
  announce(`${alerts.size - before} older alerts shown${nextCursor ? "" : "; that is all"}.`);
  if (!nextCursor) {
    const last = cards().at(-1);
    if (last) focusCard(last);
  }
}, "Loading older alerts"));

async function loadDeployments() {
  try {
    const { items } = pageOf(await api(withPage("/api/deployments", { limit: 200 })));
    const current = deploymentSelect.value;
    fill(deploymentSelect, h("option", { value: "" }, "All deployments"),
      items.map((d) => h("option", { value: String(d.id) }, `${d.name} (#${d.id}, ${d.status})`)));
    if (current && !items.some((d) => String(d.id) === current)) {
      deploymentSelect.append(h("option", { value: current }, `Deployment ${current}`));
    }
    deploymentSelect.value = current;
    describeFilters();
  } catch (err) {
    // the filter still works with the deployment in the address; the list is a convenience
  }
}

function applyFilters() {
  filters.deployment = deploymentSelect.value;
  filters.subject = subjectInput.value.trim();
  filters.decided = showDecided.checked;
  const params = new URLSearchParams();
  if (filters.deployment) params.set("deployment_id", filters.deployment);
  if (filters.subject) params.set("subject_id", filters.subject);
  if (filters.decided) params.set("decided", "1");
  history.replaceState(null, "", params.toString() ? `/alerts?${params}` : "/alerts");
  return load({ reset: true }).then(() => announce(`${alerts.size} alerts shown.`));
}

filterForm.addEventListener("submit", (event) => {
  event.preventDefault();
  busy(filterForm.querySelector("[type=submit]"), applyFilters, "Filtering alerts");
});
deploymentSelect.addEventListener("change", () => applyFilters());
showDecided.addEventListener("change", () => applyFilters());

// --- the live stream ---------------------------------------------------------------------------
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
    if (!matches(a)) return;
    if (upsert(a, { isNew: true })) {
      announcer.textContent = `New alert ${a.id}: possible match with ${a.name}, camera ${a.camera}, score ${score(a.score)}.`;
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

// --- keyboard triage ---------------------------------------------------------------------------
// The keys are listed on the page: j / k next / previous alert, e enlarge the faces, c confirmed,
// f false alert, u could not verify (each chooses the decision and moves to "Record decision",
// which Enter presses), o the outcome, n the notes, Escape back to the alert. Keys typed into a
// field are the field's; while the enlarged view is open, its own keys (Escape closes it).
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
  if (dialog.open || event.altKey || event.ctrlKey || event.metaKey) return;
  const inField = event.target.matches && event.target.matches("input:not([type=radio]):not([type=checkbox]), textarea, select");
  if (inField) {
    if (event.key === "Escape" && event.target.closest("#alert-list")) focusCard(cardInFocus());
    return;
  }
  if (event.target.closest && event.target.closest("#filter-form")) return;
  const all = cards();
  if (!all.length) return;
  const li = cardInFocus();
  const at = li ? all.indexOf(li) : -1;
  const key = event.key.toLowerCase();
  if (key === "j") focusCard(all[Math.min(at + 1, all.length - 1)]);
  else if (key === "k") focusCard(all[Math.max(at - 1, 0)]);
  else if (li && key === "e") {
    current = Number(li.dataset.alertId);
    const a = alerts.get(current).data;
    if (a.has_images === false) return;
    openCompare(a, document.activeElement); // Escape comes back here
  } else if (li && KEY_DECISIONS[key]) {
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

window.addEventListener("pagehide", () => source && source.close());

describeFilters();
loadDeployments();
await load();
connect();
