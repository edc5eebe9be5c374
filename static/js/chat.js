// The conversation page: sends messages, follows the reply over the session's WebSocket and
// merges every fragment the server sends (POST answers and socket pushes alike) by element id.
//
// Fragments can arrive in any order (an HTTP answer and a socket push race), so a message is
// only replaced by a rendering at least as new (data-version, the message's updated_at), and a
// streamed reply only by a longer one (data-length). The server renders and sanitises all HTML.
(() => {
  const chat = document.getElementById("chat");
  if (!chat) return;
  const messages = () => document.getElementById("messages");
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"];

  const nearBottom = () => window.innerHeight + window.scrollY >= document.body.scrollHeight - 120;
  const toBottom = () => window.scrollTo(0, document.body.scrollHeight);

  const newer = (incoming, current) => {
    const a = parseFloat(incoming.dataset.version || "0");
    const b = parseFloat(current.dataset.version || "0");
    return a >= b;
  };

  const merge = (html) => {
    const follow = nearBottom();
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    for (const element of Array.from(template.content.children)) {
      const current = element.id && document.getElementById(element.id);
      if (current) {
        if (element.dataset.version && !newer(element, current)) continue;
        current.replaceWith(element);
      } else if (element.classList.contains("msg")) {
        document.getElementById("no-messages")?.remove();
        // Keep seq order, whichever fragment arrives first.
        const seq = parseInt(element.dataset.seq, 10);
        const after = Array.from(messages().children).find((m) => parseInt(m.dataset.seq, 10) > seq);
        messages().insertBefore(element, after || null);
      } else if (element.id) {
        document.body.appendChild(element);
      }
    }
    if (window.htmx) htmx.process(messages());
    if (follow) toBottom();
  };

  const delta = (frame) => {
    const body = document.getElementById(`m-${frame.id}-body`);
    const article = document.getElementById(`m-${frame.id}`);
    if (!body || !article) return;
    // A finished message is already rendered whole; a shorter text is an older push.
    if (!["pending", "streaming"].includes(article.dataset.status)) return;
    if (frame.length < parseInt(body.dataset.length || "0", 10)) return;
    if (article.dataset.status === "pending") {
      article.dataset.status = "streaming"; // the first words: no longer thinking but writing
      const label = article.querySelector(".working [aria-busy]");
      if (label) label.textContent = "Writing…";
    }
    const follow = nearBottom();
    body.innerHTML = frame.html;
    body.dataset.length = frame.length;
    if (follow) toBottom();
  };

  // A request that failed without a fragment to show (network down, server error) says so
  // next to what was clicked, instead of failing silently.
  const problem = (near, text) => {
    document.getElementById("chat-problem")?.remove();
    const note = document.createElement("p");
    note.id = "chat-problem";
    note.className = "form-error";
    note.setAttribute("role", "alert");
    note.textContent = text;
    near.insertAdjacentElement("afterend", note);
  };

  const post = async (url, form, near) => {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        body: form || new URLSearchParams(), // an empty multipart body is a 400 in Django
        headers: { "X-CSRFToken": csrf, "HX-Request": "true" },
        credentials: "same-origin",
      });
    } catch (error) {
      problem(near, "The server cannot be reached. Check the connection and try again.");
      return { ok: false };
    }
    const text = await response.text();
    const fragment = text.trim().startsWith("<") && (response.ok || response.status === 400);
    if (fragment) merge(text);
    else if (!response.ok) problem(near, `That did not go through (error ${response.status}). Try again.`);
    if (response.ok) document.getElementById("chat-problem")?.remove();
    return response;
  };

  // Sending: the question and the pending reply come back at once and are shown.
  const composer = () => document.getElementById("composer");
  document.addEventListener("submit", async (event) => {
    if (event.target.id !== "composer") return;
    event.preventDefault();
    const form = event.target;
    const text = form.elements.text.value;
    if (!text.trim()) return;
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const response = await post(form.action, new FormData(form), form);
      if (response.ok) {
        composer().elements.text.value = "";
        toBottom();
      }
    } finally {
      const again = composer().querySelector("button[type=submit]");
      again.disabled = false;
      composer().elements.text.focus();
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.target.name === "text" && event.target.form?.id === "composer" && event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      event.target.form.requestSubmit();
    }
  });

  // Stop, Retry, Apply, Discard.
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-post]");
    if (!button || !chat.contains(button)) return;
    event.preventDefault();
    button.disabled = true;
    try {
      await post(button.dataset.post, null, button.parentElement);
    } finally {
      button.disabled = false;
    }
  });

  // The socket: reconnects with backoff; after a reconnect the conversation is re-read, since
  // pushes sent while it was down are lost.
  let retries = 0;
  let connectedBefore = false;
  const refresh = async () => {
    const response = await fetch(chat.dataset.refresh, {
      headers: { "HX-Request": "true", "HX-Target": "messages" },
      credentials: "same-origin",
    });
    if (!response.ok) return;
    const template = document.createElement("template");
    template.innerHTML = (await response.text()).trim();
    const list = template.content.getElementById("messages");
    if (list) merge(Array.from(list.children).map((m) => m.outerHTML).join(""));
  };
  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${chat.dataset.socket}`);
    socket.addEventListener("message", (event) => {
      const data = event.data;
      if (data.startsWith("{")) {
        const frame = JSON.parse(data);
        if (frame.type === "delta") delta(frame);
        else if (frame.type === "html") merge(frame.html);
        return;
      }
      merge(data); // the "live" marker
      chat.dataset.live = "1";
      retries = 0;
      if (connectedBefore) refresh();
      connectedBefore = true;
    });
    socket.addEventListener("close", (event) => {
      chat.dataset.live = "";
      if (event.code === 4404 || event.code === 4401) return; // not this person's chat
      const status = document.getElementById("ws-status");
      if (status) { status.dataset.state = "reconnecting"; status.textContent = "reconnecting…"; }
      const wait = Math.min(1000 * 2 ** retries++, 10000) * (0.5 + Math.random() / 2);
      setTimeout(connect, wait);
    });
  };
  connect();
  toBottom();
})();
