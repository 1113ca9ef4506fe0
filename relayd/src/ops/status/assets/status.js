// trelayd status page: redraws the server-rendered page from /api/v1 once a second.
// Text from the relay is only ever set through textContent, never parsed as HTML.
"use strict";
(function () {
  const PERIOD_MS = 1000;
  const HISTORY = 300;
  const SVG = "http://www.w3.org/2000/svg";
  const GROWTH_MS = 10000;
  const LOSS = ["lost_packets", "unindexed_packets", "sequence_gaps", "discarded_events"];
  const COUNTS = LOSS.concat(["uncommitted_packets", "streams", "viewers"]);
  const page = document.body.dataset.page;
  const grown = new Map(); // "id/col" -> time the count last grew
  const previous = new Map(); // "id/col" -> last value
  let sortKey = null;
  let sortDir = 1;

  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let v = n;
    let u = 0;
    while (v >= 1024 && u + 1 < units.length) { v /= 1024; u += 1; }
    return u === 0 ? v.toFixed(0) + " B" : v.toFixed(1) + " " + units[u];
  }

  function duration(s) {
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    if (m > 0) return m + "m " + (s % 60) + "s";
    return s + "s";
  }

  function clock(ms) {
    const s = Math.floor(ms / 1000);
    const p = (n) => String(n).padStart(2, "0");
    return p(Math.floor(s / 3600) % 24) + ":" + p(Math.floor(s / 60) % 60) + ":" + p(s % 60);
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function sparkline(history) {
    const W = 120, H = 24;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("width", String(W));
    svg.setAttribute("height", String(H));
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "rate over the last 5 minutes");
    const max = Math.max(1, ...history);
    const step = W / (HISTORY - 1);
    const start = W - step * Math.max(0, history.length - 1);
    const pts = history.map((v, i) =>
      (start + step * i).toFixed(1) + "," + (H - 1 - (v / max) * (H - 2)).toFixed(1));
    const frame = document.createElementNS(SVG, "rect");
    frame.setAttribute("class", "frame");
    frame.setAttribute("width", String(W));
    frame.setAttribute("height", String(H));
    svg.appendChild(frame);
    const area = document.createElementNS(SVG, "polygon");
    area.setAttribute("points", history.length === 0 ? "" :
      start.toFixed(1) + "," + H.toFixed(1) + " " + pts.join(" ") + " " + W.toFixed(1) + "," + H.toFixed(1));
    svg.appendChild(area);
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", pts.join(" "));
    svg.appendChild(line);
    return svg;
  }

  function cell(col, value, content) {
    const td = document.createElement("td");
    td.dataset.col = col;
    td.dataset.value = String(value);
    if (content instanceof Node) td.appendChild(content); else td.textContent = String(content);
    return td;
  }

  function count(id, col, n, now) {
    const td = cell(col, n, n);
    const key = id + "/" + col;
    const before = previous.get(key);
    if (before !== undefined && n > before) grown.set(key, now);
    previous.set(key, n);
    if (n > 0 && col !== "viewers" && col !== "streams") td.classList.add("bad");
    if (LOSS.includes(col) && now - (grown.get(key) || -Infinity) < GROWTH_MS) {
      td.classList.add("grew");
    }
    return td;
  }

  function sessionRow(r, now) {
    const tr = document.createElement("tr");
    tr.dataset.id = String(r.id);
    const host = document.createDocumentFragment();
    host.appendChild(document.createTextNode(r.host));
    if (r.peer && r.peer !== r.host) {
      host.appendChild(document.createTextNode(" "));
      host.appendChild(el("span", r.peer, "peer"));
    }
    tr.appendChild(cell("host", r.host, host));
    const a = el("a", r.name);
    a.href = "/sessions/" + encodeURIComponent(r.id);
    tr.appendChild(cell("name", r.name, a));
    tr.appendChild(cell("format", r.format, r.format));
    tr.appendChild(cell("trace_format", r.trace_format, r.trace_format));
    tr.appendChild(cell("live", r.live ? 1 : 0, r.live ? "live" : "—"));
    tr.appendChild(count(r.id, "streams", r.streams, now));
    tr.appendChild(cell("bytes", r.bytes, bytes(r.bytes)));
    const rate = document.createDocumentFragment();
    rate.appendChild(el("span", bytes(r.rate_bps) + "/s", "rate"));
    rate.appendChild(sparkline(r.history));
    tr.appendChild(cell("rate_bps", Math.round(r.rate_bps), rate));
    for (const col of COUNTS.filter((c) => c !== "streams")) {
      tr.appendChild(count(r.id, col, r[col], now));
    }
    const f = r.forward;
    tr.appendChild(f === null ? cell("forward", -1, "—")
      : cell("forward", f.backlog_bytes, bytes(f.backlog_bytes) + (f.connected ? "" : " (down)")));
    const ar = r.archive;
    tr.appendChild(ar === null || ar === undefined ? cell("archive", -1, "—")
      : cell("archive", ar.uploaded_chunks, ar.uploaded_chunks + "/" + ar.chunks +
        " chunks uploaded" + (ar.session_uploaded ? " · session uploaded" : "")));
    tr.appendChild(cell("state", r.state, r.state));
    return tr;
  }

  function compare(a, b) {
    const x = a.querySelector('td[data-col="' + sortKey + '"]');
    const y = b.querySelector('td[data-col="' + sortKey + '"]');
    const u = x ? x.dataset.value : "";
    const v = y ? y.dataset.value : "";
    const nu = Number(u), nv = Number(v);
    if (u !== "" && v !== "" && !Number.isNaN(nu) && !Number.isNaN(nv)) return (nu - nv) * sortDir;
    return u.localeCompare(v) * sortDir;
  }

  function arrange() {
    const tbody = document.querySelector("#sessions tbody");
    if (!tbody) return;
    const rows = Array.from(tbody.rows);
    if (sortKey) rows.sort(compare).forEach((r) => tbody.appendChild(r));
    const filter = document.getElementById("filter");
    const q = filter ? filter.value.trim().toLowerCase() : "";
    for (const r of rows) {
      const text = ["host", "name"].map((c) => {
        const td = r.querySelector('td[data-col="' + c + '"]');
        return td ? td.dataset.value.toLowerCase() : "";
      }).join(" ");
      r.classList.toggle("hidden", q !== "" && !text.includes(q));
    }
  }

  function drawSessions(rows) {
    const tbody = document.querySelector("#sessions tbody");
    if (!tbody) return;
    const now = Date.now();
    const fresh = document.createElement("tbody");
    for (const r of rows) fresh.appendChild(sessionRow(r, now));
    tbody.replaceWith(fresh);
    const empty = document.getElementById("empty");
    if (empty) empty.hidden = rows.length > 0;
    arrange();
  }

  function setCard(key, text) {
    const dd = document.querySelector('#relay dd[data-key="' + key + '"]');
    if (dd) dd.textContent = text;
  }

  function drawRelay(doc) {
    const r = doc.relay;
    const opt = (p) => (p === null || p === undefined ? "—" : String(p));
    setCard("version", r.version);
    setCard("uptime", duration(r.uptime_s));
    setCard("durability", r.durability);
    setCard("output", r.output);
    setCard("disk", r.disk_free_bytes === null ? "—" : bytes(r.disk_free_bytes));
    const used = r.retention_used_bytes, max = r.retention_max_bytes;
    setCard("retention", used === null
      ? (max === 0 ? "none" : "quota " + bytes(max))
      : (max === 0 ? bytes(used) + " used, no total quota" : bytes(used) + " / " + bytes(max)));
    const l = r.listeners;
    setCard("listeners", "control " + l.control + " · data " + l.data + " · live " + l.live +
      " · ops " + opt(l.ops) + " · tls " + opt(l.tls) + " · tls live " + opt(l.tls_live));
    const c = r.connections;
    setCard("connections", "control " + c.control + " · data " + c.data + " · live " + c.live);
    const f = r.files;
    setCard("files", "pool " + f.pool_open + " / " + f.pool_max + " · fds " + opt(f.fds_open) +
      " / " + opt(f.fds_max));
    const fw = r.forward;
    setCard("forward", fw.url === null ? "off" : fw.url + " · " + fw.sessions + " sessions · " +
      fw.connected + " connected · backlog " + bytes(fw.backlog_bytes));
    setCard("archive", r.archive.url === null ? "off" : r.archive.url);
    const t = doc.totals;
    setCard("totals", t.sessions + " sessions · " + t.streams + " streams · " + t.viewers +
      " viewers · " + bytes(t.rate_bps) + "/s");
  }

  function drawEvents(events) {
    const ol = document.getElementById("events");
    if (!ol) return;
    const fresh = el("ol", null, "events");
    fresh.id = "events";
    for (const e of events) {
      const li = document.createElement("li");
      li.dataset.kind = e.kind;
      const time = el("time", clock(e.time_ms));
      time.dataset.ms = String(e.time_ms);
      li.appendChild(time);
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("b", e.kind));
      li.appendChild(document.createTextNode(" "));
      if (e.session !== null) {
        li.appendChild(el("span", e.session, "peer"));
        li.appendChild(document.createTextNode(" "));
      }
      li.appendChild(document.createTextNode(e.message));
      fresh.appendChild(li);
    }
    if (events.length === 0) fresh.appendChild(el("li", "nothing yet", "note"));
    ol.replaceWith(fresh);
  }

  function drawSession(doc) {
    drawSessions([doc.session]);
    const name = document.getElementById("session-name");
    if (name) name.textContent = doc.session.name;
    const tbody = document.querySelector("#streams tbody");
    if (tbody) {
      const fresh = document.createElement("tbody");
      const now = Date.now();
      for (const s of doc.streams) {
        const tr = document.createElement("tr");
        tr.dataset.id = String(s.id);
        tr.appendChild(el("td", s.id));
        tr.appendChild(el("td", s.name + (s.metadata ? " (metadata)" : "")));
        tr.appendChild(el("td", s.path));
        const b = el("td", bytes(s.bytes));
        b.dataset.value = String(s.bytes);
        tr.appendChild(b);
        tr.appendChild(el("td", s.packets));
        tr.appendChild(el("td", s.committed));
        tr.appendChild(el("td", s.tracefile));
        tr.appendChild(count("s" + s.id, "lost_packets", s.lost_packets, now));
        tr.appendChild(count("s" + s.id, "unindexed_packets", s.unindexed_packets, now));
        const last = s.last_packet_ms === null || s.last_packet_ms === undefined ? null : s.last_packet_ms;
        tr.appendChild(cell("last_packet_ms", last === null ? 0 : last,
          last === null ? "—" : clock(last)));
        tr.appendChild(el("td", s.closed ? "closed" : "open"));
        fresh.appendChild(tr);
      }
      tbody.replaceWith(fresh);
    }
    const ul = document.getElementById("viewers");
    if (ul) {
      const fresh = el("ul");
      fresh.id = "viewers";
      for (const v of doc.viewers) {
        const li = el("li", v.peer);
        li.dataset.lag = String(v.lag_packets);
        li.appendChild(document.createTextNode(" "));
        li.appendChild(el("span", "viewer " + v.viewer + " · attached " +
          clock(v.attached_at * 1000) + " · lag " + v.lag_packets + " packets over " +
          v.streams + " streams", "peer"));
        fresh.appendChild(li);
      }
      if (doc.viewers.length === 0) fresh.appendChild(el("li", "none", "note"));
      ul.replaceWith(fresh);
    }
    const archived = document.getElementById("archived");
    if (archived) {
      const fresh = el("ul");
      fresh.id = "archived";
      for (const a of doc.chunks.archived || []) {
        const li = el("li", a.name);
        li.dataset.uploaded = a.uploaded === null ? "" : (a.uploaded ? "1" : "0");
        li.appendChild(document.createTextNode(" "));
        li.appendChild(el("span", a.uploaded === null ? "not archiving"
          : (a.uploaded ? "uploaded" : "not uploaded yet"), "peer"));
        fresh.appendChild(li);
      }
      archived.replaceWith(fresh);
    }
  }

  async function get(path) {
    const r = await fetch(path, { cache: "no-store" });
    if (!r.ok) throw new Error(path + ": " + r.status);
    return r.json();
  }

  async function refresh() {
    if (page === "session") {
      drawSession(await get("/api/v1/sessions/" + encodeURIComponent(document.body.dataset.id)));
    } else {
      const [status, sessions] = await Promise.all([get("/api/v1/status"), get("/api/v1/sessions")]);
      drawRelay(status);
      drawSessions(sessions.sessions);
      drawEvents(status.events);
    }
  }

  async function loop() {
    const started = Date.now();
    try {
      await refresh();
      document.body.dataset.updated = String(Date.now());
    } catch (e) {
      // The relay may be restarting: keep the last figures and try again.
      document.body.dataset.stale = String(Date.now());
    }
    setTimeout(loop, Math.max(PERIOD_MS, PERIOD_MS - (Date.now() - started)));
  }

  for (const th of document.querySelectorAll("#sessions th[data-key]")) {
    th.addEventListener("click", () => {
      const key = th.dataset.key;
      sortDir = sortKey === key ? -sortDir : 1;
      sortKey = key;
      for (const o of document.querySelectorAll("#sessions th")) o.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
      arrange();
    });
  }
  const filter = document.getElementById("filter");
  if (filter) filter.addEventListener("input", arrange);
  setTimeout(loop, PERIOD_MS);
})();
