// Shipyard console: progressive enhancements only (every page reads without this file).
(function () {
  "use strict";

  // Times arrive as UTC ISO text; show them in the reader's time zone.
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when)) {
      var short = el.hasAttribute("data-short");
      el.textContent = when.toLocaleString(undefined, {
        dateStyle: "medium", timeStyle: short ? "short" : "medium"
      });
      el.title = el.getAttribute("datetime");
    }
  });

  // A graph wider than its card scrolls sideways: bring its root (lineage) or the chosen
  // task (a pipeline run) into view.
  document.querySelectorAll("svg.graph .root, svg.graph .selected").forEach(function (el) {
    var box = el.closest(".scroll");
    if (!box) { return; }
    var node = el.getBoundingClientRect();
    var frame = box.getBoundingClientRect();
    box.scrollLeft += node.left + node.width / 2 - (frame.left + frame.width / 2);
  });

  // The traffic form: the running total, and no submission unless it is 100 (the server
  // checks again and says what is wrong).
  var trafficForm = document.getElementById("traffic-form");
  if (trafficForm) {
    var total = function () {
      var sum = 0;
      trafficForm.querySelectorAll("input.share-input").forEach(function (input) {
        sum += Number(input.value || 0);
      });
      return sum;
    };
    var show = function () {
      var out = document.getElementById("traffic-total");
      var sum = total();
      out.textContent = "total " + sum + "%" + (sum === 100 ? "" : ": the shares must add up to 100");
      out.className = sum === 100 ? "hint" : "error";
    };
    trafficForm.addEventListener("input", show);
    trafficForm.addEventListener("submit", function (event) {
      if (total() !== 100) { event.preventDefault(); show(); }
    });
    show();
  }

  // A pipeline run's page while the run is going: poll its small JSON twin and update the
  // states, durations and buttons in place; reload when tasks appear (a loop's iterations).
  var live = document.querySelector("[data-live]");
  if (live && window.fetch) {
    var url = live.getAttribute("data-live");
    var every = Number(live.getAttribute("data-poll") || 2) * 1000;
    var mayRun = live.getAttribute("data-may-run") === "yes";
    var badge = function (value) {
      var span = document.createElement("span");
      span.className = "state state-" + String(value).toLowerCase();
      span.textContent = value;
      return span;
    };
    var setText = function (el, text) { if (el && el.textContent !== text) { el.textContent = text; } };
    var apply = function (run) {
      var holder = document.getElementById("run-state");
      if (holder && holder.textContent !== run.state) {
        holder.replaceChildren(badge(run.state));
      }
      Object.keys(run.nodes).forEach(function (name) {
        var node = run.nodes[name];
        document.querySelectorAll("#dag a.node").forEach(function (el) {
          if (el.getAttribute("data-task") !== name) { return; }
          el.setAttribute("data-state", node.state);
          var rect = el.querySelector("rect");
          if (rect) {
            rect.setAttribute("class", "fill-" + node.state.toLowerCase().replace(/ /g, "-"));
          }
          setText(el.querySelector("text.sub"), node.label);
          setText(el.querySelector("title"), name + ": " + node.state);
        });
      });
      document.querySelectorAll("#tasks tr[data-task]").forEach(function (row) {
        var task = run.tasks[row.getAttribute("data-task")];
        if (!task) { return; }
        var cell = row.querySelector(".task-state");
        if (cell && cell.textContent !== task.state) { cell.replaceChildren(badge(task.state)); }
        setText(row.querySelector(".task-cached"), task.cached ? "yes" : "");
        setText(row.querySelector(".task-duration"), task.duration);
        setText(row.querySelector(".task-attempts"), String(task.attempts));
      });
      setText(document.getElementById("run-duration"), run.duration);
      var retry = document.getElementById("retry");
      var cancel = document.getElementById("cancel");
      if (retry) { retry.disabled = !(mayRun && run.retryable); }
      if (cancel) { cancel.disabled = !mayRun || run.ended; }
      if (run.error && !document.getElementById("run-error")) {
        var shown = document.createElement("p");
        shown.id = "run-error";
        shown.className = "error card";
        shown.setAttribute("role", "alert");
        shown.textContent = run.error;
        live.insertAdjacentElement("afterend", shown);
      }
    };
    var poll = function () {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error("status " + response.status); }
          return response.json();
        })
        .then(function (run) {
          var known = document.querySelectorAll("#tasks tr[data-task]").length;
          if (Object.keys(run.tasks).length !== known) { window.location.reload(); return; }
          apply(run);
          var note = document.getElementById("live-note");
          if (run.ended) {
            setText(note, "The run ended.");
          } else {
            window.setTimeout(poll, every);
          }
        })
        .catch(function () {
          setText(document.getElementById("live-note"), "Lost touch with the server; trying again.");
          window.setTimeout(poll, every * 5);
        });
    };
    window.setTimeout(poll, every);
  }

  // Charts: each <div class="chart" data-chart="ID"> draws the JSON in <script id="ID">.
  if (window.Plotly) {
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-chart"));
      if (!source) { return; }
      var spec = JSON.parse(source.textContent);
      var layout = Object.assign({
        margin: { l: 56, r: 16, t: 36, b: 44 },
        title: { text: spec.title, font: { size: 14 } },
        xaxis: { title: { text: spec.x_title || "" }, zeroline: false },
        yaxis: { title: { text: spec.y_title || "" }, zeroline: false },
        legend: { orientation: "h", y: -0.25 },
        font: { family: "system-ui, sans-serif", size: 12 },
        paper_bgcolor: "#fff", plot_bgcolor: "#fff"
      }, spec.layout || {});
      window.Plotly.newPlot(el, spec.traces, layout,
                            { displaylogo: false, responsive: true });
    });
  }
})();
