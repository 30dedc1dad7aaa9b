// Audit trail: chain verification (GET /api/audit/verify) and the entries with filters
// (GET /api/audit), newest first, a page at a time ("Show older entries" follows next_cursor);
// the retrospective searches of the same period (GET /api/searches), also a page at a time.
import {
  announce, api, busy, emptyRow, fill, h, onSubmit, pageOf, pagedList, showError, tableRows, time, withPage,
} from "./common.js";

const verifyEl = document.getElementById("verify");
const tbody = document.querySelector("#audit-table tbody");
const older = document.getElementById("older");
const form = document.getElementById("filter-form");
let nextCursor = null;

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

function params() {
  const data = new FormData(form);
  const p = new URLSearchParams();
  for (const key of ["action", "actor_name", "object_type"]) {
    const value = (data.get(key) || "").trim();
    if (value) p.set(key, value);
  }
  period(data, p);
  return p;
}

function pageSize() {
  return Number(new FormData(form).get("limit") || 100);
}

const searchesTable = document.getElementById("searches-table");
const searches = searchesTable ? pagedList({
  path: () => `/api/searches?${period(new FormData(form), new URLSearchParams())}`,
  after: searchesTable.closest(".table-wrap") || searchesTable, focusAfter: searchesTable,
  label: "Show older searches", context: "Loading older searches",
  show: tableRows(searchesTable.querySelector("tbody"), 8, "No searches in this period.", (r) => h("tr", {},
    h("td", { class: "num" }, r.id), h("td", {}, time(r.at)), h("td", {}, r.by), h("td", {}, r.case_ref),
    h("td", {}, r.reason), h("td", {}, r.collection), h("td", { class: "num" }, r.faces),
    h("td", { class: "num" }, r.candidates))),
}) : null;

// CSV exports every entry the filters select; JSON is the API's page (up to 1,000 entries).
function exportLinks(p) {
  const q = new URLSearchParams(p);
  q.set("limit", "1000");
  const json = document.getElementById("export-json");
  json.href = `/api/audit?${q}`;
  json.textContent = "JSON (up to 1,000 entries)";
  q.delete("limit");
  q.set("format", "csv");
  document.getElementById("export-csv").href = `/api/audit?${q}`;
}

async function load(more = false) {
  const p = params();
  if (!more) {
    exportLinks(p);
    if (searches) await searches.reload();
  }
  const hadFocus = document.activeElement === older;
  const page = pageOf(await api(withPage(`/api/audit?${p}`, { limit: pageSize(), cursor: more ? nextCursor : null })));
  const rows = page.items;
  if (!more) {
    if (!rows.length) emptyRow(tbody, 6, "No entries match these filters.");
    else fill(tbody, rows.map(row));
  } else {
    tbody.append(...rows.map(row));
  }
  nextCursor = page.next;
  older.hidden = !nextCursor;
  if (hadFocus && !nextCursor) {
    const table = document.getElementById("audit-table");
    table.setAttribute("tabindex", "-1");
    table.focus();
  }
  return rows;
}

onSubmit(form, async () => {
  const rows = await load();
  announce(`${rows.length} entries shown${nextCursor ? "; older ones follow" : ""}.`);
}, "Loading the audit trail");
older.addEventListener("click", () => busy(older, async () => {
  const rows = await load(true);
  announce(`${rows.length} older entries added${nextCursor ? "" : "; that is all"}.`);
}, "Loading older entries"));
document.getElementById("verify-again").addEventListener("click", (event) => busy(event.currentTarget, verify));

// Filters can come from the address, e.g. /audit?action=alert.decided
const initial = new URLSearchParams(location.search);
for (const key of ["action", "actor_name", "object_type"]) {
  if (initial.get(key) && form.elements[key]) form.elements[key].value = initial.get(key);
}
verify();
load().catch((err) => { emptyRow(tbody, 6, "Could not load the audit trail."); showError(err, "Loading the audit trail"); });
