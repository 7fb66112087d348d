(function () {
  "use strict";
  var table = document.getElementById("fleet");
  var groups = Array.prototype.slice.call(table.tBodies);
  var repos = [];
  groups.forEach(function (g) {
    Array.prototype.forEach.call(g.rows, function (r) {
      if (r.classList.contains("repo")) { r.home = g; repos.push(r); }
    });
  });
  // Sorted views need one body for every repo; the tiers' bodies are kept for "tier".
  var flat = document.createElement("tbody");
  flat.className = "sorted";
  flat.hidden = true;
  table.appendChild(flat);
  var status = document.getElementById("filter-status");
  var tier = document.getElementById("filter-tier");
  var sort = document.getElementById("sort");
  var shown = document.getElementById("shown");
  var order = {
    status: function (a, b) {
      return (a.dataset.rank - b.dataset.rank) || (a.dataset.order - b.dataset.order);
    },
    slug: function (a, b) {
      return a.dataset.slug < b.dataset.slug ? -1 : (a.dataset.slug > b.dataset.slug ? 1 : 0);
    }
  };
  function apply() {
    var count = 0;
    repos.forEach(function (r) {
      var keep = (!tier.value || r.dataset.tier === tier.value) &&
        (!status.value || r.dataset.statuses.split(" ").indexOf(status.value) >= 0);
      r.hidden = !keep;
      if (keep) { count += 1; }
    });
    var grouped = sort.value === "tier";
    if (grouped) {
      repos.forEach(function (r) { r.home.appendChild(r); });
    } else {
      repos.slice().sort(order[sort.value]).forEach(function (r) { flat.appendChild(r); });
    }
    flat.hidden = grouped;
    groups.forEach(function (g) {
      g.hidden = !grouped || !repos.some(function (r) {
        return !r.hidden && r.home === g;
      });
    });
    shown.textContent = count + " of " + repos.length + " repos shown";
  }
  [status, tier, sort].forEach(function (el) { el.addEventListener("change", apply); });
  // Escape closes the open dot and gives the focus back to it.
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") { return; }
    var open = e.target.closest && e.target.closest("details.ind[open]");
    if (open) { open.open = false; open.querySelector("summary").focus(); }
  });
  document.getElementById("controls").hidden = false;
  apply();
})();
