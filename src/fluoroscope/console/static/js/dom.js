// Building DOM without markup: every string becomes a text node or an attribute value,
// never HTML. This is the console's only way of putting data on the page, so a segment
// name or annotation holding markup shows as that markup's text.

const SVG_NS = 'http://www.w3.org/2000/svg';

function apply(el, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'style') for (const [k, v] of Object.entries(value)) el.style.setProperty(k, String(v));
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value' || key === 'checked' || key === 'selected') el[key] = value;
    else if (/^(innerHTML|outerHTML|srcdoc)$/i.test(key)) throw new Error(`refusing to set ${key}`);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** An HTML element: h('a', {href: '#/x', class: 'c', onclick: fn}, 'text', otherNode). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  apply(el, props);
  append(el, children);
  return el;
}

/** An SVG element, same conventions as h(). */
export function s(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, props);
  append(el, children);
  return el;
}

/** A status line: kind is 'loading', 'empty' or 'error'. */
export function state(kind, ...text) {
  return h('p', { class: `state ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...text);
}

/** Key/value rows as a definition list; values may be nodes. Empty values are skipped. */
export function pairs(entries) {
  const dl = h('dl', { class: 'pairs' });
  for (const [key, value] of entries) {
    if (value === undefined || value === null || value === '') continue;
    dl.append(h('dt', null, key), h('dd', null, value));
  }
  return dl;
}

/** Pretty JSON of any value, as text in a <pre>. */
export function jsonBlock(value) {
  return h('pre', { class: 'json' }, JSON.stringify(value, null, 2));
}
