// The time range every view reads: a relative one ("range=15m", live: it moves with the
// clock) or a fixed one ("from=...&to=...", ISO 8601 instants).

import { h } from './dom.js';
import { current, update } from './router.js';

export const RANGES = [
  ['5m', 'Last 5 minutes', 300],
  ['15m', 'Last 15 minutes', 900],
  ['30m', 'Last 30 minutes', 1800],
  ['1h', 'Last hour', 3600],
  ['3h', 'Last 3 hours', 10800],
  ['6h', 'Last 6 hours', 21600],
  ['12h', 'Last 12 hours', 43200],
  ['1d', 'Last day', 86400],
  ['3d', 'Last 3 days', 259200],
  ['7d', 'Last 7 days', 604800],
  ['14d', 'Last 14 days', 1209600],
  ['30d', 'Last 30 days', 2592000],
];
export const DEFAULT_RANGE = '1h';

function instant(text) {
  if (!text) return null;
  const t = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Date.parse(text) / 1000;
  return Number.isFinite(t) ? t : null;
}

/**
 * The range in params as {start, end, live, seconds, key, label}: epoch seconds; live is
 * true for a relative range (views refresh it). An unknown key falls back to the default.
 */
export function resolve(params, now = Date.now() / 1000) {
  const from = instant(params.get('from'));
  const to = instant(params.get('to'));
  if (from !== null && to !== null && to > from) {
    return { start: from, end: to, live: false, seconds: to - from, key: 'custom', label: 'Custom range' };
  }
  const key = params.get('range') || DEFAULT_RANGE;
  const found = RANGES.find((r) => r[0] === key) || RANGES.find((r) => r[0] === DEFAULT_RANGE);
  return { start: now - found[2], end: now, live: true, seconds: found[2], key: found[0], label: found[1] };
}

/** The range parameters of the current URL, to carry into links to other views. */
export function rangeParams(params) {
  const out = {};
  for (const k of ['range', 'from', 'to']) if (params.get(k)) out[k] = params.get(k);
  return out;
}

function localInput(epochSeconds) {
  const d = new Date(epochSeconds * 1000 - new Date().getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

/** The picker in the header; it writes the URL, and views follow the URL. */
export function renderPicker(container) {
  const { params } = current();
  const range = resolve(params);
  const fromInput = h('input', { type: 'datetime-local', 'aria-label': 'From', value: localInput(range.start) });
  const toInput = h('input', { type: 'datetime-local', 'aria-label': 'To', value: localInput(range.end) });
  const error = h('span', { class: 'range-error', role: 'alert' });
  const custom = h('form', {
    class: ['custom', range.key === 'custom' ? '' : 'hidden'],
    onsubmit: (event) => {
      event.preventDefault();
      const start = Date.parse(fromInput.value);
      const end = Date.parse(toInput.value);
      if (!(start < end)) {
        error.textContent = 'the start must precede the end';
        return;
      }
      update({ range: null, from: new Date(start).toISOString(), to: new Date(end).toISOString() });
    },
  }, fromInput, '–', toInput, h('button', { type: 'submit' }, 'Apply'), error);
  const select = h('select', {
    'aria-label': 'Time range',
    id: 'time-range',
    onchange: () => {
      if (select.value === 'custom') custom.classList.remove('hidden');
      else update({ range: select.value, from: null, to: null });
    },
  },
  RANGES.map(([key, label]) => h('option', { value: key, selected: key === range.key }, label)),
  h('option', { value: 'custom', selected: range.key === 'custom' }, 'Custom…'));
  container.replaceChildren(select, custom);
}
