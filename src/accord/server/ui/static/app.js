// The admin UI: sign in, then the settings from /api/config, edited through PUT /api/config/{path}.
// Every call goes to the ordinary /api routes with the session cookie and the CSRF header (docs/ui.md),
// so the server's ACL decides everything; the page only hides controls the server says are useless.
// The DOM is built with textContent only: no value from the server is ever parsed as HTML.

const session = { csrf: "", writable: new Set(), revealable: new Set(), can: {}, watch: null, poll: null };
const VIEWS = ["settings", "audit", "tokens", "services", "fleet", "events", "vault"];
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
  for (const name of VIEWS) $(name).hidden = view !== name;
  const heading = VIEWS.includes(view) ? $(`${view}-title`) : null;
  if (heading) { heading.tabIndex = -1; heading.focus(); }  // a keyboard or screen-reader user lands on the view
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

// The operational views re-read their data every POLL_MS while shown (they have no watch stream).
const POLL_MS = 2000;
const LOADERS = {
  tokens: () => loadTokens(),
  services: () => loadServices(),
  fleet: () => loadFleet(),
  events: () => loadEvents(),
  vault: () => loadVault(),
};

// A re-read redraws the view: a keyboard user's focus goes back to the control with the same label.
async function keepingFocus(view, load) {
  const active = document.activeElement;
  const inside = active && active !== document.body && $(view).contains(active);
  const label = inside ? active.getAttribute("aria-label") || active.textContent : null;
  await load();
  if (!label || $(view).contains(active)) return;
  const again = [...$(view).querySelectorAll("button, a, input, select, textarea")].find(
    (node) => (node.getAttribute("aria-label") || node.textContent) === label);
  again?.focus();
}

function switchTo(view) {
  clearInterval(session.poll);
  session.poll = null;
  show(view);
  if (view === "audit") {
    auditBefore = null;
    return loadAudit();
  }
  if (LOADERS[view]) {
    if (view !== "tokens") session.poll = setInterval(() => keepingFocus(view, LOADERS[view]), POLL_MS);
    return LOADERS[view]();
  }
  return loadSettings();
}

function signedIn(who) {
  session.csrf = who.csrf;
  session.writable = new Set(who.writable);
  session.revealable = new Set(who.revealable);
  session.can = who.can || {};
  for (const button of $("views").querySelectorAll("button")) {
    const need = { tokens: "tokens", fleet: "fleet", events: "events", vault: "vault" }[button.dataset.view];
    button.hidden = need !== undefined && !session.can[need];
  }
  $("token-form").hidden = !session.can.tokens_write;
  $("who").textContent = `Signed in as ${who.name}`;
  $("who").dataset.name = who.name;
  show("settings");
  return loadSettings();
}

function signedOut(message = "") {
  session.watch?.abort();
  session.watch = null;
  clearInterval(session.poll);
  session.poll = null;
  session.csrf = "";
  session.writable = new Set();
  settings = [];
  $("who").textContent = "";
  $("settings-list").replaceChildren();
  $("audit-list").replaceChildren();
  forgetNewSecret();
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
  if (row.secret && session.revealable.has(row.path)) facts.lastChild.append(revealControl(row, facts.lastChild));
  detail(facts, "Type", row.type);
  detail(facts, "Default", asText(row.default));
  detail(facts, "Source", row.source);
  if (row.shadowed_env) detail(facts, "Shadows env", row.shadowed_env);
  detail(facts, "Version", String(row.version));
  if (row.description) detail(facts, "Description", row.description);
  article.append(facts);
  // one row of actions (Unset, History, Profiles); the disclosures open below it, full width
  const actions = el("div", { class: "actions" });
  if (session.writable.has(row.path)) {
    article.append(editor(row));
    if (row.source === "stored" && row.version > 0) actions.append(unsetControl(row));
  }
  const [historyToggle, historyBody] = historyPanel(row);
  const [profileToggle, profileBody] = profilePanel(row);
  actions.append(historyToggle, profileToggle);
  article.append(actions, historyBody, profileBody);
  return article;
}

// Reveal: only for a token the server says may reveal this secret, and only on an explicit click; the
// value is fetched then (GET ?reveal=true), shown until "Hide" or the card is redrawn, and never kept.
function revealControl(row, cell) {
  const masked = asText(row.value);
  const text = el("span", { class: "secret-text", text: masked });
  cell.replaceChildren(text, " ");
  const button = el("button", { type: "button", class: "secondary small", "aria-pressed": "false", text: "Reveal" });
  button.setAttribute("aria-label", `Reveal ${row.path}`);
  button.addEventListener("click", async () => {
    if (button.getAttribute("aria-pressed") === "true") {
      text.textContent = masked;
      button.setAttribute("aria-pressed", "false");
      button.textContent = "Reveal";
      button.setAttribute("aria-label", `Reveal ${row.path}`);
      return;
    }
    const answer = await api("GET", `/api/config/${encodeURIComponent(row.path)}?reveal=true`);
    if (!answer.ok) {
      text.textContent = (answer.data && answer.data.detail) || `refused (${answer.status})`;
      return;
    }
    text.textContent = asText(answer.data.value);
    button.setAttribute("aria-pressed", "true");
    button.textContent = "Hide";
    button.setAttribute("aria-label", `Hide ${row.path}`);
  });
  return button;
}

// History: the stored versions, newest first, each with the value it replaced; Rollback (writers only)
// asks for a confirmation in the page, then restores that version's value as a new version.
function historyPanel(row) {
  const toggle = el("button", { type: "button", class: "secondary", "aria-expanded": "false", text: "History" });
  const body = el("div", { class: "history-body" });
  body.hidden = true;
  toggle.addEventListener("click", async () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    body.hidden = !open;
    if (open) await loadHistory(row, body);
  });
  return [toggle, body];
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
  if (versions.length > 1) body.append(compareForm(row, versions));
}

// Diff between any two stored versions: both chosen from the history, compared line by line (values as
// they are shown: pretty JSON, strings bare, secrets masked).
function compareForm(row, versions) {
  const form = el("form", { class: "compare", "aria-label": `Compare versions of ${row.path}` });
  const pick = (label, chosen) => {
    const id = `cmp-${label.split(" ")[0].toLowerCase()}-${row.path}`;
    const select = el("select", { id });
    for (const item of versions) {
      const option = el("option", { value: String(item.version), text: `version ${item.version}` });
      if (item.version === chosen) option.selected = true;
      select.append(option);
    }
    form.append(el("label", { for: id, text: label }), select);
    return select;
  };
  const from = pick("From version", versions[1].version);
  const to = pick("To version", versions[0].version);
  const out = el("div", { class: "diff-out" });
  form.append(el("button", { type: "submit", class: "secondary", text: "Show diff" }), out);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const a = versions.find((item) => String(item.version) === from.value);
    const b = versions.find((item) => String(item.version) === to.value);
    out.replaceChildren(diffView(row.path, a, b));
  });
  return form;
}

function shown(item) {
  if (item.op === "delete") return ["(removed)"];
  const value = item.value;
  return (typeof value === "string" ? value : JSON.stringify(value, null, 2)).split("\n");
}

// A line diff by longest common subsequence (values are small: a setting, not a file).
function diffLines(a, b) {
  const n = a.length, m = b.length;
  const table = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      table[i][j] = a[i] === b[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
    }
  }
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) { out.push([" ", a[i]]); i++; j++; }
    else if (j < m && (i === n || table[i][j + 1] >= table[i + 1][j])) { out.push(["+", b[j]]); j++; }
    else { out.push(["-", a[i]]); i++; }
  }
  return out;
}

function diffView(path, a, b) {
  const label = `Diff of ${path} from version ${a.version} to version ${b.version}`;
  const lines = diffLines(shown(a), shown(b));
  const list = el("ol", { class: "diff", "aria-label": label });
  const word = { "+": "added", "-": "removed", " ": "same" };
  for (const [sign, line] of lines) {
    const item = el("li", { class: `diff-${word[sign]}`, "data-sign": sign });
    item.append(el("span", { class: "sign", "aria-label": word[sign], text: sign }), el("span", { text: line }));
    list.append(item);
  }
  const same = lines.every(([sign]) => sign === " ");
  const box = el("div", {}, el("p", { class: "version-head", text: same ? `${label}: identical` : label }), list);
  return box;
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

// Unset: remove the stored value (DELETE, expecting the version shown), back to the env or the default.
function unsetControl(row) {
  const box = el("div", { class: "rollback" });
  const start = el("button", { type: "button", class: "secondary", text: "Unset" });
  start.setAttribute("aria-label", `Unset ${row.path}`);
  const error = el("p", { class: "error", role: "alert" });
  start.addEventListener("click", () => {
    const confirm = el("button", { type: "button", text: "Confirm unset" });
    const cancel = el("button", { type: "button", class: "secondary", text: "Cancel" });
    const dialog = el("div", { class: "confirm", role: "group", "aria-label": "Confirm unset" },
      el("p", { text: `Remove the stored value of ${row.path}? It falls back to the environment or the default.` }), confirm, cancel);
    cancel.addEventListener("click", () => { dialog.remove(); start.hidden = false; start.focus(); });
    confirm.addEventListener("click", async () => {
      const url = `/api/config/${encodeURIComponent(row.path)}?expect_version=${row.version}`;
      const answer = await api("DELETE", url);
      if (!answer.ok) { error.textContent = refused(answer); return; }
      const now = await api("GET", `/api/config/${encodeURIComponent(row.path)}`);
      if (now.ok) replaceRow(now.data, `Unset: now ${now.data.source}`);
    });
    start.hidden = true;
    box.append(dialog);
    confirm.focus();
  });
  box.append(start, error);
  return box;
}

// Profiles (environments): a setting's value in one profile's layer (?env=), set and unset there. The
// server decides who may write env/<profile>/...: a refusal is shown next to the field.
function profilePanel(row) {
  const toggle = el("button", { type: "button", class: "secondary", "aria-expanded": "false", text: "Profiles" });
  toggle.setAttribute("aria-label", `Profiles of ${row.path}`);
  const body = el("div", { class: "history-body" });
  body.hidden = true;
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    body.hidden = !open;
    if (open && !body.children.length) body.append(profileForm(row));
  });
  return [toggle, body];
}

function profileForm(row) {
  const id = `profile-${row.path}`;
  const name = el("input", { id, type: "text", autocomplete: "off", spellcheck: "false", placeholder: "production" });
  const pick = el("form", { class: "edit", "aria-label": `Profile of ${row.path}` },
    el("label", { for: id, text: "Profile" }), name, el("button", { type: "submit", class: "secondary", text: "Show" }));
  const out = el("div", { class: "profile-out" });
  pick.addEventListener("submit", async (event) => {
    event.preventDefault();
    const profile = name.value.trim();
    if (profile) await showProfile(row, profile, out);
  });
  return el("div", {}, pick, out);
}

async function showProfile(row, profile, out) {
  const url = `/api/config/${encodeURIComponent(row.path)}?env=${encodeURIComponent(profile)}`;
  const answer = await api("GET", url);
  const box = el("div", { class: "profile-value", "data-env": profile });
  if (answer.ok) {
    box.append(el("p", { class: "value", text: `In ${profile}: ${asText(answer.data.value)} (version ${answer.data.version})` }));
  } else if (answer.status === 404) {
    box.append(el("p", { text: `Not set in ${profile}: the base value applies there.` }));
  } else {
    box.append(el("p", { class: "error", role: "alert", text: refused(answer) }));
    out.replaceChildren(box);
    return;
  }
  if (session.writable.has(row.path)) {
    const id = `edit-${profile}-${row.path}`;
    const label = `${row.path} in ${profile}`;
    const input = el("input", { id, type: "text", autocomplete: "off", spellcheck: "false" });
    if (answer.ok && !row.secret) input.value = asText(answer.data.value);
    const error = el("p", { class: "error", role: "alert" });
    const ok = el("p", { class: "ok", role: "status" });
    const form = el("form", { class: "edit", novalidate: "" },
      el("label", { for: id, text: label }), input, el("button", { type: "submit", text: "Save" }), error, ok);
    form.querySelector("button").setAttribute("aria-label", `Save ${label}`);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      const saved = await api("PUT", url, { input: input.value });
      if (!saved.ok) { error.textContent = refused(saved); return; }
      await showProfile(row, profile, out);
      out.querySelector(".ok").textContent = `Saved in ${profile}: version ${saved.data.version}`;
    });
    box.append(form);
    if (answer.ok) {
      const unset = el("button", { type: "button", class: "secondary", text: "Unset" });
      unset.setAttribute("aria-label", `Unset ${label}`);
      unset.addEventListener("click", async () => {
        const removed = await api("DELETE", url);
        if (!removed.ok) { error.textContent = refused(removed); return; }
        await showProfile(row, profile, out);
      });
      box.append(unset);
    }
  }
  out.replaceChildren(box);
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

function refused(answer) {
  return (answer.data && answer.data.detail) || `refused (${answer.status})`;
}

function fact(list, term, value, cls) {
  const dd = el("dd", { text: value });
  if (cls) dd.className = cls;
  list.append(el("dt", { text: term }), dd);
  return dd;
}

// Tokens: GET /api/tokens (never secrets); create shows the new secret once, in the page only, with a Copy
// button; revoke asks first. The server refuses a token that would exceed the creator's own rules (403):
// the refusal is shown in the form, naming what is missing.
async function loadTokens() {
  const answer = await api("GET", "/api/tokens");
  if (answer.status === 401) return signedOut("The session ended: sign in again.");
  if (!answer.ok) { $("tokens-status").textContent = refused(answer); return; }
  $("tokens-list").replaceChildren(...answer.data.map(tokenItem));
  $("tokens-status").textContent = `${answer.data.length} tokens`;
}

function tokenItem(token) {
  const item = el("li", { "data-name": token.name });
  item.append(el("p", { class: "version-head", text: token.expired ? `${token.name} (expired)` : token.name }));
  const facts = el("dl", { class: "facts" });
  fact(facts, "Rules", token.rules.join("\n") || "(none)", "value");
  fact(facts, "Reveal secrets", token.reveal_secrets ? "yes" : "no");
  fact(facts, "Created", `${token.created_at} by ${token.created_by}`);
  fact(facts, "Expires", token.expires_at || "never");
  fact(facts, "Accessor", token.accessor, "value");
  item.append(facts);
  if (session.can.tokens_write) item.append(revokeControl(token));
  return item;
}

function revokeControl(token) {
  const box = el("div", { class: "rollback" });
  const start = el("button", { type: "button", class: "secondary", text: "Revoke" });
  start.setAttribute("aria-label", `Revoke ${token.name}`);
  const error = el("p", { class: "error", role: "alert" });
  start.addEventListener("click", () => {
    const confirm = el("button", { type: "button", text: "Confirm revoke" });
    const cancel = el("button", { type: "button", class: "secondary", text: "Cancel" });
    const dialog = el("div", { class: "confirm", role: "group", "aria-label": "Confirm revoke" },
      el("p", { text: `Revoke ${token.name}? Every client and session using it is refused at once.` }), confirm, cancel);
    cancel.addEventListener("click", () => { dialog.remove(); start.hidden = false; start.focus(); });
    confirm.addEventListener("click", async () => {
      const answer = await api("DELETE", `/api/tokens/${encodeURIComponent(token.name)}`);
      if (!answer.ok) { error.textContent = refused(answer); return; }
      if (answer.status === 200 && token.name === $("who").dataset.name) return signedOut("You revoked your own token.");
      await loadTokens();
      $("tokens-status").textContent = `Revoked ${token.name}`;
    });
    start.hidden = true;
    box.append(dialog);
    confirm.focus();
  });
  box.append(start, error);
  return box;
}

function forgetNewSecret() {
  $("token-secret").textContent = "";
  $("token-created").hidden = true;
}

async function createToken(event) {
  event.preventDefault();
  forgetNewSecret();
  $("token-error").textContent = "";
  const body = {
    name: $("token-name").value.trim(),
    rules: $("token-rules").value.split("\n").map((line) => line.trim()).filter(Boolean),
    reveal_secrets: $("token-reveal").checked,
  };
  const ttl = $("token-ttl").value.trim();
  if (ttl) body.ttl_seconds = Number(ttl);
  const answer = await api("POST", "/api/tokens", body);
  if (!answer.ok) {
    const detail = answer.data && answer.data.detail;
    $("token-error").textContent = Array.isArray(detail)
      ? detail.map((item) => `${item.loc.slice(1).join(".")}: ${item.msg}`).join("; ")
      : refused(answer);
    return;
  }
  $("token-created-title").textContent = `Token ${answer.data.name} created. Its secret is shown once, now: copy it.`;
  $("token-secret").textContent = answer.data.secret;
  $("token-copied").textContent = "";
  $("token-warnings").replaceChildren(...(answer.data.warnings || []).map((text) => el("li", { text })));
  $("token-created").hidden = false;
  $("token-form").reset();
  $("token-copy").focus();
  await loadTokens();
}

async function copySecret() {
  try {
    await navigator.clipboard.writeText($("token-secret").textContent);
    $("token-copied").textContent = "Copied";
  } catch {
    const range = document.createRange();  // no clipboard access: select it for the user to copy
    range.selectNodeContents($("token-secret"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    $("token-copied").textContent = "Selected: press Ctrl+C to copy";
  }
}

// Services: GET /api/services (the registry's catalog, each instance's checks with status and output).
async function loadServices() {
  const answer = await api("GET", "/api/services");
  if (answer.status === 401) return signedOut("The session ended: sign in again.");
  if (!answer.ok) { $("services-status").textContent = refused(answer); return; }
  const services = answer.data;
  const blocks = services.map((service) => {
    const section = el("section", { class: "category", "aria-label": `Service ${service.name}`, "data-service": service.name },
      el("h3", { text: `${service.name} (${service.instances.length})` }));
    for (const instance of service.instances) {
      const article = el("article", { class: `setting status-${instance.status}`, "data-instance": instance.id },
        el("h4", {}, el("span", { text: instance.id }), " ", badge(instance.status)));
      const facts = el("dl");
      fact(facts, "Node", instance.node);
      fact(facts, "Address", `${instance.address || "(node address)"}:${instance.port}`, "value");
      if (instance.tags.length) fact(facts, "Tags", instance.tags.join(", "));
      article.append(facts);
      const checks = el("ul", { class: "checks", "aria-label": `Checks of ${instance.id}` });
      for (const check of instance.checks) {
        checks.append(el("li", { "data-check": check.id },
          el("p", {}, badge(check.status), " ", el("span", { text: check.name || check.id })),
          el("pre", { class: "output", text: check.output || "(no output)" })));
      }
      article.append(checks);
      section.append(article);
    }
    return section;
  });
  if (!blocks.length) blocks.push(el("p", { text: "No services registered." }));
  $("services-list").replaceChildren(...blocks);
  const critical = services.flatMap((s) => s.instances).filter((i) => i.status !== "passing").length;
  $("services-status").textContent = `${services.length} services, ${critical} instances not passing`;
}

function badge(status) {
  return el("span", { class: `badge badge-${status}`, text: status });
}

// The fleet: GET /api/instances, every announced instance's applied revision and lag; behind or stale
// instances are highlighted (a coloured edge and the words, not colour alone).
async function loadFleet() {
  const answer = await api("GET", "/api/instances");
  if (answer.status === 401) return signedOut("The session ended: sign in again.");
  if (!answer.ok) { $("fleet-status").textContent = refused(answer); return; }
  const rows = answer.data;
  $("fleet-list").replaceChildren(...rows.map((row) => {
    const behind = row.lag > 0;
    const item = el("li", { "data-instance": row.id, class: behind || row.stale ? "behind" : "" });
    const notes = [behind ? `behind by ${row.lag} revision${row.lag === 1 ? "" : "s"}` : "up to date"];
    if (row.stale) notes.push("stale: no heartbeat");
    item.append(el("p", { class: "version-head", text: `${row.service} on ${row.host} pid ${row.pid} · ${notes.join(" · ")}` }));
    const facts = el("dl", { class: "facts" });
    fact(facts, "Applied revision", String(row.applied_revision), "applied");
    fact(facts, "Lag", String(row.lag), "lag");
    fact(facts, "Version", row.version);
    fact(facts, "Heartbeat", row.heartbeat_at);
    fact(facts, "Id", row.id, "value");
    item.append(facts);
    return item;
  }));
  const behind = rows.filter((row) => row.lag > 0 || row.stale).length;
  $("fleet-status").textContent = rows.length ? `${rows.length} instances, ${behind} behind or stale` : "No instance has announced itself.";
}

// Events: /api/events/stats (table counts, the stream), /api/events (the last hour, for the chart and the
// observed sampling ratios), /readyz (the server's consumer), /api/events/dlq (with Replay for writers).
const CHART_MINUTES = 60;

async function loadEvents() {
  const [stats, recent, ready, settingsAnswer, producers] = await Promise.all([
    api("GET", "/api/events/stats"),
    api("GET", "/api/events?since=1h&limit=10000"),
    api("GET", "/readyz"),
    api("GET", "/api/config?category=events"),
    api("GET", "/api/events/producers"),  // from the database alone: still there while Redis is away
  ]);
  if (stats.status === 401) return signedOut("The session ended: sign in again.");
  if (stats.status === 403) { $("events-status").textContent = refused(stats); return; }
  // Redis away: the stats call fails (its stream part), but the table, the chart and the consumer's and
  // bus's state still show, with the failure named: that is when an operator looks here.
  const counts = stats.ok ? stats.data : { stored: null, kept_by_rule: {}, by_status_class: {}, stream: null };
  const events = recent.ok ? recent.data : [];
  $("events-chart").replaceChildren(eventsChart(events));
  const panels = [];
  panels.push(rulesPanel(counts, events, settingsAnswer.ok ? settingsAnswer.data.settings : []));
  panels.push(statusPanel(counts));
  panels.push(streamPanel(counts.stream, ready.data && ready.data.dependencies, stats.ok ? null : refused(stats)));
  panels.push(producersPanel(producers.ok ? producers.data : null, producers.ok ? null : refused(producers)));
  $("events-stats").replaceChildren(...panels);
  $("events-status").textContent = stats.ok
    ? `${counts.stored} events stored; ${events.length} in the last hour`
    : `Stats unavailable: ${refused(stats)}; ${events.length} events in the last hour`;
  await loadDeadLetters(Boolean(counts.stream), stats.ok ? null : refused(stats));
}

function panel(title, ...children) {
  return el("section", { class: "panel", "aria-label": title }, el("h3", { text: title }), ...children);
}

function rulesPanel(stats, events, settingRows) {
  // Observed in the last hour: per rule, kept events and the events they stand for (sum of 1/sample_rate).
  const seen = new Map();
  for (const event of events) {
    const rule = event.sampling_rule || "none";
    const rate = typeof event.sample_rate === "number" && event.sample_rate > 0 ? event.sample_rate : 1;
    const entry = seen.get(rule) || { kept: 0, weight: 0 };
    entry.kept += 1;
    entry.weight += 1 / rate;
    seen.set(rule, entry);
  }
  const table = el("table", { class: "numbers" });
  table.append(el("thead", {}, el("tr", {}, ...["Rule", "Kept (stored)", "Last hour", "Sampling ratio"].map((t) => el("th", { scope: "col", text: t })))));
  const body = el("tbody");
  const rules = new Set([...Object.keys(stats.kept_by_rule || {}), ...seen.keys()]);
  for (const rule of [...rules].sort()) {
    const observed = seen.get(rule);
    const ratio = observed ? `${(100 * observed.kept / observed.weight).toFixed(1)} % (${observed.kept} of ~${Math.round(observed.weight)})` : "–";
    body.append(el("tr", { "data-rule": rule }, el("th", { scope: "row", text: rule }),
      el("td", { text: stats.stored === null ? "–" : String((stats.kept_by_rule || {})[rule] || 0) }),
      el("td", { text: String(observed ? observed.kept : 0) }), el("td", { text: ratio })));
  }
  table.append(body);
  const configured = settingRows.find((row) => row.path === "events.sample_rate");
  const note = el("p", { class: "version-head", text: configured
    ? `Configured events.sample_rate: ${asText(configured.value)} (the share of events no rule keeps). Dropped events are counted by each producer: see Producers.`
    : "events.sample_rate is not declared here. Dropped events are counted by each producer: see Producers." });
  const box = panel("Kept per rule", table, note);
  box.classList.add("wide");
  return box;
}

function statusPanel(stats) {
  const facts = el("dl", { class: "facts" });
  for (const [klass, n] of Object.entries(stats.by_status_class || {}).sort()) fact(facts, klass, String(n));
  if (!facts.children.length) fact(facts, "(none)", "0");
  return panel("By status class", facts);
}

function streamPanel(stream, dependencies, failure) {  // failure: the stats call's error, shown in the status line
  const facts = el("dl", { class: "facts" });
  const consumer = dependencies && dependencies.events;
  const bus = dependencies && dependencies.bus;
  if (failure) {
    fact(facts, "Stream", "unavailable (the reason is above)", "attention fallback");
  } else if (!stream) {
    fact(facts, "Stream", "this server has no Redis: events go to the database directly");
  } else {
    fact(facts, "Stream length", String(stream.length), "stream-length");
    fact(facts, "Consumer lag", String(stream.lag), stream.lag > 0 ? "lag attention" : "lag");
    fact(facts, "Pending", String(stream.pending));
    fact(facts, "Consumers", String(stream.consumers));
    fact(facts, "DLQ length", String(stream.dlq_length), stream.dlq_length > 0 ? "attention" : "");
  }
  if (consumer) {
    const state = consumer.stage || (consumer.ok ? "consuming" : "paused");
    const why = consumer.error ? ` (${consumer.error})` : "";
    fact(facts, "This server's consumer", state + why, state === "consuming" ? "consumer" : "consumer attention fallback");
  }
  if (bus) {
    const mode = bus.degraded ? `${bus.mode} (fallback)` : String(bus.mode);
    fact(facts, "Change bus (this server)", mode, bus.degraded ? "bus attention fallback" : "bus");
  }
  return panel("Stream and delivery", facts);
}

// Each producer's last report (docs/events.md, "Producer reports"): its active delivery stage, highlighted
// when it is a fallback, its drops, and a stale row (no report for a while) highlighted too.
function producersPanel(reports, failure) {
  if (reports === null) return panel("Producers", el("p", { text: `Unavailable: ${failure}` }));
  if (!reports.length) {
    return panel("Producers", el("p", { text: "No producer is reporting (remote producers report through the server's relay)." }));
  }
  const table = el("table", { class: "numbers" });
  const heads = ["Producer", "Delivery stage", "Dropped", "Spooled", "Last report"];
  table.append(el("thead", {}, el("tr", {}, ...heads.map((t) => el("th", { scope: "col", text: t })))));
  const body = el("tbody");
  for (const report of reports) {
    const dropped = Object.values(report.dropped || {}).reduce((a, b) => a + b, 0);
    const stage = report.fallback ? `${report.stage} (fallback from ${report.top_stage})` : report.stage;
    const age = `${report.age_s} s ago${report.stale ? " (stale: not reporting)" : ""}`;
    body.append(el("tr", { "data-producer": report.producer },
      el("th", { scope: "row", text: `${report.service} · ${report.instance}` }),
      el("td", { class: report.fallback ? "stage attention fallback" : "stage", text: stage }),
      el("td", { class: dropped > 0 ? "attention" : "", text: String(dropped) }),
      el("td", { text: String(report.spooled) }),
      el("td", { class: report.stale ? "attention" : "", text: age })));
  }
  table.append(body);
  const box = panel("Producers", table);
  box.classList.add("wide");
  return box;
}

function eventsChart(events) {
  const now = Date.now() / 1000;
  const counts = new Array(CHART_MINUTES).fill(0);
  for (const event of events) {
    const slot = CHART_MINUTES - 1 - Math.floor((now - event.ts) / 60);
    if (slot >= 0 && slot < CHART_MINUTES) counts[slot] += 1;
  }
  const peak = Math.max(1, ...counts);
  const width = 600, height = 120, bar = width / CHART_MINUTES;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height + 16}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("class", "chart-svg");
  const total = counts.reduce((a, b) => a + b, 0);
  svg.setAttribute("aria-label", `Events per minute over the last hour: ${total} in all, at most ${Math.max(...counts)} in a minute`);
  counts.forEach((n, i) => {
    const h = Math.round((n / peak) * height);
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("x", String(i * bar + 1));
    rect.setAttribute("y", String(height - h));
    rect.setAttribute("width", String(bar - 2));
    rect.setAttribute("height", String(Math.max(h, n ? 1 : 0)));
    rect.setAttribute("data-count", String(n));
    const title = document.createElementNS(ns, "title");
    title.textContent = `${CHART_MINUTES - 1 - i} min ago: ${n} events`;
    rect.append(title);
    svg.append(rect);
  });
  for (const [x, text, anchor] of [[0, "60 min ago", "start"], [width, "now", "end"]]) {
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", String(x));
    label.setAttribute("y", String(height + 13));
    label.setAttribute("text-anchor", anchor);
    label.textContent = text;
    svg.append(label);
  }
  return svg;
}

async function loadDeadLetters(hasStream, failure) {
  $("dlq-replay-all").hidden = true;
  if (!hasStream) {
    $("dlq-list").replaceChildren();
    $("dlq-status").textContent = failure ? `Unavailable: ${failure}` : "No stream (no Redis), so no dead letters.";
    return;
  }
  const answer = await api("GET", "/api/events/dlq");
  if (!answer.ok) { $("dlq-status").textContent = refused(answer); return; }
  const letters = answer.data;
  $("dlq-list").replaceChildren(...letters.map((letter) => {
    const item = el("li", { "data-dlq": letter.dlq_id });
    item.append(el("p", { class: "version-head", text: `${letter.dlq_id} · was ${letter.original_id} · ${letter.deliveries} deliveries` }),
      el("p", { class: "error", text: letter.error }), el("pre", { class: "output", text: letter.payload }));
    if (session.can.events_write) {
      const replay = el("button", { type: "button", class: "secondary", text: "Replay" });
      replay.setAttribute("aria-label", `Replay ${letter.dlq_id}`);
      replay.addEventListener("click", () => replayDead([letter.dlq_id]));
      item.append(replay);
    }
    return item;
  }));
  $("dlq-replay-all").hidden = !(session.can.events_write && letters.length);
  if (!$("dlq-status").dataset.keep) $("dlq-status").textContent = letters.length ? `${letters.length} dead letters` : "The DLQ is empty.";
}

async function replayDead(ids) {
  const answer = await api("POST", "/api/events/dlq/replay", { ids });
  $("dlq-status").textContent = answer.ok ? `Replayed ${answer.data.replayed}` : refused(answer);
  $("dlq-status").dataset.keep = "1";
  await loadEvents();
  delete $("dlq-status").dataset.keep;
}

// Vault: GET /api/vault/stats (counts only: the server reads no original to answer).
async function loadVault() {
  const answer = await api("GET", "/api/vault/stats");
  if (answer.status === 401) return signedOut("The session ended: sign in again.");
  if (!answer.ok) { $("vault-status").textContent = refused(answer); return; }
  const stats = answer.data;
  const table = el("table", { class: "numbers" });
  table.append(el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Token type" }), el("th", { scope: "col", text: "Live mappings" }))));
  const body = el("tbody");
  for (const [type, n] of Object.entries(stats.mappings)) {
    body.append(el("tr", { "data-type": type }, el("th", { scope: "row", text: type }), el("td", { text: String(n) })));
  }
  if (!body.children.length) body.append(el("tr", {}, el("td", { colspan: "2", text: "No mappings yet." })));
  table.append(body);
  const facts = el("dl", { class: "facts" });
  fact(facts, "Total live", String(stats.total), "total");
  fact(facts, "Expired", String(stats.expired), "expired");
  fact(facts, "Unmask misses", String(stats.unmask_misses), stats.unmask_misses ? "misses attention" : "misses");
  fact(facts, "of them expired", String(stats.unmask_expired), "unmask-expired");
  $("vault-stats").replaceChildren(panel("Mappings per type", table), panel("Expiry and misses", facts));
  $("vault-status").textContent = `${stats.total} live mappings`;
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
  $("token-form").addEventListener("submit", createToken);
  $("token-copy").addEventListener("click", copySecret);
  $("dlq-replay-all").addEventListener("click", () => replayDead(null));
  const who = await api("GET", "/ui/session");
  if (who.ok) await signedIn(who.data);
  else signedOut();
}

boot();
