// The admin UI: sign in, then the settings from /api/config, edited through PUT /api/config/{path}.
// Every call goes to the ordinary /api routes with the session cookie and the CSRF header (docs/ui.md),
// so the server's ACL decides everything; the page only hides controls the server says are useless.
// The DOM is built with textContent only: no value from the server is ever parsed as HTML.

const session = { csrf: "", writable: new Set(), watch: null };
let settings = [];
let revision = 0;

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

async function api(method, url, body) {
  const headers = { "X-Accord-CSRF": session.csrf };
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  return { status: response.status, ok: response.ok, data };
}

// A value as a person reads and types it: strings bare (never JSON-quoted), everything else as JSON.
function asText(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function show(view) {
  $("loading").hidden = true;
  $("signin").hidden = view !== "signin";
  $("settings").hidden = view !== "settings";
  $("audit").hidden = view !== "audit";
  $("sign-out").hidden = view === "signin";
  $("views").hidden = view === "signin";
  for (const button of $("views").querySelectorAll("button")) {
    if (button.dataset.view === view) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
}

// Audit: /api/audit newest first (only keys the token may read, the server filters), a page at a time;
// "Older" asks for the page before the last revision shown.
const AUDIT_PAGE = 50;
let auditBefore = null;

async function loadAudit(more = false) {
  const params = new URLSearchParams({ limit: String(AUDIT_PAGE) });
  for (const name of ["prefix", "actor", "action", "since"]) {
    const value = $(`audit-${name}`).value.trim();
    if (value) params.set(name, value);
  }
  if (more && auditBefore !== null) params.set("before_revision", String(auditBefore));
  const answer = await api("GET", `/api/audit?${params}`);
  if (answer.status === 401) return signedOut("The session ended: sign in again.");
  if (!answer.ok) {
    $("audit-status").textContent = (answer.data && answer.data.detail) || `refused (${answer.status})`;
    return;
  }
  const rows = answer.data;
  const items = rows.map(auditItem);
  if (more) $("audit-list").append(...items);
  else $("audit-list").replaceChildren(...items);
  if (rows.length) auditBefore = rows[rows.length - 1].revision;
  $("audit-older").hidden = rows.length < AUDIT_PAGE;
  const shown = $("audit-list").children.length;
  $("audit-status").textContent = shown ? `${shown} records` : "No records match.";
}

function auditItem(row) {
  const what = row.path || row.key;
  const change = row.op === "delete" ? `${asText(row.old)} → removed` : `${asText(row.old)} → ${asText(row.new)}`;
  return el("li", { "data-revision": String(row.revision) },
    el("p", { class: "version-head", text: `Revision ${row.revision} · ${row.at || ""} · ${row.actor || "unknown"} · ${row.action || row.op}` }),
    el("p", { class: "value", text: `${what}: ${change}` }));
}

function switchTo(view) {
  show(view);
  if (view === "audit") {
    auditBefore = null;
    return loadAudit();
  }
  return loadSettings();
}

function signedIn(who) {
  session.csrf = who.csrf;
  session.writable = new Set(who.writable);
  $("who").textContent = `Signed in as ${who.name}`;
  show("settings");
  return loadSettings();
}

function signedOut(message = "") {
  session.watch?.abort();
  session.watch = null;
  session.csrf = "";
  session.writable = new Set();
  settings = [];
  $("who").textContent = "";
  $("settings-list").replaceChildren();
  $("audit-list").replaceChildren();
  $("signin-error").textContent = message;
  show("signin");
  $("token").focus();
}

async function signIn(event) {
  event.preventDefault();
  const input = $("token");
  const answer = await api("POST", "/ui/session", { token: input.value });
  input.value = "";
  if (!answer.ok) {
    $("signin-error").textContent = (answer.data && answer.data.detail) || `sign-in failed (${answer.status})`;
    return;
  }
  $("signin-error").textContent = "";
  await signedIn(answer.data);
}

async function signOut() {
  await api("DELETE", "/ui/session");
  signedOut();
}

async function loadSettings() {
  const answer = await api("GET", "/api/config");
  if (answer.status === 401) return signedOut("The session ended: sign in again.");
  if (!answer.ok) {
    $("settings-status").textContent = answer.data.detail;
    return;
  }
  settings = answer.data.settings;
  revision = answer.data.revision;
  showRevision();
  render();
  if (!session.watch) watch();
}

function showRevision() {
  $("settings-status").textContent = `${settings.length} settings, revision ${revision}`;
}

// Live: /api/watch read with fetch (EventSource cannot send the CSRF header), resumed from the last
// revision seen, so nothing is missed between loading the list and the stream starting, or across reconnects.
async function watch() {
  const controller = new AbortController();
  session.watch = controller;
  while (session.watch === controller) {
    try {
      const response = await fetch(`/api/watch?from_revision=${revision}`, {
        headers: { "X-Accord-CSRF": session.csrf }, credentials: "same-origin", signal: controller.signal,
      });
      if (response.status === 401 || response.status === 403) {
        if (session.watch === controller) signedOut("The session ended: sign in again.");
        return;
      }
      if (response.ok) await readEvents(response.body);
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function readEvents(stream) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((line) => line.startsWith("data:")).map((line) => line.slice(5).trim());
      if (data.length) await changed(JSON.parse(data.join("\n")));
    }
  }
}

async function changed(event) {
  revision = Math.max(revision, event.revision);
  const answer = await api("GET", `/api/config/${encodeURIComponent(event.path)}`);
  if (!answer.ok) return;
  const index = settings.findIndex((row) => row.path === event.path);
  if (index < 0) return;
  showRevision();
  const known = settings[index];
  if (known.version === answer.data.version && known.mod_revision === answer.data.mod_revision) return; // our own save
  const current = document.querySelector(`article[data-path="${CSS.escape(event.path)}"]`);
  if (current && current.contains(document.activeElement) && document.activeElement.tagName === "INPUT") {
    // someone is typing here: keep their text; saving will show the conflict with both values
    let notice = current.querySelector(".elsewhere");
    if (!notice) current.append(notice = el("p", { class: "elsewhere", role: "status" }));
    notice.textContent = `Changed elsewhere: now version ${answer.data.version}`;
    return;
  }
  settings[index] = answer.data;
  if (current) current.replaceWith(card(answer.data));
}

function category(path) {
  return path.split(".", 1)[0];
}

function render() {
  const query = $("search").value.trim().toLowerCase();
  const list = $("settings-list");
  const groups = new Map();
  for (const row of settings) {
    const haystack = `${row.path} ${row.description}`.toLowerCase();
    if (query && !haystack.includes(query)) continue;
    const name = category(row.path);
    if (!groups.has(name)) groups.set(name, []);
    groups.get(name).push(row);
  }
  const sections = [];
  for (const [name, rows] of [...groups.entries()].sort()) {
    const section = el("section", { class: "category", "aria-label": name }, el("h3", { text: name }));
    for (const row of rows) section.append(card(row));
    sections.push(section);
  }
  if (!sections.length) sections.push(el("p", { text: query ? "No setting matches." : "No settings." }));
  list.replaceChildren(...sections);
}

function detail(list, term, value) {
  list.append(el("dt", { text: term }), el("dd", { text: value }));
}

function card(row) {
  const article = el("article", { class: "setting", "data-path": row.path }, el("h4", { text: row.path }));
  const facts = el("dl");
  detail(facts, "Value", asText(row.value));
  facts.lastChild.classList.add("value");
  detail(facts, "Type", row.type);
  detail(facts, "Default", asText(row.default));
  detail(facts, "Source", row.source);
  if (row.shadowed_env) detail(facts, "Shadows env", row.shadowed_env);
  detail(facts, "Version", String(row.version));
  if (row.description) detail(facts, "Description", row.description);
  article.append(facts);
  if (session.writable.has(row.path)) article.append(editor(row));
  article.append(historyPanel(row));
  return article;
}

// History: the stored versions, newest first, each with the value it replaced; Rollback (writers only)
// asks for a confirmation in the page, then restores that version's value as a new version.
function historyPanel(row) {
  const panel = el("div", { class: "history" });
  const toggle = el("button", { type: "button", class: "secondary", "aria-expanded": "false", text: "History" });
  const body = el("div", { class: "history-body" });
  body.hidden = true;
  toggle.addEventListener("click", async () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    body.hidden = !open;
    if (open) await loadHistory(row, body);
  });
  panel.append(toggle, body);
  return panel;
}

async function loadHistory(row, body) {
  const answer = await api("GET", `/api/config/${encodeURIComponent(row.path)}/history?limit=50`);
  if (!answer.ok) {
    body.replaceChildren(el("p", { class: "error", role: "alert", text: answer.data.detail }));
    return;
  }
  const versions = answer.data;
  if (!versions.length) {
    body.replaceChildren(el("p", { text: "Nothing stored yet: the value comes from the environment or the default." }));
    return;
  }
  const list = el("ol", { class: "versions", "aria-label": `History of ${row.path}` });
  versions.forEach((item, index) => {
    const previous = versions[index + 1];
    const what = item.op === "delete" ? "removed" : asText(item.value);
    const entry = el("li", { "data-version": String(item.version) },
      el("p", { class: "version-head", text: `Version ${item.version} · ${item.op} · ${item.actor || "unknown"} · ${item.at || ""}` }),
      el("p", { class: "value", text: what }));
    if (previous && item.op !== "delete") entry.append(el("p", { class: "was", text: `was: ${asText(previous.value)}` }));
    const current = index === 0;
    if (!current && item.op !== "delete" && session.writable.has(row.path)) entry.append(rollbackControl(row, item));
    list.append(entry);
  });
  body.replaceChildren(list);
}

function rollbackControl(row, item) {
  const box = el("div", { class: "rollback" });
  const start = el("button", { type: "button", class: "secondary", text: "Rollback" });
  start.setAttribute("aria-label", `Rollback ${row.path} to version ${item.version}`);
  const error = el("p", { class: "error", role: "alert" });
  start.addEventListener("click", () => {
    const question = el("p", { text: `Roll ${row.path} back to version ${item.version}? This stores its value as a new version.` });
    const confirm = el("button", { type: "button", text: "Confirm rollback" });
    const cancel = el("button", { type: "button", class: "secondary", text: "Cancel" });
    const dialog = el("div", { class: "confirm", role: "group", "aria-label": "Confirm rollback" }, question, confirm, cancel);
    cancel.addEventListener("click", () => { dialog.remove(); start.hidden = false; start.focus(); });
    confirm.addEventListener("click", async () => {
      const url = `/api/config/${encodeURIComponent(row.path)}/rollback`;
      const answer = await api("POST", url, { to_version: item.version });
      if (!answer.ok) {
        error.textContent = (answer.data && answer.data.detail) || `refused (${answer.status})`;
        return;
      }
      replaceRow(answer.data, `Rolled back to version ${item.version}: now version ${answer.data.version}`);
    });
    start.hidden = true;
    box.append(dialog);
    confirm.focus();
  });
  box.append(start, error);
  return box;
}

function editor(row) {
  const id = `edit-${row.path}`;
  const input = el("input", { id, type: "text", autocomplete: "off", spellcheck: "false" });
  if (row.secret) input.placeholder = "secret: type a new value";
  else input.value = asText(row.value);
  const error = el("p", { class: "error", role: "alert" });
  const ok = el("p", { class: "ok", role: "status" });
  const form = el(
    "form", { class: "edit", novalidate: "" },
    el("label", { for: id, text: row.path }), input, el("button", { type: "submit", text: "Save" }), error, ok,
  );
  let expected = row.version;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    ok.textContent = "";
    form.querySelector(".conflict")?.remove();
    const typed = input.value;
    const url = `/api/config/${encodeURIComponent(row.path)}`;
    const answer = await api("PUT", url, { input: typed, expect_version: expected });
    if (answer.ok) {
      replaceRow(answer.data, `Saved: version ${answer.data.version}`);
    } else if (answer.status === 409) {
      const now = await api("GET", url);
      if (now.ok) expected = now.data.version;
      const stored = now.ok ? `${asText(now.data.value)} (version ${now.data.version})` : "unknown";
      form.append(el("div", { class: "conflict", role: "alert" },
        el("p", { text: "Someone else saved first." }),
        el("p", { text: `Stored now: ${stored}` }),
        el("p", { text: `Yours: ${row.secret ? "(secret)" : typed}` }),
        el("p", { text: "Save again to replace the stored value with yours." })));
    } else if (answer.status === 401) {
      signedOut("The session ended: sign in again.");
    } else {
      error.textContent = (answer.data && answer.data.detail) || `refused (${answer.status})`;
    }
  });
  return form;
}

function replaceRow(changed, message) {
  const index = settings.findIndex((row) => row.path === changed.path);
  const { old: _old, new: _new, ...row } = changed;
  if (index >= 0) settings[index] = { ...settings[index], ...row };
  const current = document.querySelector(`article[data-path="${CSS.escape(changed.path)}"]`);
  if (!current) return render();
  const fresh = card(settings[index]);
  current.replaceWith(fresh);
  const ok = fresh.querySelector(".ok");
  if (ok) ok.textContent = message;
  fresh.querySelector("input")?.focus();
}

async function boot() {
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("search").addEventListener("input", render);
  for (const button of $("views").querySelectorAll("button")) {
    button.addEventListener("click", () => switchTo(button.dataset.view));
  }
  $("audit-form").addEventListener("submit", (event) => { event.preventDefault(); auditBefore = null; loadAudit(); });
  $("audit-older").addEventListener("click", () => loadAudit(true));
  const who = await api("GET", "/ui/session");
  if (who.ok) await signedIn(who.data);
  else signedOut();
}

boot();
