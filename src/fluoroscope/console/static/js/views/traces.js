// Traces: a filter expression box, the response-time distribution of the matching traces
// (drag a range on it to narrow the filter), and their list, newest first, in pages. With
// live tail on, new traces appear at the top as they arrive (polled every 0.5 s).

import { summaries } from '../api.js';
import { binOver, binRange, histogram, selectionTop, tailNote } from '../charts.js';
import { h, state } from '../dom.js';
import { filterBox, narrowByResponseTime } from '../filterbox.js';
import * as fmt from '../format.js';
import { groupPicker, shiftError, withGroup } from '../groups.js';
import { href, update } from '../router.js';
import { rangeParams } from '../timerange.js';
import { compareBar, pickBox } from './compare.js';

const PAGE = 25;
const FETCH = 1000; // summaries read for the distribution and the first pages
const TAIL_MS = 500;
const TAIL_WINDOW = 120; // seconds looked back on each live-tail poll

function row(summary, now, fresh, from) {
  const http = summary.Http || {};
  const st = fmt.status(summary);
  const statusText = http.HttpStatus ? String(http.HttpStatus) : { ok: 'OK', error: 'Error', fault: 'Fault', throttle: 'Throttle' }[st];
  const link = href('trace', from, summary.Id); // from: the list's range and filter, for the way back
  return h('tr', {
    class: fresh ? 'new' : null,
    dataset: { id: summary.Id, status: st },
    onclick: (event) => { if (!event.target.closest('a')) window.location.hash = link; },
  },
  h('td', { class: 'mono id' }, pickBox(summary.Id), h('a', { href: link }, summary.Id)),
  h('td', { class: 'wide' }, http.HttpMethod || '—'),
  h('td', { class: 'url' }, http.HttpURL || (summary.EntryPoint ? summary.EntryPoint.Name : '—')),
  h('td', null, h('span', { class: ['badge', st] }, statusText), summary.IsPartial ? h('span', { class: 'muted' }, ' partial') : null),
  h('td', { class: 'num' }, fmt.duration(fmt.responseTime(summary))),
  h('td', { class: 'age', dataset: { start: String(summary.StartTime || 0) } }, summary.StartTime ? fmt.age(summary.StartTime, now) : '—'));
}

export function render(root, route, ctx) {
  const params = route.params;
  const filter = params.get('filter') || '';
  const group = params.get('group') || '';
  const scoped = withGroup(group, filter).expression; // what the server is asked
  const offset = withGroup(group, filter).offset;
  const live = params.get('live') === '1' && ctx.range.live;
  const controller = new AbortController();
  const box = filterBox({
    value: filter, formId: 'traces-form',
    onSubmit: (text) => update({ filter: text, page: null }),
  });
  const liveSwitch = h('input', {
    type: 'checkbox', id: 'live-tail', checked: live, disabled: !ctx.range.live,
    onchange: () => update({ live: liveSwitch.checked ? '1' : null, page: null }),
  });
  const info = h('span', { class: 'muted', id: 'trace-count' });
  const picker = groupPicker({ value: group, signal: controller.signal, onChange: (name) => update({ group: name || null, page: null }) });
  const toolbar = h('div', { class: 'toolbar' },
    picker,
    h('label', { class: 'switch', title: ctx.range.live ? 'New traces appear as they arrive' : 'Live tail needs a relative time range' }, liveSwitch, 'Live tail'),
    info);
  const chartHolder = h('div', { class: 'chart', id: 'distribution' });
  const chartPanel = h('section', { class: 'panel' },
    h('h2', null, 'Response time distribution'),
    h('p', { class: 'muted hint' }, 'Drag across the chart to keep only the traces in that range.'),
    chartHolder);
  const tbody = h('tbody');
  // newest first, or the slowest first (among the traces read)
  const slowest = params.get('sort') === 'slowest';
  const sortHeader = (label, key, active) => h('th', { 'aria-sort': active ? 'descending' : 'none' },
    h('button', {
      type: 'button', class: 'sort', id: `sort-${key}`,
      title: key === 'slowest' ? 'Slowest first' : 'Newest first',
      onclick: () => update({ sort: key === 'slowest' ? 'slowest' : null, page: null }),
    }, label, active ? ' ▾' : ''));
  const table = h('table', { class: 'list', id: 'trace-list', dataset: { sort: slowest ? 'slowest' : 'newest' } },
    h('thead', null, h('tr', null,
      h('th', null, 'ID'), h('th', { class: 'wide' }, 'Method'), h('th', null, 'URL'),
      h('th', null, 'Status'), sortHeader('Response time', 'slowest', slowest), sortHeader('Age', 'newest', !slowest))),
    tbody);
  const ordered = (list) => (slowest
    ? [...list].sort((a, b) => (fmt.responseTime(b) ?? 0) - (fmt.responseTime(a) ?? 0))
    : [...list].sort((a, b) => (b.StartTime || 0) - (a.StartTime || 0)));
  const listState = h('div');
  const pager = h('div', { class: 'pager' });
  root.append(
    h('section', { class: 'panel' }, h('h1', null, 'Traces'), box.form, box.error, toolbar),
    chartPanel,
    h('section', { class: 'panel' }, h('div', { class: 'toolbar' }, compareBar(table)), table, listState, pager));

  let items = [];
  let seen = new Set();
  let nextToken = null;
  let page = Math.max(0, Number(params.get('page') || 0) | 0);
  let chart = null;
  let timers = [];

  function drawChart() {
    if (chart) {
      chart.destroy();
      chart = null;
    }
    const values = items.map(fmt.responseTime).filter((t) => t !== null);
    if (!values.length) {
      chartHolder.replaceChildren(state('empty', 'No response times to show.'));
      return;
    }
    chartHolder.replaceChildren();
    const range = binRange(values);
    const b = binOver(values, range);
    chart = histogram(chartHolder, {
      ...b,
      label: 'Traces',
      onSelect: (lo, hi) => update({ filter: narrowByResponseTime(filter, lo, selectionTop(range, b.width, hi)), page: null }),
    });
    if (range.clipped) chartHolder.append(tailNote(range));
  }

  function drawList(freshIds = new Set()) {
    const now = Date.now() / 1000;
    const pages = Math.max(1, Math.ceil(items.length / PAGE));
    page = Math.min(page, pages - 1);
    const shown = ordered(items).slice(page * PAGE, page * PAGE + PAGE);
    const from = { ...rangeParams(params), filter };
    tbody.replaceChildren(...shown.map((s) => row(s, now, freshIds.has(s.Id), from)));
    if (!items.length) {
      listState.replaceChildren(state('empty', filter ? 'No traces match this filter in the time range.' : 'No traces in this time range.'));
    } else {
      listState.replaceChildren();
    }
    info.textContent = `${fmt.count(items.length)}${nextToken ? '+' : ''} traces · ${ctx.range.label.toLowerCase()}`;
    const first = items.length ? page * PAGE + 1 : 0;
    const last = Math.min(items.length, (page + 1) * PAGE);
    pager.replaceChildren(
      h('span', { class: 'muted' }, `${fmt.count(first)}–${fmt.count(last)} of ${fmt.count(items.length)}${nextToken ? '+' : ''}`),
      h('button', { type: 'button', id: 'page-newer', disabled: page === 0, onclick: () => { page -= 1; update({ page: page || null }, { replace: true }); drawList(); } }, '‹ Newer'),
      h('button', { type: 'button', id: 'page-older', disabled: last >= items.length && !nextToken, onclick: older }, 'Older ›'));
  }

  async function older() {
    if ((page + 1) * PAGE >= items.length && nextToken) {
      try {
        const more = await summaries({ start: ctx.range.start, end: ctx.range.end, filter: scoped, limit: FETCH, token: nextToken, signal: controller.signal });
        for (const s of more.summaries) if (!seen.has(s.Id)) { seen.add(s.Id); items.push(s); }
        nextToken = more.nextToken;
      } catch (err) {
        if (err.name !== 'AbortError') listState.replaceChildren(state('error', `More traces could not be loaded: ${err.message}`));
        return;
      }
    }
    if ((page + 1) * PAGE < items.length) page += 1;
    update({ page: page || null }, { replace: true });
    drawList();
  }

  async function tail() {
    if (controller.signal.aborted) return;
    const now = Date.now() / 1000;
    try {
      const got = await summaries({ start: now - TAIL_WINDOW, end: now, filter: scoped, limit: 200, signal: controller.signal });
      const fresh = got.summaries.filter((s) => !seen.has(s.Id));
      // a trace shown while its segments were still arriving is replaced by its newer
      // revision (its entry point's URL and status often come last)
      const newer = new Map(got.summaries.filter((s) => seen.has(s.Id)).map((s) => [s.Id, s]));
      let revised = false;
      items = items.map((old) => {
        const latest = newer.get(old.Id);
        if (!latest || (latest.Revision || 0) <= (old.Revision || 0)) return old;
        revised = true;
        return latest;
      });
      if (fresh.length || revised) {
        for (const s of fresh) seen.add(s.Id);
        items = [...fresh, ...items].sort((a, b) => (b.StartTime || 0) - (a.StartTime || 0));
        drawList(new Set(fresh.map((s) => s.Id)));
      } else {
        for (const cell of tbody.querySelectorAll('td.age')) cell.textContent = fmt.age(Number(cell.dataset.start), now);
      }
      table.dataset.polled = String(Date.now());
    } catch (err) {
      if (err.name === 'AbortError') return;
      listState.replaceChildren(state('error', `Live tail stopped: ${err.message}`));
      return;
    }
    timers.push(setTimeout(tail, TAIL_MS));
  }

  async function load() {
    listState.replaceChildren(state('loading', 'Loading traces…'));
    try {
      const got = await summaries({
        start: ctx.range.start, end: ctx.range.end, filter: scoped, limit: FETCH, signal: controller.signal,
        onPage: (sofar) => {
          // show the newest at once; the distribution waits for all it will cover
          if (items.length) return;
          items = [...sofar];
          seen = new Set(items.map((s) => s.Id));
          drawList();
          pager.replaceChildren(); // pages come once every trace is read
          listState.replaceChildren(state('loading', 'Loading more traces…'));
        },
      });
      items = got.summaries;
      seen = new Set(items.map((s) => s.Id));
      nextToken = got.nextToken;
      box.showError(null);
    } catch (err) {
      if (err.name === 'AbortError') return;
      listState.replaceChildren();
      if (err.type === 'InvalidRequestException' && filter) {
        box.showError(shiftError(err, offset), filter);
        listState.replaceChildren(state('error', 'Fix the filter expression to see traces.'));
      } else {
        listState.replaceChildren(state('error', `Traces could not be loaded: ${err.message}`));
      }
      chartHolder.replaceChildren();
      return;
    }
    drawList();
    drawChart();
    table.dataset.filter = filter; // what the list shows, for whoever waits on it
    table.dataset.group = group;
    table.dataset.state = 'loaded';
    if (live) timers.push(setTimeout(tail, TAIL_MS));
    else if (ctx.range.live) {
      // keep the ages current without reloading
      const tick = () => {
        const now = Date.now() / 1000;
        for (const cell of tbody.querySelectorAll('td.age')) cell.textContent = fmt.age(Number(cell.dataset.start), now);
        timers.push(setTimeout(tick, 5000));
      };
      timers.push(setTimeout(tick, 5000));
    }
  }

  load();
  return () => {
    controller.abort();
    for (const t of timers) clearTimeout(t);
    timers = [];
    if (chart) chart.destroy();
  };
}
