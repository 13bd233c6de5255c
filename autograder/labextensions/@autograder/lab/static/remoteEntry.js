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
 * - Grading the class from Formgrader: Manage Assignments gets a button that runs `autograder grade-all` on the
 *   instructor's server and shows its progress in the page (autograder/grader/formgrader_grading.py).
 */
(function () {
  "use strict";
  var NAME = "@autograder/lab";

  function serverFetch(app, path, method) {
    var settings = app.serviceManager.serverSettings;
    var headers = settings.token ? { Authorization: "token " + settings.token } : {};
    var xsrf = document.cookie.match(/(?:^|; )_xsrf=([^;]*)/);  // a POST with the log-in cookie needs it
    if (xsrf) headers["X-XSRFToken"] = decodeURIComponent(xsrf[1]);
    return fetch(settings.baseUrl.replace(/\/$/, "") + "/" + path,
                 { method: method || "GET", headers: headers, credentials: "same-origin" })
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

  function gradingStatus(state) {
    var p = state.progress || {}, lines = [];
    if (state.running) {
      lines.push(p.total === undefined ? "grade-all is starting..." :
        "Grading: " + ((p.done || 0) + (p.failed || 0)) + " of " + p.total + " submissions done (" +
        (p.done || 0) + " graded, " + (p.failed || 0) + " not, " + (p.running || 0) + " running).");
      lines = lines.concat((p.lines || []).slice(-4));
    } else if (state.exit !== null && state.exit !== undefined) {
      lines.push(state.exit === 0 ? "grade-all finished: every submission was graded." :
        state.exit === 3 ? "grade-all finished, but a grading host failed: those submissions have no score and are " +
                           "graded again on the next run. Its last lines:" :
        "grade-all finished; some submissions could not be graded. Its last lines:");
      lines = lines.concat(state.log || []);
    }
    return lines.join("\n");
  }

  function formgraderGrading(app) {
    function fit(doc) {
      // Formgrader's tables (11 columns) were cut off beside JupyterLab's sidebar: tighter, and scrolled, not cut
      if (!doc || !doc.head || doc.getElementById("autograder-formgrader-fit")) return;
      var style = doc.createElement("style");
      style.id = "autograder-formgrader-fit";
      style.textContent = ".col-md-10 { overflow-x: auto; } .table > thead > tr > th, .table > tbody > tr > td " +
                          "{ padding: 6px 4px; }";
      doc.head.append(style);
    }
    function inject(frame) {
      var doc = frame.contentDocument;
      fit(doc);
      if (!doc || !/\/formgrader\/manage_assignments\/?$/.test(doc.location.pathname)) return;
      var table = doc.getElementById("main-table");
      if (!table || doc.getElementById("autograder-grade-all")) return;
      var box = doc.createElement("div"), button = doc.createElement("button"), status = doc.createElement("pre");
      box.id = "autograder-grade-all";
      box.style.margin = "0 0 1em 0";
      button.className = "btn btn-primary";
      button.textContent = "Grade all collected submissions";
      button.title = "autograder grade-all: every collected submission, in the jail, with the course's limits";
      status.id = "autograder-grade-all-status";
      status.style.whiteSpace = "pre-wrap";
      status.style.display = "none";
      box.append(button, status);
      var anchor = table.closest("table") || table;  // above the table, below the messages
      anchor.parentNode.insertBefore(box, anchor);
      var timer = null, sawRunning = false;
      function show(state) {
        var words = gradingStatus(state || {});
        status.textContent = words;
        status.style.display = words ? "block" : "none";
        button.disabled = !!(state && state.running);
        if (state && state.running) { sawRunning = true; return; }
        if (timer) { window.clearInterval(timer); timer = null; }
        if (sawRunning) { sawRunning = false; frame.contentWindow.location.reload(); }  // nbgrader's table, anew
      }
      function poll() {
        if (!timer) timer = window.setInterval(function () {
          serverFetch(app, "autograder/grade-all").then(show).catch(function () {});
        }, 1000);
      }
      button.addEventListener("click", function () {
        button.disabled = true;
        show({ running: true, progress: {} });
        serverFetch(app, "autograder/grade-all", "POST").then(function (state) { show(state); poll(); })
          .catch(function () { button.disabled = false; });
      });
      serverFetch(app, "autograder/grade-all").then(function (state) { show(state); if (state.running) poll(); })
        .catch(function () {});
    }
    function attach() {
      var frame = document.querySelector("#formgrader-iframe iframe");
      if (!frame || frame.dataset.autograder) return;
      frame.dataset.autograder = "1";
      frame.addEventListener("load", function () { inject(frame); });
      inject(frame);
    }
    new MutationObserver(attach).observe(document.body, { childList: true, subtree: true });
    attach();
  }

  var plugin = {
    id: NAME + ":plugin",
    description: "Validate's progress; (view feedback) opens the page; due dates and lateness; grading from Formgrader.",
    autoStart: true,
    activate: function (app) {
      validateProgress(app);
      feedbackOpens(app);
      dueDates(app);
      formgraderGrading(app);
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
