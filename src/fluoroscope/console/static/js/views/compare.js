// Trace against trace (#/compare?a=ID&b=ID): two traces aligned by service/name/path
// (POST /api/trace/compare): the critical-path difference per entry, the matched entries
// with their time differences, and the entries present in one trace only. Also the
// pickers other views use: checkboxes on the Traces list (pickBox, compareBar) and the
// critical-path marks on a trace's timeline (markCriticalPath). Data only ever becomes
// text (h() builds every node).

import * as api from '../api.js';
import { h, state } from '../dom.js';
import * as fmt from '../format.js';
import { href, navigate } from '../router.js';

const signed = (v) => (v === null || v === undefined ? '—' : `${v > 0 ? '+' : v < 0 ? '−' : '±'}${fmt.duration(Math.abs(v))}`);
const dur = (v) => (v === null || v === undefined ? '—' : fmt.duration(v));
const label = (r) => {
  const name = r.Service && r.Service !== r.Name ? `${r.Service} › ${r.Name}` : r.Name;
  return r.Operation ? `${name} (${r.Operation})` : name;
};

/** A checkbox for a row of the Traces list, picking its trace for comparison. */
export function pickBox(traceId) {
  return h('input', {
    type: 'checkbox', class: 'cmp-pick', value: traceId,
    'aria-label': `Select trace ${traceId} for comparison`,
    onclick: (event) => event.stopPropagation(),
  });
}

/** "Compare selected" for a container holding pickBox()es: enabled with exactly two. */
export function compareBar(container) {
  const button = h('button', { type: 'button', id: 'compare-selected', disabled: true }, 'Compare selected (0/2)');
  const picked = () => [...container.querySelectorAll('input.cmp-pick:checked')].map((el) => el.value);
  container.addEventListener('change', () => {
    const ids = picked();
    button.disabled = ids.length !== 2;
    button.textContent = `Compare selected (${ids.length}/2)`;
  });
  button.addEventListener('click', () => {
    const ids = picked();
    if (ids.length === 2) navigate('compare', { a: ids[0], b: ids[1] });
  });
  return button;
}

/** Marks a rendered timeline: rows on the critical path get class `critical`, every
 * row's duration cell a self-time tooltip and a `data-self` attribute; a "Compare
 * with…" link joins the header. Resolves when done; failures leave a quiet note. */
export async function markCriticalPath(root, traceId, { signal } = {}) {
  const links = root.querySelector('.tl-links');
  if (links) links.append(h('a', { href: href('compare', { a: traceId }), id: 'compare-with' }, 'Compare with…'));
  let answer;
  try {
    answer = await api.xray('api/trace/critical-path', { TraceId: traceId }, { signal });
  } catch (err) {
    if (err.name !== 'AbortError' && links) links.append(h('span', { class: 'muted' }, ` critical path unavailable (${err.message})`));
    return;
  }
  const onPath = new Map((answer.Entries || []).map((e) => [e.Id, e]));
  const selfTimes = answer.SelfTimes || {};
  for (const row of root.querySelectorAll('.tl-row')) {
    const id = row.dataset.id;
    if (!id || !(id in selfTimes)) continue;
    const self = selfTimes[id];
    row.dataset.self = String(self);
    const cell = row.querySelector('.tl-dur');
    const entry = onPath.get(id);
    if (cell) cell.title = `self time ${fmt.duration(self)}${entry ? `; on the critical path for ${fmt.duration(entry.Critical)}` : ''}`;
    if (entry) {
      row.classList.add('critical');
      row.dataset.critical = String(entry.Critical);
      const name = row.querySelector('.tl-name');
      if (name) name.append(h('span', { class: 'tl-tag tl-crit', title: `On the critical path: ${fmt.duration(entry.Critical)} of the trace’s duration` }, `◆ ${fmt.duration(entry.Critical)}`));
    }
  }
  const legend = root.querySelector('.tl-legend');
  if (legend) legend.append(h('span', { class: 'tl-crit-legend' }, h('span', { class: 'tl-swatch critical' }), `critical path (${onPath.size} entries)`));
}

function table(caption, head, rows, empty) {
  return h('section', { class: 'panel' },
    h('h2', null, caption),
    rows.length
      ? h('table', { class: 'list cmp-table' }, h('thead', null, h('tr', null, head.map((t) => h('th', null, t)))), h('tbody', null, rows))
      : h('p', { class: 'muted' }, empty));
}

function pathCell(r) {
  return h('td', { class: 'cmp-path', title: r.Path.join(' / '), style: { 'padding-left': `${0.5 + Math.min(r.Depth, 12)}em` } }, label(r));
}

function form(a, b) {
  const inA = h('input', { name: 'a', value: a, 'aria-label': 'First trace id', placeholder: 'first trace id', class: 'mono', size: 38 });
  const inB = h('input', { name: 'b', value: b, 'aria-label': 'Second trace id', placeholder: 'second trace id (either id form)', class: 'mono', size: 38 });
  return h('form', {
    class: 'toolbar cmp-form',
    onsubmit: (event) => {
      event.preventDefault();
      navigate('compare', { a: inA.value.trim(), b: inB.value.trim() });
    },
  }, inA, ' against ', inB, h('button', { type: 'submit', class: 'primary' }, 'Compare'));
}

export function render(root, route) {
  const a = route.params.get('a') || '';
  const b = route.params.get('b') || '';
  const controller = new AbortController();
  const out = h('div', { id: 'comparison' });
  root.replaceChildren(h('section', { class: 'panel' }, h('h1', null, 'Compare traces'), form(a, b)), out);
  if (!a || !b) {
    out.append(state('empty', 'Give two trace ids (or pick two on the ', h('a', { href: href('traces') }, 'Traces'), ' list).'));
    return () => controller.abort();
  }
  out.append(state('loading', 'Comparing…'));
  api.xray('api/trace/compare', { TraceIds: [a, b] }, { signal: controller.signal }).then((c) => {
    const [da, db] = c.Durations;
    const facts = h('section', { class: 'panel cmp-summary' },
      h('p', null, 'A ', h('a', { href: href('trace', {}, c.TraceIds[0]), class: 'mono' }, c.TraceIds[0]), ` ${fmt.duration(da)}`,
        ' · B ', h('a', { href: href('trace', {}, c.TraceIds[1]), class: 'mono' }, c.TraceIds[1]), ` ${fmt.duration(db)}`,
        ' · difference ', h('strong', null, signed(db - da))),
      h('p', { class: 'muted' }, `${c.Counts.Matched} entries matched, ${c.Counts.OnlyA} only in A, ${c.Counts.OnlyB} only in B (similarity ${Math.round(c.Similarity * 100)} %).`),
      c.Message ? h('p', { class: ['state', c.Unrelated ? 'error' : 'empty'], id: 'compare-message', role: 'status' }, c.Message) : null);
    const crit = table('Critical path difference', ['Entry', 'A', 'B', 'B − A'],
      c.CriticalPath.map((r) => h('tr', { dataset: { name: r.Name } }, h('td', null, label(r)), h('td', { class: 'num' }, dur(r.A)), h('td', { class: 'num' }, dur(r.B)), h('td', { class: 'num delta' }, signed(r.Delta)))),
      'Neither trace has a critical path.');
    crit.id = 'compare-critical';
    const matched = table('Matched entries', ['Entry', 'A', 'B', 'B − A'],
      c.Matched.map((r) => h('tr', { dataset: { name: r.Name } }, pathCell(r), h('td', { class: 'num' }, dur(r.A.Duration)), h('td', { class: 'num' }, dur(r.B.Duration)), h('td', { class: 'num delta' }, signed(r.Delta)))),
      'No entry matches.');
    matched.id = 'compare-matched';
    const only = (rows, side, id) => {
      const section = table(`Only in ${side}`, ['Entry', 'Duration'],
        rows.map((r) => h('tr', { dataset: { name: r.Name } }, pathCell(r), h('td', { class: 'num' }, dur((side === 'A' ? r.A : r.B).Duration)))),
        `Every entry of ${side} is matched.`);
      section.id = id;
      return section;
    };
    out.replaceChildren(facts, crit, matched, only(c.OnlyA, 'A', 'compare-only-a'), only(c.OnlyB, 'B', 'compare-only-b'));
    out.dataset.state = 'loaded';
  }, (err) => {
    if (controller.signal.aborted || err.name === 'AbortError') return;
    out.replaceChildren(state('error', `The traces could not be compared: ${err.message}`));
    out.dataset.state = 'error';
  });
  return () => controller.abort();
}
