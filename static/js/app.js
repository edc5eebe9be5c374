// Toasts fade out on their own after a few seconds; errors stay until clicked.
document.addEventListener("click", (event) => {
  const toast = event.target.closest(".toast");
  if (toast) toast.remove();
});
const expireToasts = () => {
  document.querySelectorAll(".toast:not(.toast-error):not([data-timer])").forEach((toast) => {
    toast.dataset.timer = "1";
    setTimeout(() => toast.remove(), 6000);
  });
};
document.addEventListener("DOMContentLoaded", expireToasts);
document.addEventListener("htmx:afterSettle", expireToasts);
document.addEventListener("htmx:wsAfterMessage", expireToasts);

// The live indicator (#ws-status in the top bar). Each consumer sends a fresh one with state
// "open" when its socket is ready; a closed socket turns it to "reconnecting…" until the next one
// arrives. Pushes sent in between are lost, so a reconnect dispatches `ws:reconnected` on <body>
// and live regions re-fetch themselves (hx-trigger="ws:reconnected from:body").
let socketWasLive = false;
const setSocketState = (state, text, title) => {
  const status = document.getElementById("ws-status");
  if (!status) return;
  status.dataset.state = state;
  status.textContent = text;
  status.title = title;
};
const socketLost = (event) => {
  const code = event.detail.event?.code;
  if (code === 4401 || code === 4403) {
    // Refused for good (logged out, no access): the ws extension does not retry these.
    setSocketState("closed", "offline", "Live updates stopped. Reload the page or log in again.");
  } else {
    setSocketState("reconnecting", "reconnecting…", "Updates are paused until the connection is back.");
  }
};
document.addEventListener("htmx:wsClose", socketLost);
document.addEventListener("htmx:wsError", socketLost);
document.addEventListener("htmx:wsAfterMessage", () => {
  const status = document.getElementById("ws-status");
  if (!status || status.dataset.state !== "open" || status.dataset.seen) return;
  status.dataset.seen = "1"; // this marker is new: the socket (re)connected just now
  if (socketWasLive) htmx.trigger(document.body, "ws:reconnected");
  socketWasLive = true;
});
// Retry soon, then back off to at most ~10 s (the default waits up to 64 s, long for a person).
htmx.config.wsReconnectDelay = (retryCount) =>
  Math.min(1000 * 2 ** retryCount, 10000) * (0.5 + Math.random() / 2);
