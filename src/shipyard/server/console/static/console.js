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
