// The view, its filters and its time range live in the URL's fragment, so every view is a
// deep link: #/map?range=1h, #/traces?filter=...&range=15m, #/trace/<id>,
// #/analytics?a=...&b=...&from=...&to=...

/** The current route: {view, arg, params: URLSearchParams}. */
export function current() {
  const hash = window.location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = hash.split('?');
  const [view = '', ...rest] = path.split('/');
  return {
    view: view || 'map',
    arg: rest.length ? decodeURIComponent(rest.join('/')) : '',
    params: new URLSearchParams(query),
  };
}

/** The fragment for a view: href('traces', {filter: 'x'}) is "#/traces?filter=x". */
export function href(view, params = {}, arg = '') {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') query.set(k, v);
  }
  const qs = query.toString();
  return `#/${view}${arg ? `/${encodeURIComponent(arg)}` : ''}${qs ? `?${qs}` : ''}`;
}

/** Go to a view (a new history entry). */
export function navigate(view, params = {}, arg = '') {
  window.location.hash = href(view, params, arg);
}

/** Change some parameters of the current view, keeping the others. */
export function update(changes, { replace = false } = {}) {
  const route = current();
  const params = Object.fromEntries(route.params.entries());
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === null || v === '') delete params[k];
    else params[k] = v;
  }
  const target = href(route.view, params, route.arg);
  if (replace) window.history.replaceState(null, '', target);
  else window.location.hash = target;
}
