// Shared helpers for the console pages: calling the API, building DOM safely (text nodes,
// never innerHTML with data), showing errors and announcements in the page's live regions.

export const perms = new Set((document.body.dataset.perms || "").split(" ").filter(Boolean));
export const can = (permission) => perms.has(permission);
export const main = document.getElementById("main");

export class ApiError extends Error {
  constructor(message, status, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/** Build an element: h("a", {href: "/x", class: "y"}, "text", child). Strings become text nodes. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's content. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function detailText(body, status) {
  const detail = body && typeof body === "object" ? body.detail : null;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    // FastAPI validation errors: [{loc: ["body", "name"], msg: "..."}]
    return detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".") || "request"}: ${d.msg}`).join("; ");
  }
  if (typeof body === "string" && body.length < 300) return body || `request failed (${status})`;
  return `request failed (HTTP ${status})`;
}

/**
 * Call the API (same origin; the HttpOnly session cookie goes with it).
 * options: method, json (a body sent as JSON), form (FormData or URLSearchParams),
 * redirectOn401 (default true: an expired session goes back to the login page).
 */
export async function api(path, { method = "GET", json, form, redirectOn401 = true } = {}) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError("the server cannot be reached; check the connection and try again", 0);
  }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json().catch(() => null) : await response.text();
  if (response.status === 401 && redirectOn401) {
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new ApiError("your session has ended: log in again", 401, body);
  }
  if (!response.ok) throw new ApiError(detailText(body, response.status), response.status, body);
  return body;
}

const errors = document.getElementById("errors");
const status = document.getElementById("status");

/** Show an error in the page's alert region (announced at once by screen readers). */
export function showError(err, context = "") {
  const message = err instanceof Error ? err.message : String(err);
  const prefix = err && err.status === 403 ? "Not allowed: " : "";
  fill(errors, h("p", {}, context ? `${context}: ${prefix}${message}` : `${prefix}${message}`));
  errors.scrollIntoView({ block: "nearest" });
}

export function clearErrors() {
  errors.replaceChildren();
}

/** Say something politely to screen-reader users (e.g. "saved"). */
export function announce(text) {
  status.textContent = "";
  window.setTimeout(() => { status.textContent = text; }, 50);
}

/** Run an action from a form or button: disables the button meanwhile, shows errors. */
export async function busy(button, action, context = "") {
  const wasDisabled = button ? button.disabled : false;
  if (button) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
  }
  clearErrors();
  try {
    return await action();
  } catch (err) {
    showError(err, context);
    return undefined;
  } finally {
    if (button) {
      button.disabled = wasDisabled;
      button.removeAttribute("aria-busy");
    }
  }
}

/** Handle a form's submit with an async function; the submit button is disabled while it runs. */
export function onSubmit(form, handler, context = "") {
  if (!form) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const button = event.submitter || form.querySelector("[type=submit]");
    busy(button, () => handler(new FormData(form), form), context);
  });
}

export function time(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return h("time", { datetime: iso, title: iso }, date.toLocaleString());
}

export function score(value) {
  return typeof value === "number" ? value.toFixed(3) : "–";
}

/** A false match rate as words: "about 1 in 6.8 million". */
export function oneIn(rate) {
  if (typeof rate !== "number" || !(rate > 0)) return "–";
  const n = 1 / rate;
  if (n >= 1e6) return `about 1 in ${(n / 1e6).toFixed(1)} million`;
  if (n >= 1e4) return `about 1 in ${Math.round(n / 1e3)} thousand`;
  return `about 1 in ${Math.round(n).toLocaleString()}`;
}

const STATUS_CLASS = {
  active: "badge-ok", authorised: "badge-ok", running: "badge-info", ended: "badge", draft: "badge-warn",
  expired: "badge-bad", refused: "badge-bad", confirmed: "badge-ok", false_alert: "badge-bad", unverified: "badge-warn",
};

export function badge(text, cls) {
  return h("span", { class: `badge ${cls || STATUS_CLASS[text] || ""}` }, String(text).replace(/_/g, " "));
}

export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(Boolean).map(([term, value]) => [h("dt", {}, term), h("dd", {}, value ?? "–")]));
}

/** datetime-local value (local time) -> ISO string in UTC, or null. */
export function localToIso(value) {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

export function emptyRow(tbody, columns, text) {
  fill(tbody, h("tr", {}, h("td", { colspan: columns, class: "empty" }, text)));
}

/**
 * One page of a list endpoint, whose answer is {items, next_cursor}: {items, next} (next is the
 * cursor of the following page, or null on the last one). A plain array is one whole list.
 */
export function pageOf(body) {
  if (Array.isArray(body)) return { items: body, next: null };
  return { items: (body && body.items) || [], next: (body && body.next_cursor) || null };
}

/** path?query with limit and cursor set (cursor only when given). */
export function withPage(path, { limit = 100, cursor = null } = {}) {
  const [base, query = ""] = path.split("?");
  const params = new URLSearchParams(query);
  params.set("limit", String(limit));
  if (cursor) params.set("cursor", cursor);
  else params.delete("cursor");
  return `${base}?${params}`;
}

/**
 * A list shown one page at a time, with a "Show more" button after `after` (an element of the
 * page) while the server says there is a next page (next_cursor).
 *   path(): the list's address with its filters, e.g. "/api/deployments?status=draft"
 *   show(items, {first}): first is true for the first page (replace), false for the next (append)
 * Returns {reload, more, button}: reload() fetches the first page again (after a filter changes).
 * When the last page is reached while the button has focus, focus moves to `focusAfter`
 * (the table or list, made focusable), so keyboard users are not dropped at the page's top.
 */
export function pagedList({ path, show, after, label = "Show more", limit = 100, context = "Loading",
  focusAfter = null }) {
  let next = null;
  const button = h("button", { type: "button", class: "button button-secondary load-more", hidden: true }, label);
  after.after(button);
  async function fetchPage(cursor) {
    const page = pageOf(await api(withPage(path(), { limit, cursor })));
    next = page.next;
    return page.items;
  }
  function settle(hadFocus) {
    button.hidden = !next;
    if (hadFocus && !next && focusAfter) {
      if (!focusAfter.hasAttribute("tabindex")) focusAfter.setAttribute("tabindex", "-1");
      focusAfter.focus();
    }
  }
  async function reload() {
    const items = await fetchPage(null);
    show(items, { first: true });
    settle(false);
    return items;
  }
  async function more() {
    if (!next) return [];
    const hadFocus = document.activeElement === button;
    const items = await fetchPage(next);
    show(items, { first: false });
    settle(hadFocus);
    announce(`${items.length} more shown${next ? "" : "; that is all"}.`);
    return items;
  }
  button.addEventListener("click", () => busy(button, more, context));
  return { reload, more, button, get hasMore() { return Boolean(next); } };
}

/** Every item of a list, page after page: for choices that must be complete (the watchlists a
 * plan may use, the collections a search may target). Stops after `pages` pages. */
export async function allItems(path, { limit = 1000, pages = 20 } = {}) {
  const items = [];
  let cursor = null;
  for (let i = 0; i < pages; i += 1) {
    const page = pageOf(await api(withPage(path, { limit, cursor })));
    items.push(...page.items);
    if (!page.next) break;
    cursor = page.next;
  }
  return items;
}

/** Show a page of table rows: the first replaces the body (or says `emptyText`), the next append. */
export function tableRows(tbody, columns, emptyText, row) {
  return (items, { first }) => {
    if (first && !items.length) return emptyRow(tbody, columns, emptyText);
    if (first) fill(tbody, items.map(row));
    else tbody.append(...items.map(row));
    return undefined;
  };
}
