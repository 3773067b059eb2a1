// The trace timeline (#/trace/<traceId>): every segment and subsegment of one trace as a
// waterfall over a shared time axis, grouped by service (segment name + origin), with the
// Lambda cold start (the function's "Initialization" subsegment) marked, and a details
// panel for the selected entry. The selection, its tab and the raw documents section are
// kept in the URL (replaceState), so a link reopens the same entry.

import * as api from '../api.js';
import { h, state } from '../dom.js';
import { coldBadge, isObject, nonEmpty, num, statusBadge, tabContent, text } from './entity.js';
import * as fmt from '../format.js';
import { href, update } from '../router.js';
import { rangeParams } from '../timerange.js';
import { logsPane } from './tracelogs.js';
import { rootCauses, traceSummary } from './rootcause.js';
import { markCriticalPath } from './compare.js';

const TABS = ['Overview', 'Resources', 'Annotations', 'Metadata', 'Exceptions', 'HTTP', 'SQL', 'Raw'];
const SEVERITY = { ok: 0, error: 1, throttle: 2, fault: 3 };
const FUNCTION_ORIGIN = 'AWS::Lambda::Function';
const COLD_NAME = 'Initialization';

const worst = (a, b) => (SEVERITY[b] > SEVERITY[a] ? b : a);

/** Entities of the trace, their groups by service and the time axis. */
function buildModel(documents, traceDuration) {
  const nodes = [];
  const byId = new Map();
  const exceptions = new Map(); // exception id -> {ex, node}
  const byStart = (a, b) => (num(a.start_time) ?? Infinity) - (num(b.start_time) ?? Infinity);

  function visit(doc, top, parent, depth) {
    const node = {
      doc, top, parent, depth,
      kind: depth === 0 ? 'segment' : 'subsegment',
      name: text(doc.name) || '(unnamed)',
      id: text(doc.id),
      status: fmt.status(doc),
      open: doc.in_progress === true || num(doc.end_time) === null,
      start: num(doc.start_time),
      end: num(doc.end_time),
      children: [],
      cold: false,
    };
    nodes.push(node);
    if (node.id && !byId.has(node.id)) byId.set(node.id, node);
    if (isObject(doc.cause) && Array.isArray(doc.cause.exceptions)) {
      for (const ex of doc.cause.exceptions) if (isObject(ex) && ex.id) exceptions.set(String(ex.id), { ex, node });
    }
    const subs = (Array.isArray(doc.subsegments) ? doc.subsegments : []).filter(isObject).sort(byStart);
    for (const sub of subs) node.children.push(visit(sub, top, node, depth + 1));
    return node;
  }

  const segments = documents.filter(isObject).sort(byStart).map((doc) => visit(doc, doc, null, 0));
  const starts = nodes.map((n) => n.start).filter((v) => v !== null);
  const t0 = starts.length ? Math.min(...starts) : 0;
  let tEnd = Math.max(t0, ...nodes.map((n) => n.end ?? n.start ?? t0));
  if (num(traceDuration) !== null) tEnd = Math.max(tEnd, t0 + traceDuration);
  for (const n of nodes) {
    if (n.start === null) n.start = t0;
    if (n.open || n.end === null || n.end < n.start) n.end = n.open ? tEnd : n.start;
  }

  const groups = new Map();
  for (const seg of segments) {
    const origin = text(seg.doc.origin);
    const key = `${seg.name}\u0000${origin}`;
    if (!groups.has(key)) groups.set(key, { name: seg.name, origin, segments: [], start: seg.start, end: seg.end, cold: false, status: 'ok' });
    const group = groups.get(key);
    group.segments.push(seg);
    group.start = Math.min(group.start, seg.start);
    group.end = Math.max(group.end, seg.end);
    const walk = (n) => {
      group.status = worst(group.status, n.status);
      if (origin === FUNCTION_ORIGIN && n.depth > 0 && n.name === COLD_NAME) {
        n.cold = true;
        seg.coldStart = true;
        group.cold = true;
      }
      n.children.forEach(walk);
    };
    walk(seg);
  }
  const ordered = [...groups.values()].sort((a, b) => a.start - b.start);
  const status = nodes.reduce((acc, n) => worst(acc, n.status), 'ok');
  return { nodes, segments, byId, exceptions, groups: ordered, t0, tEnd, span: Math.max(tEnd - t0, 1e-6), status };
}

/** A tick step of 1, 2 or 5 times a power of ten giving about `target` ticks. */
function tickStep(span, target) {
  const raw = span / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * pow).find((v) => v >= raw) || pow * 10;
}

function tickLabel(t, step, span) {
  if (t === 0) return '0';
  const [scale, unit] = span >= 2 ? [1, 's'] : span >= 2e-3 ? [1e3, 'ms'] : [1e6, 'µs'];
  const decimals = Math.max(0, Math.ceil(-Math.log10(step * scale) - 1e-9));
  return `${(t * scale).toFixed(decimals)} ${unit}`;
}

const pct = (v) => `${Math.min(100, Math.max(0, v * 100)).toFixed(3)}%`;

export function render(root, route) {
  const traceId = route.arg;
  const params = route.params;
  const range = rangeParams(params);
  // back to the list this trace was opened from: its range and filter
  const backHref = href('traces', { ...range, filter: params.get('filter') });
  const controller = new AbortController();
  let blobUrl = null;
  let pane = null;

  if (!traceId) {
    root.replaceChildren(state('error', 'No trace id in the address. ', h('a', { href: backHref }, 'Back to traces')));
    return () => controller.abort();
  }

  async function load() {
    root.replaceChildren(state('loading', 'Loading trace ', h('span', { class: 'mono' }, traceId), '…'));
    let trace;
    const causes = traceSummary(traceId, { signal: controller.signal }).catch(() => null);
    try {
      trace = await api.trace(traceId, { signal: controller.signal });
    } catch (err) {
      if (controller.signal.aborted || err.name === 'AbortError') return;
      root.replaceChildren(state('error', `The trace could not be loaded: ${err.message} `,
        h('button', { type: 'button', onclick: load }, 'Retry'), ' ', h('a', { href: backHref }, 'Back to traces')));
      return;
    }
    if (controller.signal.aborted) return;
    if (!trace || !trace.documents.length) {
      // log lines may still name it (a trace not sampled, or its segments expired)
      pane = logsPane({ traceId, onPick: () => {} });
      root.replaceChildren(state('empty', 'There is no trace with this id: ', h('span', { class: 'mono' }, traceId), '. ',
        h('a', { href: backHref }, 'Back to traces')), pane.el);
      return;
    }
    const summary = await causes;
    if (controller.signal.aborted) return;
    document.title = `Fluoroscope — Trace ${traceId}`;
    show(trace, summary);
    markCriticalPath(root, traceId, { signal: controller.signal });
  }

  function show(trace, summary) {
    const model = buildModel(trace.documents, trace.duration);
    const rows = []; // {el, node, group}
    const rowByNode = new Map();
    const collapsed = new Set(); // nodes and groups
    let selected = null;
    let tab = TABS.includes(params.get('tab')) ? params.get('tab') : 'Overview';

    // Header.
    const copyButton = h('button', { type: 'button', class: 'tl-copy', title: 'Copy the trace id', onclick: copy }, 'Copy');
    const idText = h('code', { class: 'mono tl-trace-id' }, trace.id || traceId);
    function copy() {
      const value = trace.id || traceId;
      const done = (label) => {
        copyButton.textContent = label;
        setTimeout(() => { copyButton.textContent = 'Copy'; }, 1500);
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(value).then(() => done('Copied'), () => selectText(done));
      } else selectText(done);
    }
    function selectText(done) {
      const sel = window.getSelection();
      const r = document.createRange();
      r.selectNodeContents(idText);
      sel.removeAllRanges();
      sel.addRange(r);
      done('Press Ctrl+C');
    }
    const totalDuration = num(trace.duration) ?? model.tEnd - model.t0;
    const subCount = model.nodes.length - model.segments.length;
    const rawSection = h('section', { class: 'panel tl-raw hidden', id: 'raw-documents', 'aria-label': 'Raw documents' });
    const rawLink = h('a', {
      href: href('trace', { ...range, raw: '1' }, traceId),
      onclick: (event) => {
        event.preventDefault();
        openRaw(true);
      },
    }, 'Raw documents');
    const header = h('div', { class: 'panel tl-head' },
      h('div', { class: 'tl-title' },
        h('h1', null, 'Trace ', idText), copyButton, statusBadge(model.status),
        model.groups.some((g) => g.cold) ? coldBadge() : null,
        h('span', { class: 'tl-links' }, h('a', { href: backHref }, '← Back to traces'), rawLink)),
      h('div', { class: 'tl-facts' },
        fact('Started', `${fmt.timestamp(model.t0)} (${fmt.age(model.t0)})`),
        fact('Duration', fmt.duration(totalDuration)),
        fact('Services', fmt.count(model.groups.length)),
        fact('Segments', `${fmt.count(model.segments.length)} + ${fmt.count(subCount)} subsegments`)));

    function fact(label, value) {
      return h('span', { class: 'tl-fact' }, h('span', { class: 'muted' }, `${label} `), value);
    }

    // Time axis.
    const step = tickStep(model.span, 6);
    const ticks = [];
    for (let t = 0; t <= model.span + step * 1e-6; t += step) ticks.push(t);
    const axis = h('div', { class: 'tl-axis', 'aria-hidden': 'true' },
      h('div', { class: 'tl-name' }, h('span', { class: 'muted' }, 'Service / entry')),
      h('div', { class: 'tl-track' }, ticks.map((t, i) => {
        const at = t / model.span;
        return h('span', {
          class: ['tl-tick', at > 0.9 ? 'end' : at === 0 ? 'start' : '', i % 2 ? 'odd' : ''],
          style: { left: pct(at) },
        }, tickLabel(t, step, model.span));
      })),
      h('div', { class: 'tl-dur muted' }, 'Duration'));

    const timeline = h('div', { id: 'timeline', class: 'tl-waterfall', role: 'tree', 'aria-label': 'Trace timeline' });
    timeline.style.setProperty('--tl-step', pct(step / model.span));
    timeline.append(axis);

    for (const group of model.groups) {
      const toggle = h('span', { class: 'tl-toggle', 'aria-hidden': 'true' }, '▾');
      const head = h('div', {
        class: 'tl-group',
        role: 'treeitem',
        tabindex: '0',
        'aria-level': '1',
        'aria-expanded': 'true',
        dataset: { service: group.name, origin: group.origin, status: group.status },
        onclick: () => toggleGroup(group),
        onkeydown: (event) => keyNav(event, head, () => toggleGroup(group), group),
      },
      h('div', { class: 'tl-name' }, toggle,
        h('span', { class: 'tl-label', title: group.name }, group.name),
        group.origin ? h('span', { class: 'tl-origin muted', title: group.origin }, group.origin) : null,
        group.cold ? coldBadge() : null,
        group.status !== 'ok' ? h('span', { class: ['tl-dot', group.status], title: group.status }) : null),
      h('div', { class: 'tl-track' }, h('span', {
        class: 'tl-span',
        style: { left: pct((group.start - model.t0) / model.span), width: pct((group.end - group.start) / model.span) },
      })),
      h('div', { class: 'tl-dur' }, fmt.duration(group.end - group.start)));
      group.el = head;
      group.toggle = toggle;
      timeline.append(head);
      const add = (node) => {
        const el = rowEl(node, group);
        rows.push({ el, node, group });
        rowByNode.set(node, el);
        timeline.append(el);
        node.children.forEach(add);
      };
      group.segments.forEach(add);
    }

    function rowEl(node, group) {
      const { doc } = node;
      const hasKids = node.children.length > 0;
      const duration = node.end - node.start;
      const offset = node.start - model.t0;
      const httpStatus = isObject(doc.http) && isObject(doc.http.response) ? doc.http.response.status : undefined;
      const toggle = hasKids
        ? h('button', {
          type: 'button', class: 'tl-toggle', tabindex: '-1', 'aria-label': 'Collapse',
          onclick: (event) => { event.stopPropagation(); toggleNode(node); },
        }, '▾')
        : h('span', { class: 'tl-toggle', 'aria-hidden': 'true' });
      const durText = node.open ? 'in progress' : fmt.duration(duration);
      const el = h('div', {
        class: ['tl-row', node.kind, node.open ? 'open' : ''],
        role: 'treeitem',
        tabindex: '0',
        'aria-level': String(node.depth + 2),
        'aria-selected': 'false',
        'aria-expanded': hasKids ? 'true' : null,
        dataset: { id: node.id, name: node.name, kind: node.kind, status: node.status, depth: String(node.depth), ...(node.cold ? { cold: 'true' } : {}) },
        style: { '--depth': node.depth },
        onclick: () => select(node),
        onkeydown: (event) => keyNav(event, el, () => select(node), null, node),
      },
      h('div', { class: 'tl-name' }, toggle,
        h('span', { class: 'tl-label', title: node.name }, node.name),
        node.cold ? coldBadge() : null,
        httpStatus !== undefined ? h('span', { class: ['tl-http', node.status], title: 'HTTP status' }, text(httpStatus)) : null,
        doc.inferred ? h('span', { class: 'tl-tag', title: 'Inferred by the server from the caller’s subsegment' }, 'inferred') : null),
      h('div', { class: 'tl-track' }, h('span', {
        class: ['tl-bar', node.status, node.open ? 'open' : ''],
        title: `${node.name}: ${durText}, starts at +${fmt.duration(offset)}`,
        style: { left: pct(offset / model.span), width: pct(duration / model.span) },
      })),
      h('div', { class: 'tl-dur', title: `starts at +${fmt.duration(offset)}` }, durText));
      node.toggle = hasKids ? toggle : null;
      return el;
    }

    function hiddenRow({ node, group }) {
      if (collapsed.has(group)) return true;
      for (let p = node.parent; p; p = p.parent) if (collapsed.has(p)) return true;
      return false;
    }

    function applyCollapse() {
      for (const row of rows) row.el.classList.toggle('hidden', hiddenRow(row));
      for (const group of model.groups) {
        const isCollapsed = collapsed.has(group);
        group.el.setAttribute('aria-expanded', String(!isCollapsed));
        group.toggle.textContent = isCollapsed ? '▸' : '▾';
      }
      for (const { el, node } of rows) {
        if (!node.toggle) continue;
        const isCollapsed = collapsed.has(node);
        el.setAttribute('aria-expanded', String(!isCollapsed));
        node.toggle.textContent = isCollapsed ? '▸' : '▾';
        node.toggle.setAttribute('aria-label', isCollapsed ? 'Expand' : 'Collapse');
      }
    }
    function toggleNode(node, want) {
      const close = want === undefined ? !collapsed.has(node) : !want;
      if (close) collapsed.add(node); else collapsed.delete(node);
      applyCollapse();
    }
    function toggleGroup(group, want) {
      toggleNode(group, want);
    }

    // Arrow keys move between visible entries, Left/Right collapse and expand, Enter/Space act.
    function keyNav(event, el, activate, group, node) {
      const focusables = [...timeline.querySelectorAll('.tl-group, .tl-row:not(.hidden)')];
      const i = focusables.indexOf(el);
      const focusAt = (j) => { if (focusables[j]) focusables[j].focus(); };
      const expandable = group || (node && node.children.length ? node : null);
      switch (event.key) {
        case 'Enter': case ' ': activate(); break;
        case 'ArrowDown': focusAt(i + 1); break;
        case 'ArrowUp': focusAt(i - 1); break;
        case 'Home': focusAt(0); break;
        case 'End': focusAt(focusables.length - 1); break;
        case 'ArrowRight': if (expandable) toggleNode(expandable, true); break;
        case 'ArrowLeft':
          if (expandable && !collapsed.has(expandable)) toggleNode(expandable, false);
          else if (node && node.parent) rowByNode.get(node.parent).focus();
          else if (node) rows.find((r) => r.node === node).group.el.focus();
          break;
        default: return;
      }
      event.preventDefault();
    }

    const legend = h('div', { class: 'tl-legend muted', 'aria-label': 'Legend' },
      ['ok', 'error', 'fault', 'throttle'].map((k) => h('span', null, h('span', { class: ['tl-swatch', k] }), k)),
      h('span', null, h('span', { class: 'tl-swatch open' }), 'in progress'),
      h('span', null, h('span', { class: 'tl-swatch cold' }), 'cold start'));
    const tools = h('div', { class: 'toolbar tl-tools' }, legend,
      h('span', { class: 'tl-buttons' },
        h('button', { type: 'button', onclick: () => { collapsed.clear(); applyCollapse(); } }, 'Expand all'),
        h('button', {
          type: 'button',
          onclick: () => { for (const { node } of rows) if (node.depth === 0 && node.children.length) collapsed.add(node); applyCollapse(); },
        }, 'Collapse all')));

    const details = h('aside', { id: 'details', class: 'panel tl-details', 'aria-label': 'Details' },
      h('p', { class: 'muted tl-hint' }, 'Select an entry of the timeline (click it, or focus it and press Enter) to see its details.'));
    const layout = h('div', { class: 'tl-layout' }, h('section', { class: 'panel tl-main' }, tools, timeline), details);
    pane = logsPane({
      traceId: trace.id || traceId,
      traceEnd: model.tEnd,
      onPick: (id) => { if (model.byId.has(id)) select(model.byId.get(id), { focusRow: true, fromLog: true }); },
    });
    root.replaceChildren(header, layout, pane.el, rawSection);

    function select(node, { focusRow = false, fromLog = false } = {}) {
      if (selected) {
        const prev = rowByNode.get(selected);
        prev.classList.remove('selected');
        prev.setAttribute('aria-selected', 'false');
      }
      selected = node;
      const el = rowByNode.get(node);
      for (let p = node.parent; p; p = p.parent) collapsed.delete(p);
      collapsed.delete(rows.find((r) => r.node === node).group);
      applyCollapse();
      el.classList.add('selected');
      el.setAttribute('aria-selected', 'true');
      if (focusRow) el.focus();
      if (node.id) update({ select: node.id }, { replace: true });
      if (!fromLog) {
        // Lambda's own segment: its function segment's lines too
        const children = node.depth === 0 ? model.segments.filter((seg) => text(seg.doc.parent_id) === node.id) : [];
        pane.narrow(node, children.flatMap((seg) => [seg.id, ...descendants(seg)]));
      }
      pane.mark(node.id);
      renderDetails();
      if (window.matchMedia('(max-width: 1099px)').matches) details.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
    }

    function descendants(node) {
      return node.children.flatMap((c) => [c.id, ...descendants(c)]);
    }

    function entityLink(node) {
      return h('button', { type: 'button', class: 'tl-link', onclick: () => select(node, { focusRow: true }) }, node.name);
    }

    function renderDetails() {
      const node = selected;
      const has = {
        Overview: true,
        Resources: nonEmpty(node.doc.aws),
        Annotations: nonEmpty(node.doc.annotations),
        Metadata: nonEmpty(node.doc.metadata),
        Exceptions: nonEmpty(node.doc.cause),
        HTTP: nonEmpty(node.doc.http),
        SQL: nonEmpty(node.doc.sql),
        Raw: true,
      };
      const body = h('div', { id: 'details-body', class: 'tl-body', role: 'tabpanel', 'aria-labelledby': `tab-${tab}` }, tabContent(node, tab, { model, traceId, entityLink }));
      const buttons = TABS.map((name) => h('button', {
        type: 'button',
        role: 'tab',
        id: `tab-${name}`,
        class: ['tl-tab', has[name] ? '' : 'empty'],
        'aria-selected': String(name === tab),
        'aria-controls': 'details-body',
        tabindex: name === tab ? '0' : '-1',
        title: has[name] ? null : 'Nothing recorded',
        onclick: () => { tab = name; update({ tab: name }, { replace: true }); renderDetails(); focusTab(name); },
      }, name));
      const tablist = h('div', {
        class: 'tl-tabs',
        role: 'tablist',
        'aria-label': 'Details',
        onkeydown: (event) => {
          const i = TABS.indexOf(tab);
          const j = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: TABS.length - 1 }[event.key];
          if (j === undefined) return;
          event.preventDefault();
          buttons[(j + TABS.length) % TABS.length].click();
        },
      }, buttons);
      details.replaceChildren(
        h('div', { class: 'tl-details-head' },
          h('h2', { title: node.name }, node.name),
          h('span', { class: 'muted' }, node.kind), statusBadge(node.status),
          node.open ? h('span', { class: 'badge tl-open-badge' }, 'in progress') : null,
          node.cold ? coldBadge() : null,
          h('button', {
            type: 'button', class: 'tl-close', 'aria-label': 'Close details', title: 'Close',
            onclick: () => {
              const el = rowByNode.get(node);
              el.classList.remove('selected');
              el.setAttribute('aria-selected', 'false');
              selected = null;
              update({ select: null }, { replace: true });
              pane.narrow(null);
              pane.mark(null);
              details.replaceChildren(h('p', { class: 'muted tl-hint' }, 'Select an entry of the timeline to see its details.'));
              el.focus();
            },
          }, '×')),
        tablist, body);
    }

    function focusTab(name) {
      const button = details.querySelector(`#tab-${name}`);
      if (button) button.focus();
    }

    function openRaw(scroll) {
      if (rawSection.childElementCount === 0) {
        const json = JSON.stringify(trace.documents, null, 2);
        blobUrl = URL.createObjectURL(new Blob([json], { type: 'application/json' }));
        rawSection.append(
          h('div', { class: 'tl-raw-head' },
            h('h2', null, `Raw documents (${trace.documents.length})`),
            h('a', { href: blobUrl, download: `trace-${traceId}.json` }, 'Download JSON'),
            h('button', { type: 'button', onclick: () => { rawSection.classList.add('hidden'); update({ raw: null }, { replace: true }); } }, 'Hide')),
          h('pre', { class: 'json tl-raw-json' }, json));
      }
      rawSection.classList.remove('hidden');
      update({ raw: '1' }, { replace: true });
      if (scroll) rawSection.scrollIntoView({ block: 'start', behavior: 'smooth' });
    }

    applyCollapse();
    if (params.get('raw') === '1') openRaw(false);
    const wanted = params.get('select');
    if (wanted && model.byId.has(wanted)) select(model.byId.get(wanted));
    rootCauses({ summary, model, mount: (panel) => header.after(panel),
      rowOf: (node) => rowByNode.get(node), select, keep: Boolean(wanted && model.byId.has(wanted)) });
  }

  load();
  return () => {
    controller.abort();
    if (pane) pane.close();
    if (blobUrl) URL.revokeObjectURL(blobUrl);
  };
}
