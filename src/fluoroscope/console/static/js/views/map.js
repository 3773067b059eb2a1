// The service map: GetServiceGraph for the time range, laid out left to right by dagre
// (vendored; maplayout.js keeps the nodes' places while the map refreshes), drawn as SVG.
// A node per service, sized by traffic, with a ring of its ok / error / throttle / fault
// shares and an icon for its type; edges carry the request rate and average latency.
// Clicking a node or an edge shows its statistics and response-time histogram and leads
// to its traces. A relative range refreshes live.

import { xray } from '../api.js';
import { COLOURS, histogram, timeSeries, weightedBins } from '../charts.js';
import { h, pairs, s, state } from '../dom.js';
import * as fmt from '../format.js';
import { href, update } from '../router.js';
import { rangeParams } from '../timerange.js';
import { attachGestures } from './mapgestures.js';
import { HUB_Y, StableLayout } from './maplayout.js';

// The log group a node's service writes to: a Lambda function's own group, and the
// access log group the demo's API Gateway stage writes (/aws/apigateway/<api>/<stage>).
const RECENT_LINES = 'fields @timestamp, @logStream, @message\n| sort @timestamp desc\n| limit 200';
const RECENT_ERRORS = 'fields @timestamp, @logStream, @message\n| filter @message like /(?i)\\[ERROR\\]|"level":"ERROR"|Task timed out|Traceback/ or status >= 500\n| sort @timestamp desc\n| limit 100';
function logGroupOf(node) {
  if (node.Type === 'AWS::Lambda' || node.Type === 'AWS::Lambda::Function') return `/aws/lambda/${node.Name}`;
  if (node.Type === 'AWS::ApiGateway::Stage') return `/aws/apigateway/${node.Name}`;
  return '';
}

const TYPES = [
  // [type prefix, icon text, colour, readable name]
  ['client', '', '#4a5568', 'Client'],
  ['AWS::ApiGateway::Stage', 'API', '#8c4fff', 'API Gateway stage'],
  ['AWS::Lambda::Function', 'λ', '#ed7100', 'Lambda function'],
  ['AWS::Lambda', 'λ', '#c45c00', 'Lambda'],
  ['AWS::DynamoDB', 'DDB', '#2e73b8', 'DynamoDB'],
  ['AWS::S3', 'S3', '#3f8624', 'S3'],
  ['AWS::SQS', 'SQS', '#e7157b', 'SQS'],
  ['AWS::SNS', 'SNS', '#c7105f', 'SNS'],
  ['AWS::EC2', 'EC2', '#d45b07', 'EC2'],
  ['AWS::ECS', 'ECS', '#d45b07', 'ECS'],
  ['AWS::EKS', 'EKS', '#d45b07', 'EKS'],
  ['AWS::ElasticBeanstalk', 'EB', '#d45b07', 'Elastic Beanstalk'],
  ['AWS::', 'AWS', '#232f3e', 'AWS service'],
  ['remote', 'HTTP', '#687078', 'Remote HTTP'],
  ['Database::SQL', 'SQL', '#3b48cc', 'SQL database'],
  ['database::SQL', 'SQL', '#3b48cc', 'SQL database'],
];

/** {icon, colour, label} for a node type ('' for an instrumented service). */
export function typeInfo(type) {
  const t = type || '';
  const hit = TYPES.find(([prefix]) => t === prefix || t.startsWith(prefix.endsWith('::') ? prefix : `${prefix}::`));
  if (hit) return { icon: hit[1], colour: hit[2], label: hit[0] === 'AWS::' ? t : hit[3] };
  return { icon: 'SVC', colour: '#1d2330', label: t || 'Service' };
}

function ref(node) {
  return node.Type ? `id(name: ${fmt.quote(node.Name)}, type: ${fmt.quote(node.Type)})` : fmt.quote(node.Name);
}

/** The filter expression selecting the traces through a node or an edge. */
export function nodeFilter(node) {
  return `service(${ref(node)})`;
}
export function edgeFilter(source, target) {
  return `edge(${ref(source)}, ${ref(target)})`;
}

function traffic(node) {
  if (node.SummaryStatistics) return node.SummaryStatistics.TotalCount || 0;
  return (node.Edges || []).reduce((n, e) => n + ((e.SummaryStatistics && e.SummaryStatistics.TotalCount) || 0), 0);
}

function ring(cx, cy, r, stats) {
  const o = fmt.outcomes(stats);
  const total = o.ok + o.error + o.throttle + o.fault;
  const circumference = 2 * Math.PI * r;
  const parts = [];
  if (!total) {
    parts.push(s('circle', { cx, cy, r, fill: 'none', stroke: '#c5cbd6', 'stroke-width': 5 }));
    return parts;
  }
  let offset = 0;
  for (const key of ['ok', 'error', 'throttle', 'fault']) {
    if (!o[key]) continue;
    const length = (circumference * o[key]) / total;
    parts.push(s('circle', {
      cx, cy, r, fill: 'none', stroke: COLOURS[key], 'stroke-width': 5,
      'stroke-dasharray': `${length} ${circumference - length}`,
      'stroke-dashoffset': -offset,
      transform: `rotate(-90 ${cx} ${cy})`,
      class: `ring-${key}`,
    }));
    offset += length;
  }
  return parts;
}

function icon(info, r, type) {
  if (type === 'client') {
    // a person: head and shoulders
    return s('g', { class: 'icon-client', fill: '#fff' },
      s('circle', { cx: 0, cy: -r * 0.28, r: r * 0.26 }),
      s('path', { d: `M ${-r * 0.5} ${r * 0.5} Q 0 ${-r * 0.15} ${r * 0.5} ${r * 0.5} Z` }));
  }
  const size = info.icon.length > 2 ? Math.max(9, r * 0.55) : Math.max(11, r * 0.8);
  return s('text', { class: 'icon', 'text-anchor': 'middle', 'dominant-baseline': 'central', style: { 'font-size': `${size.toFixed(1)}px` } }, info.icon);
}

function edgeColour(stats) {
  const o = fmt.outcomes(stats);
  if (!o.total) return null;
  if (o.fault / o.total >= 0.05) return COLOURS.fault;
  if ((o.error + o.throttle) / o.total >= 0.05) return COLOURS.error;
  return null;
}

/** The point at distance r from centre c towards point p. */
function onCircle(c, r, p) {
  const dx = p.x - c.x;
  const dy = p.y - c.y;
  const length = Math.hypot(dx, dy) || 1;
  return { x: c.x + (dx / length) * r, y: c.y + (dy / length) * r };
}

/** A node's name as its label shows it: a long one shortened (the node's title holds it whole). */
function shortName(name, narrow) {
  const most = narrow ? 22 : 28;
  return name.length > most ? `${name.slice(0, most - 1)}…` : name;
}

/** measure(node) for StableLayout.place: circles sized by traffic, boxes wide enough for the labels. */
function measurer(services, narrow) {
  const max = Math.max(1, ...services.map(traffic));
  return (node) => {
    const r = 14 + 16 * Math.sqrt(traffic(node) / max);
    // wide enough for the labels under the circle (name at ~7 px a character, the
    // smaller type and rate lines at ~5.6 px)
    const name = shortName(node.Name, narrow).length * 7;
    const sub = Math.max(typeInfo(node.Type).label.length, 18) * 5.6;
    return { r, width: Math.max(2 * r + 12, name, sub) + 8, height: 2 * r + 58 };
  };
}

function drawGraph(answer, minutes, selection, onSelect, laid, narrow) {
  const services = answer.Services || [];
  const byRef = new Map(services.map((n) => [n.ReferenceId, n]));
  const edges = s('g', { class: 'edges' });
  const nodes = s('g', { class: 'nodes' });
  for (const node of services) {
    for (const edge of node.Edges || []) {
      const target = byRef.get(edge.ReferenceId);
      const route = laid.edges.get(`${node.ReferenceId}>${edge.ReferenceId}`);
      if (!target || !route) continue;
      // routes end at the nodes' boxes or centres; end them at the circles instead
      const pts = route.points.map((p) => ({ ...p }));
      const from = laid.nodes.get(node.ReferenceId);
      const to = laid.nodes.get(edge.ReferenceId);
      pts[0] = onCircle({ x: from.x, y: from.y + HUB_Y }, from.r + 7, pts[1]);
      pts[pts.length - 1] = onCircle({ x: to.x, y: to.y + HUB_Y }, to.r + 8, pts[pts.length - 2]);
      const d = pts.map((p, i) => `${i ? 'L' : 'M'} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(' ');
      const o = fmt.outcomes(edge.SummaryStatistics);
      const colour = edgeColour(edge.SummaryStatistics);
      const key = `${node.ReferenceId}>${edge.ReferenceId}`;
      const group = s('g', {
        class: ['edge', selection.key === key ? 'selected' : ''],
        dataset: { key, source: node.Name, target: target.Name, sourceType: node.Type || '', targetType: target.Type || '' },
        tabindex: 0,
        role: 'button',
        'aria-label': `${node.Name} to ${target.Name}`,
        onclick: (event) => { event.stopPropagation(); onSelect({ key, edge, source: node, target }); },
        onkeydown: (event) => { if (event.key === 'Enter') onSelect({ key, edge, source: node, target }); },
      },
      s('path', { d, class: 'line', 'marker-end': 'url(#arrow)', style: colour ? { stroke: colour } : null }),
      s('path', { d, class: 'hit' }),
      s('text', { x: route.x, y: route.y - 7, 'text-anchor': 'middle', 'dominant-baseline': 'central', class: 'edge-label' },
        `${fmt.perMinute(o.total / minutes)} · ${fmt.duration(o.average)}`));
      edges.append(group);
    }
  }
  for (const node of services) {
    const place = laid.nodes.get(node.ReferenceId);
    const { r } = place;
    const info = typeInfo(node.Type);
    const cy = HUB_Y;
    const total = traffic(node);
    const o = fmt.outcomes(node.SummaryStatistics);
    const key = `n${node.ReferenceId}`;
    const sub = node.SummaryStatistics
      ? `${fmt.perMinute(total / minutes)} · ${fmt.duration(o.average)}`
      : `${fmt.perMinute(total / minutes)}`;
    const group = s('g', {
      class: ['node', selection.key === key ? 'selected' : ''],
      transform: `translate(${place.x.toFixed(1)} ${place.y.toFixed(1)})`,
      dataset: { key, name: node.Name, type: node.Type || '', ref: String(node.ReferenceId) },
      tabindex: 0,
      role: 'button',
      'aria-label': `${node.Name} (${info.label})`,
      onclick: (event) => { event.stopPropagation(); onSelect({ key, node }); },
      onkeydown: (event) => { if (event.key === 'Enter') onSelect({ key, node }); },
    },
    s('title', null, `${node.Name}\n${info.label}`),
    s('g', { transform: `translate(0 ${cy})` },
      ...ring(0, 0, r + 4, node.Type === 'client' ? null : node.SummaryStatistics),
      s('circle', { class: 'hub', cx: 0, cy: 0, r, fill: info.colour }),
      icon(info, r, node.Type)),
    s('text', { y: cy + r + 20, 'text-anchor': 'middle', class: 'name' }, shortName(node.Name, narrow)),
    s('text', { y: cy + r + 33, 'text-anchor': 'middle', class: 'sub' }, info.label),
    s('text', { y: cy + r + 46, 'text-anchor': 'middle', class: 'sub' }, sub));
    nodes.append(group);
  }
  return [edges, nodes];
}

/** The p-th percentile (0..1) of a ResponseTimeHistogram ([{Value, Count}]), or null. */
export function histogramPercentile(histogram, p) {
  const bins = (histogram || []).filter((b) => b && Number.isFinite(b.Value) && b.Count > 0).sort((a, b) => a.Value - b.Value);
  const total = bins.reduce((n, b) => n + b.Count, 0);
  if (!total) return null;
  let seen = 0;
  for (const b of bins) {
    seen += b.Count;
    if (seen >= p * total) return b.Value;
  }
  return bins[bins.length - 1].Value;
}

function statsList(stats, minutes, histogram) {
  const o = fmt.outcomes(stats);
  const at = (p) => { const v = histogramPercentile(histogram, p); return v === null ? null : fmt.duration(v); };
  return pairs([
    ['Requests', `${fmt.count(o.total)} (${fmt.perMinute(o.total / minutes)})`],
    ['Average response', fmt.duration(o.average)],
    ['p50 / p90 / p99', histogram && at(0.5) !== null ? `${at(0.5)} / ${at(0.9)} / ${at(0.99)}` : null],
    ['OK', `${fmt.count(o.ok)} (${fmt.percent(o.ok, o.total)})`],
    ['Errors (4xx)', `${fmt.count(o.error)} (${fmt.percent(o.error, o.total)})`],
    ['Throttles (429)', `${fmt.count(o.throttle)} (${fmt.percent(o.throttle, o.total)})`],
    ['Faults (5xx)', `${fmt.count(o.fault)} (${fmt.percent(o.fault, o.total)})`],
  ]);
}

const READABLE = 1; // the zoom at which the smallest labels (11 px in console.css) are 11 CSS px

/** How often a live map refreshes: every second up to an hour's range (its statistics are
 * aggregated at ingest, so this costs milliseconds), less often for longer ranges. */
function refreshMs(seconds) {
  if (seconds <= 3600) return 1000;
  return seconds <= 86400 ? 5000 : 15000;
}

export function render(root, route, ctx) {
  const range = ctx.range;
  const minutes = Math.max(1 / 60, range.seconds / 60);
  const carry = rangeParams(route.params);
  const svg = s('svg', { id: 'service-map', role: 'img', 'aria-label': 'Service map' });
  const defs = s('defs', null, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
    s('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#9aa4b5' })));
  const viewport = s('g', { class: 'viewport' });
  svg.append(defs, viewport);
  const status = h('div', { class: 'map-status' }, state('loading', 'Loading the service map…'));
  const legend = h('div', { class: 'legend' },
    ...['ok', 'error', 'throttle', 'fault'].map((k) => h('span', null, h('span', { class: `dot dot-${k}` }), { ok: 'OK', error: 'Error', throttle: 'Throttle', fault: 'Fault' }[k])));
  const fitButton = h('button', { type: 'button', class: 'fit', title: 'Fit the map to the window', onclick: () => fit() }, 'Fit');
  const groupName = route.params.get('group') || '';
  const groupSelect = h('select', {
    id: 'group', 'aria-label': 'Group',
    title: 'Only the traces of a group (its filter expression)',
    onchange: () => update({ group: groupSelect.value || null }),
  }, h('option', { value: '' }, 'All traces'));
  const zoomBy = (factor) => gestures.zoomBy(factor);
  const zoomIn = h('button', { type: 'button', class: 'zoom-in', title: 'Zoom in', 'aria-label': 'Zoom in', onclick: () => zoomBy(1.25) }, '+');
  const zoomOut = h('button', { type: 'button', class: 'zoom-out', title: 'Zoom out', 'aria-label': 'Zoom out', onclick: () => zoomBy(0.8) }, '−');
  const tools = h('div', { class: 'map-tools' }, groupSelect, zoomOut, zoomIn, fitButton);
  const canvas = h('div', { class: 'panel map-canvas', dataset: { group: groupName } }, svg, status, legend, tools);
  const side = h('aside', { class: 'panel side', id: 'node-details', 'aria-live': 'polite' });
  root.append(h('div', { class: 'map-layout' }, canvas, side));

  let answer = null;
  let groupFilter = ''; // the selected group's filter expression, once known
  let selection = { key: null };
  // the traces behind a node or an edge, within the selected group
  const within = (expression) => (groupFilter ? `(${groupFilter}) AND ${expression}` : expression);
  let view = null; // {x, y, k}
  let size = { x: 0, y: 0, width: 0, height: 0 }; // the drawing's bounds, in layout units
  const layout = new StableLayout();
  let placed = new Map(); // the drawn nodes' places (StableLayout.place's nodes)
  let chart = null;
  let timer = null;
  const controller = new AbortController();

  function applyView() {
    viewport.setAttribute('transform', `translate(${view.x} ${view.y}) scale(${view.k})`);
  }
  // The first view of a map laid out for a narrow window (a phone) is drawn no smaller
  // than READABLE, where the smallest labels are 11 CSS px: a map too big for the window
  // then starts at its entry point (its top node), centred across, below the tools, and
  // is panned (a finger, the wheel) or zoomed out (a pinch, the buttons). Fit shows it
  // whole however small.
  function fit({ readable = false } = {}) {
    const box = svg.getBoundingClientRect();
    if (!size.width || !box.width) return;
    let k = Math.min(1.5, box.width / size.width, box.height / size.height) * 0.95;
    const top = [...placed.values()].reduce((a, n) => (!a || n.y < a.y ? n : a), null);
    if (readable && k < READABLE && top) {
      k = READABLE;
      const below = Math.max(0, tools.getBoundingClientRect().bottom - box.top) + 8;
      view = { k, x: box.width / 2 - top.x * k, y: below - (top.y - top.height / 2) * k };
    } else {
      view = { k, x: (box.width - size.width * k) / 2 - size.x * k, y: (box.height - size.height * k) / 2 - size.y * k };
    }
    applyView();
    fitButton.classList.remove('attention');
    fitButton.title = 'Fit the map to the window';
  }
  // nodes placed out of sight by a refresh are pointed out, never scrolled to (that would
  // move every node under the reader's pointer)
  function outOfSight(refs, laid) {
    const box = svg.getBoundingClientRect();
    return refs.some((ref) => {
      const n = laid.nodes.get(ref);
      const x = view.x + n.x * view.k;
      const y = view.y + n.y * view.k;
      return x < 0 || y < 0 || x > box.width || y > box.height;
    });
  }

  // A node's latency and faults over the range (GetTimeSeriesServiceStatistics), read
  // again at most every 30 s while the node stays selected; drawn under its histogram.
  let series = { key: null, at: 0, points: null, charts: [] };
  function nodeSeries(node) {
    const key = `${node.Name}\u0000${node.Type || ''}`;
    const latency = h('div', { class: 'chart', id: 'node-latency' });
    const faults = h('div', { class: 'chart', id: 'node-faults' });
    const draw = (points) => {
      if (!latency.isConnected) return;
      const rows = points.filter((p) => p.ServiceSummaryStatistics);
      if (!rows.length) { latency.replaceChildren(state('empty', 'No statistics over this range.')); return; }
      const times = rows.map((p) => p.Timestamp);
      const stats = rows.map((p) => fmt.outcomes(p.ServiceSummaryStatistics));
      series.charts.push(timeSeries(latency, { times, height: 120, yLabel: 's', series: [{ label: 'Average latency', colour: COLOURS.requests, values: stats.map((o) => (o.total ? o.average : null)) }] }));
      series.charts.push(timeSeries(faults, { times, height: 120, series: [{ label: 'Faults', colour: COLOURS.fault, values: stats.map((o) => o.fault) }, { label: 'Errors', colour: COLOURS.error, values: stats.map((o) => o.error + o.throttle) }] }));
      latency.dataset.points = String(rows.length);
    };
    if (series.key === key && series.points && Date.now() - series.at < 30000) {
      const { points } = series;
      setTimeout(() => draw(points), 0);
    } else {
      series = { key, at: Date.now(), points: null, charts: series.charts };
      const now = Date.now() / 1000;
      const [start, end] = range.live ? [now - range.seconds, now] : [range.start, range.end];
      const period = Math.max(60, Math.ceil((end - start) / 60 / 60) * 60);
      xray('TimeSeriesServiceStatistics', {
        StartTime: start, EndTime: end, Period: period, EntitySelectorExpression: nodeFilter(node),
      }, { signal: controller.signal }).then((answer) => {
        if (series.key !== key) return;
        series.points = answer.TimeSeriesServiceStatistics || [];
        draw(series.points);
      }).catch((err) => {
        if (err.name !== 'AbortError' && latency.isConnected) latency.replaceChildren(state('error', `Statistics unavailable: ${err.message}`));
      });
    }
    return [h('h2', null, 'Latency and faults over time'), latency, faults];
  }

  // A refresh rebuilds the panel and its charts are drawn a moment later (the series from a
  // request or its cache): the new holders keep the heights the old charts had, so the links
  // below them do not move under the reader's pointer.
  let shownKey = null;
  function showSide() {
    const heights = shownKey === selection.key
      ? new Map([...side.querySelectorAll('.chart[id]')].map((el) => [el.id, el.getBoundingClientRect().height]))
      : new Map();
    shownKey = selection.key;
    fillSide();
    for (const el of side.querySelectorAll('.chart[id]')) {
      const height = heights.get(el.id);
      if (height) el.style.minHeight = `${height}px`;
    }
  }

  function fillSide() {
    if (chart) { chart.destroy(); chart = null; }
    for (const old of series.charts) {
      try { old.destroy(); } catch (err) { console.error(err); }
    }
    series.charts = [];
    const sel = selection;
    if (!answer) { side.replaceChildren(); return; }
    if (!sel.key) {
      const services = answer.Services || [];
      const roots = services.filter((n) => n.Root);
      side.replaceChildren(
        h('h2', null, 'Overview'),
        pairs([
          ['Range', range.label],
          ['Group', groupName || 'All traces'],
          ['Nodes', fmt.count(services.length)],
          ['Entry points', roots.map((n) => n.Name).join(', ') || '—'],
        ]),
        h('p', { class: 'muted' }, 'Select a node or an edge to see its statistics and traces.'));
      return;
    }
    if (sel.node) {
      const node = sel.node;
      const info = typeInfo(node.Type);
      // the links come first, under the name: what is drawn below them (statistics, charts)
      // changes size as the live refresh brings new figures, and must not move them
      const actions = h('div', { class: 'actions' });
      if (node.Type !== 'client') {
        actions.append(h('a', { class: 'button primary', id: 'view-traces', href: href('traces', { ...carry, filter: within(nodeFilter(node)) }) }, 'View traces'));
        actions.append(h('a', { class: 'button', href: href('traces', { ...carry, filter: within(`${nodeFilter(node)} { fault OR error }`) }) }, 'Traces with errors'));
      }
      const group = logGroupOf(node);
      if (group) {
        actions.append(h('a', { class: 'button', id: 'node-logs', href: href('logs', { ...carry, groups: group, q: RECENT_LINES }) }, 'Recent log lines'));
        actions.append(h('a', { class: 'button', id: 'node-log-errors', href: href('logs', { ...carry, groups: group, q: RECENT_ERRORS }) }, 'Recent log errors'));
      }
      const body = [h('h2', null, node.Name), h('p', { class: 'muted' }, info.label)];
      if (actions.childElementCount) body.push(actions);
      if (node.SummaryStatistics) {
        body.push(statsList(node.SummaryStatistics, minutes, node.ResponseTimeHistogram), h('h2', null, 'Response time distribution'));
        const holder = h('div', { class: 'chart', id: 'node-histogram' });
        body.push(holder);
        side.replaceChildren(...body);
        const b = weightedBins(node.ResponseTimeHistogram || []);
        if (b.x.length) chart = histogram(holder, { ...b, label: 'Requests', height: 160 });
        else holder.append(state('empty', 'No response times recorded.'));
      } else {
        const calls = (node.Edges || []).reduce((n, e) => n + (e.SummaryStatistics ? e.SummaryStatistics.TotalCount : 0), 0);
        body.push(pairs([['Requests sent', fmt.count(calls)]]));
        side.replaceChildren(...body);
      }
      if (node.SummaryStatistics && node.Type !== 'client') side.append(...nodeSeries(node));
      return;
    }
    const { edge, source, target } = sel;
    const holder = h('div', { class: 'chart', id: 'node-histogram' });
    side.replaceChildren(
      h('h2', null, `${source.Name} → ${target.Name}`),
      h('p', { class: 'muted' }, `${typeInfo(source.Type).label} → ${typeInfo(target.Type).label}`),
      h('div', { class: 'actions' },
        h('a', { class: 'button primary', id: 'view-traces', href: href('traces', { ...carry, filter: within(edgeFilter(source, target)) }) }, 'View traces')),
      statsList(edge.SummaryStatistics, minutes, edge.ResponseTimeHistogram),
      h('h2', null, 'Response time distribution'),
      holder);
    const b = weightedBins(edge.ResponseTimeHistogram || []);
    if (b.x.length) chart = histogram(holder, { ...b, label: 'Requests', height: 160 });
  }

  function select(sel) {
    selection = sel;
    for (const el of viewport.querySelectorAll('.node, .edge')) el.classList.remove('selected');
    draw();
    showSide();
  }

  function draw() {
    const services = (answer && answer.Services) || [];
    if (!services.length) {
      viewport.replaceChildren();
      status.replaceChildren(state('empty', `No traces in the ${range.label.toLowerCase()}. `,
        'Send segments to this server (UDP, the X-Ray daemon protocol) or run ', h('code', null, 'fluoroscope demo'), '.'));
      return;
    }
    status.replaceChildren();
    const focused = viewport.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    // left to right where there is room, top to bottom in a narrow window
    const rankdir = canvas.clientWidth && canvas.clientWidth < 640 ? 'TB' : 'LR';
    const narrow = rankdir === 'TB';
    const laid = layout.place(services, rankdir, measurer(services, narrow));
    viewport.replaceChildren(...drawGraph(answer, minutes, selection, select, laid, narrow));
    if (focused) {
      // a refresh redraws everything: keep the keyboard where it was
      const again = [...viewport.querySelectorAll('.node, .edge')].find((el) => el.dataset.key === focused);
      if (again) again.focus();
    }
    size = laid.bounds;
    placed = laid.nodes;
    if (laid.fresh || !view) fit({ readable: narrow });
    else applyView();
    if (view && laid.added.length && outOfSight(laid.added, laid)) {
      fitButton.classList.add('attention');
      fitButton.title = 'New nodes are outside the view: fit the map to the window';
    }
  }

  async function load() {
    try {
      const now = Date.now() / 1000;
      const body = range.live ? { StartTime: now - range.seconds, EndTime: now } : { StartTime: range.start, EndTime: range.end };
      if (groupName) body.GroupName = groupName;
      const fresh = await xray('ServiceGraph', body, { signal: controller.signal });
      answer = fresh;
      if (selection.key) {
        // keep the selection on the same service or edge after a refresh
        const find = (n) => (fresh.Services || []).find((m) => m.Name === n.Name && (m.Type || '') === (n.Type || ''));
        if (selection.node) {
          const node = find(selection.node);
          selection = node ? { key: `n${node.ReferenceId}`, node } : { key: null };
        } else {
          const source = find(selection.source);
          const target = find(selection.target);
          const edge = source && target && (source.Edges || []).find((e) => e.ReferenceId === target.ReferenceId);
          selection = edge ? { key: `${source.ReferenceId}>${target.ReferenceId}`, edge, source, target } : { key: null };
        }
      }
      if (pressed()) pending = true; // redrawn once the press (and its click) is over
      else {
        draw();
        showSide();
      }
      canvas.dataset.updated = String(Date.now());
    } catch (err) {
      if (err.name === 'AbortError') return;
      status.replaceChildren(state('error', `The service map could not be loaded: ${err.message}`));
    }
    if (range.live && !controller.signal.aborted) timer = setTimeout(load, refreshMs(range.seconds));
  }

  // A live refresh redraws the graph; one arriving between a press and its release would
  // replace the pressed element and lose the click. So while a pointer is down the redraw
  // waits, and it happens after the click has been dispatched.
  // The panel beside the map is rebuilt by the same refresh, so a press on its links and
  // buttons ("View traces") holds the refresh back as well.
  let pending = false;
  const release = () => {
    if (!pending) return;
    pending = false;
    setTimeout(() => {
      if (pressed() || controller.signal.aborted) { pending = true; return; }
      draw();
      showSide();
    }, 0);
  };
  const gestures = attachGestures(svg, {
    get: () => view,
    set: (next) => { view = next; applyView(); },
    onRelease: release,
  });
  const sidePresses = new Set(); // pointerIds down on the panel
  const listening = { signal: controller.signal };
  side.addEventListener('pointerdown', (event) => sidePresses.add(event.pointerId), listening);
  const sideLift = (event) => {
    if (sidePresses.delete(event.pointerId) && !sidePresses.size) release();
  };
  // on the window: a pointer may be lifted outside the panel
  window.addEventListener('pointerup', sideLift, listening);
  window.addEventListener('pointercancel', sideLift, listening);
  const pressed = () => gestures.pressed() || sidePresses.size > 0;
  svg.addEventListener('click', () => { if (selection.key) select({ key: null }); });
  // a window narrowed past the point where the map is laid out top to bottom (or widened
  // back) is laid out again and fitted; otherwise the nodes stay where they are
  const observer = new ResizeObserver(() => {
    if (!answer) return;
    if (pressed()) pending = true;
    else draw();
  });
  observer.observe(canvas);

  xray('Groups', {}, { signal: controller.signal }).then((answer) => {
    const groups = answer.Groups || [];
    const names = groups.map((g) => g.GroupName).filter((n) => n && n !== 'Default');
    const chosen = groups.find((g) => g.GroupName === groupName);
    groupFilter = (chosen && chosen.FilterExpression) || '';
    // a node picked before the group's filter was known: its links take the group in
    if (groupFilter && selection.key) {
      if (pressed()) pending = true;
      else showSide();
    }
    if (groupName && !names.includes(groupName)) names.unshift(groupName);
    groupSelect.append(...names.map((n) => h('option', { value: n, selected: n === groupName }, n)));
  }).catch(() => {}); // the map works without the list; a bad group shows as the map's error
  load();
  return () => {
    controller.abort();
    clearTimeout(timer);
    observer.disconnect();
    gestures.stop();
    if (chart) chart.destroy();
  };
}
