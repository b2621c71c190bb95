// The console's portfolio charts: the report's own figures (embedded by the page), drawn with ECharts served by sandu.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("portfolio-data").textContent);
  var wan = function (fen) { return Math.round(fen / 10000) / 100; };
  var CLASSES = { normal: "正常", special_mention: "关注", substandard: "次级", doubtful: "可疑", loss: "损失" };
  function bar(id, rows, value, format) {
    var chart = echarts.init(document.getElementById(id), null, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      grid: { left: 60, right: 20, top: 20, bottom: 40 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: rows.map(function (r) { return r.key; }) },
      yAxis: { type: "value", axisLabel: { formatter: format || "{value}" } },
      series: [{ type: "bar", data: rows.map(value), itemStyle: { color: "#1f4e79" } }]
    });
    return chart;
  }
  var charts = [
    bar("chart-branch", data.by.branch, function (r) { return wan(r.principal_fen); }),
    bar("chart-tech", Object.keys(data.tech.share_by_branch).map(function (b) { return { key: b, share: data.tech.share_by_branch[b] }; }),
        function (r) { return r.share === null ? 0 : Math.round(Number(r.share) * 10000) / 100; }, "{value}%"),
    bar("chart-product", data.by.product, function (r) { return wan(r.principal_fen); })
  ];
  var pie = echarts.init(document.getElementById("chart-classes"), null, { renderer: "canvas" });
  pie.setOption({
    animation: false,
    tooltip: { trigger: "item" },
    series: [{ type: "pie", radius: "65%", data: Object.keys(data.classes).map(function (c) { return { name: CLASSES[c] || c, value: wan(data.classes[c]) }; }) }]
  });
  charts.push(pie);
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  document.body.setAttribute("data-charts", String(charts.length));
})();
