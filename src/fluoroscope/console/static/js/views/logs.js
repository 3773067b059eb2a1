// The Logs view (#/logs?groups=a,b&q=<query>&range=1h | from=..&to=..&tail=1), like Logs
// Insights: the log groups with their stored size and retention (tick the ones to query),
// a query editor for the Logs Insights language run over the header's time range (a
// malformed query is shown with the offending characters marked), the results as a table
// of the query's fields, a bar chart of matches over time (of the rows returned), a
// `stats ... by bin()` result drawn as a time series, and a live tail of the ticked
// groups. Every line whose trace id is known links to its trace. Everything lives in
// the URL. Nothing from a log becomes markup: cells are text nodes.
//
// It reads only the server's CloudWatch Logs API (DescribeLogGroups, StartQuery,
// GetQueryResults, StopQuery, FilterLogEvents).

import * as api from '../api.js';
import { h, state } from '../dom.js';
import uPlot from '../../vendor/uPlot.esm.js';
import { COLOURS, timeSeries } from '../charts.js';
import { href, update } from '../router.js';

export const DEFAULT_QUERY = 'fields @timestamp, @log, @message\n| sort @timestamp desc\n| limit 200';
const TRACE = /\b1-[0-9a-f]{8}-[0-9a-f]{24}\b/;
const W3C = /\b[0-9a-f]{32}\b/;
const DONE = new Set(['Complete', 'Failed', 'Cancelled', 'Timeout', 'Unknown']);
const TAIL_MS = 1000;
const TAIL_KEEP = 500;
const SERIES = ['#3274d9', '#2f9e5b', '#d98a00', '#d43f3f', '#8a5cd6', '#1a9aa0'];

function bytes(n) {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = Number(n || 0);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(i && v < 10 ? 1 : 0)} ${units[i]}`;
}

/** An Insights time ("2026-12-03 18:29:55.453") or epoch text as epoch seconds, or null. */
function seconds(text) {
  if (text === undefined || text === null || text === '') return null;
  if (/^\d+(\.\d+)?$/.test(text)) {
    const n = Number(text);
    return n > 1e11 ? n / 1000 : n;
  }
  const t = Date.parse(`${String(text).replace(' ', 'T')}${/Z|[+-]\d\d:?\d\d$/.test(text) ? '' : 'Z'}`);
  return Number.isFinite(t) ? t / 1000 : null;
}

/** The trace id a result row or event names: @xrayTraceId, else one in the message. */
export function traceOf(fields) {
  if (fields['@xrayTraceId']) return fields['@xrayTraceId'];
  const text = String(fields['@message'] || '');
  const found = TRACE.exec(text);
  if (found) return found[0];
  const w3c = /trace_?id["=: ]+"?([0-9a-f]{32})/i.exec(text) || (/traceparent/i.test(text) && W3C.exec(text));
  if (w3c) {
    const hex = w3c[1] || w3c[0];
    return `1-${hex.slice(0, 8)}-${hex.slice(8)}`;
  }
  return '';
}

function traceLink(id) {
  return id ? h('a', { class: 'lv-trace mono', href: href('trace', {}, id), title: 'Open this trace' }, 'trace') : null;
}

/** Bars of counts over equal time bins (epoch seconds). */
function timeBars(container, { times, counts, step }) {
  const height = 150;
  const opts = {
    width: Math.max(240, container.clientWidth || 600),
    height,
    legend: { show: false },
    cursor: { drag: { x: false, y: false }, points: { show: false } },
    scales: { x: { time: true, range: (u, min, max) => [min, max + step] } },
    axes: [{}, { size: 48, label: 'Matches' }],
    series: [{}, {
      label: 'Matches', fill: `${COLOURS.requests}aa`, stroke: COLOURS.requests,
      paths: uPlot.paths.bars({ size: [1, Infinity], align: 1 }), points: { show: false },
    }],
  };
  return new uPlot(opts, [times, counts], container);
}

export function render(root, route, ctx) {
  const params = route.params;
  const controller = new AbortController();
  const picked = new Set((params.get('groups') || '').split(',').filter(Boolean));
  let charts = [];
  let running = null; // queryId
  let tailTimer = null;

  const groupList = h('ul', { id: 'log-groups', 'aria-label': 'Log groups' });
  const groupsPanel = h('aside', { class: 'panel lv-groups' },
    h('h2', null, 'Log groups'), h('p', { class: 'muted' }, 'Tick the groups to query.'), groupList);
  const editor = h('textarea', {
    id: 'logs-query', class: 'lv-editor', spellcheck: 'false', 'aria-label': 'Logs Insights query',
    onkeydown: (event) => { if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) { event.preventDefault(); run(); } },
  });
  editor.value = params.get('q') || DEFAULT_QUERY;
  const runButton = h('button', { type: 'button', class: 'primary', id: 'logs-run', onclick: () => run() }, 'Run query');
  const tailButton = h('button', { type: 'button', id: 'logs-tail', 'aria-pressed': 'false', onclick: () => setTail(!tailTimer) }, 'Live tail');
  const info = h('span', { class: 'muted', id: 'logs-status', role: 'status' });
  const error = h('div', { class: 'lv-error', id: 'logs-error', role: 'alert' });
  const chart = h('div', { class: 'lv-chart', id: 'logs-chart' });
  const results = h('div', { class: 'lv-results', id: 'logs-results' });
  const tail = h('div', { class: 'panel lv-tail hidden', id: 'logs-tail-lines', 'aria-label': 'Live tail', 'aria-live': 'off' });
  const main = h('section', { class: 'lv-main' },
    h('div', { class: 'panel' }, editor,
      h('div', { class: 'lv-bar' }, runButton, tailButton, h('span', { class: 'muted' }, `over ${ctx.range.label.toLowerCase()} · Ctrl+Enter runs`), info),
      error),
    h('div', { class: 'panel' }, chart, results),
    tail);
  root.replaceChildren(h('div', { class: 'lv-layout' }, groupsPanel, main));

  function syncUrl() {
    update({ q: editor.value.trim() === DEFAULT_QUERY ? null : editor.value, groups: [...picked].join(',') || null }, { replace: true });
  }

  async function loadGroups() {
    groupList.replaceChildren(h('li', { class: 'muted' }, 'Loading…'));
    const found = [];
    let token = null;
    try {
      do {
        const page = await api.logs('DescribeLogGroups', token ? { nextToken: token, limit: 50 } : { limit: 50 }, { signal: controller.signal });
        found.push(...(page.logGroups || []));
        token = page.nextToken || null;
      } while (token && found.length < 1000);
    } catch (err) {
      if (controller.signal.aborted) return;
      groupList.replaceChildren(h('li', { class: 'lv-error' }, `The log groups could not be listed: ${err.message}`));
      return;
    }
    if (!found.length) {
      groupList.replaceChildren(h('li', { class: 'muted' }, 'No log groups yet.'));
      return;
    }
    groupList.replaceChildren(...found.map((g) => {
      const box = h('input', {
        type: 'checkbox', checked: picked.has(g.logGroupName), 'aria-label': g.logGroupName, dataset: { group: g.logGroupName },
        onchange: () => { if (box.checked) picked.add(g.logGroupName); else picked.delete(g.logGroupName); syncUrl(); },
      });
      return h('li', { dataset: { group: g.logGroupName } }, box,
        h('label', null, h('span', { class: 'name' }, g.logGroupName), h('br'),
          h('span', { class: 'muted' }, `${bytes(g.storedBytes)} · ${g.retentionInDays ? `${g.retentionInDays} days` : 'never expires'}`)));
    }));
  }

  function showError(err, text) {
    const loc = err.location;
    if (err.type === 'MalformedQueryException' && loc && Number.isInteger(loc.startCharOffset)) {
      const start = Math.max(0, Math.min(text.length, loc.startCharOffset));
      const end = Math.max(start + 1, Math.min(text.length, (loc.endCharOffset ?? start) + 1));
      error.replaceChildren(
        h('span', null, `The query is malformed: ${err.reason || err.message}`),
        h('pre', { id: 'logs-error-excerpt' }, text.slice(0, start), h('mark', null, text.slice(start, end) || ' '), text.slice(end)));
      editor.focus();
      editor.setSelectionRange(start, end);
    } else {
      error.replaceChildren(h('span', null, `${err.type}: ${err.message}`));
    }
  }

  async function run() {
    syncUrl();
    error.replaceChildren();
    const text = editor.value;
    if (!picked.size) {
      error.replaceChildren(h('span', null, 'Tick at least one log group to query.'));
      return;
    }
    if (running) api.logs('StopQuery', { queryId: running }).catch(() => {});
    info.textContent = 'Running…';
    results.dataset.state = 'running';
    let queryId;
    try {
      ({ queryId } = await api.logs('StartQuery', {
        logGroupNames: [...picked], startTime: Math.floor(ctx.range.start), endTime: Math.ceil(ctx.range.end), queryString: text,
      }, { signal: controller.signal }));
    } catch (err) {
      if (controller.signal.aborted) return;
      info.textContent = '';
      results.dataset.state = 'error';
      showError(err, text);
      return;
    }
    running = queryId;
    let answer;
    for (;;) {
      try {
        answer = await api.logs('GetQueryResults', { queryId }, { signal: controller.signal });
      } catch (err) {
        if (controller.signal.aborted) return;
        showError(err, text);
        return;
      }
      if (running !== queryId) return; // a newer run took over
      if (DONE.has(answer.status)) break;
      await new Promise((resolve) => { setTimeout(resolve, 250); });
    }
    running = null;
    if (answer.status !== 'Complete') {
      info.textContent = '';
      error.replaceChildren(h('span', null, `The query ended: ${answer.status}.`));
      return;
    }
    const rows = (answer.results || []).map((row) => Object.fromEntries(row.map((c) => [c.field, c.value])));
    const stats = answer.statistics || {};
    info.textContent = `${rows.length.toLocaleString('en-US')} rows · ${Number(stats.recordsMatched || 0).toLocaleString('en-US')} matched of ${Number(stats.recordsScanned || 0).toLocaleString('en-US')} scanned`;
    draw(rows, /(^|\|)\s*stats\b/i.test(text));
  }

  function draw(rows, isStats) {
    for (const c of charts) c.destroy();
    charts = [];
    chart.replaceChildren();
    const fields = [];
    for (const row of rows) for (const f of Object.keys(row)) if (f !== '@ptr' && !fields.includes(f)) fields.push(f);
    results.dataset.state = 'loaded';
    if (!rows.length) {
      results.replaceChildren(state('empty', 'No rows.'));
      return;
    }
    const binField = fields.find((f) => /^bin\(/i.test(f)) || (isStats && fields.find((f) => rows.every((r) => seconds(r[f]) !== null && !/^\d+(\.\d+)?$/.test(r[f]))));
    if (isStats && binField) {
      const sorted = [...rows].sort((a, b) => seconds(a[binField]) - seconds(b[binField]));
      const numeric = fields.filter((f) => f !== binField && sorted.every((r) => r[f] === undefined || !Number.isNaN(Number(r[f]))));
      if (numeric.length) {
        chart.dataset.kind = 'series';
        charts.push(timeSeries(chart, {
          times: sorted.map((r) => seconds(r[binField])),
          series: numeric.map((f, i) => ({ label: f, colour: SERIES[i % SERIES.length], values: sorted.map((r) => (r[f] === undefined ? null : Number(r[f]))) })),
          height: 180,
        }));
      }
    } else if (!isStats) {
      const stamps = rows.map((r) => seconds(r['@timestamp'])).filter((t) => t !== null);
      if (stamps.length) {
        const lo = Math.min(ctx.range.start, ...stamps);
        const hi = Math.max(ctx.range.end, ...stamps);
        const step = Math.max(1, (hi - lo) / 40);
        const counts = new Array(40).fill(0);
        for (const t of stamps) counts[Math.min(39, Math.floor((t - lo) / step))] += 1;
        chart.dataset.kind = 'bars';
        charts.push(timeBars(chart, { times: counts.map((_, i) => lo + i * step), counts, step }));
        chart.append(h('p', { class: 'muted' }, 'Matches over time, of the rows returned.'));
      }
    }
    const table = h('table', { id: 'logs-table' },
      h('thead', null, h('tr', null, fields.map((f) => h('th', { scope: 'col' }, f)), isStats ? null : h('th', null, ''))),
      h('tbody', null, rows.map((row) => {
        const id = isStats ? '' : traceOf(row);
        return h('tr', { dataset: id ? { trace: id } : {} }, fields.map((f) => h('td', null, row[f] ?? '')), isStats ? null : h('td', null, traceLink(id)));
      })));
    results.replaceChildren(table);
  }

  // Live tail: FilterLogEvents on the ticked groups, every second, from now on.
  let tailFrom = 0;
  const seen = new Set();
  async function tailOnce() {
    const groups = [...picked].slice(0, 10);
    const found = [];
    for (const group of groups) {
      try {
        const page = await api.logs('FilterLogEvents', { logGroupName: group, startTime: tailFrom, limit: 500 }, { signal: controller.signal });
        for (const e of page.events || []) if (!seen.has(`${group}\u0000${e.eventId}`)) found.push({ ...e, group });
      } catch (err) {
        if (controller.signal.aborted) return;
      }
    }
    found.sort((a, b) => a.timestamp - b.timestamp);
    for (const e of found) {
      seen.add(`${e.group}\u0000${e.eventId}`);
      tailFrom = Math.max(tailFrom, e.timestamp);
      tail.append(h('div', { class: 'lv-tail-line', dataset: { group: e.group } },
        h('span', { class: 'muted' }, `${new Date(e.timestamp).toISOString().slice(11, 23)} ${e.group} `),
        String(e.message).replace(/\n$/, ''), ' ', traceLink(traceOf({ '@message': e.message }))));
    }
    while (tail.childElementCount > TAIL_KEEP + 1) tail.children[1].remove();
    if (found.length) tail.scrollTop = tail.scrollHeight;
  }
  function setTail(on) {
    if (tailTimer) clearTimeout(tailTimer);
    tailTimer = null;
    tailButton.setAttribute('aria-pressed', String(on));
    tail.classList.toggle('hidden', !on);
    update({ tail: on ? '1' : null }, { replace: true });
    if (!on) return;
    if (!picked.size) {
      tail.replaceChildren(h('p', { class: 'muted' }, 'Tick a log group to tail it.'));
    } else {
      tail.replaceChildren(h('p', { class: 'muted' }, `Tailing ${[...picked].join(', ')}…`));
    }
    tailFrom = Date.now() - 5000;
    const loop = async () => {
      await tailOnce();
      if (!controller.signal.aborted && tailButton.getAttribute('aria-pressed') === 'true') tailTimer = setTimeout(loop, TAIL_MS);
    };
    loop();
  }

  loadGroups();
  if (params.get('q') && picked.size) run();
  if (params.get('tail') === '1') setTail(true);
  return () => {
    controller.abort();
    if (tailTimer) clearTimeout(tailTimer);
    if (running) api.logs('StopQuery', { queryId: running }).catch(() => {});
    for (const c of charts) c.destroy();
  };
}
