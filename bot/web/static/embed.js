// Embed the Gương Sáng web chat in a portal page:
//   <script src="https://BOT-HOST/chat/embed.js" defer></script>
// The portal's origin must be listed in the bot's WEB_ALLOWED_ORIGINS.
"use strict";

(() => {
  const origin = new URL(document.currentScript.src).origin;
  const button = document.createElement("button");
  button.type = "button";
  const svg = "http://www.w3.org/2000/svg";
  const icon = document.createElementNS(svg, "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("aria-hidden", "true");
  icon.style.cssText = "width:1.25em;height:1.25em;vertical-align:-.25em;margin-right:.4em;" +
    "fill:none;stroke:currentColor;stroke-width:2;stroke-linejoin:round";
  const bubble = document.createElementNS(svg, "path");
  bubble.setAttribute("d", "M4 5h16v11H9l-5 4z");
  icon.append(bubble);
  button.append(icon, "Gương Sáng");
  button.setAttribute("aria-expanded", "false");
  button.style.cssText = "position:fixed;right:1rem;bottom:1rem;z-index:2147483000;padding:.7rem 1rem;" +
    "border:0;border-radius:2rem;background:#b3261e;color:#fff;font:600 16px system-ui,sans-serif;cursor:pointer";
  const frame = document.createElement("iframe");
  frame.src = `${origin}/chat`;
  frame.title = "Gương Sáng";
  frame.hidden = true;
  frame.style.cssText = "position:fixed;right:1rem;bottom:4.5rem;z-index:2147483000;width:min(24rem,92vw);" +
    "height:min(36rem,75vh);border:1px solid #c9ced6;border-radius:.75rem;background:#fff";
  button.addEventListener("click", () => {
    frame.hidden = !frame.hidden;
    button.setAttribute("aria-expanded", String(!frame.hidden));
  });
  document.body.append(frame, button);
})();
