/**
 * Plain SVG charts for reports a person opens in a browser: line charts (loss, weights
 * over windows) and a heat map (pairwise cosines). Pure functions returning strings.
 *
 * @module
 */

/** One named line. */
export interface Series {
  name: string;
  points: [number, number][];
  /** Dashed line (e.g. a baseline). */
  dashed?: boolean;
}

const COLORS = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
  "#393b79",
  "#637939",
];

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function ticks(lo: number, hi: number, n = 5): number[] {
  if (hi === lo) return [lo];
  const step = (hi - lo) / n;
  return Array.from({ length: n + 1 }, (_, i) => lo + i * step);
}

function fmt(v: number): string {
  const a = Math.abs(v);
  return a !== 0 && (a < 0.01 || a >= 1e5) ? v.toExponential(1) : +v.toFixed(3) + "";
}

/** A line chart of `series` with a legend; `x` and `y` ranges fit the data. */
export function lineChart(opts: {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  width?: number;
  height?: number;
}): string {
  const W = opts.width ?? 720, H = opts.height ?? 400;
  const L = 70, R = 170, T = 40, B = 50;
  const pts = opts.series.flatMap((s) => s.points).filter(([x, y]) =>
    Number.isFinite(x) && Number.isFinite(y)
  );
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = xs.length ? Math.min(...xs) : 0, x1 = xs.length ? Math.max(...xs) : 1;
  let y0 = ys.length ? Math.min(...ys) : 0, y1 = ys.length ? Math.max(...ys) : 1;
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const px = (x: number) => L + ((x - x0) / (x1 - x0 || 1)) * (W - L - R);
  const py = (y: number) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="15">${esc(opts.title)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">${esc(opts.xLabel)}</text>`,
    `<text x="16" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 16 ${
      (T + H - B) / 2
    })">${esc(opts.yLabel)}</text>`,
  ];
  for (const t of ticks(y0, y1)) {
    out.push(
      `<line x1="${L - 4}" y1="${py(t)}" x2="${W - R}" y2="${py(t)}" stroke="#eee"/>`,
      `<text x="${L - 6}" y="${py(t) + 4}" text-anchor="end">${fmt(t)}</text>`,
    );
  }
  // Integer x data (windows) gets integer ticks.
  const intX = xs.every(Number.isInteger);
  const xt = intX ? [...new Set(ticks(x0, x1).map(Math.round))] : ticks(x0, x1);
  for (const t of xt) {
    out.push(`<text x="${px(t)}" y="${H - B + 16}" text-anchor="middle">${fmt(t)}</text>`);
  }
  opts.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length]!;
    const d = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
      .map(([x, y], j) => `${j ? "L" : "M"}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join("");
    if (d) {
      out.push(
        `<path d="${d}" fill="none" stroke="${c}" stroke-width="2"${
          s.dashed ? ' stroke-dasharray="6 4"' : ""
        }/>`,
      );
    }
    const ly = T + 14 + i * 18;
    out.push(
      `<line x1="${W - R + 10}" y1="${ly - 4}" x2="${W - R + 30}" y2="${
        ly - 4
      }" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>`,
      `<text x="${W - R + 36}" y="${ly}">${esc(s.name)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n");
}

/** A square heat map of `values[i][j]` in [-1, 1] (blue negative, red positive). */
export function heatMap(opts: { title: string; labels: string[]; values: number[][] }): string {
  const n = opts.labels.length, cell = 36, L = 140, T = 40;
  const W = L + n * cell + 20, H = T + n * cell + 120;
  const color = (v: number) => {
    if (!Number.isFinite(v)) return "#999";
    const a = Math.min(1, Math.abs(v));
    const c = Math.round(255 * (1 - a));
    return v >= 0 ? `rgb(255,${c},${c})` : `rgb(${c},${c},255)`;
  };
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="15">${esc(opts.title)}</text>`,
  ];
  opts.labels.forEach((lab, i) => {
    out.push(
      `<text x="${L - 6}" y="${T + i * cell + cell / 2 + 4}" text-anchor="end">${esc(lab)}</text>`,
      `<text x="${L + i * cell + cell / 2}" y="${
        T + n * cell + 12
      }" text-anchor="end" transform="rotate(-60 ${L + i * cell + cell / 2} ${
        T + n * cell + 12
      })">${esc(lab)}</text>`,
    );
    for (let j = 0; j < n; j++) {
      const v = opts.values[i]?.[j] ?? NaN;
      out.push(
        `<rect x="${L + j * cell}" y="${T + i * cell}" width="${cell}" height="${cell}" fill="${
          color(v)
        }" stroke="white"/>`,
        `<text x="${L + j * cell + cell / 2}" y="${
          T + i * cell + cell / 2 + 4
        }" text-anchor="middle">${Number.isFinite(v) ? v.toFixed(2) : "–"}</text>`,
      );
    }
  });
  out.push("</svg>");
  return out.join("\n");
}
