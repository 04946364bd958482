// keyledger's dashboard: draws the charts from the JSON the server embedded in the page.
// Chart.js is served by keyledger itself. The only request the page makes is to keep its
// session alive (POST session, every minute, same origin); when that is refused the page
// reloads, and the server shows the sign-in form.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("dashboard-data").textContent);
  const palette = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2",
                   "#ca8a04", "#db2777", "#64748b"];
  const severityColour = { high: "#dc2626", medium: "#ea580c", low: "#64748b" };
  let rendered = 0;

  function chart(id, config) {
    config.options = Object.assign({ animation: false, responsive: true,
                                     maintainAspectRatio: false }, config.options || {});
    new Chart(document.getElementById(id), config);
    rendered += 1;
  }

  const stacked = { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } };

  chart("issuance", {
    type: "bar",
    data: {
      labels: data.hours,
      datasets: data.issuance.map((series, i) => ({
        label: series.label, data: series.counts, backgroundColor: palette[i % palette.length],
      })),
    },
    options: stacked,
  });

  chart("top-clients", {
    type: "bar",
    data: {
      labels: data.top.map((c) => c.label),
      datasets: [{ label: "tokens (24 h)", data: data.top.map((c) => c.issued),
                   backgroundColor: palette[0] }],
    },
    options: { indexAxis: "y", scales: { x: { beginAtZero: true } } },
  });

  chart("alerts", {
    type: "bar",
    data: {
      labels: data.hours,
      datasets: data.alerts.map((series) => ({
        label: series.severity, data: series.counts,
        backgroundColor: severityColour[series.severity] || palette[8],
      })),
    },
    options: stacked,
  });

  chart("secret-age", {
    type: "bar",
    data: {
      labels: data.secrets.map((c) => c.label),
      datasets: [{
        label: "secret age (days); red: past the " + data.rotation_days + "-day policy",
        data: data.secrets.map((c) => c.age_days),
        backgroundColor: data.secrets.map((c) => (c.rotation_due ? "#dc2626" : "#16a34a")),
      }],
    },
    options: { scales: { y: { beginAtZero: true } } },
  });

  document.body.dataset.chartsRendered = String(rendered);

  const keepAlive = function () {
    fetch("/admin/dashboard/session", { method: "POST", credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); }
      })
      .catch(function () { /* offline for a moment: the next minute tries again */ });
  };
  window.setInterval(keepAlive, 60000);
})();
