// Gương Sáng web chat: renders what the server sends as DOM text (never as HTML),
// sends text, button presses and photos, and reconnects when the connection drops.
"use strict";

(() => {
  const persona = new URLSearchParams(location.search).get("as") || "citizen";
  const log = document.getElementById("log");
  const status = document.getElementById("status");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const photo = document.getElementById("photo");
  let ui = {};
  let socket = null;
  let retryDelay = 500;
  let queue = [];

  const t = (key, fallback) => ui[key] || fallback;

  function setStatus(text) { status.textContent = text || ""; }

  function scrollToEnd() { log.lastElementChild?.scrollIntoView({ block: "end" }); }

  function renderSegments(container, segments) {
    for (const segment of segments || []) {
      const span = document.createElement("span");
      span.textContent = segment.text;
      for (const style of segment.styles || []) span.classList.add(style);
      container.append(span);
    }
  }

  function renderButtons(item, rows) {
    if (!rows || rows.length === 0) return;
    const box = document.createElement("div");
    box.className = "buttons";
    for (const row of rows) {
      const line = document.createElement("div");
      line.className = "row";
      for (const button of row) {
        const element = document.createElement("button");
        element.type = "button";
        element.textContent = button.label;
        element.addEventListener("click", () => {
          for (const other of box.querySelectorAll("button")) other.disabled = true;
          send({ type: "button", payload: button.payload, label: button.label });
        });
        line.append(element);
      }
      box.append(line);
    }
    item.append(box);
  }

  function build(message) {
    const item = document.createElement("li");
    item.className = `msg ${message.from}`;
    if (message.id) item.dataset.id = String(message.id);
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = message.from === "bot" ? t("bot", "Gương Sáng") : t("you", "Bạn");
    item.append(who);
    renderSegments(item, message.segments);
    for (const url of message.photos || []) {
      const image = document.createElement("img");
      image.src = url;
      image.alt = "";
      item.append(image);
    }
    renderButtons(item, message.buttons);
    return item;
  }

  function render(message) {
    log.append(build(message));
    scrollToEnd();
  }

  function replace(message) {
    const old = log.querySelector(`li[data-id="${CSS.escape(String(message.id))}"]`);
    if (old) old.replaceWith(build(message));
  }

  function applyUi(hello) {
    ui = hello.ui || {};
    document.getElementById("title").textContent = t("title", "Gương Sáng");
    document.title = t("title", "Gương Sáng");
    input.placeholder = t("placeholder", "");
    document.getElementById("send").textContent = t("send", "Gửi");
    document.getElementById("photo-text").textContent = t("photo", "Gửi ảnh");
    document.getElementById("photo-label").title = t("photo", "Gửi ảnh");
    document.getElementById("text-label").textContent = t("placeholder", "Tin nhắn");
    const nav = document.getElementById("personas");
    if (hello.personas && hello.personas.length) {
      document.getElementById("personas-label").textContent = t("personas", "");
      const list = nav.querySelector("ul");
      list.replaceChildren();
      for (const p of hello.personas) {
        const li = document.createElement("li");
        const a = document.createElement("a");
        a.href = `?as=${encodeURIComponent(p.key)}`;
        a.textContent = p.label;
        if (p.key === hello.persona) a.setAttribute("aria-current", "page");
        li.append(a);
        list.append(li);
      }
      nav.hidden = false;
    }
  }

  function onFrame(frame) {
    if (frame.type === "hello") {
      applyUi(frame);
      log.replaceChildren();
      for (const message of frame.messages) render(message);
      if (frame.messages.length === 0) send({ type: "text", text: "/start" });
    } else if (frame.type === "message") {
      render(frame.message);
      if (frame.prefill) {
        input.value = frame.prefill;
        input.focus();
      }
    } else if (frame.type === "edit") {
      replace(frame.message);
    } else if (frame.type === "throttled") {
      setStatus(t("throttled", ""));
    }
  }

  function connect() {
    setStatus(t("connecting", "Đang kết nối…"));
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/chat/ws?as=${encodeURIComponent(persona)}`);
    socket.addEventListener("open", () => {
      retryDelay = 500;
      setStatus("");
      for (const frame of queue.splice(0)) socket.send(JSON.stringify(frame));
    });
    socket.addEventListener("message", (event) => onFrame(JSON.parse(event.data)));
    socket.addEventListener("close", () => {
      setStatus(t("offline", "Mất kết nối. Đang kết nối lại…"));
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
    });
  }

  function send(frame) {
    if (frame.type === "text" || frame.type === "button") {
      render({ from: "user", segments: [{ text: frame.label || frame.text, styles: [] }] });
    }
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
    else queue.push(frame);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send({ type: "text", text });
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  photo.addEventListener("change", async () => {
    const file = photo.files[0];
    photo.value = "";
    if (!file) return;
    render({ from: "user", segments: [{ text: `📷 ${file.name}`, styles: [] }] });
    setStatus(t("uploading", "Đang gửi ảnh…"));
    const body = new FormData();
    body.append("photo", file, file.name);
    try {
      const response = await fetch(`/chat/upload?as=${encodeURIComponent(persona)}`, {
        method: "POST", body, credentials: "same-origin",
      });
      setStatus(response.ok ? "" : t("upload_failed", ""));
    } catch {
      setStatus(t("upload_failed", "Không gửi được ảnh."));
    }
  });

  connect();
})();
