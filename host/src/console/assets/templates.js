// The template editor (operators only): as the operator types, post the draft (with the session's CSRF
// token, as every console form) to the server's check, which compiles and renders it for the chosen
// seed and answers the error with its line, or the rendered parts. The text parts are shown as text
// (textContent, never HTML); the HTML part is loaded into the sandboxed frame by submitting the form
// to it. Nothing else runs here.
"use strict";
(function () {
  var form = document.getElementById("editor");
  var status = document.getElementById("check");
  if (!form || !status || !form.getAttribute("data-check")) {
    return;
  }
  var previewButton = document.getElementById("preview-button");
  var frame = document.getElementById("preview-frame");
  var fields = ["eventType", "channel", "from", "subject", "text", "html"];
  var timer = null;
  var sequence = 0;

  function show(id, text) {
    var element = document.getElementById(id);
    if (element) {
      element.textContent = text;
    }
  }

  function mark(field) {
    fields.forEach(function (name) {
      var input = document.getElementById("f-" + name);
      if (input) {
        input.classList.toggle("invalid", name === field);
      }
    });
  }

  function state(name, text, field, line) {
    status.className = "check " + name;
    status.setAttribute("data-state", name);
    status.setAttribute("data-field", field || "");
    status.setAttribute("data-line", line === null || line === undefined ? "" : String(line));
    status.textContent = text;
    mark(field);
  }

  function check() {
    var mine = ++sequence;
    state("checking", "Checking…", null, null);
    var body = new URLSearchParams(new FormData(form));
    fetch(form.getAttribute("data-check"), {
      method: "POST",
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      body: body
    })
      .then(function (answer) {
        if (answer.redirected || answer.status === 403) {
          throw new Error("the session ended: reload the page and sign in again");
        }
        if (!answer.ok) {
          throw new Error("the check answered HTTP " + answer.status);
        }
        return answer.json();
      })
      .then(function (result) {
        if (mine !== sequence) {
          return;
        }
        if (!result.ok) {
          state("error", result.message, result.field, result.line);
          return;
        }
        var seed = form.elements.namedItem("seed");
        var label = seed && seed.value ? seed.value : "an empty ctx";
        state("ok", "Compiles and renders for " + label + ".", null, null);
        show("preview-from", result.preview.from);
        show("preview-to", result.preview.to);
        show("preview-subject", result.preview.subject);
        show("preview-text", result.preview.text);
        var unavailable = document.getElementById("preview-unavailable");
        if (unavailable) {
          unavailable.remove();
        }
        if (result.preview.html && previewButton && form.requestSubmit) {
          form.requestSubmit(previewButton);
        } else if (frame) {
          frame.removeAttribute("src");
        }
      })
      .catch(function (error) {
        if (mine === sequence) {
          state("stale", "Not checked: " + error.message, null, null);
        }
      });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(check, 400);
  }

  // The proof goes to the seed being previewed, unless the operator picks another one there.
  var seedChoice = document.getElementById("f-seed");
  var proofSeed = document.getElementById("proof-seed");
  if (seedChoice && proofSeed) {
    seedChoice.addEventListener("change", function () {
      proofSeed.value = seedChoice.value;
    });
  }

  // An sms template has only `text`: the email parts are hidden while sms is chosen (the server ignores
  // them then, so switching back finds them as they were).
  var channel = document.getElementById("f-channel");
  if (channel) {
    channel.addEventListener("change", function () {
      form.classList.toggle("sms", channel.value === "sms");
    });
  }

  form.addEventListener("input", later);
  form.addEventListener("change", later);
})();
