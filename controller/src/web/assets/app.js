// roomready dashboard: live updates over Server-Sent Events, relative times, and confirmed
// commands sent through the JSON API. The pages work without this script; everything it writes
// into the page goes through textContent, never innerHTML, so device text stays text.
"use strict";

(function () {
  const meta = (name) => {
    const el = document.querySelector(`meta[name="${name}"]`);
    return el ? el.getAttribute("content") : null;
  };
  const csrf = meta("csrf-token") || "";
  const live = meta("live");

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function badge(kind, value, empty) {
    const span = el("span", "badge " + (value ? kind + "-" + value : kind + "-none"), value || empty);
    if (kind === "v") span.dataset.verdict = value || "";
    return span;
  }

  function timeEl(iso) {
    const t = el("time", null, iso);
    t.setAttribute("datetime", iso);
    relative(t);
    return t;
  }

  function relative(t) {
    const when = Date.parse(t.getAttribute("datetime"));
    if (isNaN(when)) return;
    const s = Math.round((Date.now() - when) / 1000);
    let text;
    if (s < 5) text = "just now";
    else if (s < 60) text = s + " s ago";
    else if (s < 3600) text = Math.floor(s / 60) + " min ago";
    else if (s < 86400) text = Math.floor(s / 3600) + " h ago";
    else text = Math.floor(s / 86400) + " d ago";
    t.textContent = text;
    t.title = t.getAttribute("datetime");
  }

  function refreshTimes() {
    document.querySelectorAll("time[datetime]").forEach(relative);
  }

  function setCell(container, field, node) {
    const cell = container.querySelector(`[data-field="${field}"]`);
    if (!cell) return;
    cell.replaceChildren(node);
  }

  function updateDevice(row) {
    const selector = `[data-device="${CSS.escape(row.id)}"]`;
    document.querySelectorAll(selector).forEach((container) => {
      setCell(container, "verdict", badge("v", row.verdict, "no state"));
      setCell(container, "presence", badge("p", row.presence, "unknown"));
      setCell(container, "last_seen", timeEl(row.last_seen));
      for (const field of ["kind", "app_version", "os_build"]) {
        const cell = container.querySelector(`[data-field="${field}"]`);
        if (cell) cell.textContent = row[field] || "";
      }
      // As pages/mod.rs writes it (where_text): "site · ring N".
      const where = container.querySelector('[data-field="where"]');
      if (where) {
        where.textContent = [row.site, row.ring === null || row.ring === undefined ? null : "ring " + row.ring]
          .filter((part) => part !== null && part !== undefined && part !== "")
          .join(" · ");
        where.title = row.room || "";
      }
      const top = container.querySelector('[data-field="top_finding"]');
      if (top) {
        top.replaceChildren();
        if (row.top_finding) {
          top.append(el("code", null, row.top_finding.code), " ", el("span", "title", row.top_finding.title));
          if (row.findings > 1) top.append(" ", el("span", "more", "+" + (row.findings - 1)));
        }
      }
      container.classList.add("changed");
      setTimeout(() => container.classList.remove("changed"), 1500);
    });
  }

  function updateSummary(summary) {
    const set = (id, value) => {
      const node = document.getElementById(id);
      if (node) node.textContent = String(value);
    };
    set("total-devices", summary.devices);
    for (const [verdict, n] of summary.by_verdict) set("total-" + verdict, n);
    set("total-no_state", summary.no_state);
    set("total-online", summary.online);
    set("total-offline", summary.offline);
    set("total-missing", summary.missing);
  }

  // A history entry in words, as the page writes them (pages.rs, describe).
  function describe(entry) {
    const d = entry.data || {};
    const span = el("span");
    const text = (v) => (v === undefined || v === null ? "" : String(v));
    switch (entry.kind) {
      case "verdict":
        span.append("verdict ");
        if (d.from) span.append(text(d.from) + " → ");
        span.append(el("strong", null, text(d.to)));
        break;
      case "finding_appeared":
      case "finding_cleared":
        span.append(entry.kind === "finding_appeared" ? "finding appeared: " : "finding cleared: ",
          el("code", null, text(d.code)), " " + text(d.title));
        break;
      case "presence":
        span.append(text(d.status) + (d.reason ? " (" + text(d.reason) + ")" : ""));
        break;
      case "event": {
        const rest = Object.keys(d).filter((k) => k !== "event")
          .map((k) => k + "=" + (typeof d[k] === "string" ? d[k] : JSON.stringify(d[k])));
        span.append("event ", el("strong", "event", text(d.event)), " " + rest.join(" "));
        break;
      }
      case "command":
        span.append("command ", el("strong", null, text(d.command && d.command.command)), " ",
          el("code", null, text(d.id)), " sent by " + text(d.by));
        break;
      case "response":
        span.append("answer ", el("strong", null, text(d.status)), " to ", el("code", null, text(d.id)));
        if (d.reason) span.append(" (" + text(d.reason) + ")");
        if (d.message) span.append(": " + text(d.message));
        break;
      default:
        span.append(entry.kind);
    }
    return span;
  }

  function prepend(listId, entry) {
    const list = document.getElementById(listId);
    if (!list) return;
    const empty = list.querySelector("li.empty");
    if (empty) empty.remove();
    if (list.querySelector(`li[data-id="${entry.id}"]`)) return;
    const li = el("li");
    li.dataset.kind = entry.kind;
    li.dataset.id = String(entry.id);
    li.append(timeEl(entry.at), " ", describe(entry));
    li.classList.add("changed");
    list.prepend(li);
  }

  function answerCommand(entry) {
    const d = entry.data || {};
    const table = document.getElementById("commands-table");
    if (!table) return;
    const body = table.querySelector("tbody");
    if (entry.kind === "command" && !table.querySelector(`tr[data-command="${CSS.escape(String(d.id))}"]`)) {
      const tr = el("tr");
      tr.dataset.command = String(d.id);
      if (d.command && d.command.command === "fix") tr.dataset.fix = String(d.command.mode);
      const what = el("td");
      what.append(el("strong", null, d.command && d.command.command), " ", el("code", null, d.id));
      const answer = el("td");
      answer.dataset.field = "answer";
      answer.append(el("span", "pending", "waiting"));
      const sent = el("td");
      sent.append(timeEl(entry.at));
      tr.append(sent, what, el("td", null, d.by), answer);
      body.prepend(tr);
    }
    if (entry.kind === "response") {
      const row = table.querySelector(`tr[data-command="${CSS.escape(String(d.id))}"]`);
      if (!row) return;
      const cell = row.querySelector('[data-field="answer"]');
      cell.textContent = String(d.status) + (d.reason ? " (" + d.reason + ")" : "") + (d.message ? ": " + d.message : "");
      // The fix section shows the newest fix's answer and the buttons it allows: the server draws it.
      if (row.dataset.fix !== undefined && d.status !== "accepted") window.location.reload();
    }
  }

  function connect() {
    const state = document.getElementById("live-state");
    if (!live || !window.EventSource) return;
    const url = "/api/v1/live" + (live === "fleet" ? "" : "?device=" + encodeURIComponent(live));
    const source = new EventSource(url);
    source.onopen = () => { if (state) { state.textContent = "live"; state.className = "on"; } };
    source.onerror = () => { if (state) { state.textContent = "reconnecting"; state.className = "off"; } };
    source.addEventListener("summary", (e) => updateSummary(JSON.parse(e.data)));
    source.addEventListener("device", (e) => updateDevice(JSON.parse(e.data)));
    source.addEventListener("history", (e) => {
      const entry = JSON.parse(e.data);
      if (live === "fleet") return;
      prepend("history-list", entry);
      if (entry.kind === "presence") prepend("presence-list", entry);
      if (entry.kind === "command" || entry.kind === "response") answerCommand(entry);
    });
    source.addEventListener("reload", () => window.location.reload());
  }

  function commandBody(form) {
    const data = new FormData(form);
    const body = { command: data.get("command") };
    if (body.command === "set_interval") body.seconds = Number(data.get("seconds"));
    if (body.command === "update") {
      const version = String(data.get("version") || "").trim();
      if (version) body.version = version;
      body.channel = data.get("channel");
    }
    if (body.command === "fix") {
      body.mode = data.get("mode");
      const plan = data.get("plan");
      if (plan) body.plan = plan;
    }
    return body;
  }

  function wireCommands() {
    const device = document.getElementById("device-id");
    document.querySelectorAll("form.command").forEach((form) => {
      const box = form.querySelector("label.confirm");
      if (box) {
        box.hidden = true;
        box.querySelector("input").required = false;
      }
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        if (!window.confirm(form.dataset.confirm)) return;
        const notice = document.getElementById("command-notice") || el("p", "notice");
        notice.id = "command-notice";
        form.closest("section").append(notice);
        try {
          const response = await fetch("/api/v1/devices/" + encodeURIComponent(device.textContent) + "/commands", {
            method: "POST",
            headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
            body: JSON.stringify(commandBody(form)),
            credentials: "same-origin",
          });
          const answer = await response.json();
          notice.textContent = response.ok
            ? "Sent " + answer.command.command + " (" + answer.id + "); its answer appears below."
            : "Not sent: " + answer.error;
          notice.className = response.ok ? "notice" : "notice error";
        } catch (e) {
          notice.textContent = "Not sent: " + e;
          notice.className = "notice error";
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    refreshTimes();
    setInterval(refreshTimes, 10000);
    wireCommands();
    connect();
  });
})();
