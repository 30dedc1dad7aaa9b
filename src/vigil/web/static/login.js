// Log in: POST /api/token (OAuth2 password form); the server sets the HttpOnly session cookie.
import { api, onSubmit } from "./common.js";

const form = document.getElementById("login-form");

onSubmit(form, async (data) => {
  const body = new URLSearchParams();
  body.set("username", data.get("username"));
  body.set("password", data.get("password"));
  await api("/api/token", { method: "POST", form: body, redirectOn401: false });
  location.assign(form.dataset.next || "/");
}, "Log in failed");
