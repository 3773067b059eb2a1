// Analytics: the response-time distribution and the requests / faults / errors / throttles
// over time of a filtered set of traces (A), and, given a second filter (B), how the two
// sets differ per URL, HTTP status, HTTP method, service and annotation value.
//
// Route: #/analytics?a=<filter A>&b=<filter B>&range=... (or from=&to=). Both sets are read
// with GetTraceSummaries, newest first, up to CAP traces each.

import { ApiError, summaries } from '../api.js';
import { COLOURS, binOver, binRange, histogram, selectionTop, tailNote, timeSeries } from '../charts.js';
import { h, state } from '../dom.js';
import { errorContent, narrowByResponseTime } from '../filterbox.js';
import { groupPicker, shiftError, withGroup } from '../groups.js';
import * as format from '../format.js';
import { href, update } from '../router.js';
import { rangeParams } from '../timerange.js';
import { causeTables } from './rootcause.js';
import { attach } from '../suggest.js';

const CAP = 2000; // most traces read per set
const REFRESH_MS = 10000; // live ranges refresh this often
const BUCKETS = 60; // time series buckets wanted over the range
const HISTOGRAM_BINS = 40;
const TOP = 10; // values shown per comparison dimension
const SET_COLOURS = { a: COLOURS.requests, b: '#0f8f8c' };
const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

const DIMENSIONS = [
  ['url', 'URL'],
  ['status', 'HTTP status'],
  ['method', 'HTTP method'],
  ['service', 'Service'],
  ['annotation', 'Annotation'],
];

// ---- reading summaries -------------------------------------------------------------------

function baseUrl(url) {
  const cut = url.search(/[?#]/);
  return cut < 0 ? { base: url, query: false } : { base: url.slice(0, cut), query: true };
}

function annotationValue(item) {
  const v = (item && item.AnnotationValue) || {};
  if (typeof v.StringValue === 'string') return v.StringValue;
  if (typeof v.NumberValue === 'number') return v.NumberValue;
  if (typeof v.BooleanValue === 'boolean') return v.BooleanValue;
  return undefined;
}

/** The filter expression selecting a value of a dimension. */
function literal(value) {
  return typeof value === 'string' ? format.quote(value) : String(value);
}

function annotationField(key) {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `annotation.${key}` : `annotation[${format.quote(key)}]`;
}

/**
 * The values a summary holds in each dimension: Map dimension -> Map valueText -> {expr},
 * each value once per trace.
 */
function valuesOf(summary) {
  const out = { url: [], status: [], method: [], service: [], annotation: [] };
  const http = summary.Http || {};
  if (typeof http.HttpURL === 'string' && http.HttpURL) {
    const { base, query } = baseUrl(http.HttpURL);
    const exact = `http.url = ${format.quote(base)}`;
    out.url.push({ text: base, expr: query ? `(${exact} OR http.url BEGINSWITH ${format.quote(`${base}?`)})` : exact, query });
  }
  if (typeof http.HttpStatus === 'number') out.status.push({ text: String(http.HttpStatus), expr: `http.status = ${http.HttpStatus}` });
  if (typeof http.HttpMethod === 'string' && http.HttpMethod) {
    out.method.push({ text: http.HttpMethod, expr: `http.method = ${format.quote(http.HttpMethod)}` });
  }
  for (const service of summary.ServiceIds || []) {
    if (service && typeof service.Name === 'string' && service.Name) {
      out.service.push({ text: service.Name, expr: `service(${format.quote(service.Name)})` });
    }
  }
  for (const [key, items] of Object.entries(summary.Annotations || {})) {
    for (const item of items || []) {
      const value = annotationValue(item);
      if (value === undefined) continue;
      out.annotation.push({ text: `${key} = ${String(value)}`, key, value, expr: `${annotationField(key)} = ${literal(value)}` });
    }
  }
  return out;
}

/** Per dimension, Map valueText -> {count, expr, key?, value?} over a set of summaries. */
function tally(list) {
  const out = Object.fromEntries(DIMENSIONS.map(([d]) => [d, new Map()]));
  for (const summary of list) {
    const values = valuesOf(summary);
    for (const [dimension] of DIMENSIONS) {
      const seen = new Set();
      for (const v of values[dimension]) {
        if (seen.has(v.text)) continue;
        seen.add(v.text);
        const row = out[dimension].get(v.text);
        if (row) {
          row.count += 1;
          if (v.query && !row.query) Object.assign(row, { query: true, expr: v.expr });
        } else out[dimension].set(v.text, { ...v, count: 1 });
      }
    }
  }
  return out;
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function stats(list) {
  const times = list.map(format.responseTime).filter((t) => t !== null).sort((x, y) => x - y);
  const n = list.length;
  return {
    total: n,
    faults: list.filter((s) => s.HasFault).length,
    errors: list.filter((s) => s.HasError).length,
    throttles: list.filter((s) => s.HasThrottle).length,
    p50: percentile(times, 50),
    p90: percentile(times, 90),
    p99: percentile(times, 99),
    times,
  };
}

// ---- helpers for the page ----------------------------------------------------------------

function plural(n, word) {
  return `${format.count(n)} ${word}${n === 1 ? '' : 's'}`;
}

function describe(filter) {
  return filter ? filter : 'all traces';
}

function setLabel(key) {
  return h('span', { class: ['set-tag', `set-${key}`] }, key.toUpperCase());
}

/** The error under a filter box (id), for expression expr. */
function filterError(id, expr, err) {
  return h('div', { class: 'filter-error', id, role: 'alert' }, errorContent(expr, err));
}

function isSyntaxError(err) {
  return err instanceof ApiError && err.type === 'InvalidRequestException' && err.position !== null;
}

function step(seconds) {
  const wanted = seconds / BUCKETS;
  return STEPS.find((s) => s >= wanted) || Math.ceil(wanted / 86400) * 86400;
}

function stepLabel(seconds) {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${seconds / 60} min`;
  if (seconds < 86400) return `${seconds / 3600} h`;
  return `${seconds / 86400} d`;
}

export function render(root, route, ctx) {
  const params = route.params;
  const filters = { a: (params.get('a') || '').trim(), b: (params.get('b') || '').trim() };
  const comparing = Boolean(filters.b);
  const group = params.get('group') || '';
  const carry = { ...rangeParams(params), ...(group ? { group } : {}) }; // into links to Traces
  let charts = [];
  let controller = null;
  let timer = null;
  let stopped = false;
  let loaded = false;

  const inputA = h('input', {
    type: 'search', id: 'filter', name: 'a', value: filters.a, autocomplete: 'off', spellcheck: 'false',
    placeholder: 'Filter A, e.g. service("api") AND fault — empty = all traces', 'aria-label': 'Filter A',
  });
  const inputB = h('input', {
    type: 'search', id: 'filter-b', name: 'b', value: filters.b, autocomplete: 'off', spellcheck: 'false',
    placeholder: 'Filter B (optional) — compare A with this set', 'aria-label': 'Filter B',
  });
  const errorA = h('div', { class: 'filter-slot' });
  const errorB = h('div', { class: 'filter-slot' });
  const form = h('form', {
    id: 'analytics-form', class: ['filter-form', 'analytics-form', 'panel'], role: 'search',
    onsubmit: (event) => {
      event.preventDefault();
      const a = inputA.value.trim();
      const b = inputB.value.trim();
      if (a === filters.a && b === filters.b) load(true);
      else update({ a, b });
    },
  },
  h('div', { class: 'filter-row' }, h('label', { for: 'filter' }, setLabel('a')), h('div', { class: 'filter-box' }, inputA, errorA)),
  h('div', { class: 'filter-row' }, h('label', { for: 'filter-b' }, setLabel('b')), h('div', { class: 'filter-box' }, inputB, errorB)),
  h('div', { class: 'filter-actions' },
    groupPicker({ value: group, onChange: (name) => update({ group: name || null }) }),
    h('button', { type: 'submit', class: 'primary' }, 'Run')));

  const status = h('p', { class: 'analytics-status muted', id: 'analytics-status', role: 'status' });
  const content = h('div', { class: 'analytics-content' }, state('loading', 'Loading traces…'));
  attach(inputA, form); // autocomplete and recent filters
  attach(inputB, form);
  root.append(h('h1', null, 'Analytics'), form, status, content);

  function range() {
    if (!ctx.range.live) return { start: ctx.range.start, end: ctx.range.end };
    const end = Date.now() / 1000;
    return { start: end - ctx.range.seconds, end };
  }

  async function fetchSet(filter, window, signal) {
    const scoped = withGroup(group, filter);
    let got;
    try {
      got = await summaries({ start: window.start, end: window.end, filter: scoped.expression, limit: CAP, signal });
    } catch (err) {
      throw shiftError(err, scoped.offset);
    }
    const capped = Boolean(got.nextToken) || got.summaries.length > CAP;
    return { filter, list: got.summaries.slice(0, CAP), capped, scanned: got.scanned };
  }

  function schedule() {
    if (stopped || !ctx.range.live) return;
    clearTimeout(timer);
    timer = setTimeout(() => load(false), REFRESH_MS);
  }

  async function load(manual) {
    clearTimeout(timer);
    if (controller) controller.abort();
    controller = new AbortController();
    const { signal } = controller;
    const window = range();
    if (manual && loaded) status.textContent = 'Refreshing…';
    const jobs = [fetchSet(filters.a, window, signal)];
    if (comparing) jobs.push(fetchSet(filters.b, window, signal));
    const results = await Promise.allSettled(jobs);
    if (stopped || signal.aborted) return;
    const [a, b] = results;
    errorA.replaceChildren();
    errorB.replaceChildren();
    if (a.status === 'rejected' && a.reason && a.reason.name === 'AbortError') return;
    if (a.status === 'rejected' && isSyntaxError(a.reason)) {
      errorA.append(filterError('filter-error', filters.a, a.reason));
    }
    if (b && b.status === 'rejected' && isSyntaxError(b.reason)) {
      errorB.append(filterError('filter-error-b', filters.b, b.reason));
    }
    if (a.status === 'rejected') {
      const err = a.reason;
      if (loaded && !isSyntaxError(err)) {
        // a failed refresh keeps what is on screen
        status.replaceChildren(h('span', { class: 'refresh-error' }, `Refresh failed: ${err.message}`));
      } else {
        destroyCharts();
        loaded = false;
        status.replaceChildren();
        content.replaceChildren(isSyntaxError(err)
          ? state('error', 'Filter A is not valid; fix it above and press Run.')
          : state('error', `The traces could not be read: ${err.message}`));
      }
      schedule();
      return;
    }
    const setB = b ? (b.status === 'fulfilled' ? b.value : { failed: b.reason }) : null;
    show(a.value, setB, window);
    loaded = true;
    schedule();
  }

  function destroyCharts() {
    for (const chart of charts) {
      try { chart.destroy(); } catch (err) { console.error(err); }
    }
    charts = [];
  }

  function show(setA, setB, window) {
    const sA = stats(setA.list);
    const sB = setB && !setB.failed ? stats(setB.list) : null;
    status.replaceChildren(...statusLine(setA, setB, window));

    if (!setA.list.length) {
      destroyCharts();
      content.replaceChildren(state('empty', filters.a
        ? `No traces match filter A in this range (${ctx.range.label.toLowerCase()}).`
        : `No traces in this range (${ctx.range.label.toLowerCase()}).`));
      return;
    }

    const distribution = h('div', { id: 'distribution', class: 'distribution' });
    const series = h('div', { id: 'timeseries', class: 'timeseries' });
    const fresh = [
      totals(setA, sA, setB, sB),
      h('div', { class: 'chart-grid' },
        h('section', { class: 'panel chart-panel' },
          h('h2', null, 'Response time distribution'),
          h('p', { class: 'hint muted' }, 'Drag across a histogram to narrow its filter to that response-time range.'),
          distribution),
        h('section', { class: 'panel chart-panel' },
          h('h2', null, 'Requests, faults, errors and throttles of ', setLabel('a')),
          series)),
    ];
    fresh.push(causeTables(setA.list, { filter: filters.a, carry }));
    if (comparing) fresh.push(comparison(setA, setB));

    // Swap in one go, then draw into the attached containers and drop the old charts, so a
    // refresh never shows an empty page.
    const old = charts;
    charts = [];
    content.replaceChildren(...fresh);
    drawDistribution(distribution, setA, sA, setB, sB);
    drawSeries(series, setA, window);
    for (const chart of old) {
      try { chart.destroy(); } catch (err) { console.error(err); }
    }
  }

  function statusLine(setA, setB, window) {
    const parts = [];
    const one = (key, set) => {
      const bits = [setLabel(key), ` ${plural(set.list.length, 'trace')}`];
      if (set.capped) {
        bits.push(h('strong', { class: 'cap-note', dataset: { set: key } },
          ` — based on the newest ${format.count(set.list.length)} matching traces`));
      }
      return h('span', { class: 'status-set' }, bits);
    };
    parts.push(one('a', setA));
    if (setB && !setB.failed) parts.push(one('b', setB));
    const time = format.timestamp(window.end).slice(11, 19);
    parts.push(h('span', { class: 'status-time' }, ctx.range.live ? `updated ${time}, refreshing every 10 s` : ctx.range.label));
    return parts;
  }

  function totals(setA, sA, setB, sB) {
    const card = (key, set, st) => {
      const pct = (n) => format.percent(n, st.total);
      const items = [
        ['traces', 'Traces', `${format.count(st.total)}${set.capped ? '+' : ''}`],
        ['faults', 'Faults', pct(st.faults)],
        ['errors', 'Errors', pct(st.errors)],
        ['throttles', 'Throttles', pct(st.throttles)],
        ['p50', 'p50', format.duration(st.p50)],
        ['p90', 'p90', format.duration(st.p90)],
        ['p99', 'p99', format.duration(st.p99)],
      ];
      return h('div', { class: ['totals-set', `set-${key}`], dataset: { set: key } },
        h('div', { class: 'totals-head' }, setLabel(key), h('code', { class: 'totals-filter' }, describe(set.filter))),
        h('dl', { class: 'stats' }, items.map(([stat, label, value]) => h('div', { class: ['stat', `stat-${stat}`], dataset: { stat } },
          h('dt', null, label), h('dd', null, value)))),
        set.capped ? h('p', { class: 'cap-note muted' }, `Based on the newest ${format.count(set.list.length)} matching traces.`) : null);
    };
    const cards = [card('a', setA, sA)];
    if (setB && setB.failed) {
      cards.push(h('div', { class: 'totals-set set-b', dataset: { set: 'b' } },
        h('div', { class: 'totals-head' }, setLabel('b'), h('code', { class: 'totals-filter' }, describe(filters.b))),
        state('error', isSyntaxError(setB.failed) ? 'Filter B is not valid.' : `Set B could not be read: ${setB.failed.message}`)));
    } else if (setB) cards.push(card('b', setB, sB));
    return h('section', { id: 'totals', class: ['totals', cards.length > 1 ? 'two' : 'one'] }, cards);
  }

  function drawDistribution(container, setA, sA, setB, sB) {
    const all = sB ? sA.times.concat(sB.times) : sA.times;
    if (!all.length) {
      container.append(state('empty', 'These traces have no response times.'));
      return;
    }
    // one range for both sets, so their histograms line up
    const range = binRange(all);
    const sets = [['a', setA, sA]];
    if (sB) sets.push(['b', setB, sB]);
    for (const [key, set, st] of sets) {
      const box = h('div', { class: 'histogram', dataset: { set: key } });
      container.append(h('div', { class: 'histogram-head' }, setLabel(key), ` ${plural(st.times.length, 'trace')}`,
        h('span', { class: 'muted' }, ` · p50 ${format.duration(st.p50)} · p99 ${format.duration(st.p99)}`)), box);
      if (!st.times.length) {
        box.append(state('empty', 'No traces in this set.'));
        continue;
      }
      const param = key;
      const b = binOver(st.times, range, HISTOGRAM_BINS);
      charts.push(histogram(box, {
        ...b,
        label: 'Traces',
        height: sets.length > 1 ? 150 : 220,
        colour: SET_COLOURS[key],
        onSelect: (from, to) => update({ [param]: narrowByResponseTime(set.filter, from, selectionTop(range, b.width, to)) }),
      }));
    }
    if (range.clipped) container.append(tailNote(range));
  }

  function drawSeries(container, setA, window) {
    const size = step(window.end - window.start);
    const first = Math.floor(window.start / size) * size;
    const n = Math.max(1, Math.ceil((window.end - first) / size));
    const times = Array.from({ length: n }, (_, i) => first + i * size);
    const counts = { requests: new Array(n).fill(0), faults: new Array(n).fill(0), errors: new Array(n).fill(0), throttles: new Array(n).fill(0) };
    let oldest = Infinity;
    for (const s of setA.list) {
      if (typeof s.StartTime !== 'number') continue;
      oldest = Math.min(oldest, s.StartTime);
      const i = Math.floor((s.StartTime - first) / size);
      if (i < 0 || i >= n) continue;
      counts.requests[i] += 1;
      if (s.HasFault) counts.faults[i] += 1;
      if (s.HasError) counts.errors[i] += 1;
      if (s.HasThrottle) counts.throttles[i] += 1;
    }
    if (setA.capped && Number.isFinite(oldest)) {
      // Buckets wholly before the oldest trace read are unknown, not empty: leave a gap.
      for (let i = 0; i < n && times[i] + size <= oldest; i++) {
        for (const k of Object.keys(counts)) counts[k][i] = null;
      }
      container.append(h('p', { class: 'cap-note muted' },
        `Based on the newest ${format.count(setA.list.length)} matching traces: nothing is drawn before ${format.timestamp(oldest).slice(0, 19)}.`));
    }
    const box = h('div', { class: 'series-chart' });
    container.append(box);
    charts.push(timeSeries(box, {
      times,
      height: 220,
      yLabel: `Traces / ${stepLabel(size)}`,
      series: [
        { label: 'Requests', values: counts.requests, colour: COLOURS.requests },
        { label: 'Faults', values: counts.faults, colour: COLOURS.fault },
        { label: 'Errors', values: counts.errors, colour: COLOURS.error },
        { label: 'Throttles', values: counts.throttles, colour: COLOURS.throttle },
      ],
    }));
  }

  function comparison(setA, setB) {
    const section = h('section', { id: 'comparison', class: 'comparison' },
      h('h2', null, 'Comparison of ', setLabel('a'), ' and ', setLabel('b')));
    if (!setB || setB.failed) {
      section.append(state('error', setB && isSyntaxError(setB.failed)
        ? 'Filter B is not valid, so there is nothing to compare.'
        : 'Set B could not be read, so there is nothing to compare.'));
      return section;
    }
    if (!setB.list.length) {
      section.append(h('p', { class: 'muted' }, 'No traces match filter B in this range: every B share below is 0 %.'));
    }
    const totalA = setA.list.length;
    const totalB = setB.list.length;
    const tA = tally(setA.list);
    const tB = tally(setB.list);
    const grid = h('div', { class: 'compare-grid' });
    for (const [dimension, title] of DIMENSIONS) {
      const rows = new Map();
      for (const [text, v] of tA[dimension]) rows.set(text, { ...v, a: v.count, b: 0 });
      for (const [text, v] of tB[dimension]) {
        const row = rows.get(text);
        if (row) {
          row.b = v.count;
          if (v.query && !row.query) Object.assign(row, { query: true, expr: v.expr });
        } else rows.set(text, { ...v, a: 0, b: v.count });
      }
      const ranked = [...rows.values()].map((r) => {
        const shareA = totalA ? r.a / totalA : 0;
        const shareB = totalB ? r.b / totalB : 0;
        return { ...r, shareA, shareB, diff: (shareA - shareB) * 100 };
      }).sort((x, y) => Math.abs(y.diff) - Math.abs(x.diff) || (y.shareA + y.shareB) - (x.shareA + x.shareB) || (x.text < y.text ? -1 : 1));
      grid.append(compareTable(dimension, title, ranked.slice(0, TOP), rows.size));
    }
    section.append(grid);
    return section;
  }

  function compareTable(dimension, title, rows, distinct) {
    const within = (filter, expr) => (filter ? `(${filter}) AND ${expr}` : expr);
    const body = h('tbody', null, rows.map((r) => {
      const sign = r.diff > 0.05 ? 'more-a' : r.diff < -0.05 ? 'more-b' : 'same';
      const diffText = sign === 'same' ? '0.0 pp' : `${r.diff > 0 ? '+' : '-'}${Math.abs(r.diff).toFixed(1)} pp`;
      return h('tr', { dataset: { value: r.text } },
        h('td', { class: ['value', dimension === 'url' ? 'url' : ''] },
          h('a', { href: href('traces', { filter: r.expr, ...carry }), title: `Traces where ${r.expr}` }, valueLabel(dimension, r))),
        shareCell('share-a', 'a', r.shareA, href('traces', { filter: within(filters.a, r.expr), ...carry })),
        shareCell('share-b', 'b', r.shareB, href('traces', { filter: within(filters.b, r.expr), ...carry })),
        h('td', { class: ['diff', 'num', sign], dataset: { diff: r.diff.toFixed(3) }, title: 'share in A minus share in B, in percentage points' }, diffText));
    }));
    return h('div', { class: 'panel compare-panel' },
      h('h3', null, title, h('span', { class: 'muted' }, distinct > TOP ? ` · top ${TOP} of ${format.count(distinct)}` : '')),
      rows.length
        ? h('div', { class: 'table-scroll' }, h('table', { class: 'list compare', dataset: { dimension } },
          h('thead', null, h('tr', null,
            h('th', { scope: 'col' }, title),
            h('th', { scope: 'col', class: 'num' }, 'A'),
            h('th', { scope: 'col', class: 'num' }, 'B'),
            h('th', { scope: 'col', class: ['num', 'diff-col'] }, 'A − B'))),
          body))
        : h('table', { class: 'list compare empty', dataset: { dimension } }, h('tbody', null,
          h('tr', null, h('td', { class: 'muted' }, 'No values in either set.')))));
  }

  function valueLabel(dimension, r) {
    if (dimension === 'annotation') {
      return [h('span', { class: 'ann-key' }, r.key), ' = ',
        h('span', { class: ['ann-value', typeof r.value] }, typeof r.value === 'string' ? r.value : String(r.value))];
    }
    if (dimension === 'status') {
      const code = Number(r.text);
      const kind = code === 429 ? 'throttle' : code >= 500 ? 'fault' : code >= 400 ? 'error' : 'ok';
      return h('span', { class: ['badge', kind] }, r.text);
    }
    return r.text;
  }

  function shareCell(cls, key, share, link) {
    const bar = h('span', { class: ['bar', `set-${key}`] });
    bar.style.setProperty('width', `${Math.max(0, Math.min(100, share * 100)).toFixed(1)}%`);
    return h('td', { class: [cls, 'num'], dataset: { share: (share * 100).toFixed(3) } },
      h('a', { href: link, class: 'share', title: `Traces of ${key.toUpperCase()} with this value` }, `${(share * 100).toFixed(1)} %`),
      h('span', { class: 'bar-track' }, bar));
  }

  load(false);

  return () => {
    stopped = true;
    clearTimeout(timer);
    if (controller) controller.abort();
    destroyCharts();
  };
}
