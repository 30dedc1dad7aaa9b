// Watchlists or galleries: the list and the create form.
import { api, badge, emptyRow, fill, h, localToIso, main, onSubmit, showError, time } from "./common.js";

const kind = main.dataset.kind; // watchlist | gallery
const plural = main.dataset.plural; // watchlists | galleries
const tbody = document.querySelector("#collections-table tbody");
const columns = kind === "watchlist" ? 7 : 5;

async function loadList() {
  try {
    const rows = await api(`/api/${plural}`);
    if (!rows.length) return emptyRow(tbody, columns, `No ${plural} yet.`);
    fill(tbody, rows.map((c) => h("tr", {},
      h("td", {}, h("a", { href: `/${plural}/${encodeURIComponent(c.name)}` }, c.name)),
      h("td", {}, badge(c.status)),
      kind === "watchlist" ? [
        h("td", {}, c.category),
        h("td", {}, c.authorised_by ? [badge("authorised"), ` by ${c.authorised_by}`] : badge("not authorised", "badge-warn")),
      ] : null,
      h("td", { class: "num" }, c.subjects),
      h("td", {}, c.purpose || "–"),
      h("td", {}, c.expires_at ? time(c.expires_at) : "never"))));
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
