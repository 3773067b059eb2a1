// Filter autocomplete and recent filters for a filter box (filterbox.js).
//
// While typing, a list under the box offers what fits the word at the caret: keywords and
// functions of the filter language, the service names and annotation keys stored lately
// and, after `annotation.KEY =`, that key's values where it has few - read once per page
// from our /api/console/vocabulary (the last 6 hours). An empty box offers the filters
// run lately (localStorage, this browser only). Arrow keys move, Enter or Tab takes the
// highlighted one, Escape closes. Everything goes in as text (dom.js).

import { h } from './dom.js';
import { quote } from './format.js';

const RECENT_ITEM = 'fluoroscope.recentFilters';
const RECENT_MAX = 10;
const SHOWN = 12;
const WINDOW = 6 * 3600;
const KEYWORDS = [
  'service(', 'edge(', 'id(', 'annotation.', 'responsetime', 'duration', 'http.status', 'http.url',
  'http.method', 'http.useragent', 'http.clientip', 'user', 'fault', 'error', 'throttle', 'ok',
  'partial', 'inferred', 'resource.arn', 'instance.id', 'group.name', 'group.arn',
  'rootcause.fault.service', 'rootcause.fault.entity', 'rootcause.fault.exception',
  'rootcause.error.service', 'rootcause.error.entity', 'rootcause.error.exception',
  'rootcause.responsetime.service', 'rootcause.responsetime.entity', 'AND', 'OR', 'NOT',
];

let vocabulary = null; // a promise of {Services, Annotations}, shared by every box

function loadVocabulary() {
  if (!vocabulary) {
    const now = Math.floor(Date.now() / 1000);
    const headers = { 'content-type': 'application/json' };
    const key = sessionStorage.getItem('fluoroscope.apiKey');
    if (key) headers.authorization = `Bearer ${key}`;
    vocabulary = fetch('/api/console/vocabulary', {
      method: 'POST', headers, body: JSON.stringify({ StartTime: now - WINDOW, EndTime: now + 60 }),
    }).then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  }
  return vocabulary;
}

/** The filters run lately, newest first. */
export function recentFilters() {
  try {
    const list = JSON.parse(localStorage.getItem(RECENT_ITEM) || '[]');
    return Array.isArray(list) ? list.filter((f) => typeof f === 'string' && f) : [];
  } catch {
    return [];
  }
}

/** Remember `filter` as the latest one run. */
export function rememberFilter(filter) {
  const text = String(filter || '').trim();
  if (!text) return;
  const list = [text, ...recentFilters().filter((f) => f !== text)].slice(0, RECENT_MAX);
  try { localStorage.setItem(RECENT_ITEM, JSON.stringify(list)); } catch { /* storage full or off */ }
}

const annotationRef = (key) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `annotation.${key}` : `annotation[${quote(key)}]`);

/** Suggestions for `before` (the text up to the caret): [{label, kind, replace, insert}]. */
export function suggestionsFor(before, vocab) {
  const services = (vocab && vocab.Services) || [];
  const annotations = (vocab && vocab.Annotations) || [];
  let m = /(service|id|edge)\(\s*"([^"]*)$/.exec(before);
  if (m) {
    const part = m[2].toLowerCase();
    return services.filter((n) => n.toLowerCase().includes(part))
      .map((n) => ({ label: n, kind: 'service', replace: m[2].length + 1, insert: `${quote(n)})` }));
  }
  m = /annotation(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[("(?:[^"\\]|\\.)*")\])\s*(=|!=)\s*("?)([^"\s]*)$/.exec(before);
  if (m) {
    const key = m[1] !== undefined ? m[1] : JSON.parse(m[2]);
    const found = annotations.find((a) => a.Key === key);
    const typed = m[4] + m[5];
    return (found ? found.Values : []).filter((v) => v.toLowerCase().startsWith(m[5].toLowerCase()))
      .map((v) => {
        const literal = /^-?\d+(\.\d+)?$/.test(v) || v === 'true' || v === 'false' ? v : quote(v);
        return { label: v, kind: 'value', replace: typed.length, insert: `${literal} ` };
      });
  }
  m = /annotation\.([A-Za-z0-9_]*)$/.exec(before);
  if (m) {
    return annotations.filter((a) => a.Key.startsWith(m[1]))
      .map((a) => ({ label: annotationRef(a.Key), kind: 'annotation', replace: m[0].length, insert: `${annotationRef(a.Key)} ` }));
  }
  m = /[A-Za-z_][A-Za-z0-9_.]*$/.exec(before);
  if (!m) return [];
  const word = m[0];
  const lower = word.toLowerCase();
  const out = KEYWORDS.filter((k) => k.toLowerCase().startsWith(lower) && k.toLowerCase() !== lower)
    .map((k) => ({ label: k, kind: 'keyword', replace: word.length, insert: k.endsWith('(') || k.endsWith('.') ? k : `${k} ` }));
  if ('annotation'.startsWith(lower) || lower.startsWith('annotation')) {
    for (const a of annotations) {
      const ref = annotationRef(a.Key);
      if (ref.toLowerCase().startsWith(lower)) out.push({ label: ref, kind: 'annotation', replace: word.length, insert: `${ref} ` });
    }
  }
  if (!lower.includes('.')) {
    for (const n of services) {
      if (n.toLowerCase().startsWith(lower)) out.push({ label: `service(${quote(n)})`, kind: 'service', replace: word.length, insert: `service(${quote(n)}) ` });
    }
  }
  return out;
}

/** Attach autocomplete and recent filters to `input` (inside `form`). */
export function attach(input, form) {
  const list = h('ul', { id: `${input.id}-suggestions`, class: 'suggestions hidden', role: 'listbox', 'aria-label': 'Suggestions' });
  input.parentElement.classList.add('has-suggestions');
  input.after(list);
  input.setAttribute('role', 'combobox');
  input.setAttribute('aria-autocomplete', 'list');
  input.setAttribute('aria-controls', list.id);
  input.setAttribute('aria-expanded', 'false');
  let items = [];
  let active = -1;
  let generation = 0;

  function close() {
    items = [];
    active = -1;
    list.replaceChildren();
    list.classList.add('hidden');
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
  }
  function mark() {
    [...list.children].forEach((li, i) => li.setAttribute('aria-selected', String(i === active)));
    if (active >= 0) input.setAttribute('aria-activedescendant', list.children[active].id);
    else input.removeAttribute('aria-activedescendant');
  }
  function take(item) {
    if (item.kind === 'recent') {
      input.value = item.insert;
      input.setSelectionRange(input.value.length, input.value.length);
    } else {
      const at = input.selectionStart ?? input.value.length;
      const start = at - item.replace;
      input.value = input.value.slice(0, start) + item.insert + input.value.slice(at);
      const caret = start + item.insert.length;
      input.setSelectionRange(caret, caret);
    }
    input.focus();
    close();
    if (item.kind !== 'recent') refresh();
  }
  function show(found) {
    items = found.slice(0, SHOWN);
    active = -1;
    if (!items.length) { close(); return; }
    list.replaceChildren(...items.map((item, i) => h('li', {
      id: `${list.id}-${i}`, role: 'option', class: ['suggestion', item.kind], dataset: { kind: item.kind },
      'aria-selected': 'false',
      onmousedown: (event) => { event.preventDefault(); take(item); },
    }, item.label, h('span', { class: 'kind muted' }, item.kind))));
    list.classList.remove('hidden');
    input.setAttribute('aria-expanded', 'true');
  }
  async function refresh() {
    const mine = ++generation;
    const before = input.value.slice(0, input.selectionStart ?? input.value.length);
    if (!input.value.trim()) {
      show(recentFilters().map((f) => ({ label: f, kind: 'recent', insert: f })));
      return;
    }
    const vocab = await loadVocabulary();
    if (mine !== generation || document.activeElement !== input) return;
    show(suggestionsFor(before, vocab));
  }
  input.addEventListener('input', refresh);
  input.addEventListener('focus', () => { if (!input.value.trim()) refresh(); });
  input.addEventListener('blur', close);
  input.addEventListener('keydown', (event) => {
    if (!items.length) {
      if (event.key === 'ArrowDown') { refresh(); event.preventDefault(); }
      return;
    }
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      const step = event.key === 'ArrowDown' ? 1 : -1;
      if (active < 0) active = step > 0 ? 0 : items.length - 1;
      else {
        active += step;
        if (active < 0 || active >= items.length) active = -1;
      }
      mark();
    } else if ((event.key === 'Enter' || event.key === 'Tab') && active >= 0) {
      take(items[active]);
    } else if (event.key === 'Tab' && items.length === 1) {
      take(items[0]);
    } else if (event.key === 'Escape') {
      close();
    } else {
      return;
    }
    event.preventDefault();
  });
  form.addEventListener('submit', () => { rememberFilter(input.value); close(); });
}
