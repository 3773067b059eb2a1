// The header's trace-id box: paste a trace id in either form - X-Ray's 1-xxxxxxxx-<24 hex>
// or the 32 hex digits of W3C / OpenTelemetry - and Enter opens its timeline
// (#/trace/<id in X-Ray's form>). Anything else is pointed out next to the box, as text.

import { h } from './dom.js';
import { navigate } from './router.js';
import { canonicalId } from './views/rootcause.js';

/** Build the box into `mount` (the header's #goto). */
export function install(mount) {
  const input = h('input', {
    id: 'trace-id-box',
    type: 'search',
    name: 'trace-id',
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: 'Trace id',
    'aria-label': 'Open a trace by id',
    'aria-describedby': 'trace-id-error',
  });
  const error = h('span', { id: 'trace-id-error', class: 'goto-error', role: 'status' });
  const form = h('form', {
    class: 'goto-form',
    role: 'search',
    onsubmit: (event) => {
      event.preventDefault();
      const raw = input.value.trim();
      const id = canonicalId(raw.replace(/^Root=/i, '').split(';')[0]);
      if (!id) {
        input.setAttribute('aria-invalid', 'true');
        error.textContent = raw ? 'Not a trace id: 1-xxxxxxxx-… or 32 hex digits' : '';
        return;
      }
      input.removeAttribute('aria-invalid');
      error.textContent = '';
      input.value = '';
      navigate('trace', {}, id);
    },
    oninput: () => {
      input.removeAttribute('aria-invalid');
      error.textContent = '';
    },
  }, input, error);
  mount.replaceChildren(form);
}

const mount = document.getElementById('goto');
if (mount) install(mount);
