// Sizes that come from data (a progress bar's width, the playground's column count) are set
// here from data attributes: the Content-Security-Policy refuses inline style attributes, not
// styles set from a script. htmx.onLoad runs on the page and on every piece htmx swaps in.
(function () {
  "use strict";
  function applySizes(root) {
    root.querySelectorAll("[data-width]").forEach(function (el) {
      const percent = Math.max(0, Math.min(100, parseFloat(el.dataset.width) || 0));
      el.style.width = percent + "%";
    });
    root.querySelectorAll("[data-columns]").forEach(function (el) {
      el.style.gridTemplateColumns = "repeat(" + (parseInt(el.dataset.columns, 10) || 1) + ", minmax(0, 1fr))";
    });
  }
  if (window.htmx) {
    window.htmx.onLoad(applySizes);
  } else {
    document.addEventListener("DOMContentLoaded", function () { applySizes(document); });
  }
})();
