(function () {
  "use strict";
  var body = document.getElementById("fleet").tBodies[0];
  var all = Array.prototype.slice.call(body.rows);
  var repos = all.filter(function (r) { return r.classList.contains("repo"); });
  var groups = all.filter(function (r) { return r.classList.contains("group"); });
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
    (grouped ? all : repos.slice().sort(order[sort.value])).forEach(function (r) {
      body.appendChild(r);
    });
    groups.forEach(function (g) {
      g.hidden = !grouped || !repos.some(function (r) {
        return !r.hidden && r.dataset.tier === g.dataset.tier;
      });
    });
    shown.textContent = count + " of " + repos.length + " repos shown";
  }
  [status, tier, sort].forEach(function (el) { el.addEventListener("change", apply); });
  document.getElementById("controls").hidden = false;
  apply();
})();
