// Gương Sáng web chat: renders what the server sends as DOM text (never as HTML),
// sends text, button presses and photos (previewed, then scaled down in the browser),
// and reconnects when the connection drops.
"use strict";

(() => {
  const persona = new URLSearchParams(location.search).get("as") || "citizen";
  const log = document.getElementById("log");
  const status = document.getElementById("status");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const photo = document.getElementById("photo");
  const tray = document.getElementById("tray");
  const previews = document.getElementById("previews");
  const MAX_EDGE = 2560;
  const TAB_REPLACED = 4001; // the server closed this tab: the chat is open in newer ones
  const JPEG_QUALITY = 0.85;
  const KEEP_BELOW_BYTES = 1024 * 1024;
  let ui = {};
  let socket = null;
  let retryDelay = 500;
  let queue = [];
  let chosen = [];

  const t = (key, fallback) => ui[key] || fallback;

  function setStatus(text) { status.textContent = text || ""; }

  function scrollToEnd() { log.lastElementChild?.scrollIntoView({ block: "end" }); }

  // A report code (GS-2026-000001) never breaks at its hyphens.
  const REPORT_CODE = /(GS-\d{4}-\d{6})/;

  function renderSegments(container, segments) {
    for (const segment of segments || []) {
      const span = document.createElement("span");
      for (const [index, part] of segment.text.split(REPORT_CODE).entries()) {
        if (index % 2 === 0) {
          span.append(part);
        } else {
          const code = document.createElement("span");
          code.className = "nowrap";
          code.textContent = part;
          span.append(code);
        }
      }
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
    const photos = message.photos || [];
    photos.forEach((url, index) => {
      const image = document.createElement("img");
      image.src = url;
      image.alt = `${t("photo_alt", "Ảnh")} ${index + 1}/${photos.length}`;
      item.append(image);
    });
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
    document.getElementById("tray-title").textContent = t("tray", "Ảnh sắp gửi");
    document.getElementById("tray-cancel").textContent = t("cancel", "Huỷ");
    showPersonas(hello.personas || [], hello.persona);
    showTray();
  }

  function showPersonas(personas, current) {
    const personaForm = document.getElementById("personas");
    if (personas.length === 0) return;
    document.getElementById("personas-label").textContent = t("personas", "Vai");
    document.getElementById("persona-go").textContent = t("switch", "Đổi vai");
    const select = document.getElementById("persona");
    select.replaceChildren(...personas.map((p) => new Option(p.label, p.key, false, p.key === current)));
    personaForm.hidden = false;
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
    } else if (frame.type === "unavailable") {
      setStatus(t("unavailable", ""));
      if (frame.draft && !input.value) input.value = frame.draft;
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
    socket.addEventListener("close", (event) => {
      if (event.code === TAB_REPLACED) {
        setStatus(t("replaced", ""));
        return;
      }
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

  // ---- photos: choose several, preview, remove, then send them scaled down ----

  function showTray() {
    for (const entry of chosen) URL.revokeObjectURL(entry.url);
    chosen = chosen.filter((entry) => !entry.removed);
    previews.replaceChildren(...chosen.map((entry, index) => {
      entry.url = URL.createObjectURL(entry.file);
      const item = document.createElement("li");
      const image = document.createElement("img");
      image.src = entry.url;
      image.alt = `${t("photo_alt", "Ảnh")} ${index + 1}/${chosen.length}`;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.setAttribute("aria-label", `${t("remove", "Bỏ ảnh")} ${index + 1}`);
      remove.append(document.getElementById("icon-remove").content.cloneNode(true));
      remove.addEventListener("click", () => {
        entry.removed = true;
        showTray();
        (previews.querySelector("button") || photo).focus();
      });
      item.append(image, remove);
      return item;
    }));
    document.getElementById("tray-send").textContent =
      t("send_photos", "Gửi ảnh ({count})").replace("{count}", String(chosen.length));
    tray.hidden = chosen.length === 0;
  }

  function discardChosen() {
    for (const entry of chosen) entry.removed = true;
    showTray();
  }

  async function scaledDown(file) {
    if (!file.type.startsWith("image/")) return file;
    let bitmap;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch {
      return file;  // not decodable here: the server says what is wrong with it
    }
    const scale = Math.min(1, MAX_EDGE / Math.max(bitmap.width, bitmap.height));
    if (scale === 1 && file.size <= KEEP_BELOW_BYTES) {
      bitmap.close();
      return file;
    }
    const canvas = new OffscreenCanvas(Math.round(bitmap.width * scale), Math.round(bitmap.height * scale));
    const context = canvas.getContext("2d");
    context.fillStyle = "#ffffff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    const blob = await canvas.convertToBlob({ type: "image/jpeg", quality: JPEG_QUALITY });
    if (blob.size >= file.size) return file;
    return new File([blob], file.name.replace(/\.[^.]*$/, "") + ".jpg", { type: "image/jpeg" });
  }

  async function upload(file) {
    const scaled = await scaledDown(file);
    render({ from: "user", segments: [{ text: `📷 ${scaled.name}`, styles: [] }] });
    const body = new FormData();
    body.append("photo", scaled, scaled.name);
    const response = await fetch(`/chat/upload?as=${encodeURIComponent(persona)}`, {
      method: "POST", body, credentials: "same-origin",
    });
    return response.ok;
  }

  async function sendChosen() {
    const files = chosen.map((entry) => entry.file);
    discardChosen();
    input.focus();
    let failed = false;
    for (const [index, file] of files.entries()) {
      setStatus(`${t("uploading", "Đang gửi ảnh…")} ${index + 1}/${files.length}`);
      try {
        failed = !(await upload(file)) || failed;
      } catch {
        failed = true;
      }
    }
    setStatus(failed ? t("upload_failed", "Không gửi được ảnh.") : "");
  }

  photo.addEventListener("change", () => {
    chosen.push(...Array.from(photo.files, (file) => ({ file, url: "", removed: false })));
    photo.value = "";
    showTray();
    document.getElementById("tray-send").focus();
  });

  document.getElementById("tray-send").addEventListener("click", sendChosen);
  document.getElementById("tray-cancel").addEventListener("click", () => {
    discardChosen();
    photo.focus();
  });

  connect();
})();
