// Audit trail: chain verification (GET /api/audit/verify) and the entries with filters
// (GET /api/audit), newest first, with "older" paging by sequence number.
import { announce, api, busy, emptyRow, fill, h, onSubmit, showError, time } from "./common.js";

const verifyEl = document.getElementById("verify");
const tbody = document.querySelector("#audit-table tbody");
const older = document.getElementById("older");
const form = document.getElementById("filter-form");
let lastSeq = null;

async function verify() {
  fill(verifyEl, h("p", {}, "Verifying…"));
  try {
    const v = await api("/api/audit/verify");
    fill(verifyEl, v.ok
      ? h("p", { class: "notice notice-ok", id: "verify-result" }, h("strong", {}, "Chain intact. "),
        `All ${v.entries} entries verified: each links to the one before it and carries a valid signature.`)
      : h("p", { class: "notice notice-bad", id: "verify-result" }, h("strong", {}, "Chain broken. "),
        `At entry ${v.first_bad_entry}: ${v.reason}. ${v.entries} entries in total. Report this to the system administrator.`));
  } catch (err) {
    fill(verifyEl, h("p", { class: "notice notice-warn" }, "Could not verify the chain."));
    showError(err, "Verification");
  }
}

function details(d) {
  const entries = Object.entries(d || {});
  if (!entries.length) return "–";
  return h("code", {}, entries.map(([k, v]) => `${k}: ${typeof v === "object" && v !== null ? JSON.stringify(v) : v}`).join("; "));
}

function row(e) {
  return h("tr", { dataset: { action: e.action } },
    h("td", { class: "num" }, e.seq),
    h("td", {}, time(e.ts)),
    h("td", {}, e.actor),
    h("td", {}, h("strong", {}, e.action)),
    h("td", {}, e.object_type ? `${e.object_type} ${e.object_id ?? ""}` : "–"),
    h("td", { class: "details-cell" }, details(e.details)));
}

// A date is a whole day in UTC: "from" its first second, "to" its last.
function period(data, p) {
  const since = (data.get("since") || "").trim();
  const until = (data.get("until") || "").trim();
  if (since) p.set("since", `${since}T00:00:00Z`);
  if (until) p.set("until", `${until}T23:59:59Z`);
  return p;
}

function params(before) {
  const data = new FormData(form);
  const p = new URLSearchParams();
  for (const key of ["action", "actor_name", "object_type", "limit"]) {
    const value = (data.get(key) || "").trim();
    if (value) p.set(key, value);
  }
  period(data, p);
  if (before) p.set("before", before);
  return p;
}

const searchesBody = document.querySelector("#searches-table tbody");

async function loadSearches() {
  if (!searchesBody) return;
  const p = period(new FormData(form), new URLSearchParams());
  const rows = await api(`/api/searches?${p}`);
  if (!rows.length) emptyRow(searchesBody, 8, "No searches in this period.");
  else fill(searchesBody, rows.map((r) => h("tr", {},
    h("td", { class: "num" }, r.id), h("td", {}, time(r.at)), h("td", {}, r.by), h("td", {}, r.case_ref),
    h("td", {}, r.reason), h("td", {}, r.collection), h("td", { class: "num" }, r.faces),
    h("td", { class: "num" }, r.candidates))));
}

function exportLinks(p) {
  const q = new URLSearchParams(p);
  q.delete("before");
  document.getElementById("export-json").href = `/api/audit?${q}`;
  q.set("format", "csv");
  document.getElementById("export-csv").href = `/api/audit?${q}`;
}

async function load(before = null) {
  const p = params(before);
  if (!before) {
    exportLinks(p);
    await loadSearches();
  }
  const rows = await api(`/api/audit?${p}`);
  if (!before) {
    if (!rows.length) emptyRow(tbody, 6, "No entries match these filters.");
    else fill(tbody, rows.map(row));
  } else {
    tbody.append(...rows.map(row));
  }
  lastSeq = rows.length ? rows[rows.length - 1].seq : lastSeq;
  older.hidden = rows.length < Number(p.get("limit") || 100) || lastSeq <= 1;
  return rows;
}

onSubmit(form, async () => {
  const rows = await load();
  announce(`${rows.length} entries shown.`);
}, "Loading the audit trail");
older.addEventListener("click", () => busy(older, async () => {
  const rows = await load(lastSeq);
  announce(`${rows.length} older entries added.`);
}, "Loading older entries"));
document.getElementById("verify-again").addEventListener("click", (event) => busy(event.currentTarget, verify));

// Filters can come from the address, e.g. /audit?action=alert.decided
const initial = new URLSearchParams(location.search);
for (const key of ["action", "actor_name", "object_type"]) {
  if (initial.get(key) && form.elements[key]) form.elements[key].value = initial.get(key);
}
verify();
load().catch((err) => { emptyRow(tbody, 6, "Could not load the audit trail."); showError(err, "Loading the audit trail"); });
