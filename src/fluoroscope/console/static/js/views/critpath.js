// The critical path across traces (#/critical-path?filter=...&slowest=1&range=1h): for the
// traces of the time range matching the filter (or only their slowest share), which
// entries (service, name, operation) make up the critical path and how much of the p50
// and p99 duration each accounts for, computed by the server's engine
// (POST /api/critical-path). A ranked table and two stacked bars (plain DOM). A set too
// large is sampled by the server, which says so; nothing from the data becomes markup.

import * as api from '../api.js';
import { h, state } from '../dom.js';
import * as fmt from '../format.js';
import { href, update } from '../router.js';

const SLOWEST = [['100', 'all traces'], ['10', 'slowest 10 %'], ['5', 'slowest 5 %'], ['1', 'slowest 1 %']];
const COLORS = ['#0e7490', '#b45309', '#7c3aed', '#15803d', '#be123c', '#1d4ed8', '#a16207', '#475569'];

const keyLabel = (e) => {
  const name = e.Service && e.Service !== e.Name ? `${e.Service} › ${e.Name}` : e.Name;
  return e.Operation ? `${name} (${e.Operation})` : name;
};
const share = (part, whole) => (whole > 0 ? `${Math.round((100 * part) / whole)} %` : '—');

function stackedBar(id, title, entries, field, whole) {
  const bar = h('div', { class: 'cp-bar', id, role: 'img', 'aria-label': `${title}: ${fmt.duration(whole)}` });
  entries.forEach((e, i) => {
    const part = e[field];
    if (!(whole > 0) || part <= 0) return;
    bar.append(h('span', {
      class: 'cp-seg',
      title: `${keyLabel(e)}: ${fmt.duration(part)} (${share(part, whole)})`,
      style: { width: `${Math.min(100, (100 * part) / whole).toFixed(3)}%`, background: COLORS[i % COLORS.length] },
    }));
  });
  return h('div', { class: 'cp-bar-row' }, h('span', { class: 'cp-bar-label' }, `${title} ${fmt.duration(whole)}`), bar);
}

export function render(root, route, ctx) {
  const params = route.params;
  const filter = params.get('filter') || '';
  const slowest = SLOWEST.some(([v]) => v === params.get('slowest')) ? params.get('slowest') : '100';
  const controller = new AbortController();
  const input = h('input', { id: 'cp-filter', name: 'filter', value: filter, class: 'mono', size: 60, placeholder: 'filter expression, e.g. http.url CONTAINS "/cart"', 'aria-label': 'Filter expression' });
  const select = h('select', { id: 'cp-slowest', 'aria-label': 'Which traces' },
    SLOWEST.map(([v, text]) => h('option', { value: v, selected: v === slowest }, text)));
  const form = h('form', {
    class: 'toolbar',
    onsubmit: (event) => {
      event.preventDefault();
      update({ filter: input.value.trim(), slowest: select.value === '100' ? null : select.value });
    },
  }, input, select, h('button', { type: 'submit', class: 'primary' }, 'Analyse'));
  const out = h('div', { id: 'cp-result' });
  root.replaceChildren(h('section', { class: 'panel' }, h('h1', null, 'Critical path across traces'),
    h('p', { class: 'muted' }, `${ctx.range.label}: the entries that set the matching traces’ duration, and their part of the p50 and p99.`), form), out);
  out.append(state('loading', 'Computing the critical path…'));
  const body = { StartTime: Math.floor(ctx.range.start), EndTime: Math.ceil(ctx.range.end), SlowestPercent: Number(slowest) };
  if (filter.trim()) body.FilterExpression = filter;
  api.xray('api/critical-path', body, { signal: controller.signal }).then((a) => {
    const entries = a.Entries || [];
    const parts = [];
    if (a.Message) parts.push(h('p', { class: 'state empty', id: 'cp-message', role: 'status' }, a.Message));
    if (!entries.length) {
      parts.push(state('empty', 'No traces in this range match.'));
      out.replaceChildren(...parts);
      out.dataset.state = 'loaded';
      return;
    }
    parts.push(h('section', { class: 'panel' },
      h('p', null, `${fmt.count(a.TracesAnalysed)} traces analysed (of ${fmt.count(a.TracesMatched)} matching): p50 ${fmt.duration(a.P50)}, p99 ${fmt.duration(a.P99)}.`),
      stackedBar('cp-bar-p50', 'p50', entries, 'AtP50', a.P50),
      stackedBar('cp-bar-p99', 'p99', entries, 'AtP99', a.P99)));
    const rows = entries.map((e, i) => {
      const traces = href('traces', { filter: e.Service ? `service("${e.Service.replace(/["\\]/g, '\\$&')}")` : null, range: params.get('range') });
      return h('tr', { dataset: { name: e.Name } },
        h('td', null, h('span', { class: 'cp-swatch', style: { background: COLORS[i % COLORS.length] } }), h('a', { href: traces }, keyLabel(e))),
        h('td', { class: 'num' }, fmt.count(e.Traces)),
        h('td', { class: 'num' }, fmt.duration(e.AtP50)), h('td', { class: 'num' }, share(e.AtP50, a.P50)),
        h('td', { class: 'num' }, fmt.duration(e.AtP99)), h('td', { class: 'num' }, share(e.AtP99, a.P99)),
        h('td', { class: 'num' }, fmt.duration(e.Mean)));
    });
    parts.push(h('section', { class: 'panel' }, h('table', { class: 'list', id: 'cp-table' },
      h('thead', null, h('tr', null, ['Entry', 'Traces', 'At p50', '% of p50', 'At p99', '% of p99', 'Mean'].map((t) => h('th', null, t)))),
      h('tbody', null, rows))));
    out.replaceChildren(...parts);
    out.dataset.state = 'loaded';
  }, (err) => {
    if (controller.signal.aborted || err.name === 'AbortError') return;
    out.replaceChildren(state('error', `The critical path could not be computed: ${err.message}`));
    out.dataset.state = 'error';
  });
  return () => controller.abort();
}
