// The chat page's one script: streams a pending answer from its event stream (EventSource),
// shows the text as it comes (plain text; the server renders the finished answer as sanitized
// markdown), Stop (button or Esc) closes the stream, which stops the model. Enter sends,
// Shift+Enter starts a new line. Everything else is htmx forms.
(function () {
  "use strict";
  let source = null;
  let current = null;

  function csrfHeaders() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}"); } catch (e) { return {}; }
  }

  function stopButton() { return document.getElementById("chat-stop"); }
  function sendButton() { return document.getElementById("chat-send"); }

  function setStreaming(on) {
    const stop = stopButton();
    const send = sendButton();
    if (stop) stop.hidden = !on;
    if (send) send.disabled = on;
    document.body.classList.toggle("chat-streaming", on);
  }

  function refresh(url, attempt) {
    window.htmx.ajax("GET", url, { target: "#chat-thread", swap: "outerHTML" }).then(function () {
      // The server may still be saving a stopped answer: look again shortly.
      const thread = document.getElementById("chat-thread");
      if (thread && thread.querySelector(".msg-streaming") && !thread.querySelector("[data-stream-url]") && attempt < 20) {
        setTimeout(function () { refresh(url, attempt + 1); }, 250);
      }
    });
  }

  function finish() {
    if (source) { source.close(); source = null; }
    setStreaming(false);
    if (current) {
      const url = current.dataset.fragmentUrl;
      current = null;
      refresh(url, 0);
    }
  }

  function start(el) {
    if (source || !el.dataset.streamUrl) return;
    current = el;
    const live = el.querySelector(".msg-live");
    const url = el.dataset.streamUrl;
    delete el.dataset.streamUrl; // one stream per answer
    setStreaming(true);
    source = new EventSource(url);
    source.addEventListener("delta", function (e) {
      const data = JSON.parse(e.data);
      if (live) live.textContent += data.t;
    });
    source.addEventListener("done", finish);
    source.onerror = finish; // the server went away: show what was stored
  }

  function stop() {
    if (!current) return;
    const url = current.dataset.stopUrl;
    if (source) { source.close(); source = null; }
    fetch(url, { method: "POST", headers: csrfHeaders(), credentials: "same-origin" }).finally(finish);
  }

  function scan(root) {
    const pending = (root.querySelector ? root : document).querySelector("[data-stream-url]");
    if (pending) start(pending);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const stopBtn = stopButton();
    if (stopBtn) stopBtn.addEventListener("click", stop);
    const input = document.getElementById("chat-input");
    const form = document.getElementById("chat-form");
    if (input && form) {
      input.addEventListener("keydown", function (e) {
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
          e.preventDefault();
          if (!source && input.value.trim()) form.requestSubmit();
        }
      });
      form.addEventListener("htmx:afterRequest", function (e) {
        if (e.detail.successful && e.detail.elt === form) { input.value = ""; }
      });
      input.focus();
    }
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && source) { e.preventDefault(); stop(); }
    });
    scan(document);
  });
  document.addEventListener("htmx:afterSwap", function () { scan(document); });
  document.addEventListener("htmx:beforeRequest", function () {
    const errors = document.getElementById("chat-errors");
    if (errors) errors.textContent = "";
  });
})();
