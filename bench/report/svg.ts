// Owns the SVG line charts (hand-written, no dependency): axes with ticks, one polyline per series, a legend,
// references (the original's figures) dashed. Readable on their own: title, axis labels and units inside.
import type { Chart } from '../lib/results.ts';
import { sig3 } from './format.ts';

export const chartWidth = 720;
export const chartHeight = 420;
const margin = { top: 48, right: 200, bottom: 56, left: 84 };
const yTicks = 5;
/** Colour-blind-safe palette (Okabe-Ito), cycled. */
const palette = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442'];

export function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** A "nice" step (1, 2 or 5 x 10^k) that splits [0, max] into about `count` ticks. */
export function niceStep(max: number, count: number): number {
  if (!(max > 0)) return 1;
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const f = raw / power;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * power;
}

/** Short tick labels: 1.2M, 450K, 12. */
export function shortNumber(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${sig3(v / 1e9)}G`;
  if (a >= 1e6) return `${sig3(v / 1e6)}M`;
  if (a >= 1e3) return `${sig3(v / 1e3)}K`;
  return sig3(v);
}

/** The frame every chart shares: white background, title. */
function open(chart: Chart): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${chartWidth}" height="${chartHeight}" viewBox="0 0 ${chartWidth} ${chartHeight}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(chart.title)}</title>`,
    `<rect x="0" y="0" width="${chartWidth}" height="${chartHeight}" fill="#ffffff"/>`,
    `<text x="${chartWidth / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(chart.title)}</text>`,
  ];
}

/** Horizontal bars, one per label, the value printed at its end. */
export function barChartSvg(chart: Chart): string {
  const bars = (chart.bars ?? []).filter((b) => Number.isFinite(b.value));
  const left = 160;
  const right = 110;
  const plotW = chartWidth - left - right;
  const rowH = Math.min(36, (chartHeight - margin.top - margin.bottom) / Math.max(1, bars.length));
  const max = Math.max(1, ...bars.map((b) => b.value));
  const out = open(chart);
  bars.forEach((b, i) => {
    const y = margin.top + i * rowH;
    const w = (b.value / max) * plotW;
    out.push(
      `<text x="${left - 8}" y="${(y + rowH / 2).toFixed(1)}" text-anchor="end" dominant-baseline="middle">${escapeXml(b.label)}</text>`,
      `<rect x="${left}" y="${(y + 4).toFixed(1)}" width="${w.toFixed(1)}" height="${(rowH - 8).toFixed(1)}" fill="${palette[i === 0 ? 0 : 1]}"><title>${escapeXml(`${b.label}: ${shortNumber(b.value)}`)}</title></rect>`,
      `<text x="${(left + w + 6).toFixed(1)}" y="${(y + rowH / 2).toFixed(1)}" dominant-baseline="middle">${shortNumber(b.value)}</text>`,
    );
  });
  out.push(
    `<text x="${left + plotW / 2}" y="${chartHeight - 14}" text-anchor="middle">${escapeXml(chart.yLabel)}</text>`,
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}

export function chartSvg(chart: Chart): string {
  if (chart.bars !== undefined) return barChartSvg(chart);
  const plotW = chartWidth - margin.left - margin.right;
  const plotH = chartHeight - margin.top - margin.bottom;
  const points = chart.series
    .flatMap((s) => s.points)
    .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = points.map(([x]) => x);
  const fx = (x: number) => (chart.logX ? Math.log2(Math.max(x, 1e-9)) : x);
  const xMin = xs.length === 0 ? 0 : Math.min(...xs.map(fx));
  const xMax = xs.length === 0 ? 1 : Math.max(...xs.map(fx));
  const xSpan = xMax - xMin || 1;
  const yMaxRaw = points.length === 0 ? 1 : Math.max(...points.map(([, y]) => y));
  const step = niceStep(yMaxRaw * 1.05, yTicks);
  const yMax = Math.max(step, Math.ceil((yMaxRaw * 1.05) / step) * step);
  const px = (x: number) => margin.left + ((fx(x) - xMin) / xSpan) * plotW;
  const py = (y: number) => margin.top + plotH - (y / yMax) * plotH;
  const out = open(chart);
  // Grid and y ticks.
  for (let v = 0; v <= yMax + step / 2; v += step) {
    const y = py(v).toFixed(1);
    out.push(
      `<line x1="${margin.left}" y1="${y}" x2="${margin.left + plotW}" y2="${y}" stroke="#e0e0e0"/>`,
      `<text x="${margin.left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${shortNumber(v)}</text>`,
    );
  }
  // x ticks at the distinct x values measured.
  for (const x of [...new Set(xs)].sort((a, b) => a - b)) {
    const X = px(x).toFixed(1);
    out.push(
      `<line x1="${X}" y1="${margin.top + plotH}" x2="${X}" y2="${margin.top + plotH + 5}" stroke="#333333"/>`,
      `<text x="${X}" y="${margin.top + plotH + 20}" text-anchor="middle">${shortNumber(x)}</text>`,
    );
  }
  out.push(
    `<line x1="${margin.left}" y1="${margin.top + plotH}" x2="${margin.left + plotW}" y2="${margin.top + plotH}" stroke="#333333"/>`,
    `<line x1="${margin.left}" y1="${margin.top}" x2="${margin.left}" y2="${margin.top + plotH}" stroke="#333333"/>`,
    `<text x="${margin.left + plotW / 2}" y="${chartHeight - 14}" text-anchor="middle">${escapeXml(chart.xLabel)}</text>`,
    `<text x="18" y="${margin.top + plotH / 2}" text-anchor="middle" transform="rotate(-90 18 ${margin.top + plotH / 2})">${escapeXml(chart.yLabel)}</text>`,
  );
  chart.series.forEach((s, i) => {
    const colour = palette[i % palette.length];
    const dash = s.reference ? ' stroke-dasharray="6 4"' : '';
    const coords = s.points
      .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
      .sort((a, b) => a[0] - b[0])
      .map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`);
    out.push(
      `<polyline fill="none" stroke="${colour}" stroke-width="2"${dash} points="${coords.join(' ')}"><title>${escapeXml(s.name)}</title></polyline>`,
    );
    for (const c of coords) {
      const [cx, cy] = c.split(',');
      out.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${colour}"/>`);
    }
    const ly = margin.top + 10 + i * 20;
    const lx = margin.left + plotW + 16;
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${colour}" stroke-width="2"${dash}/>`,
      `<text x="${lx + 30}" y="${ly}" dominant-baseline="middle">${escapeXml(s.name)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
