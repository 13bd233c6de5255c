/*
 * @autograder/lab: a JupyterLab 4 prebuilt extension, written by hand as the module-federation container
 * JupyterLab's bootstrap loads (window._JUPYTERLAB[name] with init() and get(module)); it needs no build and
 * imports no module, only the `app` every plugin is given.
 *
 * - Validate: nbgrader's button reads "Validating..." for as long as the notebook runs (40 s and more). While it
 *   does, the label says which cell runs, from the kit's own Validate handler
 *   (GET autograder/validate/progress, autograder/validate.py).
 * - Feedback: the Assignment List's "(view feedback)" only moved the file browser to the feedback folder; the
 *   feedback page itself now opens beside it.
 * - Due dates: the Assignment List shows each assignment's due date, and each submission's time against it with
 *   the course's late penalty (GET autograder/due-dates, autograder/assignment_list.py).
 */
(function () {
  "use strict";
  var NAME = "@autograder/lab";

  function serverFetch(app, path) {
    var settings = app.serviceManager.serverSettings;
    var headers = settings.token ? { Authorization: "token " + settings.token } : {};
    return fetch(settings.baseUrl.replace(/\/$/, "") + "/" + path, { headers: headers, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : {}; });
  }

  function notebookPathOf(app, node) {
    var found = null;
    var widgets = app.shell.widgets("main");
    var next = widgets.next();
    while (!next.done && !found) {
      var widget = next.value;
      if (widget.context && widget.node.contains(node)) found = widget.context.path;
      next = widgets.next();
    }
    return found;
  }

  function validateProgress(app) {
    window.setInterval(function () {
      var labels = document.querySelectorAll(".validate-button .jp-ToolbarButtonComponent-label");
      labels.forEach(function (label) {
        if (label.innerText.indexOf("Validating") !== 0) return;
        var path = notebookPathOf(app, label);
        if (!path) return;
        serverFetch(app, "autograder/validate/progress?path=" + encodeURIComponent(path)).then(function (state) {
          // nbgrader puts "Validate" back when the run ends: only a label that still waits is changed
          if (state && state.line && label.innerText.indexOf("Validating") === 0) {
            label.innerText = "Validating: " + state.line + " (" + state.seconds + " s)";
          }
        }).catch(function () {});
      });
    }, 500);
  }

  function feedbackOpens(app) {
    app.commands.commandExecuted.connect(function (_, executed) {
      var path = executed.args && executed.args.path;
      if (executed.id !== "filebrowser:go-to-path" || typeof path !== "string") return;
      // the Assignment List's <assignment>/feedback/<submission time>, nothing else the file browser visits
      if (!/(^|\/)feedback\/\d{4}-\d\d-\d\d[^/]*\/?$/.test(path)) return;
      app.serviceManager.contents.get(path, { content: true }).then(function (folder) {
        (folder.content || []).forEach(function (item) {
          if (/\.html$/.test(item.name)) app.commands.execute("docmanager:open", { path: item.path });
        });
      }).catch(function () {});
    });
  }

  var LISTS = ["released_assignments_list", "fetched_assignments_list", "submitted_assignments_list"];

  function text(node) { return (node && node.firstChild && node.firstChild.textContent || "").trim(); }

  function shownTime(iso) { return iso.replace("T", " ").replace("Z", " UTC"); }

  function lateness(submitted, due, penalty) {
    var at = Date.parse(submitted.replace(" UTC", "Z").replace(" ", "T").replace(/(\.\d{3})\d*/, "$1"));
    if (isNaN(at)) return "";
    if (at <= Date.parse(due)) return " · on time (due " + shownTime(due) + ")";
    return " · LATE: after the due date, " + shownTime(due) +
      (penalty && penalty !== "none" ? "; the course's late penalty applies (" + penalty + ")"
                                     : "; this course gives no late penalty");
  }

  function mark(node, className, words) {
    var old = node.querySelector("." + className);
    if (old && old.textContent === words) return;
    if (old) old.remove();
    if (!words) return;
    var span = document.createElement("span");
    span.className = className;
    span.textContent = words;
    node.append(span);
  }

  function dueDates(app) {
    var known = {};
    function refresh() {
      if (!document.getElementById("submitted_assignments_list")) return;
      serverFetch(app, "autograder/due-dates").then(function (data) { known = data || {}; decorate(); })
        .catch(function () {});
    }
    function decorate() {
      LISTS.forEach(function (id) {
        var list = document.getElementById(id);
        if (!list) return;
        Array.prototype.forEach.call(list.children, function (item) {
          var name = item.querySelector(".item_name"), course = item.querySelector(".item_course");
          var course_data = known[text(course)] || {};
          var due = (course_data.assignments || {})[text(name)];
          if (!name || !due) return;
          mark(name, "autograder-due", id === "submitted_assignments_list" ? "" : " · due " + shownTime(due));
          item.querySelectorAll(".nested_list_item .item_name").forEach(function (submission) {
            mark(submission, "autograder-lateness", lateness(text(submission), due, course_data.late_penalty));
          });
        });
      });
    }
    window.setInterval(refresh, 5000);
    new MutationObserver(function () { decorate(); }).observe(document.body, { childList: true, subtree: true });
    refresh();
  }

  var plugin = {
    id: NAME + ":plugin",
    description: "Validate says which cell runs; (view feedback) opens the feedback page; due dates and lateness.",
    autoStart: true,
    activate: function (app) {
      validateProgress(app);
      feedbackOpens(app);
      dueDates(app);
    }
  };

  window._JUPYTERLAB = window._JUPYTERLAB || {};
  window._JUPYTERLAB[NAME] = {
    init: function () { return Promise.resolve(); },
    get: function (module) {
      if (module !== "./extension") return Promise.reject(new Error(NAME + " has no module " + module));
      return Promise.resolve(function () { return { __esModule: true, default: [plugin] }; });
    }
  };
})();
