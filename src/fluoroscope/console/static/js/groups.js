// Groups in the views that list traces: a selector of the server's groups, and the
// filter expression of a view scoped to the chosen group ('group.name = "g"', which the
// server resolves to the group's own filter).

import { xray } from './api.js';
import { h } from './dom.js';

/**
 * A <select> (id) of the server's groups, "All traces" first; onChange(name or '') when
 * the user picks one. Filled once the list arrives; a list that fails leaves "All traces"
 * and the current value.
 */
export function groupPicker({ value = '', onChange, id = 'group', signal } = {}) {
  const select = h('select', {
    id, 'aria-label': 'Group', title: 'Only the traces of a group (its filter expression)',
    onchange: () => onChange(select.value),
  }, h('option', { value: '' }, 'All traces'));
  xray('Groups', {}, { signal }).then((answer) => {
    const names = (answer.Groups || []).map((g) => g.GroupName).filter((n) => n && n !== 'Default');
    if (value && !names.includes(value)) names.unshift(value);
    select.append(...names.map((n) => h('option', { value: n, selected: n === value }, n)));
    select.dataset.loaded = 'true';
  }).catch(() => { select.dataset.loaded = 'failed'; });
  return select;
}

/**
 * {expression, offset}: filter scoped to group (unchanged without a group); offset is
 * where filter starts inside expression, to bring a syntax error's position back.
 */
export function withGroup(group, filter) {
  if (!group) return { expression: filter, offset: 0 };
  const prefix = `group.name = ${JSON.stringify(group)}`;
  if (!filter) return { expression: prefix, offset: 0 };
  const head = `${prefix} AND (`;
  return { expression: `${head}${filter})`, offset: head.length };
}

/** err with its position moved back by offset (into the user's own expression). */
export function shiftError(err, offset) {
  if (err && offset && err.position !== null && err.position !== undefined) {
    err.position = Math.max(0, err.position - offset);
  }
  return err;
}
