import assert from "node:assert/strict";
import { table } from "../../../bench/report/table.ts";
import { cdfPoints, lineChart } from "../../../bench/report/svg.ts";

Deno.test("table: aligned columns, numbers to the right", () => {
  const t = table(["metric", "a"], [["ttft", 1.5], ["throughput", 120]]);
  const lines = t.split("\n");
  assert.equal(lines.length, 4);
  assert.equal(lines[0].length, lines[2].length);
  assert.match(lines[2], /^ttft\s+1\.50$/);
  assert.match(lines[3], /^throughput\s+120$/);
});

Deno.test("svg: a line chart with one polyline per series and escaped labels", () => {
  const svg = lineChart([
    { label: "a<b", points: [[0, 0], [1, 2], [2, 3]] },
    { label: "c", points: [[0, 1], [2, 1]] },
  ], { title: "T & U", xLabel: "x", yLabel: "y" });
  assert.match(svg, /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal(svg.match(/<polyline/g)?.length, 2);
  assert.match(svg, /a&lt;b/);
  assert.match(svg, /T &amp; U/);
  assert.match(svg, /<\/svg>\n$/);
});

Deno.test("svg: CDF points rise to 1", () => {
  const pts = cdfPoints([3, 1, 2, 5, 4]);
  assert.deepEqual(pts[0], [1, 0.2]);
  assert.deepEqual(pts[pts.length - 1], [5, 1]);
  for (let i = 1; i < pts.length; i++) {
    assert(pts[i][0] >= pts[i - 1][0] && pts[i][1] > pts[i - 1][1]);
  }
});
