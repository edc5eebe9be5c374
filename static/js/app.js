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
// Close codes the ws extension retries by itself, and ours for "Redis is down, try again later"
// (core/consumers.py), which it does not.
const RETRIED_BY_THE_WS_EXTENSION = [1006, 1011, 1012, 1013];
const CLOSE_TRY_AGAIN_LATER = 4013;
let retries = 0;
// Retry soon, then back off to at most ~10 s (the default waits up to 64 s, long for a person).
const reconnectDelay = (retryCount) => Math.min(1000 * 2 ** retryCount, 10000) * (0.5 + Math.random() / 2);
htmx.config.wsReconnectDelay = reconnectDelay;

const setSocketState = (state, text, title) => {
  const status = document.getElementById("ws-status");
  if (!status) return;
  status.dataset.state = state;
  status.textContent = text;
  status.title = title;
};
const socketLost = (event) => {
  const code = event.detail.event?.code; // none on htmx:wsError, which htmx:wsClose follows
  const retried = code === undefined || RETRIED_BY_THE_WS_EXTENSION.includes(code);
  if (!retried && code !== CLOSE_TRY_AGAIN_LATER) {
    setSocketState("closed", "offline", "Live updates stopped. Reload the page (or log in again).");
    return;
  }
  setSocketState("reconnecting", "reconnecting…", "Updates are paused until the connection is back.");
  if (code === CLOSE_TRY_AGAIN_LATER && document.body.contains(event.target)) {
    setTimeout(() => event.detail.socketWrapper.reconnect(), reconnectDelay(retries++));
  }
};
document.addEventListener("htmx:wsClose", socketLost);
document.addEventListener("htmx:wsError", socketLost);
document.addEventListener("htmx:wsAfterMessage", (event) => {
  const status = document.getElementById("ws-status");
  if (!status || status.dataset.state !== "open" || status.dataset.seen) return;
  status.dataset.seen = "1"; // this marker is new: a socket (re)connected just now
  retries = 0;
  // A page may hold several sockets (the grid: notifications and the sheet's): only the same
  // socket opening again is a reconnect, not a second socket opening for the first time.
  const socket = event.target; // the element with ws-connect
  if (socket.dataset.wsWasLive) htmx.trigger(document.body, "ws:reconnected");
  socket.dataset.wsWasLive = "1";
});
