// Keyboard shortcuts of the labelling page: 1-4 choose, s skips, d toggles the diff, Escape leaves the comment
// box. Served as a file, so the page's Content-Security-Policy can forbid every inline script.
"use strict";
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && event.target.closest("textarea")) {
    event.target.blur();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey || event.target.closest("textarea, input[type=text]")) {
    return;
  }
  const form = document.getElementById("label-form");
  const button = form && form.querySelector(`button[data-key="${CSS.escape(event.key)}"]`);
  if (button) {
    event.preventDefault();
    if (form.dataset.sent !== "yes") {  // one choice per page: a key held down must not post twice
      form.dataset.sent = "yes";
      form.requestSubmit(button);
    }
  } else if (event.key === "d") {
    const toggle = document.getElementById("diff-toggle");
    if (toggle) {
      toggle.checked = !toggle.checked;
    }
  }
});
