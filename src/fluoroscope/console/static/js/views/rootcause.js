// Root causes, as the server computes them for every trace (GetTraceSummaries'
// FaultRootCauses, ErrorRootCauses, ResponseTimeRootCauses):
//
// * rootCauses(): on a trace's timeline, a panel stating each cause (service, entity path,
//   exceptions, with the stack the entity recorded) and the timeline entry holding it
//   highlighted; a failed trace opens with that entry selected and scrolled to.
// * causeTables(): for the Analytics view, the fault, error and response-time causes of a
//   set of summaries, ranked by how many traces they hold, each linking to those traces.
//
// Everything from data goes in as text (dom.js h()); nothing becomes markup.

import { xray } from '../api.js';
import { h } from '../dom.js';
import * as fmt from '../format.js';
import { href } from '../router.js';
import { isObject, text } from './entity.js';

export const CATEGORIES = [
  { key: 'fault', field: 'FaultRootCauses', title: 'Fault', keyword: 'fault' },
  { key: 'error', field: 'ErrorRootCauses', title: 'Error', keyword: 'error' },
  { key: 'responsetime', field: 'ResponseTimeRootCauses', title: 'Response time', keyword: 'responsetime' },
];
const PAGES = 20; // summary pages read at most to find one trace's summary
const FRAMES = 8; // stack frames shown in the panel
const TOP = 10; // causes per table

/** The trace id in X-Ray's form (1-xxxxxxxx-…) from either form; null if neither. */
export function canonicalId(value) {
  const id = String(value || '').trim().toLowerCase();
  if (/^1-[0-9a-f]{8}-[0-9a-f]{24}$/.test(id)) return id;
  if (/^[0-9a-f]{32}$/.test(id)) return `1-${id.slice(0, 8)}-${id.slice(8)}`;
  return null;
}

/** The summary of one trace (read by the time its id carries), or null. */
export async function traceSummary(traceId, { signal } = {}) {
  const id = canonicalId(traceId);
  if (!id) return null;
  const epoch = parseInt(id.slice(2, 10), 16);
  let token = null;
  for (let i = 0; i < PAGES; i += 1) {
    const body = { StartTime: epoch, EndTime: epoch + 1, TimeRangeType: 'TraceId' };
    if (token) body.NextToken = token;
    const page = await xray('TraceSummaries', body, { signal });
    const found = (page.TraceSummaries || []).find((s) => String(s.Id).toLowerCase() === id);
    if (found) return found;
    token = page.NextToken;
    if (!token) return null;
  }
  return null;
}

function serviceOf(cause) {
  const svc = isObject(cause) && Array.isArray(cause.Services) ? cause.Services.find(isObject) : null;
  if (!svc) return null;
  const path = (Array.isArray(svc.EntityPath) ? svc.EntityPath : []).filter(isObject);
  return { name: text(svc.Name), type: text(svc.Type), inferred: svc.Inferred === true, path };
}

/** The timeline node a cause's path leads to: by names, from a segment of its first step
 * down; where names repeat, the entry with the cause's status (or the longest). */
export function locate(model, cause, category) {
  const svc = serviceOf(cause);
  if (!svc || !svc.path.length) return null;
  const names = svc.path.map((step) => text(step.Name));
  const score = (n) => (category === 'responsetime' ? n.end - n.start : (n.status === category ? 1 : 0));
  const pick = (list) => list.slice().sort((a, b) => score(b) - score(a))[0];
  let best = null;
  let bestDepth = -1;
  for (const seg of model.segments.filter((s) => s.name === names[0])) {
    let node = seg;
    let depth = 0;
    for (let i = 1; i < names.length; i += 1) {
      const next = pick(node.children.filter((c) => c.name === names[i]));
      if (!next) break;
      node = next;
      depth = i;
    }
    if (depth > bestDepth || (depth === bestDepth && score(node) > score(best))) {
      best = node;
      bestDepth = depth;
    }
  }
  if (best) return best;
  const last = names[names.length - 1];
  return pick(model.nodes.filter((n) => n.name === last)) || null;
}

function stackOf(node) {
  const cause = node && isObject(node.doc.cause) ? node.doc.cause : null;
  const list = cause && Array.isArray(cause.exceptions) ? cause.exceptions.filter(isObject) : [];
  const ex = list.find((e) => Array.isArray(e.stack) && e.stack.length) || list[0];
  if (!ex) return null;
  const frames = (Array.isArray(ex.stack) ? ex.stack : []).filter(isObject).slice(0, FRAMES);
  return h('div', { class: 'rc-exception' },
    h('p', { class: 'mono rc-ex-title' }, `${text(ex.type) || 'Exception'}: ${text(ex.message)}`),
    frames.length
      ? h('ol', { class: 'tl-stack rc-stack', 'aria-label': 'Stack' }, frames.map((f) => {
        const where = f.path !== undefined ? `${text(f.path)}${f.line !== undefined ? `:${text(f.line)}` : ''}` : '';
        return h('li', null, text(f.label) || '(anonymous)', where ? h('span', { class: 'tl-where' }, ` (${where})`) : null);
      }))
      : null);
}

function causeCard(category, cause, node, show) {
  const svc = serviceOf(cause);
  const steps = svc.path.map((step, i) => {
    const exceptions = (Array.isArray(step.Exceptions) ? step.Exceptions : []).filter(isObject);
    const coverage = typeof step.Coverage === 'number' ? ` ${(step.Coverage * 100).toFixed(0)} %` : '';
    return h('li', { class: ['rc-step', i === svc.path.length - 1 ? 'last' : ''] },
      h('span', { class: 'rc-step-name' }, text(step.Name)),
      step.Remote ? h('span', { class: 'tl-tag' }, 'remote') : null,
      coverage ? h('span', { class: 'muted rc-coverage' }, coverage) : null,
      exceptions.map((ex) => h('span', { class: 'rc-ex mono' }, ` ${text(ex.Name) || 'Exception'}${ex.Message ? `: ${text(ex.Message)}` : ''}`)));
  });
  return h('div', { class: ['rc-cause', category.key], dataset: { category: category.key, service: svc.name, entity: node ? node.name : '' } },
    h('div', { class: 'rc-cause-head' },
      h('span', { class: ['badge', category.key === 'responsetime' ? 'slow' : category.key] }, category.title),
      h('strong', { class: 'rc-service' }, svc.name),
      svc.type ? h('span', { class: 'muted' }, ` ${svc.type}`) : null,
      svc.inferred ? h('span', { class: 'tl-tag', title: 'A downstream service nobody instrumented' }, 'inferred') : null,
      node ? h('button', { type: 'button', class: 'tl-link rc-show', onclick: () => show(node) }, 'Show in timeline') : null),
    h('ol', { class: 'rc-path', 'aria-label': 'Entity path' }, steps),
    category.key !== 'responsetime' ? stackOf(node) : null);
}

/**
 * The root-cause panel of a trace's timeline, drawn with it. ctx: {summary (the trace's
 * summary, or null), model, mount(panel), rowOf(node) -> row element, select(node), keep
 * (true when the URL already selects an entry)}. A failed trace selects and scrolls to its
 * first fault (else error) cause's entry; every cause's entry is highlighted.
 */
export function rootCauses(ctx) {
  const { summary } = ctx;
  if (!isObject(summary)) return;
  const highlight = (node, category) => {
    const row = node && ctx.rowOf(node);
    if (row) {
      row.classList.add('rc-entry');
      row.dataset.rootcause = row.dataset.rootcause ? `${row.dataset.rootcause} ${category}` : category;
    }
  };
  const show = (node) => {
    ctx.select(node);
    const row = ctx.rowOf(node);
    if (row) row.scrollIntoView({ block: 'center' });
  };
  const cards = [];
  let reveal = null;
  for (const category of CATEGORIES) {
    const causes = Array.isArray(summary[category.field]) ? summary[category.field].filter(isObject) : [];
    for (const cause of causes) {
      if (!serviceOf(cause)) continue;
      const node = locate(ctx.model, cause, category.key);
      highlight(node, category.key);
      if (!reveal && node && category.key !== 'responsetime') reveal = node;
      cards.push(causeCard(category, cause, node, show));
    }
  }
  if (!cards.length) return;
  const failed = cards.some((c) => c.dataset.category !== 'responsetime');
  ctx.mount(h('section', { id: 'root-causes', class: ['panel', 'rc-panel', failed ? 'failed' : ''], 'aria-label': 'Root causes' },
    h('h2', null, failed ? 'Root cause' : 'Where the time went'),
    cards));
  if (reveal && !ctx.keep) show(reveal);
}

// ---- Analytics: root causes of a set -------------------------------------------------------

function causeKey(category, cause) {
  const svc = serviceOf(cause);
  if (!svc || !svc.path.length) return null;
  const last = svc.path[svc.path.length - 1];
  const exceptions = category.key === 'responsetime'
    ? []
    : svc.path.flatMap((s) => (Array.isArray(s.Exceptions) ? s.Exceptions : []).filter(isObject).map((e) => text(e.Name)).filter(Boolean));
  return {
    id: JSON.stringify([svc.name, svc.path.map((s) => text(s.Name)), exceptions]),
    service: svc.name,
    path: svc.path.map((s) => text(s.Name)),
    entity: text(last.Name),
    exception: exceptions.length ? exceptions[exceptions.length - 1] : '',
  };
}

/** The filter expression selecting the traces holding this cause. */
export function causeFilter(category, key) {
  const kw = `rootcause.${category.keyword}`;
  const parts = [`${kw}.service { name = ${fmt.quote(key.service)} }`, `${kw}.entity { last and name = ${fmt.quote(key.entity)} }`];
  if (key.exception) parts.push(`${kw}.exception { name = ${fmt.quote(key.exception)} }`);
  return parts.join(' AND ');
}

/** Per category, the causes of `list` (summaries) ranked by traces: [{key, traces}]. */
export function tallyCauses(list) {
  const out = {};
  for (const category of CATEGORIES) {
    const counts = new Map();
    for (const summary of list) {
      const seen = new Set();
      for (const cause of Array.isArray(summary[category.field]) ? summary[category.field] : []) {
        const key = causeKey(category, cause);
        if (!key || seen.has(key.id)) continue;
        seen.add(key.id);
        const row = counts.get(key.id) || { key, traces: 0 };
        row.traces += 1;
        counts.set(key.id, row);
      }
    }
    out[category.key] = [...counts.values()].sort((a, b) => b.traces - a.traces);
  }
  return out;
}

/** The Analytics section: one table per category for the summaries `list`. ctx: {filter, carry}. */
export function causeTables(list, ctx) {
  const tallied = tallyCauses(list);
  const within = (expr) => (ctx.filter ? `(${ctx.filter}) AND ${expr}` : expr);
  const tables = CATEGORIES.map((category) => {
    const rows = tallied[category.key];
    const shown = rows.slice(0, TOP);
    return h('div', { class: 'panel rc-table-panel', dataset: { category: category.key } },
      h('h3', null, `${category.title} root causes`,
        h('span', { class: 'muted' }, rows.length > TOP ? ` · top ${TOP} of ${fmt.count(rows.length)}` : '')),
      shown.length
        ? h('div', { class: 'table-scroll' }, h('table', { class: 'list rc-table', dataset: { category: category.key } },
          h('thead', null, h('tr', null,
            h('th', { scope: 'col' }, 'Service'),
            h('th', { scope: 'col' }, 'Entity path'),
            category.key === 'responsetime' ? null : h('th', { scope: 'col' }, 'Exception'),
            h('th', { scope: 'col', class: 'num' }, 'Traces'))),
          h('tbody', null, shown.map(({ key, traces }) => {
            const expr = within(causeFilter(category, key));
            return h('tr', { dataset: { service: key.service, entity: key.entity } },
              h('td', null, key.service),
              h('td', { class: 'rc-path-cell' }, key.path.join(' › ')),
              category.key === 'responsetime' ? null : h('td', { class: 'mono' }, key.exception || '—'),
              h('td', { class: 'num' },
                h('a', { href: href('traces', { filter: expr, ...ctx.carry }), title: `Traces where ${expr}` },
                  `${fmt.count(traces)} (${fmt.percent(traces, list.length)})`)));
          }))))
        : h('p', { class: 'muted rc-none' }, `No ${category.title.toLowerCase()} root causes in this set.`));
  });
  return h('section', { id: 'root-cause-tables', class: 'rc-tables', 'aria-label': 'Root causes' },
    h('h2', null, 'Root causes'), h('div', { class: 'rc-grid' }, tables));
}
