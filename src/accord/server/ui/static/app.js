// The admin UI: sign in, then the settings from /api/config, edited through PUT /api/config/{path}.
// Every call goes to the ordinary /api routes with the session cookie and the CSRF header (docs/ui.md),
// so the server's ACL decides everything; the page only hides controls the server says are useless.
// The DOM is built with textContent only: no value from the server is ever parsed as HTML.

const session = { csrf: "", writable: new Set() };
let settings = [];

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
  $("sign-out").hidden = view !== "settings";
}

function signedIn(who) {
  session.csrf = who.csrf;
  session.writable = new Set(who.writable);
  $("who").textContent = `Signed in as ${who.name}`;
  show("settings");
  return loadSettings();
}

function signedOut(message = "") {
  session.csrf = "";
  session.writable = new Set();
  settings = [];
  $("who").textContent = "";
  $("settings-list").replaceChildren();
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
  $("settings-status").textContent = `${settings.length} settings, revision ${answer.data.revision}`;
  render();
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
  return article;
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
  const who = await api("GET", "/ui/session");
  if (who.ok) await signedIn(who.data);
  else signedOut();
}

boot();
