/* ccm-mail pages: the little the pages need script for. Everything works without it, except
   click-to-insert; the preview then updates with its button, the consent page reloads itself.
   Talks only to the JSON API (same origin, the session's cookie and CSRF token). */
(function () {
  "use strict";
  var lang = document.documentElement.lang === "en" ? "en" : "de";
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  function tr(de, en) { return lang === "en" ? en : de; }

  function api(method, url, body) {
    return fetch(url, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept-Language": lang },
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) { return r.json(); });
  }

  // after a save or an error: move the focus to what the page says first (screen readers read it)
  var first = document.querySelector("[data-focus-first]");
  if (first) { first.focus(); }

  // ---- Vorlagen: placeholders by click, unknown ones marked, live preview --------------------
  var form = document.getElementById("template-form");
  if (form) {
    var targets = Array.prototype.slice.call(form.querySelectorAll("[data-placeholder-target]"));
    var last = form.querySelector("#tpl-body") || targets[0];
    var list = document.querySelector(".placeholders");
    var known = {};
    (list ? list.getAttribute("data-known") : "").split(" ").forEach(function (n) { if (n) { known[n] = true; } });
    targets.forEach(function (el) { el.addEventListener("focus", function () { last = el; }); });

    var marks = function () {
      targets.forEach(function (el) {
        var out = document.querySelector('[data-unknown-for="' + el.id + '"]');
        if (!out) { return; }
        var unknown = [];
        var re = /##|#([A-Za-z_][A-Za-z0-9_.\-]*)#/g, m;
        while ((m = re.exec(el.value)) !== null) {
          if (m[1] && !known[m[1]] && unknown.indexOf(m[1]) < 0) { unknown.push(m[1]); }
        }
        while (out.firstChild) { out.removeChild(out.firstChild); }
        if (unknown.length) {
          out.appendChild(document.createTextNode(tr("Unbekannte Platzhalter: ", "Unknown placeholders: ")));
          unknown.forEach(function (n) {
            var mark = document.createElement("mark");
            mark.textContent = "#" + n + "#";
            out.appendChild(mark);
            out.appendChild(document.createTextNode(" "));
          });
        }
        if (unknown.length) { el.setAttribute("aria-invalid", "true"); }
        else if (!el.closest(".field.invalid")) { el.removeAttribute("aria-invalid"); }
      });
    };

    document.querySelectorAll("button.ph").forEach(function (button) {
      button.addEventListener("click", function () {
        var el = last;
        var token = button.getAttribute("data-token");
        var start = el.selectionStart === null ? el.value.length : el.selectionStart;
        var end = el.selectionEnd === null ? start : el.selectionEnd;
        el.value = el.value.slice(0, start) + token + el.value.slice(end);
        el.focus();
        el.setSelectionRange(start + token.length, start + token.length);
        el.dispatchEvent(new Event("input", { bubbles: true }));
      });
    });

    var pre = document.getElementById("preview-text");
    var problems = document.getElementById("preview-problems");
    var url = form.getAttribute("data-preview-url");
    var timer = null, asked = 0;
    var preview = function () {
      var fmt = form.querySelector('input[name="format"]:checked');
      var body = { subject: form.subject.value, body: form.body.value, format: fmt ? fmt.value : "text" };
      if (form.reference.value.trim()) { body.reference = form.reference.value.trim(); }
      var mine = ++asked;
      api("POST", url, body).then(function (answer) {
        if (mine !== asked) { return; }  // a newer one is on its way
        while (problems.firstChild) { problems.removeChild(problems.firstChild); }
        var said = (answer.problems || []).map(function (p) { return p.message + (p.hint ? " – " + p.hint : ""); });
        if (answer.error) { said.push(answer.error.message); }
        said.forEach(function (text) {
          var p = document.createElement("p");
          p.className = "error";
          p.textContent = "✘ " + text;
          problems.appendChild(p);
        });
        if (answer.text) { pre.textContent = answer.text; }
        pre.setAttribute("data-fresh", String(mine));
      }).catch(function () { /* the button still works */ });
    };
    form.addEventListener("input", function () {
      marks();
      clearTimeout(timer);
      timer = setTimeout(preview, 350);
    });
    marks();
  }

  // ---- Admin Berechtigung erteilen: show the result when it comes ----------------------------
  var waiting = document.querySelector("[data-job-poll]");
  if (waiting) {
    var job = waiting.getAttribute("data-job-poll");
    var poll = function () {
      api("GET", "/api/v1/jobs/" + encodeURIComponent(job)).then(function (answer) {
        if (answer.done) { window.location.reload(); } else { setTimeout(poll, 1000); }
      }).catch(function () { setTimeout(poll, 3000); });
    };
    setTimeout(poll, 1000);
  }
})();
