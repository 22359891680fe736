/* Dockyard UI: the little that htmx does not do for us. No build step; loaded by base.html.

   1. Live parts of a page (hx-trigger="every Ns") are replaced whole at each refresh. The
      element that had keyboard focus goes with them, and the browser would drop focus to
      <body>: Tab would start again from the top, and a button could never be reached by a
      keyboard on a page that refreshes every second. Before each swap we note which element
      inside the swapped part had focus (by id, else by what it is: tag, link, form, text)
      and which <details> (with an id) were open; after the swap we put both back.
   2. A form with data-confirm="question" asks it before posting (Cancel a run).
   3. Times are written in UTC by the server (<time data-local="datetime|time|log">); here they
      are shown in the browser's time zone, at load and in every part htmx swaps in. A part
      swapped in is rewritten by a MutationObserver, before the browser paints it, so that
      it never flashes in UTC (htmx:load comes only after the settle delay). The UTC time
      stays in the tooltip (title), and relative times ("3 min ago") are left alone.
   4. A part that scrolls (a wide table, a long JSON block, the logs) and holds nothing a
      keyboard can reach gets tabindex="0", so that it can be focused and scrolled. */
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

  var formats = {};

  function formatter(style) {
    if (!formats[style]) {
      var options = {
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
        hourCycle: "h23",
        numberingSystem: "latn",
      };
      if (style === "datetime") {
        options.year = "numeric";
        options.month = "2-digit";
        options.day = "2-digit";
      }
      if (style === "log") {
        options.fractionalSecondDigits = 3;
      } else {
        options.timeZoneName = "short";
      }
      formats[style] = new Intl.DateTimeFormat(undefined, options);
    }
    return formats[style];
  }

  // the layout of the server's UTC text (2026-12-02 10:11:12 UTC), in the local zone
  function localText(date, style) {
    var part = {};
    formatter(style).formatToParts(date).forEach(function (p) {
      part[p.type] = p.value;
    });
    var text = part.hour + ":" + part.minute + ":" + part.second;
    if (style === "log") {
      return text + "." + part.fractionalSecond;
    }
    if (style === "datetime") {
      text = part.year + "-" + part.month + "-" + part.day + " " + text;
    }
    return text + " " + part.timeZoneName;
  }

  function within(root, selector) {
    var found = Array.prototype.slice.call(root.querySelectorAll(selector));
    return root.matches && root.matches(selector) ? [root].concat(found) : found;
  }

  function showLocalTimes(root) {
    within(root, "time[data-local]").forEach(function (el) {
      var style = el.getAttribute("data-local");
      var date = new Date(el.getAttribute("datetime"));
      if (isNaN(date.getTime()) || ["datetime", "time", "log"].indexOf(style) < 0) {
        return;
      }
      el.textContent = localText(date, style);
    });
  }

  var SCROLLERS = ".table-wrap, pre, .logs";

  function reachScrollers(root) {
    within(root, SCROLLERS).forEach(function (el) {
      var scrolls = el.scrollWidth > el.clientWidth || el.scrollHeight > el.clientHeight;
      if (scrolls && !el.hasAttribute("tabindex") && !el.querySelector(FOCUSABLE)) {
        el.setAttribute("tabindex", "0");
      }
    });
  }

  // every element added to the page, whoever adds it; the callback runs before the next paint.
  // Rewriting a <time>'s text adds a text node only, which is not looked at again.
  new MutationObserver(function (records) {
    records.forEach(function (record) {
      record.addedNodes.forEach(function (node) {
        if (node.nodeType === Node.ELEMENT_NODE) {
          showLocalTimes(node);
        }
      });
    });
  }).observe(document.body, { childList: true, subtree: true });
  showLocalTimes(document.body);

  // htmx:load comes for the page and for every element a swap adds, once it has settled
  document.addEventListener("htmx:load", function (event) {
    reachScrollers(event.target);
  });
  reachScrollers(document.body);
  // a <details> opened later: its blocks are measured once they show (toggle does not bubble)
  document.addEventListener(
    "toggle",
    function (event) {
      reachScrollers(event.target);
    },
    true
  );

  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
})();
