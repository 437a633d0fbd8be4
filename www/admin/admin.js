// The admin console: plain DOM, one module. Every call goes to /admin-api/ with the session cookie
// and the X-Tessera-Admin header the API requires on changes.
const api = async (method, path, body) => {
  const res = await fetch(`/admin-api/${path}`, {
    method, credentials: "same-origin",
    headers: { "X-Tessera-Admin": "1", ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = res.headers.get("Content-Type")?.includes("json") ? await res.json() : null;
  if (res.status === 401 && path !== "login") { show("login"); }
  return { res, data };
};
const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return e;
};
const rows = (table, head, items) => {
  table.replaceChildren(el("tr", {}, ...head.map((h) => el("th", {}, h))), ...items.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c)))));
};
const state = (s) => el("span", { class: `state-${s}` }, s);
const bytes = (n) => n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(1)} GiB` : `${(n / (1 << 20)).toFixed(1)} MiB`;

const screens = ["login", "status", "config", "backups", "support", "tls"];
function show(name) {
  for (const s of screens) $(s).hidden = s !== name;
  $("nav").hidden = name === "login";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.screen === name);
  document.body.dataset.screen = name;
  if (name !== "login") loaders[name]();
}

const loaders = {
  async status() {
    const { data } = await api("GET", "status");
    if (!data || data.error) return;
    $("version").textContent = `version ${data.version}`;
    rows($("units"), ["unit", "state", "restarts", "detail"], data.units.map((u) => [u.name, state(u.active), u.restarts ?? "", u.sub ?? ""]));
    rows($("services"), ["service", "state", "detail"], data.services.map((u) => [u.name, state(u.active), u.sub ?? ""]));
    rows($("disks"), ["path", "free", "total", "used"], data.disks.map((d) => [d.path, bytes(d.free_bytes), bytes(d.total_bytes), `${d.used_percent} %`]));
    rows($("queues"), ["queue", "waiting", "running", "oldest waiting"], Array.isArray(data.queues)
      ? data.queues.map((q) => [q.queue, q.waiting, q.running, q.oldest_waiting_seconds == null ? "—" : `${q.oldest_waiting_seconds} s`])
      : [[data.queues.error, "", "", ""]]);
    const c = data.cache ?? {};
    $("cache-ratio").textContent = c.error ?? (c.hit_ratio == null ? "no lookups yet"
      : `${(c.hit_ratio * 100).toFixed(1)} % (${c.hits} hits, ${c.misses} misses since Varnish started)`);
    rows($("errors"), ["API", "5xx"], data.errors_5xx ? Object.entries(data.errors_5xx).map(([k, v]) => [k, v]) : [["access log not readable", ""]]);
  },
  async config() {
    const { data } = await api("GET", "config");
    if (!data || data.error) return;
    $("config-file").textContent = data.file;
    $("config-result").textContent = "";
    rows($("keys"), ["key", "value", "default", "accepts", "meaning", "restarts"], data.keys.map((k) => {
      const input = el("input", { name: k.name, value: k.value ?? "", placeholder: k.default || "(empty)", "data-original": k.value ?? "" });
      const cell = el("div", {}, input, el("div", { class: "invalid-msg", id: `msg-${k.name}` }));
      const units = k.units.length >= 8 ? "all programs" : k.units.map((u) => u.replace(/^tessera-/, "")).join(", ");
      return [el("code", {}, k.name), cell, k.default || "empty", k.rule, k.meaning, units || "—"];
    }));
  },
  async backups() {
    const { data } = await api("GET", "backups");
    if (!data || data.error) return;
    $("backup-info").textContent = `Archives in ${data.directory}; schedule ${data.schedule}, keeping ${data.keep} (change both on the Configuration screen: TESSERA_BACKUP_SCHEDULE, TESSERA_BACKUP_KEEP).`;
    rows($("archives"), ["archive", "size", "created", ""], data.archives.map((a) => {
      const restore = el("button", { type: "button" }, "Restore");
      restore.onclick = async () => {
        if (!confirm(`Restore ${a.name}? The platform stops while it is restored.`)) return;
        const { res, data: r } = await api("POST", `backups/${encodeURIComponent(a.name)}/restore`);
        $("backup-result").textContent = res.ok ? `restored ${a.name}` : r?.error ?? `error ${res.status}`;
      };
      return [el("a", { href: `/admin-api/backups/${encodeURIComponent(a.name)}` }, a.name), bytes(a.bytes), a.created_at ?? "", restore];
    }));
  },
  async support() {},
  async tls() {
    const { data } = await api("GET", "tls");
    if (!data || data.error) return;
    $("tls-file").textContent = data.file;
    showCert($("tls-current"), data.certificate);
    const a = data.acme;
    if (!a) return;
    rows($("acme-settings"), ["", ""], [
      ["server", a.server], ["domains", a.domains.join(", ") || "— (TESSERA_ACME_DOMAIN)"],
      ["contact", a.email.join(", ") || "— (TESSERA_ACME_EMAIL)"],
      ["last attempt", a.last ? `${a.last.status}${a.last.at ? ` at ${a.last.at}` : ""}` : "none"],
    ]);
    showACMEReason(a.last?.status === "failed" ? a.last.message : "");
  },
};

function showCert(table, c, upload = false) {
  if (!c) { rows(table, ["certificate"], [["none installed"]]); return; }
  rows(table, ["", ""], [
    ["subject", c.subject], ["issuer", c.issuer], ["expires", `${c.not_after} (${c.days_left} days)`],
    ...(upload ? [["key", c.key_matches ? "belongs to the certificate" : "does not match"]] : []),
    ["chain", c.chain_trusted ? "trusted" : `not trusted by the system CAs: ${c.chain}`],
    ...c.problems.map((p) => [el("span", { class: "error" }, "refused"), el("span", { class: "error" }, p)]),
  ]);
}
async function uploadTLS(method, path) {
  const { res, data } = await api(method, path, { certificate: $("tls-cert").value, key: $("tls-key").value });
  showCert($("tls-report"), res.ok ? data : data?.certificate, true);
  $("tls-result").textContent = res.ok ? (method === "PUT" ? "installed; nginx reloaded" : "checked") : data?.error ?? `error ${res.status}`;
  if (res.ok && method === "PUT") loaders.tls();
}

$("login-form").onsubmit = async (e) => {
  e.preventDefault();
  const { res, data } = await api("POST", "login", { password: $("password").value });
  $("password").value = "";
  if (res.ok) { $("login-error").textContent = ""; location.hash = "#status"; show("status"); }
  else $("login-error").textContent = data?.error ?? `error ${res.status}`;
};
$("logout").onclick = async () => { await api("POST", "logout"); show("login"); };
$("config-form").onsubmit = async (e) => {
  e.preventDefault();
  const values = {};
  for (const input of $("keys").querySelectorAll("input")) {
    if (input.value !== input.dataset.original) values[input.name] = input.value === "" ? null : input.value;
    input.classList.remove("invalid");
    $(`msg-${input.name}`).textContent = "";
  }
  if (!Object.keys(values).length) { $("config-result").textContent = "nothing changed"; return; }
  $("config-result").textContent = "saving…";
  const { res, data } = await api("PUT", "config", { values });
  if (res.ok) {
    await loaders.config();
    $("config-result").textContent = `saved ${data.changed.join(", ")}; restarted ${data.restarted.join(", ") || "nothing"}`;
  } else {
    for (const [key, msg] of Object.entries(data?.fields ?? {})) {
      const input = $("keys").querySelector(`input[name="${key}"]`);
      input?.classList.add("invalid");
      if ($(`msg-${key}`)) $(`msg-${key}`).textContent = msg;
    }
    $("config-result").textContent = data?.error ?? `error ${res.status}`;
  }
};
$("backup-now").onclick = async () => {
  $("backup-result").textContent = "backing up…";
  const { res, data } = await api("POST", "backups");
  $("backup-result").textContent = res.ok ? "backup taken" : data?.error ?? `error ${res.status}`;
  loaders.backups();
};
function showACMEReason(text) {
  $("acme-reason").textContent = text;
  $("acme-reason").hidden = !text;
}
$("acme-obtain").onclick = async () => {
  $("acme-result").textContent = "asking the ACME server…";
  showACMEReason("");
  const { res, data } = await api("POST", "tls/acme");
  $("acme-result").textContent = res.ok ? "certificate obtained and installed; nginx reloaded" : `refused (${data?.code ?? res.status})`;
  if (!res.ok) showACMEReason(data?.error ?? `error ${res.status}`);
  if (res.ok) loaders.tls();
};
$("tls-check").onclick = () => uploadTLS("POST", "tls/check");
$("tls-form").onsubmit = (e) => { e.preventDefault(); uploadTLS("PUT", "tls"); };
$("support-form").onsubmit = (e) => {
  e.preventDefault();
  location.href = `/admin-api/support-bundle?hours=${encodeURIComponent($("hours").value)}`;
};
window.addEventListener("hashchange", () => show(location.hash.slice(1) || "status"));

const { res } = await api("GET", "session");
show(res.ok ? (screens.includes(location.hash.slice(1)) && location.hash !== "#login" ? location.hash.slice(1) : "status") : "login");
