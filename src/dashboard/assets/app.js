// tfgrid-compose dashboard: live parts by server-sent events. Every list is readable without
// this file; it only keeps what is shown current. Text goes in with textContent, never as HTML,
// except the deployments' rows, which the server rendered and escaped.
"use strict";

function follow(url, handlers) {
  const source = new EventSource(url);
  for (const [name, handle] of Object.entries(handlers)) {
    source.addEventListener(name, (e) => handle(e.data, source));
  }
  return source;
}

function item(parent, text) {
  const li = document.createElement("li");
  li.className = "live";
  li.textContent = text;
  parent.appendChild(li);
  return li;
}

// A project's step: a progress event replaces the row of the one before it of the same step
// (the row says how far the step got); the events API keeps them all.
function step(list, e) {
  const text = e.step + " " + e.status + " " + e.message;
  const last = list.lastElementChild;
  if (e.progress && last && last.dataset.progress === e.step) {
    last.className = "live";
    last.textContent = text;
    return;
  }
  const li = item(list, text);
  if (e.progress) li.dataset.progress = e.step;
}

document.addEventListener("DOMContentLoaded", () => {
  const rows = document.querySelector("tbody[data-follow]");
  if (rows) {
    follow(rows.dataset.follow, {
      rows: (html) => {
        rows.innerHTML = html;
        const empty = document.getElementById("empty");
        if (empty && rows.children.length > 0) empty.remove();
      },
    });
  }

  const log = document.querySelector("pre[data-follow]");
  if (log) {
    follow(log.dataset.follow, {
      lines: (data) => {
        const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
        log.appendChild(document.createTextNode(JSON.parse(data).join("\n") + "\n"));
        if (atEnd) log.scrollTop = log.scrollHeight;
      },
    });
  }

  const status = document.getElementById("status");
  const id = document.body.querySelector("code") && location.pathname.match(/^\/d\/([0-9a-f]{16})$/);
  if (status && id) {
    follow(location.pathname + "/events", {
      status: (text) => { status.textContent = text; status.className = "status s-" + text; },
    });
  }

  const events = document.querySelector("ol[data-follow]");
  if (events && !events.dataset.done) {
    const state = document.getElementById("project-status");
    const result = document.getElementById("result");
    follow(events.dataset.follow, {
      progress: (data, source) => {
        const p = JSON.parse(data);
        for (const e of p.events || []) step(events, e);
        if (p.status) { state.textContent = p.status; state.className = "status s-" + p.status; }
        if (!p.done) return;
        source.close();
        result.textContent = "";
        if (p.live_url) {
          const para = document.createElement("p");
          para.append("Live: ");
          const a = document.createElement("a");
          a.id = "live";
          a.href = p.live_url;
          a.textContent = p.live_url;
          para.appendChild(a);
          result.appendChild(para);
        }
        if (p.error) {
          const para = document.createElement("p");
          para.className = "error";
          para.textContent = p.error;
          result.appendChild(para);
        }
      },
    });
  }
});
