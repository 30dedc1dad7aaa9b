// One watchlist or gallery: summary, actions (authorise, expire, delete), enrolment with a
// quality check shown before anything is stored (enrol with preview=true), and its subjects.
import {
  announce, api, badge, busy, can, emptyRow, facts, fill, h, main, onSubmit, pagedList, showError, tableRows, time,
} from "./common.js";

const kind = main.dataset.kind;
const plural = main.dataset.plural;
const name = main.dataset.name;
const base = `/api/${plural}/${encodeURIComponent(name)}`;
const manage = kind === "gallery" ? "gallery.manage" : "watchlist.manage";

async function loadSummary() {
  try {
    const c = await api(base);
    fill(document.getElementById("status-badge"), badge(c.status));
    fill(document.getElementById("summary"), facts([
      ["Name", c.name],
      kind === "watchlist" ? ["Category", c.category] : null,
      ["Purpose", c.purpose || "–"],
      ["Legal basis", c.legal_basis || "–"],
      ["Subjects", String(c.subjects)],
      kind === "watchlist" ? ["Authorisation", c.authorised_by
        ? [badge("authorised"), ` by ${c.authorised_by} at `, time(c.authorised_at)]
        : [badge("not authorised", "badge-warn"), " (needed before a deployment can use it)"]] : null,
      ["Created", [c.created_by, " at ", time(c.created_at)]],
      ["Expires", c.expires_at ? time(c.expires_at) : "never"],
      ["Face model", c.model_id],
    ]));
    return c;
  } catch (err) {
    showError(err, `Loading the ${kind}`);
    return null;
  }
}

// The subjects, a page at a time (GET .../subjects?limit&cursor), searchable by name or
// reference (q): the search box is added above the table.
const subjectsTable = document.getElementById("subjects-table");
const subjectsBody = subjectsTable.querySelector("tbody");
const withImages = can("image.view");
const subjectColumns = withImages ? 5 : 4;
const searchInput = h("input", { id: "subject-q", name: "q", type: "search", maxlength: 200, autocomplete: "off" });
const searchForm = h("form", { class: "filters subject-search", role: "search", "aria-label": "Search the subjects" },
  h("div", { class: "field" }, h("label", { for: "subject-q" }, "Name or reference contains"), searchInput),
  h("button", { type: "submit", class: "button button-secondary" }, "Search subjects"));
(subjectsTable.closest(".table-wrap") || subjectsTable).before(searchForm);

function subjectRow(s) {
  return h("tr", {},
    withImages ? h("td", {}, h("img", {
      class: "thumb", src: `/api/subjects/${encodeURIComponent(s.id)}/image`, alt: `Enrolled face of ${s.name}`,
      width: 64, height: 64, loading: "lazy",
    })) : null,
    h("td", {}, s.name),
    h("td", {}, s.category || "–"),
    h("td", {}, s.reference || "–"),
    h("td", {}, h("code", {}, s.id)));
}

function subjectsPath() {
  const q = searchInput.value.trim();
  return q ? `${base}/subjects?${new URLSearchParams({ q })}` : `${base}/subjects`;
}

const subjects = pagedList({
  path: subjectsPath, after: subjectsTable.closest(".table-wrap") || subjectsTable, focusAfter: subjectsTable,
  label: "Show more subjects", context: "Loading more subjects",
  show: (items, page) => tableRows(subjectsBody, subjectColumns,
    searchInput.value.trim() ? "No subjects match this search." : "No subjects enrolled yet.", subjectRow)(items, page),
});

async function loadSubjects() {
  try {
    return await subjects.reload();
  } catch (err) {
    emptyRow(subjectsBody, subjectColumns, "Could not load the subjects.");
    showError(err, "Loading subjects");
    return [];
  }
}

onSubmit(searchForm, async () => {
  const rows = await loadSubjects();
  const q = searchInput.value.trim();
  const one = rows.length === 1 && !subjects.hasMore;
  const count = `${rows.length}${subjects.hasMore ? " or more" : ""} subject${one ? "" : "s"}`;
  announce(q ? `${count} ${one ? "matches" : "match"} “${q}”.` : `${count}.`);
}, "Searching the subjects");

// --- actions -------------------------------------------------------------------------------
onSubmit(document.getElementById("authorise-form"), async (data) => {
  await api(`${base}/authorise`, { method: "POST", json: { note: data.get("note") || "" } });
  announce(`Watchlist ${name} authorised.`);
  await loadSummary();
}, "Authorising");

onSubmit(document.getElementById("expire-form"), async () => {
  if (!window.confirm(`Expire the watchlist ${name} now? It cannot be used by new deployments afterwards.`)) return;
  await api(`${base}/expire`, { method: "POST" });
  announce(`Watchlist ${name} expired.`);
  await loadSummary();
}, "Expiring");

onSubmit(document.getElementById("delete-form"), async (data) => {
  const reason = (data.get("reason") || "").trim();
  if (!reason) throw new Error("give a reason for deleting");
  if (!window.confirm(`Delete the ${kind} ${name}? Subjects enrolled only here are erased. This cannot be undone.`)) return;
  await api(base, { method: "DELETE", json: { reason } });
  location.assign(`/${plural}`);
}, "Deleting");

// --- enrolment with a quality check first ---------------------------------------------------
const enrolForm = document.getElementById("enrol-form");
const qualityEl = document.getElementById("quality");
const submit = document.getElementById("enrol-submit");
let previewUrl = null;
let checked = null; // the File that passed the quality check

function showQuality(file, result) {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(file); // a local blob URL only for display; nothing is kept in the browser
  const q = result.quality;
  const img = h("img", { src: previewUrl, alt: `The chosen photograph, ${file.name}, with the detected face outlined` });
  const box = h("div", { class: "box", "aria-hidden": "true" });
  img.addEventListener("load", () => {
    const [x, y, w, hgt] = result.box;
    box.style.left = `${(100 * x) / img.naturalWidth}%`;
    box.style.top = `${(100 * y) / img.naturalHeight}%`;
    box.style.width = `${(100 * w) / img.naturalWidth}%`;
    box.style.height = `${(100 * hgt) / img.naturalHeight}%`;
  });
  fill(qualityEl,
    h("h3", {}, "Quality check"),
    h("p", { class: `notice ${q.passed ? "notice-ok" : "notice-bad"}`, id: "quality-verdict" },
      q.passed ? "Good enough to enrol." : "Not good enough to enrol: choose a better photograph."),
    h("div", { class: "preview" }, img, box),
    h("p", {}, h("label", { for: "quality-meter" }, "Quality score "),
      h("meter", { id: "quality-meter", min: 0, max: 1, low: 0.5, optimum: 1, value: q.score }), ` ${q.score.toFixed(2)} of 1`),
    q.reasons.length ? h("ul", { class: "reasons" }, q.reasons.map((r) => h("li", {}, r))) : null,
    h("details", {}, h("summary", {}, "Measurements"), facts([
      ["Eye distance", `${q.eye_distance.toFixed(0)} pixels`],
      ["Detector confidence", q.detection_score.toFixed(2)],
      ["Turn (yaw), tilt (pitch), roll", `${q.yaw.toFixed(0)}°, ${q.pitch.toFixed(0)}°, ${q.roll.toFixed(0)}°`],
      ["Sharpness", q.sharpness.toFixed(2)],
      ["Brightness, contrast", `${q.brightness.toFixed(0)}, ${q.contrast.toFixed(0)}`],
    ])));
}

async function check(file) {
  checked = null;
  submit.disabled = true;
  if (!file) {
    fill(qualityEl, h("h3", {}, "Quality check"), h("p", { class: "empty" }, "Choose a photograph to check it."));
    return;
  }
  fill(qualityEl, h("h3", {}, "Quality check"), h("p", {}, "Checking the photograph…"));
  const form = new FormData();
  form.append("image", file);
  form.append("preview", "true");
  await busy(null, async () => {
    try {
      const result = await api(`${base}/enrol`, { method: "POST", form });
      showQuality(file, result);
      if (result.quality.passed) {
        checked = file;
        submit.disabled = false;
      }
    } catch (err) {
      fill(qualityEl, h("h3", {}, "Quality check"), h("p", { class: "notice notice-bad" }, `Cannot enrol this photograph: ${err.message}`));
      throw err;
    }
  }, "Quality check");
}

if (enrolForm && can(manage)) {
  const input = document.getElementById("enrol-image");
  input.addEventListener("change", () => check(input.files[0]));
  onSubmit(enrolForm, async (data) => {
    const file = input.files[0];
    if (!file || file !== checked) throw new Error("choose a photograph that passes the quality check first");
    const subjectName = (data.get("subject_name") || "").trim();
    if (!subjectName) {
      document.getElementById("enrol-name").focus();
      throw new Error("give the subject's name");
    }
    const form = new FormData();
    form.append("image", file);
    form.append("subject_name", subjectName);
    form.append("category", data.get("category") || "");
    form.append("reference", (data.get("reference") || "").trim());
    const result = await api(`${base}/enrol`, { method: "POST", form });
    enrolForm.reset();
    checked = null;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    // The server says which watchlists this enrolment de-authorised and why (a gallery
    // enrolment can change a watchlist too, when the subject is on one).
    const withdrawn = result.authorisation_withdrawn || [];
    fill(qualityEl, h("h3", {}, "Quality check"),
      h("p", { class: "notice notice-ok" }, `${subjectName}: ${result.status} (subject ${result.subject_id}).`),
      ...withdrawn.map((w) => h("p", { class: "notice notice-warn", role: "status" },
        `Authorisation withdrawn from watchlist ${w.watchlist}: ${w.because}. `
        + "A supervisor must authorise it again before a deployment can use it.")));
    announce(`${subjectName} ${result.status}.`
      + (withdrawn.length ? ` Authorisation withdrawn from ${withdrawn.map((w) => w.watchlist).join(", ")}.` : ""));
    await Promise.all([loadSummary(), loadSubjects()]);
    // The submit button is re-enabled by the form helper; keep it off until the next check.
    setTimeout(() => { submit.disabled = true; }, 0);
  }, "Enrolling");
}

loadSummary();
loadSubjects();
