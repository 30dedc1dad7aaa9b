// Watchlists or galleries: the list and the create form.
import { api, badge, emptyRow, h, localToIso, main, onSubmit, pagedList, showError, tableRows, time } from "./common.js";

const kind = main.dataset.kind; // watchlist | gallery
const plural = main.dataset.plural; // watchlists | galleries
const table = document.getElementById("collections-table");
const tbody = table.querySelector("tbody");
const columns = kind === "watchlist" ? 7 : 5;

function collectionRow(c) {
  return h("tr", {},
    h("td", {}, h("a", { href: `/${plural}/${encodeURIComponent(c.name)}` }, c.name)),
    h("td", {}, badge(c.status)),
    kind === "watchlist" ? [
      h("td", {}, c.category),
      h("td", {}, c.authorised_by ? [badge("authorised"), ` by ${c.authorised_by}`] : badge("not authorised", "badge-warn")),
    ] : null,
    h("td", { class: "num" }, c.subjects),
    h("td", {}, c.purpose || "–"),
    h("td", {}, c.expires_at ? time(c.expires_at) : "never"));
}

// A page at a time (GET /api/{plural}?limit&cursor; "Show more" follows next_cursor).
const collections = pagedList({
  path: () => `/api/${plural}`, after: table.closest(".table-wrap") || table, focusAfter: table,
  label: `Show more ${plural}`, context: `Loading more ${plural}`,
  show: tableRows(tbody, columns, `No ${plural} yet.`, collectionRow),
});

async function loadList() {
  try {
    await collections.reload();
  } catch (err) {
    emptyRow(tbody, columns, `Could not load the ${plural}.`);
    showError(err, `Loading ${plural}`);
  }
}

onSubmit(document.getElementById("create-form"), async (data) => {
  const body = {
    name: (data.get("name") || "").trim(),
    purpose: (data.get("purpose") || "").trim(),
    legal_basis: (data.get("legal_basis") || "").trim(),
    expires_at: localToIso(data.get("expires_at")),
  };
  if (kind === "watchlist") body.category = data.get("category");
  if (!body.name) throw new Error(`give the ${kind} a name`);
  if (kind === "watchlist" && !body.purpose) throw new Error("a watchlist needs a purpose");
  const created = await api(`/api/${plural}`, { method: "POST", json: body });
  location.assign(`/${plural}/${encodeURIComponent(created.name)}`);
}, `Creating the ${kind}`);

loadList();
