"""The operator console: server-rendered pages (Jinja2) with small plain-JavaScript modules
that call the JSON API under /api. No build step, no framework, nothing from a CDN.
See docs/console.md."""
