"use strict";
(() => {
  const POLL_MS = 1000;
  const USER_KEY = "warroom.sandbox.user";
  const TOKEN_KEY = "warroom.apiToken";
  const $ = (id) => document.getElementById(id);

  const state = {
    user: localStorage.getItem(USER_KEY) || "",
    users: [],            // sandbox directory: [{id, email, phone, name}]
    extraUsers: [],       // emails typed in, not yet in the directory
    rooms: [],
    chatId: null,
    room: null,
    warRoom: null,        // the incident API's view: {incident, war_room}
    errors: [],           // [{id, text, sticky}]
    pollError: "",
    notice: null,         // the outcome of the last click: {action, uid, afterId, status, lastAction, at, state, text}
    busy: false,
    awaitIncident: null,  // an incident whose war room is still being created: open it when it appears
    rendered: {},
  };

  // ---------------------------------------------------------------- tiny DOM helper
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const badge = (value, testid) => h("span", { class: `badge ${value || ""}`, "data-testid": testid, text: value || "—" });
  const fmtTime = (iso) => {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  };
  const fmtDateTime = (iso) => {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  };

  // ---------------------------------------------------------------- errors and notes
  let errorSeq = 0;
  function showError(text, { sticky = true } = {}) {
    state.errors = state.errors.filter((e) => e.text !== text);
    state.errors.push({ id: ++errorSeq, text, sticky, kind: "error" });
    renderErrors();
  }
  function showNote(text) {
    state.errors = state.errors.filter((e) => e.kind !== "note");
    const id = ++errorSeq;
    state.errors.push({ id, text, kind: "note" });
    renderErrors();
    setTimeout(() => { state.errors = state.errors.filter((e) => e.id !== id); renderErrors(); }, 6000);
  }
  function clearErrors() { state.errors = state.errors.filter((e) => e.kind === "note"); renderErrors(); }
  function renderErrors() {
    const box = $("errors");
    box.replaceChildren();
    const all = [...state.errors];
    if (state.pollError) all.push({ id: "poll", text: state.pollError, kind: "error", poll: true });
    for (const e of all) {
      box.append(h("div", { class: `banner ${e.kind}`, role: e.kind === "error" ? "alert" : "status",
                            "data-testid": e.kind === "error" ? "error" : "note" },
        h("span", { class: "text", text: e.text }),
        e.poll ? null : h("button", { title: "dismiss", "aria-label": "dismiss", "data-testid": "error-dismiss",
          onclick: () => { state.errors = state.errors.filter((x) => x.id !== e.id); renderErrors(); } }, "×")));
    }
  }

  // ---------------------------------------------------------------- the API
  class ApiFailure extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
    toString() { return `${this.status} ${this.code}: ${this.message}`; }
  }
  // Signed in to the console? Then its session (cookie + CSRF header) stands for the API token,
  // which is no longer kept in the browser's storage.
  let sessionCsrf = "";
  const sessionReady = fetch("/console/session", { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then((s) => { if (s && s.csrf) sessionCsrf = s.csrf; })
    .catch(() => {});
  async function api(method, path, body) {
    await sessionReady;
    const headers = { "x-warroom-source": "web" };
    if (sessionCsrf) headers["x-warroom-csrf"] = sessionCsrf;
    const token = $("api-token").value.trim();
    if (token) headers.authorization = `Bearer ${token}`;
    if (state.user) headers["x-warroom-actor"] = state.user;
    if (body !== undefined) headers["content-type"] = "application/json";
    let res;
    try {
      res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new ApiFailure(0, "unreachable", `the War Room API is not reachable (${e.message}); is the server running?`);
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!res.ok) {
      const err = data && data.error;
      const message = err ? err.message : (text || res.statusText);
      const code = err ? err.code : "error";
      if (res.status === 401) $("api-token").focus();
      throw new ApiFailure(res.status, code,
        res.status === 401 ? `${message} (sign in at the console, /signin, or enter the API token at the top right)` : message);
    }
    return { status: res.status, data };
  }

  // ---------------------------------------------------------------- users
  function userByEmail(email) { return state.users.find((u) => u.email === email) || null; }
  function userById(id) { return state.users.find((u) => u.id === id) || null; }
  function setUser(email) {
    state.user = email || "";
    if (state.user) localStorage.setItem(USER_KEY, state.user); else localStorage.removeItem(USER_KEY);
    state.notice = null;
    renderUsers(true);
    renderRoom(true);
  }
  function renderUsers(force) {
    const emails = new Set(state.users.filter((u) => u.email).map((u) => u.email));
    const extra = state.extraUsers.filter((e) => !emails.has(e));
    if (state.user && !emails.has(state.user) && !extra.includes(state.user)) extra.push(state.user);
    const key = JSON.stringify([state.users, extra, state.user]);
    if (!force && state.rendered.users === key) return;
    state.rendered.users = key;
    const sel = $("user-select");
    sel.replaceChildren(h("option", { value: "", text: "— nobody (pick a user) —" }));
    for (const u of state.users) {
      sel.append(h("option", { value: u.email || "", disabled: !u.email,
        text: u.email ? `${u.name} <${u.email}>` : `${u.name} (no email: cannot act here)` }));
    }
    for (const e of extra) sel.append(h("option", { value: e, text: `${e} (new)` }));
    sel.value = state.user;
  }
  $("user-select").addEventListener("change", (e) => setUser(e.target.value));
  $("user-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("user-custom");
    const email = input.value.trim().toLowerCase();
    if (!email) return;
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) { showError(`not an email address: ${email}`); return; }
    if (!state.extraUsers.includes(email)) state.extraUsers.push(email);
    input.value = "";
    setUser(email);
  });

  // ---------------------------------------------------------------- token
  localStorage.removeItem(TOKEN_KEY);  // kept there by older versions of this page
  $("api-token").addEventListener("change", () => {
    state.pollError = "";
    renderErrors();
    poll();
  });

  // ---------------------------------------------------------------- rooms
  function selectRoom(chatId) {
    if (chatId === state.chatId) return;
    state.chatId = chatId;
    state.room = null;
    state.warRoom = null;
    state.notice = null;
    state.rendered.room = state.rendered.card = state.rendered.messages = state.rendered.members = null;
    state.rendered.responders = null;
    const hash = chatId ? `#room=${encodeURIComponent(chatId)}` : "#";
    if (location.hash !== hash) history.replaceState(null, "", hash || location.pathname);
    renderRooms(true);
    renderRoom(true);
    poll();
  }
  function roomFromHash() {
    const m = /(?:^#|&)room=([^&]+)/.exec(location.hash);
    return m ? decodeURIComponent(m[1]) : null;
  }
  window.addEventListener("hashchange", () => { const c = roomFromHash(); if (c) selectRoom(c); });

  function renderRooms(force) {
    const key = JSON.stringify([state.rooms, state.chatId]);
    if (!force && state.rendered.rooms === key) return;
    state.rendered.rooms = key;
    const list = $("room-list");
    list.replaceChildren();
    if (!state.rooms.length) {
      list.append(h("li", { class: "empty", "data-testid": "rooms-empty", text: "No rooms yet." }));
      return;
    }
    for (const r of state.rooms) {
      const c = r.card || {};
      list.append(h("li", {
          class: r.chat_id === state.chatId ? "selected" : "",
          "data-testid": "room-item", "data-chat-id": r.chat_id, "data-incident-id": r.incident_id,
          tabindex: 0, role: "button", "aria-pressed": r.chat_id === state.chatId ? "true" : "false",
          onclick: () => selectRoom(r.chat_id),
          onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); selectRoom(r.chat_id); } },
        },
        h("div", { class: "name", text: c.title || r.name }),
        h("div", { class: "meta" },
          h("span", { text: `incident ${r.incident_id}` }),
          c.status ? badge(c.status, "room-item-status") : null,
          c.severity ? badge(c.severity) : null,
          r.state !== "active" ? badge(r.state, "room-item-state") : null)));
    }
  }

  // ---------------------------------------------------------------- the selected room
  function mentionText(text) {
    // "<U123> ..." mentions become "@name"
    const parts = [];
    const re = /<(U[A-Z0-9]+|warroom-bot)>/g;
    let last = 0, m;
    while ((m = re.exec(text))) {
      if (m.index > last) parts.push(text.slice(last, m.index));
      const u = userById(m[1]);
      parts.push(h("span", { class: "mention", title: m[1], text: `@${u ? u.name : m[1]}` }));
      last = re.lastIndex;
    }
    if (last < text.length) parts.push(text.slice(last));
    return parts;
  }
  // A formatted bot message (warroom/im/sandbox/render.py, ends with U+2063): [label](https://…)
  // links, **bold**, `code`; a backslash makes the next character plain. Anything else is text.
  function richText(text) {
    const out = [];
    let buf = "", i = 0;
    const flush = () => { if (buf) out.push(buf); buf = ""; };
    while (i < text.length) {
      const c = text[i];
      if (c === "\\" && i + 1 < text.length) { buf += text[i + 1]; i += 2; continue; }
      if (c === "*" && text.startsWith("**", i)) {
        const end = text.indexOf("**", i + 2);
        if (end > i + 2) { flush(); out.push(h("strong", {}, richText(text.slice(i + 2, end)))); i = end + 2; continue; }
      }
      if (c === "`") {
        const end = text.indexOf("`", i + 1);
        if (end > i) { flush(); out.push(h("code", { text: text.slice(i + 1, end).replace(/\\(.)/g, "$1") })); i = end + 1; continue; }
      }
      if (c === "[") {
        const m = /^\[((?:\\.|[^\]\\])*)\]\((https?:\/\/[^\s)]+)\)/.exec(text.slice(i));
        if (m) {
          flush();
          out.push(h("a", { href: m[2], target: "_blank", rel: "noopener", "data-testid": "message-link",
            text: m[1].replace(/\\(.)/g, "$1") }));
          i += m[0].length;
          continue;
        }
      }
      buf += c; i += 1;
    }
    flush();
    return out;
  }
  function myMember() {
    const me = userByEmail(state.user);
    if (!state.room || !me) return null;
    return state.room.members.find((m) => m.user_id === me.id && m.state === "joined") || null;
  }

  function renderRoom(force) {
    const room = state.room;
    $("room-empty").hidden = !!room;
    $("room-body").hidden = !room;
    if (!room) {
      $("room-empty").textContent = state.chatId ? `Loading room ${state.chatId}…` :
        "Select a room, or create an incident with a war room.";
      $("members").replaceChildren();
      $("responders").replaceChildren();
      $("join-room").hidden = true;
      return;
    }
    const active = room.state === "active";
    const headKey = JSON.stringify([room.name, room.state, room.incident_id, room.topic]);
    if (force || state.rendered.room !== headKey) {
      state.rendered.room = headKey;
      $("room-name").textContent = room.name;
      $("room-state").textContent = room.state;
      $("room-state").className = `badge ${room.state}`;
      $("room-meta").textContent = `${room.chat_id} · incident ${room.incident_id}`;
    }
    renderCard(force);
    renderNotice();
    renderMessages(force);
    renderMembers(force);
    renderResponders(force);
    const joined = !!myMember();
    $("join-room").hidden = !active || !state.user || joined;
    $("message-input").disabled = !active || !state.user;
    $("compose").querySelector("button").disabled = !active || !state.user || state.busy;
    $("message-input").placeholder = !active ? "This room is dismissed: read only." :
      !state.user ? "Pick who you are (top left) to write." :
      !joined ? "You are not in this room: join it to write." :
      "Message the room (mention @warroom to ask the assistant)";
  }

  function renderCard(force) {
    const room = state.room, card = room.card;
    const key = JSON.stringify([card, room.state, state.user, state.busy]);
    if (!force && state.rendered.card === key) return;
    state.rendered.card = key;
    const slot = $("card-slot");
    if (!card) {
      slot.replaceChildren(h("div", { class: "card empty", "data-testid": "card-missing",
        text: "No status card posted yet." }));
      return;
    }
    const canClick = room.state === "active" && !!state.user && !state.busy;
    const members = (card.members || []).map((m) => `${m.name} (${m.state})`).join(", ") || "—";
    const buttons = (card.buttons || []).map((b) => h("button", {
      class: b.action === "close" ? "danger" : (b.action === "acknowledge" ? "primary" : ""),
      "data-testid": `card-action-${b.action}${b.minutes ? "-" + b.minutes : ""}`,
      "data-action": b.action, "data-minutes": b.minutes || null,
      disabled: !canClick,
      title: !state.user ? "pick who you are first" : (room.state !== "active" ? "the room is dismissed" : null),
      onclick: () => click(b),
    }, b.label));
    slot.replaceChildren(h("div", { class: `card ${card.status}`, "data-testid": "card",
        "data-status": card.status, "data-version": card.version },
      h("div", { class: "title", "data-testid": "card-title", text: card.title }),
      h("dl", {},
        h("dt", {}, "Status"), h("dd", {}, badge(card.status, "card-status")),
        h("dt", {}, "Severity"), h("dd", {}, badge(card.severity, "card-severity")),
        card.snoozed_until ? [h("dt", {}, "Snoozed until"),
          h("dd", { "data-testid": "card-snoozed-until", text: fmtDateTime(card.snoozed_until) })] : null,
        h("dt", {}, "Responders"), h("dd", { "data-testid": "card-members", text: members }),
        card.impact ? [h("dt", {}, "Impact"), h("dd", { "data-testid": "card-impact", text: card.impact })] : null,
        h("dt", {}, "Last action"), h("dd", { "data-testid": "card-last-action", text: card.last_action || "—" }),
        card.url ? [h("dt", {}, "Incident"), h("dd", {}, h("a", { href: card.url, target: "_blank", rel: "noopener",
          text: card.incident_id }))] : null),
      buttons.length ? h("div", { class: "buttons", "data-testid": "card-buttons" }, buttons) :
        h("div", { class: "empty", text: "No actions available." })));
  }

  function renderNotice() {
    const el = $("action-notice");
    const n = state.notice;
    el.hidden = !n;
    if (!n) return;
    el.className = `notice ${n.state}`;
    el.dataset.state = n.state;
    el.textContent = n.text;
  }

  function renderMessages(force) {
    const room = state.room;
    const key = JSON.stringify([room.messages.map((m) => [m.id, m.edits, m.text]), state.users.length]);
    if (!force && state.rendered.messages === key) return;
    state.rendered.messages = key;
    const box = $("messages");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    box.replaceChildren();
    const me = userByEmail(state.user);
    for (const m of room.messages) {
      const bot = m.author === "warroom-bot";
      const isCard = !!m.card;
      const refusal = bot && / refused: /.test(m.text);
      box.append(h("div", {
          class: `msg${refusal ? " refusal" : ""}${isCard ? " cardmsg" : ""}`,
          "data-testid": "message", "data-author": m.author, "data-id": m.id,
          "data-mine": me && me.id === m.author ? "true" : null },
        h("time", { datetime: m.created_at, text: fmtTime(m.created_at) }),
        h("span", { class: `who${bot ? " bot" : ""}`, text: m.author_name }),
        h("span", { class: "body" }, isCard ? `status card (v${m.card_version}${m.edits ? `, edited ${m.edits}×` : ""})` :
          bot && m.text.endsWith("\u2063") ? richText(m.text.slice(0, -1)) : mentionText(m.text))));
    }
    if (!room.messages.length) box.append(h("div", { class: "empty", text: "No messages yet." }));
    if (atBottom || force) box.scrollTop = box.scrollHeight;
  }

  function renderMembers(force) {
    const room = state.room;
    const key = JSON.stringify([room.members, state.user]);
    if (!force && state.rendered.members === key) return;
    state.rendered.members = key;
    const list = $("members");
    list.replaceChildren();
    for (const m of room.members) {
      const you = m.email && m.email === state.user;
      list.append(h("li", { "data-testid": "member", "data-email": m.email || "", "data-state": m.state },
        h("span", { class: "who" }, `${m.name}${you ? " (you)" : ""}`, h("small", { text: m.email || m.user_id })),
        badge(m.state, "member-state")));
    }
    if (!room.members.length) list.append(h("li", { class: "empty", text: "Nobody here yet." }));
  }

  function renderResponders(force) {
    const wr = state.warRoom && state.warRoom.war_room;
    const key = JSON.stringify(wr ? wr.members : null);
    if (!force && state.rendered.responders === key) return;
    state.rendered.responders = key;
    const list = $("responders");
    list.replaceChildren();
    if (!wr) { list.append(h("li", { class: "empty", text: "—" })); return; }
    for (const m of wr.members) {
      list.append(h("li", { "data-testid": "responder", "data-email": m.email || "", "data-state": m.state,
                            title: m.detail || null },
        h("span", { class: "who" }, m.name || m.email || m.phone || m.responder_id,
          h("small", { text: [m.email, m.phone].filter(Boolean).join(" · ") || m.detail || "" })),
        badge(m.state, "responder-state")));
    }
    if (!wr.members.length) list.append(h("li", { class: "empty", text: "No responders." }));
  }

  // ---------------------------------------------------------------- actions
  async function click(button) {
    if (!state.user || !state.room) return;
    const room = state.room, card = room.card;
    const lastId = room.messages.length ? room.messages[room.messages.length - 1].id : 0;
    state.busy = true;
    renderRoom();
    try {
      const { data } = await api("POST", `/sandbox/api/rooms/${encodeURIComponent(room.chat_id)}/actions`, {
        user: state.user, action: button.action, minutes: button.minutes || undefined,
        card_version: card ? card.version : undefined,
      });
      clearErrors();
      state.notice = {
        action: button.action, label: button.label, uid: data.user_id, afterId: lastId,
        status: card && card.status, lastAction: card && card.last_action, at: Date.now(), state: "pending",
        text: `${button.label}: sent as ${state.user}, waiting for the war room…`,
      };
    } catch (e) {
      state.notice = null;
      showError(`${button.label} failed: ${e}`);
    } finally {
      state.busy = false;
      renderRoom(true);
      poll();
    }
  }

  function settleNotice() {
    const n = state.notice, room = state.room;
    if (!n || n.state !== "pending" || !room) return;
    const refusal = room.messages.find((m) => m.id > n.afterId && m.author === "warroom-bot" &&
      m.text.includes(`<${n.uid}>`) && m.text.includes(`${n.action} refused:`));
    if (refusal) {
      n.state = "refused";
      n.text = `${n.label} refused: ${refusal.text.replace(/^<[^>]+>\s*/, "").replace(/^\w+ refused:\s*/, "")}`;
      return;
    }
    const card = room.card;
    if (card && (card.status !== n.status || card.last_action !== n.lastAction)) {
      n.state = "applied";
      n.text = `${n.label}: done — ${card.last_action || card.status}.`;
      return;
    }
    if (Date.now() - n.at > 30000) n.text = `${n.label}: sent; no change seen yet (is the worker running?)`;
  }

  $("join-room").addEventListener("click", async () => {
    if (!state.user || !state.room) return;
    try {
      await api("POST", `/sandbox/api/rooms/${encodeURIComponent(state.room.chat_id)}/join`, { user: state.user });
      clearErrors();
      showNote(`${state.user} joined ${state.room.name}.`);
      await refreshUsers();
    } catch (e) {
      showError(`Join failed: ${e}`);
    }
    poll();
  });

  $("compose").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("message-input");
    const text = input.value.trim();
    if (!text || !state.room) return;
    if (!state.user) { showError("Pick who you are (top left) before writing."); return; }
    state.busy = true;
    renderRoom();
    try {
      await api("POST", `/sandbox/api/rooms/${encodeURIComponent(state.room.chat_id)}/messages`,
        { user: state.user, text });
      input.value = "";
      clearErrors();
    } catch (err) {
      showError(`Message not sent: ${err}`);
    } finally {
      state.busy = false;
      renderRoom(true);
      input.focus();
      poll();
    }
  });

  function parseResponders(text) {
    return text.split(/[,;\n]+/).map((s) => s.trim()).filter(Boolean).map((s) => {
      const named = /^(.*?)\s*<([^>]+)>$/.exec(s);
      if (named) return named[1] ? { name: named[1], email: named[2] } : { email: named[2] };
      if (s.includes("@")) return { email: s };
      if (/^\+?[\d\s-]{5,}$/.test(s)) return { phone: s };
      return { name: s };
    });
  }

  $("create-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    const submit = form.querySelector("button[type=submit]");
    const field = (name) => form.elements.namedItem(name);
    const body = {
      title: field("title").value.trim(),
      severity: field("severity").value,
      responders: parseResponders(field("responders").value),
    };
    submit.disabled = true;
    try {
      const { data: incident } = await api("POST", "/api/v1/incidents", body);
      let note = `Incident ${incident.id} created.`;
      if (field("room").checked) {
        const { status, data: room } = await api("POST", `/api/v1/incidents/${encodeURIComponent(incident.id)}/war-room`,
          { actor: state.user || "web" });
        if (room.chat_id) {
          note += ` War room ${room.name || room.chat_id} is ${status === 202 ? "being created" : "open"}.`;
          await refreshRooms();
          selectRoom(room.chat_id);
        } else {
          note += " Its war room is being created; it opens here once it exists.";
          state.awaitIncident = incident.id;
        }
      }
      clearErrors();
      showNote(note);
      field("title").value = "";
      field("responders").value = "";
    } catch (err) {
      showError(`Could not create the incident: ${err}`);
    } finally {
      submit.disabled = false;
    }
  });

  // ---------------------------------------------------------------- polling
  async function refreshUsers() {
    const { data } = await api("GET", "/sandbox/api/users");
    state.users = data.items;
    renderUsers();
  }
  async function refreshRooms() {
    const { data } = await api("GET", "/sandbox/api/rooms");
    state.rooms = data.items;
    const awaited = state.awaitIncident && state.rooms.find((r) => r.incident_id === state.awaitIncident);
    if (awaited) { state.awaitIncident = null; selectRoom(awaited.chat_id); }
    if (!state.chatId && state.rooms.length === 1) selectRoom(state.rooms[0].chat_id);
    renderRooms();
  }
  async function refreshRoom() {
    const chatId = state.chatId;
    if (!chatId) return;
    let room;
    try {
      ({ data: room } = await api("GET", `/sandbox/api/rooms/${encodeURIComponent(chatId)}`));
    } catch (e) {
      if (e.status === 404 && chatId === state.chatId) {
        state.chatId = null;
        state.room = null;
        renderRoom(true);
        renderRooms(true);
        showError(`Room ${chatId} does not exist.`);
        return;
      }
      throw e;
    }
    if (chatId !== state.chatId) return;
    const known = new Set(state.users.map((u) => u.id));
    if (room.members.some((m) => !known.has(m.user_id)) ||
        (state.notice && state.notice.uid && !known.has(state.notice.uid))) await refreshUsers();
    state.room = room;
    settleNotice();
    renderRoom();
    // the incident's own view of its war room (responders' states); optional for the chat itself
    try {
      const { data } = await api("GET", `/api/v1/incidents/${encodeURIComponent(room.incident_id)}`);
      if (chatId === state.chatId) { state.warRoom = data; renderResponders(); }
    } catch (e) {
      if (e.status !== 404) throw e;
    }
  }

  let polling = null, tick = 0;
  function poll() {
    if (polling) { polling.again = true; return polling.done; }
    const run = { again: false };
    run.done = (async () => {
      do {
        run.again = false;
        try {
          if (tick++ % 5 === 0 || !state.users.length) await refreshUsers();
          await refreshRooms();
          await refreshRoom();
          if (state.pollError) { state.pollError = ""; renderErrors(); }
          $("live").textContent = "live";
          $("live").className = "badge active";
        } catch (e) {
          const text = `Cannot refresh: ${e}`;
          if (state.pollError !== text) { state.pollError = text; renderErrors(); }
          $("live").textContent = "offline";
          $("live").className = "badge failed";
        }
      } while (run.again);
      polling = null;
    })();
    polling = run;
    return run.done;
  }

  // ---------------------------------------------------------------- start
  state.chatId = roomFromHash();
  renderUsers(true);
  renderRooms(true);
  renderRoom(true);
  renderErrors();
  poll();
  setInterval(poll, POLL_MS);
})();
