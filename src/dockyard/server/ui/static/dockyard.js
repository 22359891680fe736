/* Dockyard UI: the little that htmx does not do for us. No build step; loaded by base.html.

   1. Live parts of a page (hx-trigger="every Ns") are replaced whole at each refresh. The
      element that had keyboard focus goes with them, and the browser would drop focus to
      <body>: Tab would start again from the top, and a button could never be reached by a
      keyboard on a page that refreshes every second. Before each swap we note which element
      inside the swapped part had focus (by id, else by what it is: tag, link, form, text)
      and which <details> (with an id) were open; after the swap we put both back.
   2. A form with data-confirm="question" asks it before posting (Cancel a run). */
(function () {
  "use strict";

  var FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]";
  var kept = null;

  // what an element is: its tag, link, name and form, and (unless `loose`) its text, which a
  // refresh may change ("3 failures")
  function signature(el, loose) {
    var form = el.form ? el.form.getAttribute("action") || "" : "";
    var text = loose ? "" : (el.textContent || "").trim();
    var parts = [el.tagName, el.getAttribute("href") || "", el.getAttribute("name") || "", form];
    return parts.concat([text]).join("\u0000");
  }

  function alike(root, sig, loose) {
    return Array.prototype.filter.call(root.querySelectorAll(FOCUSABLE), function (el) {
      return signature(el, loose) === sig;
    });
  }

  function note(root, el, loose) {
    var sig = signature(el, loose);
    return { sig: sig, index: alike(root, sig, loose).indexOf(el) };
  }

  function find(root, noted, loose) {
    var same = alike(root, noted.sig, loose);
    return same[Math.min(noted.index, same.length - 1)] || null;
  }

  function focusOn(el) {
    el.focus({ preventScroll: true });
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    kept = null;
    if (!target || !target.id) {
      return;
    }
    var open = Array.prototype.map.call(target.querySelectorAll("details[id][open]"), function (d) {
      return d.id;
    });
    var active = document.activeElement;
    var focus = null;
    if (active && active !== target && target.contains(active)) {
      focus = { id: active.id, exact: note(target, active, false), loose: note(target, active, true) };
    } else if (active === target) {
      focus = {};
    }
    if (focus || open.length) {
      kept = { target: target.id, focus: focus, open: open };
    }
  });

  document.addEventListener("htmx:afterSwap", function () {
    var was = kept;
    kept = null;
    var root = was && document.getElementById(was.target);
    if (!root) {
      return;
    }
    was.open.forEach(function (id) {
      var details = document.getElementById(id);
      if (details && root.contains(details)) {
        details.open = true;
      }
    });
    var focus = was.focus;
    if (!focus || (document.activeElement && document.activeElement !== document.body)) {
      return;
    }
    var found = focus.id ? document.getElementById(focus.id) : null;
    if (!found && focus.exact) {
      found = find(root, focus.exact, false) || find(root, focus.loose, true);
    }
    if (!found) {
      // the element is gone (a Cancel button once the run ended): keep focus in its part
      root.setAttribute("tabindex", "-1");
      found = root;
    }
    focusOn(found);
  });

  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
})();
