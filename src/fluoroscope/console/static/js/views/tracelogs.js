// The trace timeline's Logs pane: every log line of one trace (GET /api/traces/<id>/logs,
// the server's one answer to "which lines belong to this trace"), in time order, each
// marked with the service that wrote it and its log group and coloured by level.
//
// logsPane({traceId, onPick}) returns {el, narrow(node), mark(entityId), close()}:
// - narrow(node) keeps the lines of a timeline entry (its id and its subsegments'; for
//   Lambda's own segment, also its function segment's); narrow(null) shows all again;
// - clicking a line calls onPick(entityId) (the timeline selects that entry);
// - a search box keeps the lines containing its text; long lines are clipped with an
//   "expand" toggle; JSON lines are shown as fields; lines are drawn a page at a time;
// - "Open in Logs view" opens the same lines as a Logs Insights query;
// - while the trace is recent, the pane polls for lines that arrive later.
// Nothing from a log becomes markup: messages are text nodes (and ANSI escapes are
// removed from what is shown).

import { traceLogs } from '../api.js';
import { h } from '../dom.js';
import { href } from '../router.js';

const PAGE = 200;
const CLIP = 400; // characters shown of a long line before "expand"
const POLL_MS = 1000;
const RECENT_S = 300; // poll while the trace ended less than this long ago
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]/g;
const LEVELS = { ERROR: 'error', FATAL: 'error', CRITICAL: 'error', WARN: 'warn', WARNING: 'warn', INFO: 'info', DEBUG: 'debug', TRACE: 'debug' };

const pad = (n, w = 2) => String(n).padStart(w, '0');
function clock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function levelOf(line) {
  const level = String(line.level || '').toUpperCase();
  if (LEVELS[level]) return LEVELS[level];
  if (line.type === 'REPORT' || line.type === 'START' || line.type === 'END' || line.type) return 'platform';
  return 'none';
}

function parseJson(line) {
  const text = line.json || (String(line.message).trim().startsWith('{') ? String(line.message).trim() : '');
  if (!text) return null;
  try {
    const value = JSON.parse(text);
    return value && typeof value === 'object' && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

/** The query the Logs view runs for these lines (the X-Ray console's own form). */
export function traceQuery(traceId) {
  return `fields @timestamp, @log, @message, @xrayTraceId\n| filter @message like "${traceId}" or @xrayTraceId = "${traceId}"\n| sort @timestamp asc`;
}

export function logsPane({ traceId, traceEnd = 0, onPick }) {
  const controller = new AbortController();
  let lines = [];
  let answer = null;
  let narrowed = null; // {name, ids: Set}
  let search = '';
  let shown = PAGE;
  let marked = null;
  let timer = null;

  const count = h('span', { class: 'muted lg-count' });
  const scope = h('span', { class: 'lg-scope' });
  const searchBox = h('input', {
    type: 'search', class: 'lg-search', placeholder: 'Search these lines', 'aria-label': 'Search the trace’s log lines',
    oninput: () => { search = searchBox.value; shown = PAGE; draw(); },
  });
  const openLink = h('a', { class: 'lg-open', href: href('logs', { q: traceQuery(traceId) }) }, 'Open in Logs view');
  const refresh = h('button', { type: 'button', onclick: () => load() }, 'Refresh');
  const list = h('ol', { class: 'lg-lines', id: 'trace-logs-lines', 'aria-label': 'Log lines' });
  const more = h('button', { type: 'button', class: 'lg-more hidden', onclick: () => { shown += PAGE; draw(); } });
  const status = h('p', { class: 'state loading lg-state', role: 'status' }, 'Loading log lines…');
  const el = h('section', { class: 'panel lg-pane', id: 'trace-logs', 'aria-label': 'Logs' },
    h('div', { class: 'lg-head' }, h('h2', null, 'Logs'), count, scope,
      h('span', { class: 'lg-tools' }, searchBox, refresh, openLink)),
    status, list, more);

  function visible() {
    const needle = search.trim().toLowerCase();
    return lines.filter((line) => (!narrowed || narrowed.ids.has(line.entityId) || narrowed.ids.has(line.segmentId) && narrowed.segment)
      && (!needle || String(line.message).toLowerCase().includes(needle) || String(line.service).toLowerCase().includes(needle)));
  }

  function lineEl(line, services) {
    const level = levelOf(line);
    const message = String(line.message ?? '').replace(ANSI, '').replace(/\n$/, '');
    const fields = parseJson(line);
    const clip = fields ? CLIP / 4 : CLIP; // a JSON line is read as its fields below
    const long = message.length > clip || message.split('\n').length > 4;
    const body = h('pre', { class: ['lg-msg', long ? 'clipped' : ''] }, long ? `${message.slice(0, clip)}…` : message);
    const parts = [body];
    if (long) {
      const toggle = h('button', {
        type: 'button', class: 'lg-expand', 'aria-expanded': 'false',
        onclick: (event) => {
          event.stopPropagation();
          const open = toggle.getAttribute('aria-expanded') !== 'true';
          toggle.setAttribute('aria-expanded', String(open));
          toggle.textContent = open ? 'collapse' : `expand (${message.length.toLocaleString('en-US')} characters)`;
          body.textContent = open ? message : `${message.slice(0, clip)}…`;
          body.classList.toggle('clipped', !open);
        },
      }, `expand (${message.length.toLocaleString('en-US')} characters)`);
      parts.push(toggle);
    }
    if (fields) {
      parts.push(h('dl', { class: 'lg-fields' }, Object.entries(fields).slice(0, 40).flatMap(([k, v]) => [
        h('dt', null, k), h('dd', null, typeof v === 'string' ? v : JSON.stringify(v)),
      ])));
    }
    const serviceIndex = services.indexOf(line.service);
    const li = h('li', {
      class: ['lg-line', `lv-${level}`, line.entityId && line.entityId === marked ? 'marked' : ''],
      tabindex: '0',
      dataset: { entity: line.entityId || '', service: line.service || '', group: line.logGroup || '', level },
      title: line.entityId ? 'Select its entry in the timeline' : null,
      onclick: () => { if (line.entityId) onPick(line.entityId); },
      onkeydown: (event) => { if ((event.key === 'Enter' || event.key === ' ') && line.entityId) { event.preventDefault(); onPick(line.entityId); } },
    },
    h('span', { class: 'lg-time mono', title: new Date(line.timestamp).toISOString() }, clock(line.timestamp)),
    h('span', { class: ['lg-service', `svc-${serviceIndex % 8}`], title: line.origin || '' }, line.service || '?'),
    h('span', { class: 'lg-group muted mono', title: `${line.logGroup} / ${line.logStream}` }, line.logGroup),
    h('span', { class: ['lg-level', level] }, line.level || line.type || ''),
    h('div', { class: 'lg-body' }, parts));
    return li;
  }

  function draw() {
    if (!answer) return;
    const services = [...new Set(lines.map((l) => l.service))];
    const chosen = visible();
    const groups = new Set(lines.map((l) => l.logGroup));
    count.textContent = `${lines.length.toLocaleString('en-US')} line${lines.length === 1 ? '' : 's'} from ${services.length} service${services.length === 1 ? '' : 's'} in ${groups.size} log group${groups.size === 1 ? '' : 's'}${answer.truncated ? ' (the first ones)' : ''}`;
    scope.replaceChildren(...(narrowed ? [
      'Showing the lines of ', h('strong', null, narrowed.name), ' ',
      h('button', { type: 'button', class: 'lg-all', onclick: () => api.narrow(null) }, 'Show all'),
    ] : []));
    if (!lines.length) {
      status.className = 'state empty lg-state';
      status.textContent = 'No log lines belong to this trace (yet). Lambda functions, API Gateway stages and applications with a log handler write them.';
    } else if (!chosen.length) {
      status.className = 'state empty lg-state';
      status.textContent = narrowed ? `No log line of ${narrowed.name}${search ? ' matches the search' : ''}.` : 'No line matches the search.';
    } else {
      status.className = 'hidden';
    }
    list.replaceChildren(...chosen.slice(0, shown).map((line) => lineEl(line, services)));
    const left = chosen.length - shown;
    more.classList.toggle('hidden', left <= 0);
    more.textContent = left > 0 ? `Show ${Math.min(PAGE, left)} more (${left.toLocaleString('en-US')} left)` : '';
  }

  async function load() {
    try {
      answer = await traceLogs(traceId, { signal: controller.signal });
    } catch (err) {
      if (controller.signal.aborted || err.name === 'AbortError') return;
      status.className = 'state error lg-state';
      status.textContent = `The log lines could not be loaded: ${err.message}`;
      return;
    }
    const fresh = answer.lines || [];
    const same = fresh.length === lines.length && (!fresh.length || fresh[fresh.length - 1].eventId === lines[lines.length - 1].eventId);
    if (same && list.childElementCount) return; // a poll that found nothing new: keep what is drawn
    lines = fresh;
    // the groups the lines came from (the candidate groups may not all exist)
    const groups = lines.length ? [...new Set(lines.map((l) => l.logGroup))] : (answer.logGroups || []);
    if (groups.length) {
      openLink.setAttribute('href', href('logs', {
        q: traceQuery(traceId), groups: groups.join(','),
        from: answer.startTime ? String(answer.startTime / 1000) : '', to: answer.endTime ? String(answer.endTime / 1000) : '',
      }));
    }
    draw();
  }

  function poll() {
    if (controller.signal.aborted || Date.now() / 1000 - traceEnd > RECENT_S) return;
    timer = setTimeout(async () => { await load(); poll(); }, POLL_MS);
  }

  const api = {
    el,
    narrow(node, extraIds = []) {
      if (!node) narrowed = null;
      else {
        const ids = new Set([node.id, ...extraIds]);
        const walk = (n) => { for (const c of n.children) { ids.add(c.id); walk(c); } };
        walk(node);
        narrowed = { name: node.name, ids, segment: node.depth === 0 };
      }
      shown = PAGE;
      draw();
    },
    mark(entityId) {
      marked = entityId;
      for (const li of list.children) li.classList.toggle('marked', !!entityId && li.dataset.entity === entityId);
    },
    close() {
      controller.abort();
      if (timer) clearTimeout(timer);
    },
  };
  load().then(poll);
  return api;
}
