// Sampling: the centralized sampling rules in the order the SDKs try them, created,
// edited and deleted with the server's validation shown at the field; each rule's live
// statistics (requests seen, sampled, borrowed per interval, per client); and the
// what-if replay of a proposed rule set over the stored traffic of the time range.
//
// Route: #/sampling (#/sampling?edit=<rule> opens a rule in the form).

import { ApiError, xray } from '../api.js';
import { COLOURS, timeSeries } from '../charts.js';
import { h, state } from '../dom.js';
import * as fmt from '../format.js';
import { update } from '../router.js';

const LIVE_MS = 2000;
const FIELDS = [
  // [API field, label, kind, default]
  ['RuleName', 'Name', 'text', ''],
  ['Priority', 'Priority (1–9999)', 'number', '1000'],
  ['ReservoirSize', 'Reservoir (per second)', 'number', '1'],
  ['FixedRate', 'Fixed rate (0–1)', 'number', '0.05'],
  ['ServiceName', 'Service name', 'text', '*'],
  ['ServiceType', 'Service type', 'text', '*'],
  ['Host', 'Host', 'text', '*'],
  ['HTTPMethod', 'HTTP method', 'text', '*'],
  ['URLPath', 'URL path', 'text', '*'],
  ['ResourceARN', 'Resource ARN', 'text', '*'],
];
const DEFAULT_EDITABLE = new Set(['ReservoirSize', 'FixedRate']);
const fieldId = (name) => `rule-${name}`;

/** A rule as the SamplingRule fields a proposal or a create sends. */
function ruleBody(rule) {
  const body = {};
  for (const [name] of FIELDS) body[name] = rule[name];
  body.Version = 1;
  if (rule.Attributes && Object.keys(rule.Attributes).length) body.Attributes = rule.Attributes;
  return body;
}

export function render(root, route, ctx) {
  const params = route.params;
  const controller = new AbortController();
  const requested = params.get('edit') || ''; // opened in the form on the first load
  let editing = '';
  let first = true;
  let rules = [];
  let liveTimer = null;
  let chart = null;

  // -- the form ---------------------------------------------------------------------------
  const inputs = {};
  const errors = {};
  const fields = FIELDS.map(([name, label, kind]) => {
    inputs[name] = h('input', {
      type: kind, id: fieldId(name), name, autocomplete: 'off', spellcheck: 'false',
      step: name === 'FixedRate' ? 'any' : (kind === 'number' ? '1' : null),
      'aria-describedby': `${fieldId(name)}-error`,
    });
    errors[name] = h('div', { class: 'field-error', id: `${fieldId(name)}-error`, role: 'alert' });
    return h('label', { class: 'field' }, h('span', null, label), inputs[name], errors[name]);
  });
  const formError = h('div', { class: 'field-error', id: 'rule-form-error', role: 'alert' });
  const title = h('h2', { id: 'rule-form-title' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'rule-save' });
  const cancel = h('button', { type: 'button', id: 'rule-cancel', onclick: () => update({ edit: null }) }, 'Cancel');
  const propose = h('button', { type: 'button', id: 'rule-propose', title: 'Put this rule, as filled in, into the what-if proposal below', onclick: () => proposeForm() }, 'Try in what-if');
  const form = h('form', { id: 'rule-form', class: 'rule-form', onsubmit: (event) => { event.preventDefault(); save(); } },
    title, h('div', { class: 'fields' }, fields), h('div', { class: 'actions' }, submit, cancel, propose), formError);

  // -- the rules and their live statistics -----------------------------------------------
  const tbody = h('tbody');
  const table = h('table', { class: 'list plain', id: 'rule-list' },
    h('thead', null, h('tr', null,
      h('th', null, 'Priority'), h('th', null, 'Rule'), h('th', null, 'Matches'),
      h('th', { class: 'num' }, 'Reservoir'), h('th', { class: 'num' }, 'Fixed rate'),
      h('th', { class: 'num', title: 'Over the last reported interval, every client' }, 'Requests'),
      h('th', { class: 'num' }, 'Sampled'), h('th', { class: 'num' }, 'Borrowed'),
      h('th', { class: 'num' }, 'Clients'), h('th', null, ''))),
    tbody);
  const listState = h('div');
  const clientsPanel = h('div', { id: 'rule-clients' });
  const statsRule = h('select', { id: 'stats-rule', 'aria-label': 'Rule whose intervals are charted', onchange: () => { drawn = ''; live(); } });
  const statsChart = h('div', { class: 'chart', id: 'stats-chart' });
  let statsPlot = null;
  let drawn = ''; // what the interval chart shows, to redraw only on change

  // -- what-if -------------------------------------------------------------------------------
  const proposal = h('textarea', { id: 'whatif-rules', rows: 10, spellcheck: 'false', 'aria-label': 'Proposed rules (JSON)' });
  const whatIfError = h('div', { class: 'field-error', id: 'whatif-error', role: 'alert' });
  const whatIfResult = h('div', { id: 'whatif-result' });
  const whatIfChart = h('div', { class: 'chart', id: 'whatif-chart' });
  const run = h('button', { type: 'button', class: 'primary', id: 'whatif-run', onclick: () => whatIf() }, 'Run what-if');
  const reset = h('button', { type: 'button', id: 'whatif-reset', onclick: () => { proposal.value = JSON.stringify(rules.map(ruleBody), null, 2); } }, 'Start from the current rules');

  root.append(
    h('section', { class: 'panel' }, h('h1', null, 'Sampling'),
      h('p', { class: 'muted hint' }, 'Rules in the order the SDKs try them (priority, then name); the Default rule catches the rest. Statistics are what the SDKs report every 10 s.'),
      h('div', { class: 'scroll' }, table), listState,
      h('div', { class: 'toolbar' }, h('label', { for: 'stats-rule' }, 'Intervals of '), statsRule),
      statsChart, clientsPanel),
    h('section', { class: 'panel' }, form),
    h('section', { class: 'panel' }, h('h2', null, 'What if'),
      h('p', { class: 'muted hint' }, `Replays the traces stored in the time range (${ctx.range.label.toLowerCase()}) against the proposed rules below — each trace's service, type, host, method, URL path and ARN as the SDKs match a request — and counts what each rule would match and keep: its reservoir each second, then its fixed rate of the rest. Stored traces stand for the requests: where SDKs sampled before sending, they are what the current rules kept.`),
      proposal, h('div', { class: 'actions' }, run, reset), whatIfError, whatIfChart, whatIfResult));

  function setMode(rule) {
    editing = rule ? rule.RuleName : '';
    title.textContent = rule ? `Edit rule ${rule.RuleName}` : 'New rule';
    submit.textContent = rule ? 'Save' : 'Create rule';
    cancel.classList.toggle('hidden', !rule);
    for (const [name, , , fallback] of FIELDS) {
      const value = rule ? rule[name] : fallback;
      inputs[name].value = value === undefined || value === null ? '' : String(value);
      inputs[name].disabled = Boolean(rule) && (name === 'RuleName' || (rule.RuleName === 'Default' && !DEFAULT_EDITABLE.has(name)));
    }
    clearErrors();
  }

  function clearErrors() {
    for (const [name] of FIELDS) {
      errors[name].replaceChildren();
      inputs[name].removeAttribute('aria-invalid');
    }
    formError.replaceChildren();
  }

  function formValues() {
    const body = {};
    for (const [name, , kind] of FIELDS) {
      if (inputs[name].disabled && name !== 'RuleName') continue;
      const raw = inputs[name].value.trim();
      body[name] = kind === 'number' ? (raw === '' ? null : Number(raw)) : raw;
    }
    return body;
  }

  /** An API error shown at the field its message names, else under the form. */
  function showError(err, prefix = '') {
    const message = String(err.message || err).replace(prefix, '');
    const field = FIELDS.map(([name]) => name).find((name) => message.startsWith(name));
    if (field && !inputs[field].disabled) {
      errors[field].textContent = message;
      inputs[field].setAttribute('aria-invalid', 'true');
      inputs[field].focus();
    } else {
      formError.textContent = message;
    }
  }

  async function save() {
    clearErrors();
    const values = formValues();
    try {
      if (editing) {
        delete values.RuleName;
        await xray('UpdateSamplingRule', { SamplingRuleUpdate: { RuleName: editing, ...values } }, { signal: controller.signal });
      } else {
        await xray('CreateSamplingRule', { SamplingRule: { ...values, Version: 1 } }, { signal: controller.signal });
      }
    } catch (err) {
      if (err.name === 'AbortError') return;
      showError(err);
      return;
    }
    if (editing) update({ edit: null });
    else { setMode(null); load(); }
  }

  function proposeForm() {
    let list;
    try { list = JSON.parse(proposal.value || '[]'); } catch { list = rules.map(ruleBody); }
    if (!Array.isArray(list)) list = rules.map(ruleBody);
    const values = { ...ruleBody(Object.fromEntries(FIELDS.map(([n]) => [n, null]))), ...formValues() };
    if (editing) values.RuleName = editing;
    const at = list.findIndex((r) => r && r.RuleName === values.RuleName);
    if (at >= 0) list[at] = { ...list[at], ...values };
    else list.unshift(values);
    proposal.value = JSON.stringify(list, null, 2);
    proposal.scrollIntoView({ block: 'nearest' });
  }

  // -- the rule list -----------------------------------------------------------------------
  function matches(rule) {
    const parts = [];
    for (const [name, label] of [['ServiceName', 'service'], ['ServiceType', 'type'], ['Host', 'host'], ['HTTPMethod', 'method'], ['URLPath', 'path'], ['ResourceARN', 'ARN']]) {
      if (rule[name] !== '*') parts.push(`${label} ${rule[name]}`);
    }
    for (const [k, v] of Object.entries(rule.Attributes || {})) parts.push(`${k}=${v}`);
    return parts.length ? parts.join(' · ') : 'every request';
  }

  function row(rule) {
    let armed = false;
    const del = h('button', {
      type: 'button', class: 'danger', dataset: { action: 'delete' },
      onclick: async () => {
        if (!armed) { armed = true; del.textContent = 'Confirm delete'; return; }
        try {
          await xray('DeleteSamplingRule', { RuleName: rule.RuleName }, { signal: controller.signal });
          if (editing === rule.RuleName) update({ edit: null }); else load();
        } catch (err) {
          if (err.name !== 'AbortError') listState.replaceChildren(state('error', `The rule could not be deleted: ${err.message}`));
        }
      },
    }, 'Delete');
    const stat = (key) => h('td', { class: 'num', dataset: { stat: key } }, '—');
    return h('tr', { dataset: { name: rule.RuleName } },
      h('td', { class: 'num' }, String(rule.Priority)),
      h('td', null, rule.RuleName),
      h('td', { class: 'url' }, matches(rule)),
      h('td', { class: 'num' }, `${rule.ReservoirSize}/s`),
      h('td', { class: 'num' }, fmt.percent(rule.FixedRate, 1)),
      stat('requests'), stat('sampled'), stat('borrowed'), stat('clients'),
      h('td', { class: 'actions' },
        h('button', { type: 'button', dataset: { action: 'edit' }, onclick: () => update({ edit: rule.RuleName }) }, 'Edit'),
        rule.RuleName === 'Default' ? null : del));
  }

  async function load() {
    try {
      const answer = await xray('GetSamplingRules', {}, { signal: controller.signal });
      rules = (answer.SamplingRuleRecords || []).map((r) => r.SamplingRule);
      tbody.replaceChildren(...rules.map(row));
      listState.replaceChildren();
      table.dataset.state = 'loaded';
      if (!proposal.value) proposal.value = JSON.stringify(rules.map(ruleBody), null, 2);
      const wanted = first ? requested : editing;
      first = false;
      const chosen = rules.find((r) => r.RuleName === wanted);
      setMode(chosen || null);
      if (wanted && !chosen) listState.replaceChildren(state('error', `There is no rule named “${wanted}”.`));
      live();
    } catch (err) {
      if (err.name !== 'AbortError') listState.replaceChildren(state('error', `Sampling rules could not be loaded: ${err.message}`));
    }
  }

  async function live() {
    clearTimeout(liveTimer);
    try {
      const answer = await xray('api/sampling/live', {}, { signal: controller.signal });
      const sections = [];
      for (const item of answer.rules || []) {
        const tr = tbody.querySelector(`tr[data-name="${CSS.escape(item.name)}"]`);
        const last = item.windows.length ? item.windows[item.windows.length - 1] : null;
        if (tr) {
          const set = (key, value) => { tr.querySelector(`[data-stat="${key}"]`).textContent = value; };
          set('requests', last ? fmt.count(last[1]) : '—');
          set('sampled', last ? fmt.count(last[2]) : '—');
          set('borrowed', last ? fmt.count(last[3]) : '—');
          set('clients', fmt.count(item.active_clients));
        }
        if (item.clients.length) sections.push(clientTable(item));
      }
      clientsPanel.replaceChildren(...sections);
      drawIntervals(answer);
      table.dataset.live = String(Date.now());
    } catch (err) {
      if (err.name === 'AbortError') return;
      clientsPanel.replaceChildren(state('error', `Live statistics stopped: ${err.message}`));
    }
    liveTimer = setTimeout(live, LIVE_MS);
  }

  // Requests, sampled and borrowed per interval (every client) of the chosen rule.
  function drawIntervals(answer) {
    const names = (answer.rules || []).map((r) => r.name);
    if (statsRule.options.length !== names.length || names.some((n, i) => statsRule.options[i].value !== n)) {
      const keep = statsRule.value || (answer.rules.find((r) => r.windows.length) || {}).name || names[0];
      statsRule.replaceChildren(...names.map((n) => h('option', { value: n, selected: n === keep }, n)));
    }
    const item = answer.rules.find((r) => r.name === statsRule.value);
    const windows = item ? item.windows : [];
    const signature = `${statsRule.value}:${JSON.stringify(windows)}`;
    if (signature === drawn) return;
    drawn = signature;
    if (statsPlot) { statsPlot.destroy(); statsPlot = null; }
    if (windows.length < 2) {
      statsChart.replaceChildren(state('empty', windows.length ? 'One interval reported so far.' : 'No client has reported statistics for this rule yet.'));
      return;
    }
    statsChart.replaceChildren();
    statsPlot = timeSeries(statsChart, {
      times: windows.map((w) => w[0]),
      yLabel: `Per ${answer.interval} s`,
      height: 160,
      series: [
        { label: 'Requests', values: windows.map((w) => w[1]), colour: COLOURS.requests },
        { label: 'Sampled', values: windows.map((w) => w[2]), colour: COLOURS.ok },
        { label: 'Borrowed', values: windows.map((w) => w[3]), colour: COLOURS.error },
      ],
    });
  }

  function clientTable(item) {
    const now = Date.now() / 1000;
    return h('details', { class: 'clients', dataset: { rule: item.name } },
      h('summary', null, `${item.name}: ${item.clients.length} client${item.clients.length === 1 ? '' : 's'} reporting`),
      h('div', { class: 'scroll' }, h('table', { class: 'list plain' },
        h('thead', null, h('tr', null, ['Client', 'Last report', 'Requests', 'Sampled', 'Borrowed', 'Quota/s', 'Reports', 'Requests in all'].map((t) => h('th', null, t)))),
        h('tbody', null, item.clients.map((c) => h('tr', { dataset: { client: c.client } },
          h('td', { class: 'mono' }, c.client), h('td', null, fmt.age(c.heard, now)),
          h('td', { class: 'num' }, fmt.count(c.requests)), h('td', { class: 'num' }, fmt.count(c.sampled)),
          h('td', { class: 'num' }, fmt.count(c.borrowed)), h('td', { class: 'num' }, String(c.quota)),
          h('td', { class: 'num' }, fmt.count(c.reports)), h('td', { class: 'num' }, fmt.count(c.total_requests))))))));
  }

  // -- what-if -------------------------------------------------------------------------------
  async function whatIf() {
    whatIfError.replaceChildren();
    proposal.removeAttribute('aria-invalid');
    let list;
    try {
      list = JSON.parse(proposal.value);
    } catch (err) {
      whatIfError.textContent = `The proposal is not valid JSON: ${err.message}`;
      proposal.setAttribute('aria-invalid', 'true');
      return;
    }
    whatIfResult.replaceChildren(state('loading', 'Replaying…'));
    let answer;
    try {
      answer = await xray('api/sampling/whatif', { StartTime: ctx.range.start, EndTime: ctx.range.end, Rules: list }, { signal: controller.signal });
    } catch (err) {
      if (err.name === 'AbortError') return;
      whatIfResult.replaceChildren();
      whatIfError.textContent = err.message;
      proposal.setAttribute('aria-invalid', 'true');
      return;
    }
    showWhatIf(answer);
  }

  function showWhatIf(answer) {
    const current = new Map(answer.current.map((r) => [r.rule, r]));
    const totals = (set) => set.reduce((sum, r) => sum + r.kept, 0);
    const rows = answer.proposed.map((r) => {
      const now = current.get(r.rule);
      return h('tr', { dataset: { rule: r.rule } },
        h('td', null, r.rule),
        h('td', { class: 'num', dataset: { col: 'matched' } }, fmt.count(r.matched)),
        h('td', { class: 'num', dataset: { col: 'kept' } }, fmt.count(Math.round(r.kept))),
        h('td', { class: 'num', dataset: { col: 'current-matched' } }, now ? fmt.count(now.matched) : '—'),
        h('td', { class: 'num', dataset: { col: 'current-kept' } }, now ? fmt.count(Math.round(now.kept)) : '—'));
    });
    const removed = answer.current.filter((r) => !answer.proposed.some((p) => p.rule === r.rule));
    for (const r of removed) {
      rows.push(h('tr', { dataset: { rule: r.rule }, class: 'muted' }, h('td', null, `${r.rule} (not in the proposal)`),
        h('td', { class: 'num' }, '—'), h('td', { class: 'num' }, '—'),
        h('td', { class: 'num' }, fmt.count(r.matched)), h('td', { class: 'num' }, fmt.count(Math.round(r.kept)))));
    }
    whatIfResult.replaceChildren(
      h('p', { class: 'muted', id: 'whatif-summary' },
        `${fmt.count(answer.traces)} stored traces replayed: the proposal keeps about ${fmt.count(Math.round(totals(answer.proposed)))}, the current rules about ${fmt.count(Math.round(totals(answer.current)))}.`),
      h('div', { class: 'scroll' }, h('table', { class: 'list plain', id: 'whatif-table' },
        h('thead', null, h('tr', null, h('th', null, 'Rule'), h('th', { class: 'num' }, 'Matched'), h('th', { class: 'num' }, 'Kept'),
          h('th', { class: 'num' }, 'Matched now'), h('th', { class: 'num' }, 'Kept now'))),
        h('tbody', null, rows))));
    whatIfResult.dataset.state = 'loaded';
    drawWhatIf(answer);
  }

  function drawWhatIf(answer) {
    if (chart) { chart.destroy(); chart = null; }
    const times = answer.stored.map(([t]) => t);
    if (times.length < 2) { whatIfChart.replaceChildren(); return; }
    const index = new Map(times.map((t, i) => [t, i]));
    const series = (set) => {
      const values = new Array(times.length).fill(0);
      for (const r of set) for (const [t, , kept] of r.series) values[index.get(t)] += kept;
      return values;
    };
    whatIfChart.replaceChildren();
    chart = timeSeries(whatIfChart, {
      times,
      yLabel: `Traces per ${answer.period} s`,
      series: [
        { label: 'Stored', values: answer.stored.map(([, n]) => n), colour: COLOURS.requests },
        { label: 'Kept (proposal)', values: series(answer.proposed), colour: COLOURS.ok },
        { label: 'Kept (current rules)', values: series(answer.current), colour: COLOURS.fault },
      ],
    });
  }

  setMode(null);
  load();
  return () => {
    controller.abort();
    clearTimeout(liveTimer);
    if (chart) chart.destroy();
    if (statsPlot) statsPlot.destroy();
  };
}
