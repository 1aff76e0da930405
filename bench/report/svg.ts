/**
 * SVG line charts with no dependencies: axes with ticks, one polyline per series, a
 * legend. Used for CDFs, KV usage over time and latency against load.
 *
 * @module
 */

/** One line of a chart. */
export interface Series {
  /** Legend label. */
  label: string;
  /** Points, x ascending. */
  points: readonly (readonly [number, number])[];
}

/** Options of {@link lineChart}. */
export interface ChartOptions {
  /** Title above the plot. */
  title: string;
  /** X axis label. */
  xLabel: string;
  /** Y axis label. */
  yLabel: string;
  /** Width in pixels (default 640). */
  width?: number;
  /** Height in pixels (default 400). */
  height?: number;
  /** Log-scale x axis. */
  logX?: boolean;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"];

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Number(v.toPrecision(12)));
  }
  return out;
}

function label(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-2) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

/** Render series as an SVG line chart. */
export function lineChart(series: readonly Series[], o: ChartOptions): string {
  const W = o.width ?? 640, H = o.height ?? 400;
  const m = { l: 70, r: 20, t: 40, b: 50 };
  const pts = series.flatMap((s) => s.points);
  const tx = (x: number) => o.logX ? Math.log10(Math.max(x, 1e-9)) : x;
  let x0 = Math.min(...pts.map((p) => tx(p[0]))), x1 = Math.max(...pts.map((p) => tx(p[0])));
  let y0 = Math.min(0, ...pts.map((p) => p[1])), y1 = Math.max(...pts.map((p) => p[1]));
  if (!Number.isFinite(x0)) [x0, x1, y0, y1] = [0, 1, 0, 1];
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) y1 = y0 + 1;
  const px = (x: number) => m.l + (tx(x) - x0) / (x1 - x0) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - (y - y0) / (y1 - y0) * (H - m.t - m.b);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(o.title)}</text>`,
  );
  // Axes and ticks.
  parts.push(
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
  );
  for (const v of niceTicks(x0, x1)) {
    const x = m.l + (v - x0) / (x1 - x0) * (W - m.l - m.r);
    const text = o.logX ? label(10 ** v) : label(v);
    parts.push(
      `<line x1="${x.toFixed(1)}" y1="${H - m.b}" x2="${x.toFixed(1)}" y2="${
        H - m.b + 4
      }" stroke="black"/>`,
      `<text x="${x.toFixed(1)}" y="${H - m.b + 18}" text-anchor="middle">${text}</text>`,
    );
  }
  for (const v of niceTicks(y0, y1)) {
    const y = py(v);
    parts.push(
      `<line x1="${m.l - 4}" y1="${y.toFixed(1)}" x2="${W - m.r}" y2="${
        y.toFixed(1)
      }" stroke="#ddd"/>`,
      `<text x="${m.l - 8}" y="${(y + 4).toFixed(1)}" text-anchor="end">${label(v)}</text>`,
    );
  }
  parts.push(
    `<text x="${W / 2}" y="${H - 12}" text-anchor="middle">${esc(o.xLabel)}</text>`,
    `<text x="16" y="${H / 2}" text-anchor="middle" transform="rotate(-90 16 ${H / 2})">${
      esc(o.yLabel)
    }</text>`,
  );
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const d = s.points.map((p) => `${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(" ");
    parts.push(`<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${d}"/>`);
    const ly = m.t + 4 + i * 16;
    parts.push(
      `<line x1="${W - m.r - 150}" y1="${ly}" x2="${
        W - m.r - 130
      }" y2="${ly}" stroke="${c}" stroke-width="2"/>`,
      `<text x="${W - m.r - 125}" y="${ly + 4}">${esc(s.label)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

/** Empirical CDF points of a list (at most `max` points). */
export function cdfPoints(values: readonly number[], max = 200): [number, number][] {
  const s = Float64Array.from(values).sort();
  const n = s.length;
  if (n === 0) return [];
  const out: [number, number][] = [];
  const step = Math.max(1, Math.floor(n / max));
  for (let i = 0; i < n; i += step) out.push([s[i], (i + 1) / n]);
  if (out[out.length - 1][1] !== 1) out.push([s[n - 1], 1]);
  return out;
}
