// The details of one timeline entry, tab by tab: overview, resources (the aws block),
// annotations, metadata, exceptions with their stacks, http, sql and the raw document.
// Every value is rendered as text (dom.js). ctx is {model, traceId, entityLink(node)}:
// the trace's model (timeline.js buildModel) and a link to another entry of it.

import { h, pairs, jsonBlock } from '../dom.js';
import * as fmt from '../format.js';

export const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
export const nonEmpty = (v) => (isObject(v) ? Object.keys(v).length > 0 : v !== undefined && v !== null && v !== '');
export const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
export const text = (v) => (v === undefined || v === null ? '' : String(v));

export function statusBadge(status) {
  return h('span', { class: ['badge', status], title: `Status: ${status}` }, status);
}

export function coldBadge() {
  return h('span', { class: 'badge cold', title: 'Lambda cold start (Initialization)' }, 'Cold start');
}

export function none(what = 'None') {
  return h('p', { class: 'muted tl-none' }, what);
}

/** An object as key/value rows: scalars as text, nested values as JSON. */
function fields(obj) {
  return pairs(Object.entries(obj).map(([k, v]) => {
    if (isObject(v) || (Array.isArray(v) && v.some((x) => x !== null && typeof x === 'object'))) return [k, jsonBlock(v)];
    if (Array.isArray(v)) return [k, v.map(text).join(', ') || '[]'];
    return [k, v === '' ? '""' : text(v)];
  }));
}

export function tabContent(node, name, ctx) {
  const { doc } = node;
  switch (name) {
    case 'Overview': return overview(node, ctx);
    case 'Resources': return nonEmpty(doc.aws) ? (isObject(doc.aws) ? fields(doc.aws) : jsonBlock(doc.aws)) : none();
    case 'Annotations': return annotations(doc.annotations);
    case 'Metadata': return metadata(doc.metadata);
    case 'Exceptions': return exceptionsOf(node, ctx);
    case 'HTTP': return http(doc.http);
    case 'SQL': return nonEmpty(doc.sql) ? sql(doc.sql) : none();
    default: return raw(node);
  }
}

function overview(node, ctx) {
  const { doc } = node;
  const parent = doc.parent_id ? ctx.model.byId.get(String(doc.parent_id)) : null;
  const treeParent = node.parent;
  const service = isObject(doc.service)
    ? Object.entries(doc.service).map(([k, v]) => `${k}: ${isObject(v) || Array.isArray(v) ? JSON.stringify(v) : text(v)}`).join(', ')
    : text(doc.service);
  const offset = node.start - ctx.model.t0;
  return pairs([
    ['Name', node.name],
    ['Kind', node.kind + (doc.inferred ? ' (inferred)' : '')],
    ['Id', h('span', { class: 'mono' }, node.id)],
    ['Parent id', doc.parent_id ? h('span', null, h('span', { class: 'mono' }, text(doc.parent_id)), parent ? [' ', ctx.entityLink(parent)] : ' (not in this trace)') : null],
    ['Within', !doc.parent_id && treeParent ? ctx.entityLink(treeParent) : null],
    ['Origin', text(doc.origin)],
    ['Start', num(doc.start_time) !== null ? `${fmt.timestamp(node.start)} (+${fmt.duration(offset)})` : 'unknown'],
    ['End', node.open ? 'not finished' : fmt.timestamp(node.end)],
    ['Duration', node.open ? `in progress (${fmt.duration(node.end - node.start)} so far)` : fmt.duration(node.end - node.start)],
    ['Status', statusBadge(node.status)],
    ['In progress', node.open ? 'yes' : 'no'],
    ['Cold start', node.cold ? 'yes (Lambda function initialisation)' : node.coldStart ? 'yes (this invocation has an Initialization subsegment)' : null],
    ['Namespace', text(doc.namespace)],
    ['Trace id', h('span', { class: 'mono' }, text(doc.trace_id || node.top.trace_id || ctx.traceId))],
    ['Service', node.kind === 'segment' ? service : null],
    ['User', node.kind === 'segment' ? text(doc.user) : null],
    ['Resource ARN', node.kind === 'segment' ? h('span', { class: 'mono' }, text(doc.resource_arn)) : null],
    ['Subsegments', node.children.length ? fmt.count(node.children.length) : null],
  ].filter(([, v]) => !(v instanceof Node && v.textContent === '')));
}

function annotations(value) {
  if (!nonEmpty(value)) return none();
  if (!isObject(value)) return jsonBlock(value);
  return h('table', { class: 'list tl-kv' },
    h('thead', null, h('tr', null, h('th', null, 'Key'), h('th', null, 'Value'), h('th', null, 'Type'))),
    h('tbody', null, Object.entries(value).map(([k, v]) => h('tr', null,
      h('td', { class: 'mono' }, k),
      h('td', { class: 'mono' }, isObject(v) || Array.isArray(v) ? JSON.stringify(v) : text(v)),
      h('td', { class: 'muted' }, v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v)))));
}

function metadata(value) {
  if (!nonEmpty(value)) return none();
  if (!isObject(value)) return jsonBlock(value);
  return Object.entries(value).map(([ns, v]) => h('div', { class: 'tl-ns' }, h('h3', null, ns), jsonBlock(v)));
}

function exceptionsOf(node, ctx) {
  const cause = node.doc.cause;
  if (!nonEmpty(cause)) return none();
  if (typeof cause === 'string') {
    const ref = ctx.model.exceptions.get(cause);
    if (!ref) return h('p', null, 'Caused by exception ', h('span', { class: 'mono' }, cause), ', which is not recorded in this trace.');
    return [
      h('p', { class: 'tl-cause-ref' }, 'Caused by exception ', h('span', { class: 'mono' }, cause), ' recorded in ', ctx.entityLink(ref.node), ':'),
      exceptionCard(ref.ex, ctx),
    ];
  }
  if (!isObject(cause)) return jsonBlock(cause);
  const list = Array.isArray(cause.exceptions) ? cause.exceptions.filter(isObject) : [];
  return [
    cause.working_directory ? pairs([['Working directory', h('span', { class: 'mono' }, text(cause.working_directory))]]) : null,
    Array.isArray(cause.paths) && cause.paths.length ? pairs([['Paths', cause.paths.map(text).join(', ')]]) : null,
    list.length ? list.map((ex) => exceptionCard(ex, ctx)) : none('No exceptions recorded.'),
  ];
}

function exceptionCard(ex, ctx) {
  const stack = Array.isArray(ex.stack) ? ex.stack.filter(isObject) : [];
  const linked = ex.cause ? ctx.model.exceptions.get(String(ex.cause)) : null;
  return h('div', { class: 'tl-exception' },
    h('div', { class: 'tl-ex-title' },
      h('strong', { class: 'mono' }, text(ex.type) || 'Exception'),
      ex.remote ? h('span', { class: 'tl-tag', title: 'Raised by a downstream service' }, 'remote') : null),
    h('p', { class: 'tl-ex-message' }, text(ex.message) || h('span', { class: 'muted' }, '(no message)')),
    pairs([
      ['Id', h('span', { class: 'mono' }, text(ex.id))],
      ['Remote', ex.remote ? 'yes' : 'no'],
      ['Caused by', ex.cause ? h('span', null, h('span', { class: 'mono' }, text(ex.cause)), linked ? [' in ', ctx.entityLink(linked.node)] : '') : null],
      ['Truncated', ex.truncated ? `${text(ex.truncated)} frames` : null],
      ['Skipped', ex.skipped ? `${text(ex.skipped)} exceptions` : null],
    ].filter(([, v]) => !(v instanceof Node && v.textContent === ''))),
    stack.length
      ? h('ol', { class: 'tl-stack', 'aria-label': 'Stack' }, stack.map((f) => {
        const where = f.path !== undefined ? `${text(f.path)}${f.line !== undefined ? `:${text(f.line)}` : ''}` : '';
        return h('li', null, text(f.label) || '(anonymous)', where ? h('span', { class: 'tl-where' }, ` (${where})`) : null);
      }))
      : h('p', { class: 'muted' }, 'No stack recorded.'));
}

function http(value) {
  if (!nonEmpty(value)) return none();
  if (!isObject(value)) return jsonBlock(value);
  const { request, response, ...rest } = value;
  return [
    h('h3', null, 'Request'), nonEmpty(request) ? (isObject(request) ? fields(request) : jsonBlock(request)) : none(),
    h('h3', null, 'Response'), nonEmpty(response) ? (isObject(response) ? fields(response) : jsonBlock(response)) : none(),
    Object.keys(rest).length ? [h('h3', null, 'Other'), fields(rest)] : null,
  ];
}

function sql(value) {
  if (!isObject(value)) return jsonBlock(value);
  const { sanitized_query: query, ...rest } = value;
  return [fields(rest), query !== undefined ? [h('h3', null, 'Sanitized query'), h('pre', { class: 'json tl-sql' }, text(query))] : null];
}

function raw(node) {
  if (node.kind === 'segment') return [h('h3', null, 'Segment document'), jsonBlock(node.doc)];
  return [
    h('h3', null, 'This subsegment'), jsonBlock(node.doc),
    h('h3', null, 'Top-level document (segment ', h('span', { class: 'mono' }, text(node.top.name)), ')'), jsonBlock(node.top),
  ];
}
