// The console's shell: routes the URL fragment to a view, keeps the time range picker,
// and gives `/` to the filter box.
//
// A view module exports render(root, route, ctx) and may return a cleanup function; the
// shell calls it before the next render. route is router.current(); ctx.range is the
// resolved time range (timerange.resolve). Views re-render from scratch on every route
// change and manage their own refresh timers (cleared in their cleanup).

import { onAuthRequired, setApiKey } from './api.js';
import { h, state } from './dom.js';
import { current } from './router.js';
import { renderPicker, resolve } from './timerange.js';
import './gototrace.js';

const VIEWS = {
  map: () => import('./views/map.js'),
  traces: () => import('./views/traces.js'),
  trace: () => import('./views/timeline.js'),
  analytics: () => import('./views/analytics.js'),
  sampling: () => import('./views/sampling.js'),
  groups: () => import('./views/groups.js'),
  logs: () => import('./views/logs.js'),
  compare: () => import('./views/compare.js'),
  'critical-path': () => import('./views/critpath.js'),
};
const NAV = { map: 'map', traces: 'traces', trace: 'traces', analytics: 'analytics', sampling: 'sampling', groups: 'groups', logs: 'logs', compare: 'traces', 'critical-path': 'critical-path' };
const TITLES = { map: 'Service map', traces: 'Traces', trace: 'Trace', analytics: 'Analytics', sampling: 'Sampling', groups: 'Groups', logs: 'Logs', compare: 'Compare traces', 'critical-path': 'Critical path' };

const root = document.getElementById('view');
const picker = document.getElementById('range');
let cleanup = null;
let generation = 0;

function settle() {
  root.inert = false;
  root.removeAttribute('aria-busy');
}

async function show() {
  const route = current();
  const mine = ++generation;
  if (cleanup) {
    try { cleanup(); } catch (err) { console.error(err); }
    cleanup = null;
  }
  // The old view is stopped but stays on the page until the next one is loaded (a view's
  // module is fetched the first time it is shown): made inert meanwhile, so nothing is
  // typed into or clicked on a view that is gone - a click on the old filter box would
  // otherwise take the focus that the new view's box should get.
  root.inert = true;
  root.setAttribute('aria-busy', 'true');
  for (const link of document.querySelectorAll('nav.views a')) {
    if (link.dataset.view === NAV[route.view]) {
      link.setAttribute('aria-current', 'page');
      // on a phone the views scroll sideways in one row: keep the current one in sight
      const nav = link.parentElement;
      if (nav && nav.scrollWidth > nav.clientWidth) {
        nav.scrollLeft = link.offsetLeft - nav.offsetLeft - (nav.clientWidth - link.offsetWidth) / 2;
      }
    } else link.removeAttribute('aria-current');
  }
  picker.classList.toggle('hidden', route.view === 'trace');
  renderPicker(picker);
  const load = VIEWS[route.view];
  if (!load) {
    settle();
    root.replaceChildren(state('error', `There is no view called “${route.view}”. `, 'Try the ', 'Service map', '.'));
    return;
  }
  let module;
  try {
    module = await load();
  } catch (err) {
    if (mine !== generation) return;
    settle();
    root.replaceChildren(state('error', `The view could not be loaded: ${err.message}`));
    return;
  }
  if (mine !== generation) return;
  settle();
  root.replaceChildren();
  document.title = `Fluoroscope — ${TITLES[route.view]}`;
  const result = module.render(root, route, { range: resolve(route.params) });
  cleanup = typeof result === 'function' ? result : null;
}

// A server that requires credentials: ask for an API key once, then show the view again.
let asking = null;
onAuthRequired((err) => {
  if (asking) return;
  const input = h('input', { type: 'password', name: 'api-key', autocomplete: 'off', 'aria-label': 'API key', required: true });
  asking = h('dialog', { class: 'auth', 'aria-labelledby': 'auth-title' },
    h('form', {
      method: 'dialog',
      onsubmit: (event) => {
        event.preventDefault();
        setApiKey(input.value.trim());
        asking.close();
        asking.remove();
        asking = null;
        show();
      },
    },
    h('h2', { id: 'auth-title' }, 'This server requires an API key'),
    h('p', null, err.type === 'MissingAuthenticationTokenException'
      ? 'Enter one of the keys the server was started with (--api-key or FLUOROSCOPE_API_KEYS).'
      : `The key was refused (${err.message}). Enter another.`),
    input,
    h('button', { type: 'submit', class: 'primary' }, 'Use this key')));
  document.body.append(asking);
  asking.showModal();
  input.focus();
});

// Insights: a group's fault rate against its learned band (#/insights).
VIEWS.insights = () => import('./views/insights.js');
NAV.insights = 'insights';
TITLES.insights = 'Insights';

window.addEventListener('hashchange', show);
document.addEventListener('keydown', (event) => {
  if (event.key !== '/' || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
  const box = document.getElementById('filter');
  if (box) {
    event.preventDefault();
    box.focus();
    box.select();
  }
});
show();
