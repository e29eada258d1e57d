// The chat's single-page client: plain DOM, no framework, nothing but this server.
// It speaks only the public contract (API.md). Every string a user wrote reaches the
// page through textContent or text nodes, never innerHTML, so markup shows as text.

const API = "/api/v1";
const AUTH_KEY = "chat.auth"; // sessionStorage: each tab or window can be another user
const $ = (id) => document.getElementById(id);

const state = {
  auth: null, // {access, refresh, user, receivedAt}
  refreshing: null, // the refresh in flight: refresh tokens rotate, so only one at a time
  refreshTimer: 0,
  rooms: new Map(), // id -> Room, as the list shows them
  roomsNext: null,
  roomsTicket: 0,
  room: null, // the open Room
  roomTicket: 0, // bumped when the open room changes; late answers for the old one are dropped
  messages: new Map(), // seq -> {message, node}
  lastSeq: 0, // every message up to this seq is shown
  olderNext: null,
  loadingOlder: false,
  catchingUp: false,
  catchUpAgain: false,
  outbox: new Map(), // client_id -> {body, node}: sent, not acknowledged yet
  socket: null,
  attempt: 0,
  reconnectTimer: 0,
  lastFrameAt: 0,
  lastReadSent: 0,
  editing: null, // the message being edited
  typingSentAt: 0,
  typingStop: 0,
  typing: new Map(), // user id -> {user, timer}
  online: new Map(), // user id -> User
};

// DOM ------------------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node[key] = value;
  }
  node.append(...children.filter((child) => child !== null)); // strings become text nodes
  return node;
}

const nameOf = (user) => user.display_name || user.username;
const show = (id, visible) => ($(id).hidden = !visible);

// HTTP and tokens ------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, data) {
    super(describe(data) || `The server answered ${status}.`);
    this.status = status;
  }
}

function describe(data) {
  if (!data || typeof data !== "object") return "";
  if (typeof data.detail === "string") return data.detail;
  return Object.entries(data)
    .map(([field, errors]) => `${field}: ${[].concat(errors).join(" ")}`)
    .join("; ");
}

async function api(method, url, body, { auth = true, retried = false } = {}) {
  if (auth && !state.auth) throw new ApiError(401, { detail: "Not logged in." });
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth) headers.Authorization = `Bearer ${state.auth.access}`;
  let response;
  try {
    response = await fetch(url, { method, headers, body: JSON.stringify(body) });
  } catch {
    throw new ApiError(0, { detail: "The server cannot be reached." });
  }
  if (response.status === 401 && auth && !retried) {
    await refreshTokens(); // one refresh, then the same request once more
    return api(method, url, body, { auth, retried: true });
  }
  if (response.status === 401 && auth) showLogin("Please log in again.");
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function claims(token) {
  const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(payload));
}

function saveAuth(auth) {
  state.auth = auth;
  sessionStorage.setItem(AUTH_KEY, JSON.stringify(auth));
  scheduleRefresh();
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  const { exp, iat } = claims(state.auth.access);
  const lifetime = Number.isFinite(exp - iat) ? exp - iat : 60;
  // 80% of the token's lifetime after we got it: no trust in this machine's clock.
  const due = state.auth.receivedAt + lifetime * 800 - Date.now();
  state.refreshTimer = setTimeout(() => refreshTokens().catch(() => {}), Math.max(due, 1000));
}

function refreshTokens() {
  if (!state.auth) return Promise.reject(new ApiError(401, { detail: "Not logged in." }));
  state.refreshing ??= (async () => {
    try {
      const tokens = await api(
        "POST", `${API}/auth/token/refresh/`, { refresh: state.auth.refresh }, { auth: false },
      );
      saveAuth({ ...state.auth, ...tokens, receivedAt: Date.now() });
    } catch (error) {
      if (error.status === 400 || error.status === 401) showLogin("Your session has ended; please log in again.");
      else state.refreshTimer = setTimeout(() => refreshTokens().catch(() => {}), 5000);
      throw error;
    } finally {
      state.refreshing = null;
    }
  })();
  return state.refreshing;
}

// Screens --------------------------------------------------------------------------

async function submitAuth(register) {
  const body = { username: $("username").value.trim(), password: $("password").value };
  const displayName = $("display-name").value.trim();
  if (register && displayName) body.display_name = displayName;
  try {
    const data = await api("POST", `${API}/auth/${register ? "register" : "token"}/`, body, { auth: false });
    state.auth = { access: data.access, refresh: data.refresh, receivedAt: Date.now() };
    const user = data.user ?? (await api("GET", `${API}/users/me/`));
    saveAuth({ ...state.auth, user });
    $("password").value = "";
    showChat();
  } catch (error) {
    $("login-error").textContent = error.message;
  }
}

function showLogin(message) {
  closeRoom();
  clearTimeout(state.refreshTimer);
  state.auth = null;
  sessionStorage.removeItem(AUTH_KEY);
  $("login-error").textContent = message;
  show("chat-view", false);
  show("login-view", true);
}

function showChat() {
  $("me").textContent = nameOf(state.auth.user);
  show("login-view", false);
  show("chat-view", true);
  loadRooms();
}

async function logout() {
  const { refresh } = state.auth;
  showLogin("");
  await fetch(`${API}/auth/logout/`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ refresh }),
  }).catch(() => {});
}

// Rooms ----------------------------------------------------------------------------

async function loadRooms(more = false) {
  if (!state.auth) return;
  const ticket = ++state.roomsTicket;
  const params = new URLSearchParams();
  if ($("room-search").value.trim()) params.set("search", $("room-search").value.trim());
  if ($("joined-only").checked) params.set("joined", "true");
  try {
    const page = await api("GET", more ? state.roomsNext : `${API}/rooms/?${params}`);
    if (ticket !== state.roomsTicket) return; // a newer search answered first
    if (!more) state.rooms.clear();
    for (const room of page.results) state.rooms.set(room.id, room);
    state.roomsNext = page.next;
    renderRooms();
    $("sidebar-error").textContent = "";
  } catch (error) {
    $("sidebar-error").textContent = error.message;
  }
}

const roomTitle = (room) => `${room.visibility === "private" ? "🔒 " : "# "}${room.name}`;

function renderRooms() {
  const items = [...state.rooms.values()].map((room) => {
    const open = room.id === state.room?.id;
    let badge = null;
    if (room.unread_count === null) {
      badge = el("span", { className: "not-member", textContent: "not joined" });
    } else if (room.unread_count && !open) {
      badge = el("span", { className: "unread", textContent: String(room.unread_count) });
    }
    const props = { className: open ? "active" : "", dataset: { roomId: room.id }, title: room.topic };
    return el(
      "li",
      { ...props, onclick: () => openRoom(room.id) },
      el("span", { className: "name", textContent: roomTitle(room) }),
      badge,
    );
  });
  $("room-list").replaceChildren(...items);
  show("more-rooms", Boolean(state.roomsNext));
}

async function createRoom(event) {
  event.preventDefault();
  const visibility = $("new-room-private").checked ? "private" : "public";
  const body = { name: $("new-room-name").value.trim(), visibility };
  try {
    const room = await api("POST", `${API}/rooms/`, body);
    $("new-room-name").value = "";
    state.rooms = new Map([[room.id, room], ...state.rooms]);
    $("sidebar-error").textContent = "";
    openRoom(room.id);
  } catch (error) {
    $("sidebar-error").textContent = error.message;
  }
}

async function joinRoom() {
  try {
    const room = await api("POST", `${API}/rooms/${state.room.id}/join/`);
    state.room = room;
    state.rooms.set(room.id, room);
    renderRoom();
    connect();
  } catch (error) {
    $("room-error").textContent = error.message;
  }
}

// The open room --------------------------------------------------------------------

function closeRoom() {
  state.roomTicket++;
  $("chat-view").classList.remove("room-open");
  dropSocket(false);
  const old = state.room;
  for (const [clientId, { body }] of state.outbox) {
    // Not acknowledged on the socket: hand it over to HTTP with the same client_id,
    // which the server stores at most once.
    api("POST", `${API}/rooms/${old.id}/messages/`, { body, client_id: clientId }).catch(() => {});
  }
  Object.assign(state, { room: null, lastSeq: 0, olderNext: null, editing: null, lastReadSent: 0 });
  Object.assign(state, { catchingUp: false, loadingOlder: false, attempt: 0 });
  state.messages.clear();
  state.outbox.clear();
  state.online.clear();
  for (const { timer } of state.typing.values()) clearTimeout(timer);
  state.typing.clear();
  $("messages").replaceChildren();
  $("outbox").replaceChildren();
  $("room-error").textContent = "";
  show("composer", false);
  show("join-button", false);
  show("load-older", false);
  setConnection("");
  stopEditing();
}

async function openRoom(roomId) {
  closeRoom();
  $("chat-view").classList.add("room-open"); // at phone width, the room replaces the list
  const ticket = state.roomTicket;
  show("no-room", false);
  show("room-pane", true);
  try {
    const room = await api("GET", `${API}/rooms/${roomId}/`);
    const page = await api("GET", `${API}/rooms/${roomId}/messages/?limit=50`);
    if (ticket !== state.roomTicket) return;
    state.room = room;
    renderRoom();
    renderRooms();
    for (const message of page.results) showMessage(message); // newest first
    state.lastSeq = page.results.length ? page.results[0].seq : 0;
    state.olderNext = page.next;
    show("load-older", Boolean(page.next));
    scrollToBottom();
    if (room.is_member) connect();
  } catch (error) {
    if (ticket === state.roomTicket) $("room-error").textContent = error.message;
  }
}

function renderRoom() {
  const { room } = state;
  $("room-name").textContent = roomTitle(room);
  $("room-topic").textContent = room.topic;
  show("join-button", !room.is_member);
  show("composer", room.is_member);
  renderOnline();
  renderTyping();
}

function renderOnline() {
  const names = [...state.online.values()].map(nameOf);
  $("online").textContent = names.length ? `Online: ${names.join(", ")}` : "";
}

function setConnection(text, kind = "") {
  $("connection").textContent = text;
  $("connection").className = `status ${kind}`;
}

const scroller = () => $("scroller");
const nearBottom = () => scroller().scrollHeight - scroller().scrollTop - scroller().clientHeight < 80;
const scrollToBottom = () => (scroller().scrollTop = scroller().scrollHeight);

async function loadOlder() {
  if (!state.olderNext || state.loadingOlder) return;
  state.loadingOlder = true;
  const ticket = state.roomTicket;
  try {
    const page = await api("GET", state.olderNext);
    if (ticket !== state.roomTicket) return;
    const fromBottom = scroller().scrollHeight - scroller().scrollTop;
    for (const message of page.results) showMessage(message);
    scroller().scrollTop = scroller().scrollHeight - fromBottom; // keep the view still
    state.olderNext = page.next;
    show("load-older", Boolean(page.next));
  } catch (error) {
    $("room-error").textContent = error.message;
  } finally {
    if (ticket === state.roomTicket) state.loadingOlder = false;
  }
}

// Fetches everything after lastSeq, oldest first, following next: after a reconnect,
// or when a message.new skips a seq (API.md, Guarantees).
async function catchUp() {
  if (state.catchingUp) {
    state.catchUpAgain = true;
    return;
  }
  state.catchingUp = true;
  const ticket = state.roomTicket;
  try {
    do {
      state.catchUpAgain = false;
      let url = `${API}/rooms/${state.room.id}/messages/?after=${state.lastSeq}&limit=100`;
      while (url) {
        const page = await api("GET", url);
        if (ticket !== state.roomTicket) return;
        for (const message of page.results) receive(message);
        url = page.next;
      }
    } while (state.catchUpAgain);
  } catch (error) {
    if (ticket === state.roomTicket) $("room-error").textContent = error.message;
  } finally {
    if (ticket === state.roomTicket) state.catchingUp = false;
  }
}

// Messages -------------------------------------------------------------------------

const button = (className, text, onclick) => el("button", { type: "button", className, textContent: text, onclick });

function messageNode(message) {
  const mine = message.author.id === state.auth.user.id;
  const live = !message.is_deleted;
  const canDelete = live && (mine || state.room?.role === "owner");
  const actions = el(
    "span",
    { className: "actions" },
    mine && live ? button("edit", "Edit", () => startEditing(message)) : null,
    canDelete ? button("delete", "Delete", (event) => deleteMessage(event.target, message)) : null,
  );
  const classes = ["message", live ? "" : "deleted", mine ? "mine" : ""].join(" ").trim();
  const time = new Date(message.created_at).toLocaleTimeString();
  return el(
    "li",
    { className: classes, dataset: { seq: message.seq, id: message.id } },
    el(
      "div",
      { className: "meta" },
      el("span", { className: "author", textContent: nameOf(message.author) }),
      el("time", { dateTime: message.created_at, textContent: time }),
      message.edited_at && live ? el("span", { className: "edited", textContent: "(edited)" }) : null,
      actions,
    ),
    el("div", { className: "body", textContent: live ? message.body : "message deleted" }),
  );
}

// Shows a message in seq order, or replaces the one with its seq.
function showMessage(message) {
  const node = messageNode(message);
  const known = state.messages.get(message.seq);
  if (known) {
    known.node.replaceWith(node);
  } else {
    // Usually the newest: look from the end for the first message after this one.
    let next = null;
    for (let n = $("messages").lastElementChild; n && Number(n.dataset.seq) > message.seq;) {
      next = n;
      n = n.previousElementSibling;
    }
    $("messages").insertBefore(node, next);
  }
  state.messages.set(message.seq, { message, node });
}

// A message from the socket or a catch-up page: in order, once, settling our own sends.
function receive(message) {
  const stick = nearBottom();
  if (message.author.id === state.auth.user.id && message.client_id) settle(message.client_id);
  showMessage(message);
  stopShowingTyping(message.author.id);
  if (message.seq > state.lastSeq + 1) catchUp(); // a gap: fetch what is missing
  while (state.messages.has(state.lastSeq + 1)) state.lastSeq += 1;
  if (stick || message.author.id === state.auth.user.id) scrollToBottom();
  markRead();
}

function updated(message) {
  if (state.messages.has(message.seq)) showMessage(message);
}

function deleted(messageId) {
  for (const { message } of state.messages.values()) {
    if (message.id === messageId) showMessage({ ...message, body: "", is_deleted: true });
  }
}

function markRead() {
  if (document.visibilityState !== "visible" || state.lastSeq <= state.lastReadSent) return;
  if (send({ type: "read", seq: state.lastSeq })) {
    state.lastReadSent = state.lastSeq;
    const listed = state.rooms.get(state.room.id);
    if (listed) listed.unread_count = 0;
    renderRooms();
  }
}

function newClientId() {
  // crypto.randomUUID needs a secure context; getRandomValues works on plain http too.
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function sendMessage(body) {
  const clientId = newClientId();
  const node = el(
    "li",
    { className: "message pending" },
    el("div", { className: "meta" }, el("span", { className: "author", textContent: nameOf(state.auth.user) }), "sending…"),
    el("div", { className: "body", textContent: body }),
  );
  $("outbox").append(node);
  state.outbox.set(clientId, { body, node });
  send({ type: "message.send", body, client_id: clientId }); // or on the next hello
  scrollToBottom();
}

function settle(clientId) {
  state.outbox.get(clientId)?.node.remove();
  state.outbox.delete(clientId);
}

function startEditing(message) {
  state.editing = message;
  $("message-input").value = message.body;
  show("editing", true);
  $("message-input").focus();
}

function stopEditing() {
  if (state.editing) $("message-input").value = "";
  state.editing = null;
  show("editing", false);
}

async function submitMessage(event) {
  event.preventDefault();
  const body = $("message-input").value;
  if (!body.trim()) return;
  try {
    if (state.editing) {
      updated(await api("PATCH", `${API}/messages/${state.editing.id}/`, { body }));
      stopEditing();
    } else {
      sendMessage(body);
      $("message-input").value = "";
      stopTyping();
    }
  } catch (error) {
    $("room-error").textContent = error.message;
  }
}

async function deleteMessage(button, message) {
  if (!button.dataset.armed) {
    // A second click within 3 s deletes: no modal dialog.
    button.dataset.armed = "yes";
    button.textContent = "Really delete?";
    setTimeout(() => { delete button.dataset.armed; button.textContent = "Delete"; }, 3000);
    return;
  }
  try {
    await api("DELETE", `${API}/messages/${message.id}/`);
    deleted(message.id);
  } catch (error) {
    $("room-error").textContent = error.message;
  }
}

// Typing ---------------------------------------------------------------------------

function typed() {
  if (!$("message-input").value || state.editing) return stopTyping();
  if (Date.now() - state.typingSentAt > 2000 && send({ type: "typing", is_typing: true })) {
    state.typingSentAt = Date.now();
  }
  clearTimeout(state.typingStop);
  state.typingStop = setTimeout(stopTyping, 3000);
}

function stopTyping() {
  clearTimeout(state.typingStop);
  if (state.typingSentAt) send({ type: "typing", is_typing: false });
  state.typingSentAt = 0;
}

function showTyping(user, isTyping) {
  stopShowingTyping(user.id);
  if (isTyping) {
    const timer = setTimeout(() => stopShowingTyping(user.id), 6000); // a lost "false"
    state.typing.set(user.id, { user, timer });
  }
  renderTyping();
}

function stopShowingTyping(userId) {
  clearTimeout(state.typing.get(userId)?.timer);
  if (state.typing.delete(userId)) renderTyping();
}

function renderTyping() {
  const names = [...state.typing.values()].map(({ user }) => nameOf(user));
  $("typing").textContent = names.length ? `${names.join(", ")} ${names.length > 1 ? "are" : "is"} typing…` : "";
}

// The socket -----------------------------------------------------------------------

function send(frame) {
  if (state.socket?.readyState !== WebSocket.OPEN) return false;
  state.socket.send(JSON.stringify(frame));
  return true;
}

function connect() {
  clearTimeout(state.reconnectTimer);
  if (!state.room || !state.auth) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const token = state.auth.access; // in the query string: browsers cannot set headers here
  const query = `?token=${encodeURIComponent(token)}`;
  const socket = new WebSocket(`${scheme}://${location.host}/ws/rooms/${state.room.id}/${query}`);
  state.socket = socket;
  state.lastFrameAt = Date.now();
  setConnection("connecting…");
  socket.onmessage = (event) => state.socket === socket && onFrame(JSON.parse(event.data));
  socket.onclose = (event) => state.socket === socket && onClosed(event.code, token);
}

function dropSocket(reconnect) {
  const socket = state.socket;
  state.socket = null;
  clearTimeout(state.reconnectTimer);
  socket?.close();
  if (reconnect) scheduleReconnect();
}

function scheduleReconnect() {
  const delay = Math.min(30000, 500 * 2 ** state.attempt) * (0.5 + Math.random() / 2);
  state.attempt += 1;
  setConnection(`offline, retrying in ${Math.ceil(delay / 1000)} s`, "offline");
  state.reconnectTimer = setTimeout(connect, delay);
}

async function onClosed(code, usedToken) {
  state.socket = null;
  if (code === 4403) {
    setConnection("not a member", "offline");
    state.room.is_member = false;
    renderRoom();
    return;
  }
  if (code === 4404) {
    setConnection("gone", "offline");
    $("room-error").textContent = "This room no longer exists.";
    loadRooms();
    return;
  }
  if (code === 4401) {
    // The server closes a socket when its token expires. With a newer token (refreshed
    // on schedule) reconnect at once; with the same one, refresh it first.
    const ticket = state.roomTicket;
    try {
      if (state.auth?.access === usedToken) await refreshTokens();
    } catch {
      if (!state.auth) return; // logged out: the login screen is showing
    }
    if (ticket !== state.roomTicket) return;
    if (state.attempt === 0) {
      state.attempt = 1;
      connect();
      return;
    }
  }
  scheduleReconnect();
}

function onFrame(frame) {
  state.lastFrameAt = Date.now();
  switch (frame.type) {
    case "hello":
      state.attempt = 0;
      setConnection("online", "online");
      state.room = frame.room;
      state.online = new Map(frame.online.map((user) => [user.id, user]));
      renderRoom();
      if (frame.last_seq > state.lastSeq) catchUp();
      for (const [clientId, { body }] of state.outbox) send({ type: "message.send", body, client_id: clientId });
      markRead();
      break;
    case "message.ack":
    case "message.new":
      receive(frame.message);
      break;
    case "message.updated":
      updated(frame.message);
      break;
    case "message.deleted":
      deleted(frame.message_id);
      break;
    case "typing":
      showTyping(frame.user, frame.is_typing);
      break;
    case "presence":
      if (frame.status === "online") {
        state.online.set(frame.user.id, frame.user);
      } else {
        state.online.delete(frame.user.id);
        stopShowingTyping(frame.user.id);
      }
      renderOnline();
      break;
    case "room.updated":
      state.room = frame.room;
      renderRoom();
      break;
    case "room.deleted":
      $("room-error").textContent = "This room was deleted.";
      break;
    case "error":
      onFrameError(frame);
      break;
  }
}

function onFrameError(frame) {
  const pending = frame.client_id ? state.outbox.get(frame.client_id) : undefined;
  if (pending && frame.code === "validation_error") settle(frame.client_id);
  else if (pending) {
    // Rate limited or a passing server failure: the same client_id again, later.
    const resend = () => state.outbox.has(frame.client_id)
      && send({ type: "message.send", body: pending.body, client_id: frame.client_id });
    setTimeout(resend, (frame.retry_after ?? 2) * 1000);
    if (frame.code === "rate_limited") return;
  }
  $("room-error").textContent = frame.detail;
}

// A socket that stopped answering (a dead network path) is dropped and reopened.
setInterval(() => {
  if (state.socket?.readyState !== WebSocket.OPEN) return;
  if (Date.now() - state.lastFrameAt > 45000) dropSocket(true);
  else send({ type: "ping" });
}, 20000);

// Wiring ---------------------------------------------------------------------------

function start() {
  $("login-form").addEventListener("submit", (event) => { event.preventDefault(); submitAuth(false); });
  $("register-button").addEventListener("click", () => $("login-form").reportValidity() && submitAuth(true));
  $("logout-button").addEventListener("click", logout);
  let searchTimer = 0;
  $("room-search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(loadRooms, 250); });
  $("joined-only").addEventListener("change", () => loadRooms());
  $("more-rooms").addEventListener("click", () => loadRooms(true));
  $("create-room-form").addEventListener("submit", createRoom);
  $("join-button").addEventListener("click", joinRoom);
  $("back-button").addEventListener("click", () => $("chat-view").classList.remove("room-open"));
  $("load-older").addEventListener("click", loadOlder);
  $("scroller").addEventListener("scroll", () => scroller().scrollTop < 60 && loadOlder());
  $("composer").addEventListener("submit", submitMessage);
  $("cancel-edit").addEventListener("click", stopEditing);
  $("message-input").addEventListener("input", typed);
  $("message-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); $("composer").requestSubmit(); }
    if (event.key === "Escape") stopEditing();
  });
  document.addEventListener("visibilitychange", markRead);
  window.addEventListener("online", () => state.room && !state.socket && connect());
  setInterval(() => loadRooms(), 20000); // unread counts of the other rooms

  const saved = sessionStorage.getItem(AUTH_KEY);
  if (!saved) return showLogin("");
  state.auth = JSON.parse(saved);
  scheduleRefresh();
  showChat();
}

start();
