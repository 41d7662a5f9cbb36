/* The annotator page: keyboard and mouse ranking, time on task, htmx error display.
   The server validates everything; this only builds the payload and gives quick feedback. */
(function () {
  "use strict";

  var LETTERS = "ABCDEFGHIJ";
  var task = null; // state of the task on screen

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

  function initTask() {
    var form = $("#task form.task-form");
    if (!form) { task = null; return; }
    if (task && task.form === form) return;
    task = {
      form: form,
      mode: form.dataset.mode,
      allowTies: form.dataset.allowTies === "true",
      order: form.dataset.order.split(",").map(Number),
      tiers: [],      // ranking so far: tiers of candidate ids, best first
      tieNext: false, // '=' pressed: the next pick joins the last tier
      started: performance.now(),
    };
    render();
  }

  function ranked() { return [].concat.apply([], task.tiers); }
  function isComplete() {
    if (task.mode === "pairwise") return !!$("input[name=choice]:checked", task.form);
    return ranked().length === task.order.length;
  }
  function label(id) { return LETTERS[task.order.indexOf(id)]; }

  function hint(text) {
    var el = $("[data-hint]", task.form);
    if (el) el.textContent = text || "";
  }

  function render() {
    if (task.mode === "pairwise") {
      $all("label.choice", task.form).forEach(function (l) {
        l.classList.toggle("selected", $("input", l).checked);
      });
    } else {
      task.form.elements.ranking.value = JSON.stringify(task.tiers);
      var rankOf = {};
      task.tiers.forEach(function (tier, i) { tier.forEach(function (id) { rankOf[id] = i + 1; }); });
      $all("article.candidate", task.form).forEach(function (card) {
        var id = Number(card.dataset.candidate), badge = $("[data-rank-badge]", card);
        card.classList.toggle("ranked", id in rankOf);
        badge.textContent = id in rankOf ? "#" + rankOf[id] : "";
      });
      var summary = $("[data-ranking-summary]", task.form);
      var text = task.tiers.map(function (tier) { return tier.map(label).join(" = "); }).join("  >  ");
      if (task.tieNext) text += "  =  …";
      summary.textContent = text || "nothing yet: press 1–" + task.order.length;
      var tieButton = $("[data-action=tie]", task.form);
      if (tieButton) tieButton.setAttribute("aria-pressed", String(task.tieNext));
    }
    $("[data-submit]", task.form).classList.toggle("ready", isComplete());
  }

  function pick(index) {
    var id = task.order[index];
    if (id === undefined) return;
    if (ranked().indexOf(id) !== -1) { hint("Answer " + LETTERS[index] + " is already ranked (Backspace undoes)."); return; }
    if (task.tieNext && task.tiers.length) task.tiers[task.tiers.length - 1].push(id);
    else task.tiers.push([id]);
    task.tieNext = false;
    hint("");
    render();
  }

  function tie() {
    if (!task.allowTies) { hint("This project does not allow ties."); return; }
    if (!task.tiers.length) { hint("Pick the first answer, then press = to tie the next one with it."); return; }
    task.tieNext = !task.tieNext;
    render();
  }

  function undo() {
    if (task.tieNext) task.tieNext = false;
    else if (task.tiers.length) {
      var last = task.tiers[task.tiers.length - 1];
      last.pop();
      if (!last.length) task.tiers.pop();
    }
    hint("");
    render();
  }

  function clearRanking() { task.tiers = []; task.tieNext = false; hint(""); render(); }

  function choose(value) {
    var input = $("input[name=choice][value=" + value + "]", task.form);
    if (!input) { hint(value === "tie" ? "This project does not allow ties." : ""); return; }
    input.checked = true;
    hint("");
    render();
  }

  function submit() {
    if (!isComplete()) {
      hint(task.mode === "pairwise" ? "Choose a verdict first (1, 2, t or 0)." : "Rank every answer first.");
      return;
    }
    task.form.requestSubmit();
  }

  function skip() { var b = $("[data-action=skip]", task.form); if (b) b.click(); }

  function toggleDetails() {
    var all = $all("details.cand-details", task.form);
    var open = !all.every(function (d) { return d.open; });
    all.forEach(function (d) { d.open = open; });
    if (open && all.length) { var field = $("select, input", all[0]); if (field) field.focus(); }
  }

  function focusField(name) {
    var extras = $("details.extras", task.form);
    if (extras) extras.open = true;
    task.form.elements[name].focus();
  }

  function openInstructions() {
    var dialog = $("#instructions");
    if (dialog && !dialog.open) dialog.showModal();
  }

  // Closing the dialog restores focus to whatever had it before, which can be a button; Enter
  // would then click that button instead of submitting. Give the keys back to the page.
  document.addEventListener("close", function (e) {
    if (e.target.id !== "instructions") return;
    var focused = document.activeElement;
    if (focused && focused !== document.body && !isTyping(focused)) focused.blur();
  }, true);

  function isTyping(el) {
    return el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" ||
      (el.tagName === "INPUT" && !/^(radio|checkbox|button|submit)$/.test(el.type)));
  }

  document.addEventListener("keydown", function (e) {
    if (e.altKey || e.metaKey) return;
    var dialog = $("#instructions");
    if (dialog && dialog.open) return; // the dialog handles Esc itself
    if (e.key === "?" || (e.key === "i" && !isTyping(e.target) && !e.ctrlKey)) {
      if (!isTyping(e.target)) { e.preventDefault(); openInstructions(); }
      return;
    }
    if (!task) return;
    if (e.key === "Enter" && e.ctrlKey) { e.preventDefault(); submit(); return; }
    if (isTyping(e.target)) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    if (e.ctrlKey) return;
    var key = e.key, handled = true;
    if (key === "Enter" && /^(A|BUTTON|SUMMARY)$/.test(e.target.tagName)) return; // Tab-and-Enter users
    if (key === "Enter") submit();
    else if (key === "s") skip();
    else if (key === "d") toggleDetails();
    else if (key === "r") focusField("rationale");
    else if (key === "w") focusField("ideal_answer");
    else if (task.mode === "pairwise") {
      if (key === "1" || key === "a") choose("a");
      else if (key === "2" || key === "b") choose("b");
      else if (key === "t" || key === "=") choose("tie");
      else if (key === "0" || key === "x") choose("both_bad");
      else handled = false;
    } else {
      if (/^[1-9]$/.test(key)) pick(Number(key) - 1);
      else if (key === "=") tie();
      else if (key === "Backspace") undo();
      else if (key === "c") clearRanking();
      else handled = false;
    }
    if (handled) e.preventDefault();
  });

  document.addEventListener("click", function (e) {
    var button = e.target.closest("[data-action]");
    if (!button) return;
    var action = button.dataset.action;
    // Give the keys back to the page, so Enter after a click submits instead of clicking again.
    if (action !== "skip") button.blur();
    if (action === "instructions") openInstructions();
    if (!task) return;
    if (action === "pick") pick(Number(button.dataset.index));
    else if (action === "tie") tie();
    else if (action === "undo") undo();
    else if (action === "clear") clearRanking();
  });

  document.addEventListener("change", function (e) {
    if (task && e.target.name === "choice") render();
  });

  // Time on task: from the moment this task was rendered to the submit.
  document.addEventListener("htmx:configRequest", function (e) {
    if (task && e.detail.elt === task.form) {
      e.detail.parameters.time_on_task_ms = String(Math.round(performance.now() - task.started));
    }
  });

  // A refusal (4xx) is shown in the task's error slot and the task stays as it was. This runs
  // on <body>, before django-htmx's DEBUG handler on document, which would replace the page.
  document.body.addEventListener("htmx:beforeOnLoad", function (e) {
    var xhr = e.detail.xhr, slot = $("#task-error");
    if (xhr.status < 400 || xhr.status >= 500 || !slot) return;
    e.preventDefault();
    e.stopPropagation();
    var refusal = new DOMParser().parseFromString(xhr.responseText, "text/html").querySelector("[data-refusal]");
    if (refusal) slot.replaceChildren.apply(slot, Array.prototype.slice.call(refusal.childNodes));
    else slot.textContent = "Refused (" + xhr.status + "); nothing was saved. Reload the page to continue.";
  });
  // A lapsed session answers with the login page: go there rather than swap it in.
  document.addEventListener("htmx:beforeSwap", function (e) {
    if (e.detail.xhr.responseURL && e.detail.xhr.responseURL.indexOf("/accounts/login/") !== -1) {
      e.detail.shouldSwap = false;
      window.location.assign(e.detail.xhr.responseURL);
    }
  });
  document.addEventListener("htmx:sendError", function () {
    var slot = $("#task-error");
    if (slot) slot.textContent = "The server could not be reached; nothing was saved. Try again.";
  });
  document.addEventListener("htmx:responseError", function (e) {
    var slot = $("#task-error");
    if (slot && e.detail.xhr.status >= 500) slot.textContent = "The server failed (" + e.detail.xhr.status + "); nothing was saved. Try again.";
  });

  document.addEventListener("htmx:afterSettle", initTask);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", initTask);
  else initTask();
})();
