// Insights: for each group with Insights enabled, the periods when its fault rate left its
// expected band (learned by the server from the group's own history), each with its
// timeline - the fault rate per minute against the band - and its impact: the root-cause
// service (the one whose faults its callees do not explain), the requests affected, the
// anomalous services and the insight's events. Groups still learning their band say why.
//
// Route: #/insights (the time range picks the insights that overlap it; live ranges
// refresh every 15 s).

import { xray } from '../api.js';
import { h, s, state } from '../dom.js';
import { count, duration, timestamp } from '../format.js';
import { href } from '../router.js';

const REFRESH_MS = 15_000;
const W = 640;
const H = 140;
const PAD = 28;

export function render(root, route, ctx) {
  const controller = new AbortController();
  const groups = h('div', { id: 'insight-groups' });
  const list = h('div', { id: 'insight-list', class: 'insight-list' });
  root.append(
    h('section', { class: 'panel' }, h('h1', null, 'Insights'),
      h('p', { class: 'muted hint' },
        'An insight opens when a group’s fault rate leaves the band learned from its own history ',
        'and closes when it returns. Enable Insights on a group (InsightsEnabled) to watch it.'),
      groups),
    list);
  let timer = null;

  async function load() {
    let answer;
    try {
      answer = await xray('api/insights', { StartTime: ctx.range.start, EndTime: ctx.range.end }, { signal: controller.signal });
    } catch (err) {
      if (err.name === 'AbortError') return;
      list.replaceChildren(state('error', `Insights could not be read: ${err.message}`));
      return;
    }
    groups.replaceChildren(groupStates(answer.Groups || []));
    const insights = answer.Insights || [];
    list.replaceChildren(...(insights.length
      ? insights.map(card)
      : [state('empty', 'No insight in this time range.')]));
    if (ctx.range.live) timer = setTimeout(load, REFRESH_MS);
  }

  load();
  return () => {
    controller.abort();
    clearTimeout(timer);
  };
}

function groupStates(states) {
  if (!states.length) return state('empty', 'No group has Insights enabled (or the first evaluation is still to come).');
  const tbody = h('tbody');
  for (const g of states) {
    tbody.append(h('tr', { 'data-group': g.GroupName, 'data-state': g.State },
      h('td', null, g.GroupName),
      h('td', null, h('span', { class: `insight-state ${g.State.toLowerCase()}` }, g.State)),
      h('td', { class: 'muted' }, g.Reason || `band learned from ${g.UsableHistoryMinutes} minutes`)));
  }
  return h('table', { class: 'list plain', id: 'insight-group-states' },
    h('thead', null, h('tr', null, h('th', null, 'Group'), h('th', null, 'State'), h('th', null, 'Baseline'))),
    tbody);
}

function serviceName(id) {
  if (!id) return 'not identified';
  return id.Type ? `${id.Name} (${id.Type})` : id.Name;
}

function stats(st) {
  if (!st) return '—';
  return `${count(st.FaultCount)} faults of ${count(st.TotalCount)} requests`;
}

function card(insight) {
  const end = insight.EndTime ?? null;
  const last = insight.Timeline?.length ? insight.Timeline[insight.Timeline.length - 1].Time + 60 : insight.StartTime + 60;
  const lasted = (end ?? last) - insight.StartTime;
  const cause = insight.RootCauseServiceId;
  const traces = cause
    ? href('traces', { filter: `service("${cause.Name}") { fault }`, from: insight.StartTime, to: end ?? last })
    : null;
  return h('article', { class: 'panel insight', 'data-id': insight.InsightId, 'data-state': insight.State },
    h('h2', null,
      h('span', { class: `insight-state ${insight.State.toLowerCase()}` }, insight.State), ' ',
      `${insight.GroupName}: fault rate above its band`),
    h('p', { class: 'insight-summary' }, insight.Summary),
    timeline(insight),
    h('dl', { class: 'pairs insight-impact' },
      h('dt', null, 'Root cause'), h('dd', { class: 'root-cause' }, serviceName(cause)),
      h('dt', null, 'Client requests'), h('dd', { class: 'client-impact' }, stats(insight.ClientRequestImpactStatistics)),
      h('dt', null, 'At the root cause'), h('dd', null, stats(insight.RootCauseServiceRequestImpactStatistics)),
      h('dt', null, 'Anomalous services'), h('dd', null, (insight.TopAnomalousServices || []).map((a) => a.ServiceId.Name).join(', ') || '—'),
      h('dt', null, 'Started'), h('dd', null, timestamp(insight.StartTime)),
      h('dt', null, end === null ? 'Active for' : 'Lasted'), h('dd', null, duration(lasted))),
    traces ? h('p', null, h('a', { href: traces, class: 'insight-traces' }, `Faulty traces through ${cause.Name}`)) : '',
    h('ol', { class: 'insight-events' }, ...(insight.Events || []).map((e) => h('li', null, `${timestamp(e.EventTime)} — ${e.Summary}`))));
}

// The fault rate per minute (line) against the band (shaded), the insight's window marked.
function timeline(insight) {
  const points = insight.Timeline || [];
  if (points.length < 2) return state('empty', 'Not enough minutes for a timeline yet.');
  const t0 = points[0].Time;
  const t1 = points[points.length - 1].Time;
  const top = Math.max(0.05, ...points.map((p) => Math.max(p.Rate, p.Upper ?? 0))) * 1.1;
  const x = (t) => PAD + ((t - t0) / Math.max(1, t1 - t0)) * (W - 2 * PAD);
  const y = (r) => H - PAD + 8 - (r / top) * (H - PAD - 8);
  const banded = points.filter((p) => p.Upper !== null && p.Upper !== undefined);
  const band = banded.length
    ? [...banded.map((p) => `${x(p.Time)},${y(p.Upper)}`), ...banded.reverse().map((p) => `${x(p.Time)},${y(p.Lower)}`)].join(' ')
    : '';
  const rate = points.map((p) => `${x(p.Time)},${y(p.Rate)}`).join(' ');
  const start = x(insight.StartTime);
  const stop = x(insight.EndTime ?? t1 + 60);
  const peak = Math.max(...points.map((p) => p.Rate));
  return s('svg', { class: 'insight-timeline', viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-label': `Fault rate per minute against the expected band; peak ${(peak * 100).toFixed(0)} %` },
  s('rect', { class: 'window', x: start, y: 4, width: Math.max(2, stop - start), height: H - PAD }),
  band ? s('polygon', { class: 'band', points: band }) : '',
  s('polyline', { class: 'rate', points: rate }),
  s('line', { class: 'axis', x1: PAD, y1: y(0), x2: W - PAD, y2: y(0) }),
  s('text', { x: 2, y: y(top / 1.1) + 4, class: 'tick' }, `${Math.round((top / 1.1) * 100)}%`),
  s('text', { x: 2, y: y(0), class: 'tick' }, '0%'),
  s('text', { x: PAD, y: H - 4, class: 'tick' }, timestamp(t0).slice(11, 16)),
  s('text', { x: W - PAD - 30, y: H - 4, class: 'tick' }, timestamp(t1).slice(11, 16)));
}
