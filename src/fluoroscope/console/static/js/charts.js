// Charts on uPlot (vendored): a histogram whose x range can be dragged out, and time series.
// Each returns the uPlot instance; call .destroy() when the view goes.

import uPlot from '../vendor/uPlot.esm.js';
import { h } from './dom.js';
import { duration } from './format.js';

export const COLOURS = {
  ok: '#2f9e5b',
  error: '#d98a00',
  fault: '#d43f3f',
  throttle: '#8a5cd6',
  requests: '#3274d9',
};

function width(container) {
  return Math.max(240, container.clientWidth || 600);
}

function follow(container, plot, height) {
  const observer = new ResizeObserver(() => plot.setSize({ width: width(container), height }));
  observer.observe(container);
  const destroy = plot.destroy.bind(plot);
  plot.destroy = () => { observer.disconnect(); destroy(); };
  return plot;
}

/**
 * The x range to bin response times over: {lo, hi, clipped, max}. When the slowest lie
 * far beyond the 99th percentile (over 1.5 times it), the axis stops there and the last
 * bin also holds the slow tail (clipped is true, max the largest value), so one outlier
 * does not squeeze every other bar into the first. Needs at least one value.
 */
export function binRange(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const lo = Math.max(0, sorted[0]);
  const max = sorted[sorted.length - 1];
  const p99 = sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(0.99 * sorted.length) - 1))];
  const clipped = max > lo && p99 > lo && max > 1.5 * p99;
  let hi = clipped ? p99 : max;
  if (hi <= lo) hi = lo + Math.max(lo * 0.1, 0.001);
  return { lo, hi, clipped, max };
}

/** n equal-width bins over range {lo, hi} (values beyond go to the edge bins): {x, counts, width}. */
export function binOver(values, range, n = 40) {
  const w = (range.hi - range.lo) / n;
  const counts = new Array(n).fill(0);
  for (const v of values) counts[Math.max(0, Math.min(n - 1, Math.floor((v - range.lo) / w)))] += 1;
  return { x: counts.map((_, i) => range.lo + i * w), counts, width: w };
}

/** The upper bound of a dragged selection: into the last bin of a clipped range, the tail too. */
export function selectionTop(range, width, to) {
  return range.clipped && to >= range.hi - width ? Math.max(to, range.max) : to;
}

/** What a clipped range's last bar holds, said under the chart. */
export function tailNote(range) {
  return h('p', { class: 'muted hint' }, `The last bar also holds the slowest traces, up to ${duration(range.max)}.`);
}

/**
 * A bar chart of counts over x (bin starts, seconds, equal width). With onSelect, dragging
 * across the plot calls onSelect(lo, hi) with the x values under the selection.
 */
export function histogram(container, { x, counts, width: binWidth, label = 'Traces', height = 180, onSelect, colour = COLOURS.requests }) {
  const ms = (v) => `${(v * 1000).toFixed(v < 0.01 ? 1 : 0)} ms`;
  const opts = {
    width: width(container),
    height,
    legend: { show: false },
    cursor: { drag: { x: Boolean(onSelect), y: false, setScale: false }, points: { show: false } },
    scales: { x: { time: false, range: (u, min, max) => [min, max + binWidth] } },
    axes: [
      { values: (u, ticks) => ticks.map(ms), size: 36 },
      { size: 48, label },
    ],
    series: [
      {},
      { label, fill: `${colour}aa`, stroke: colour, paths: uPlot.paths.bars({ size: [1, Infinity], align: 1 }), points: { show: false } },
    ],
    hooks: {
      setSelect: [
        (u) => {
          if (!onSelect || u.select.width < 3) return;
          const lo = u.posToVal(u.select.left, 'x');
          const hi = u.posToVal(u.select.left + u.select.width, 'x');
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          onSelect(Math.max(0, lo), Math.max(0, hi));
        },
      ],
    },
  };
  return follow(container, new uPlot(opts, [x, counts], container), height);
}

/**
 * Lines over time: times in epoch seconds, series [{label, values, colour}].
 */
export function timeSeries(container, { times, series, height = 200, yLabel = '' }) {
  const opts = {
    width: width(container),
    height,
    cursor: { drag: { x: false, y: false } },
    axes: [{}, { size: 50, label: yLabel }],
    series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.colour, width: 2, points: { show: false } }))],
  };
  return follow(container, new uPlot(opts, [times, ...series.map((s) => s.values)], container), height);
}

/**
 * Equal-width bins over a histogram given as [{Value, Count}] (X-Ray's
 * ResponseTimeHistogram): {x, counts, width}, ready for histogram().
 */
export function weightedBins(points, n = 30) {
  const values = points.filter((p) => p.Count > 0);
  if (!values.length) return { x: [], counts: [], width: 0 };
  const hi = Math.max(...values.map((p) => p.Value));
  const top = hi > 0 ? hi : 0.001;
  const w = top / n;
  const counts = new Array(n).fill(0);
  for (const p of values) counts[Math.min(n - 1, Math.floor(p.Value / w))] += p.Count;
  return { x: counts.map((_, i) => i * w), counts, width: w };
}
