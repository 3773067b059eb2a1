// Groups: the server's groups (a name for a filter expression), created, edited and
// deleted here; the filter expression is checked by the server as it is typed, its
// syntax error shown at the character. Each group links to its traces and its map.
//
// Route: #/groups (#/groups?edit=<name> opens a group in the form).

import { ApiError, xray } from '../api.js';
import { h, state } from '../dom.js';
import { errorContent } from '../filterbox.js';
import { href, update } from '../router.js';
import { rangeParams } from '../timerange.js';

const CHECK_MS = 300;

export function render(root, route) {
  const params = route.params;
  const controller = new AbortController();
  const carry = rangeParams(params);
  const requested = params.get('edit') || ''; // opened in the form on the first load
  let editing = '';
  let first = true;
  let checkTimer = null;
  let checkSeq = 0;

  const nameInput = h('input', { type: 'text', id: 'group-name', name: 'group-name', autocomplete: 'off', spellcheck: 'false', maxlength: 32, required: true, 'aria-describedby': 'group-name-error' });
  const nameError = h('div', { class: 'field-error', id: 'group-name-error', role: 'alert' });
  const filterInput = h('input', {
    type: 'text', id: 'group-filter', name: 'group-filter', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'e.g. service("api") AND fault — empty = every trace', 'aria-describedby': 'group-filter-error',
    oninput: () => scheduleCheck(),
  });
  const filterError = h('div', { class: 'field-error', id: 'group-filter-error', role: 'alert' });
  const filterStatus = h('span', { class: 'muted', id: 'group-filter-status' });
  const formError = h('div', { class: 'field-error', id: 'group-form-error', role: 'alert' });
  const title = h('h2', { id: 'group-form-title' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'group-save' });
  const cancel = h('button', { type: 'button', id: 'group-cancel', onclick: () => update({ edit: null }) }, 'Cancel');
  const form = h('form', { id: 'group-form', class: 'rule-form', onsubmit: (event) => { event.preventDefault(); save(); } },
    title,
    h('label', { class: 'field' }, h('span', null, 'Name'), nameInput, nameError),
    h('label', { class: 'field wide' }, h('span', null, 'Filter expression ', filterStatus), filterInput, filterError),
    h('div', { class: 'actions' }, submit, cancel),
    formError);
  const tbody = h('tbody');
  const list = h('table', { class: 'list plain', id: 'group-list' },
    h('thead', null, h('tr', null, h('th', null, 'Group'), h('th', null, 'Filter expression'), h('th', null, ''))),
    tbody);
  const listState = h('div');
  root.append(
    h('section', { class: 'panel' }, h('h1', null, 'Groups'),
      h('p', { class: 'muted hint' }, 'A group names a filter expression; pick it on the map, Traces and Analytics to see only its traces.'),
      h('div', { class: 'scroll' }, list), listState),
    h('section', { class: 'panel' }, form));

  function setMode(group) {
    editing = group ? group.GroupName : '';
    title.textContent = group ? `Edit group ${group.GroupName}` : 'New group';
    submit.textContent = group ? 'Save' : 'Create group';
    nameInput.value = group ? group.GroupName : '';
    nameInput.disabled = Boolean(group);
    filterInput.value = group ? (group.FilterExpression || '') : '';
    cancel.classList.toggle('hidden', !group);
    for (const el of [nameError, filterError, formError]) el.replaceChildren();
    filterStatus.textContent = '';
    filterInput.removeAttribute('aria-invalid');
  }

  function scheduleCheck() {
    clearTimeout(checkTimer);
    checkTimer = setTimeout(check, CHECK_MS);
  }

  // The server parses the expression: a one-second window makes it cheap.
  async function check() {
    const expression = filterInput.value;
    const mine = ++checkSeq;
    if (!expression.trim()) {
      showFilter(null, expression);
      return true;
    }
    const now = Math.floor(Date.now() / 1000);
    try {
      await xray('TraceSummaries', { StartTime: now - 1, EndTime: now, FilterExpression: expression }, { signal: controller.signal });
      if (mine === checkSeq) showFilter(null, expression);
      return true;
    } catch (err) {
      if (err.name === 'AbortError') return false;
      if (mine === checkSeq) showFilter(err, expression);
      return false;
    }
  }

  function showFilter(err, expression) {
    if (!err) {
      filterError.replaceChildren();
      filterInput.removeAttribute('aria-invalid');
      filterStatus.textContent = expression.trim() ? '✓ valid' : '';
      filterStatus.dataset.state = 'valid';
      return;
    }
    filterError.replaceChildren(...errorContent(expression, err));
    filterInput.setAttribute('aria-invalid', 'true');
    filterStatus.textContent = '';
    filterStatus.dataset.state = 'invalid';
  }

  async function save() {
    for (const el of [nameError, formError]) el.replaceChildren();
    const name = nameInput.value.trim();
    const expression = filterInput.value.trim();
    const body = { GroupName: editing || name };
    if (expression || editing) body.FilterExpression = expression;
    try {
      await xray(editing ? 'UpdateGroup' : 'CreateGroup', body, { signal: controller.signal });
    } catch (err) {
      if (err.name === 'AbortError') return;
      if (err instanceof ApiError && /^GroupName|group named|reserved/.test(err.message)) {
        nameError.textContent = err.message;
        nameInput.setAttribute('aria-invalid', 'true');
      } else if (err instanceof ApiError && err.position !== null) {
        showFilter(err, filterInput.value);
      } else {
        formError.textContent = err.message;
      }
      return;
    }
    if (editing) update({ edit: null });
    else { setMode(null); load(); }
  }

  function row(group) {
    let armed = false;
    const del = h('button', {
      type: 'button', class: 'danger', dataset: { action: 'delete' },
      onclick: async () => {
        if (!armed) { armed = true; del.textContent = 'Confirm delete'; return; }
        try {
          await xray('DeleteGroup', { GroupName: group.GroupName }, { signal: controller.signal });
          load();
        } catch (err) {
          if (err.name !== 'AbortError') listState.replaceChildren(state('error', `The group could not be deleted: ${err.message}`));
        }
      },
    }, 'Delete');
    const isDefault = group.GroupName === 'Default';
    return h('tr', { dataset: { name: group.GroupName } },
      h('td', null, group.GroupName),
      h('td', null, h('code', null, group.FilterExpression || (isDefault ? 'every trace' : ''))),
      h('td', { class: 'actions' },
        h('a', { class: 'button', href: href('traces', { ...carry, group: isDefault ? '' : group.GroupName }) }, 'Traces'),
        h('a', { class: 'button', href: href('map', { ...carry, group: isDefault ? '' : group.GroupName }) }, 'Map'),
        isDefault ? null : h('button', { type: 'button', dataset: { action: 'edit' }, onclick: () => update({ edit: group.GroupName }) }, 'Edit'),
        isDefault ? null : del));
  }

  async function load() {
    try {
      const answer = await xray('Groups', {}, { signal: controller.signal });
      const groups = answer.Groups || [];
      tbody.replaceChildren(...groups.map(row));
      listState.replaceChildren();
      list.dataset.state = 'loaded';
      const wanted = first ? requested : editing;
      first = false;
      const chosen = groups.find((g) => g.GroupName === wanted && wanted !== 'Default');
      setMode(chosen || null);
      if (wanted && !chosen) listState.replaceChildren(state('error', `There is no group named “${wanted}”.`));
    } catch (err) {
      if (err.name !== 'AbortError') listState.replaceChildren(state('error', `Groups could not be loaded: ${err.message}`));
    }
  }

  setMode(null);
  load();
  return () => {
    controller.abort();
    clearTimeout(checkTimer);
  };
}
