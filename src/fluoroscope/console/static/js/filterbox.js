// A filter expression box with its syntax error shown at the character it points at.

import { h } from './dom.js';
import { attach } from './suggest.js';

/**
 * {form, input, showError(err|null)}: a form with a monospace input (id), a submit button
 * and an error area (errorId). onSubmit(text) is called with the trimmed expression.
 */
export function filterBox({ id = 'filter', errorId = 'filter-error', formId, value = '', label = 'Filter expression', placeholder, onSubmit, extra = [] }) {
  const input = h('input', {
    type: 'search', id, name: id, value, spellcheck: 'false', autocomplete: 'off',
    'aria-label': label,
    placeholder: placeholder || 'Filter expression, e.g. service("api") AND responsetime > 1  (press / to focus)',
  });
  const error = h('div', { class: 'filter-error hidden', id: errorId, role: 'alert' });
  const form = h('form', {
    class: 'filter-form', id: formId,
    onsubmit: (event) => { event.preventDefault(); onSubmit(input.value.trim()); },
  }, input, h('button', { type: 'submit', class: 'primary' }, 'Run'), ...extra);
  attach(input, form); // autocomplete and recent filters
  function showError(err, expression = input.value) {
    if (!err) {
      error.classList.add('hidden');
      error.replaceChildren();
      input.removeAttribute('aria-invalid');
      return;
    }
    const parts = errorContent(expression, err);
    if (err.position !== null && err.position !== undefined) {
      const at = Math.min(err.position, expression.length);
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      input.setSelectionRange(at, Math.min(expression.length, at + 1));
    }
    error.replaceChildren(...parts);
    error.classList.remove('hidden');
  }
  return { form, input, error, showError };
}

/**
 * What explains a rejected expression: the server's message (its first line) and, for a
 * syntax error, the expression with the character it points at in a <mark>.
 */
export function errorContent(expression, err) {
  const parts = [h('div', { class: 'message' }, String(err.message || err).split('\n')[0])];
  if (err.position !== null && err.position !== undefined) {
    const at = Math.max(0, Math.min(err.position, expression.length));
    const bad = expression.slice(at, at + 1) || ' ';
    parts.push(h('pre', null, expression.slice(0, at), h('mark', null, bad), expression.slice(at + 1)));
  }
  return parts;
}

/**
 * "(old) AND responsetime >= lo AND responsetime <= hi" for a dragged range in seconds; the
 * bounds are widened to whole milliseconds so a narrow drag keeps its traces.
 */
export function narrowByResponseTime(filter, lo, hi) {
  const low = (Math.floor(lo * 1000) / 1000).toFixed(3);
  const high = (Math.ceil(hi * 1000) / 1000).toFixed(3);
  const range = `responsetime >= ${low} AND responsetime <= ${high}`;
  return filter && filter.trim() ? `(${filter.trim()}) AND ${range}` : range;
}
