// Workflows: the list, and the canvas — a palette of components (searchable, click or drag to add), nodes
// whose ports connect by clicking an output then an input, a parameter panel built from the component
// schema the API serves, run/cancel with per-node badges, previews (rows + map), variables, schedule and
// "export as SQL". Everything is keyboard-reachable: nodes are focusable, arrows move them, Delete removes.
import { api, request } from '../http.js';
import { h, clear, empty, spinner, toast, dialog, field, when, table, fmt } from '../dom.js';
import { connectionNames, newMap } from '../workspace.js';
import { MapView } from '../mapview.js';
import { defaultLayer } from '../style.js';

const WF = '/api/v3/workflows';
const FINAL = ['success', 'failure', 'cancelled'];

export async function render(main, ctx, parts) {
  if (parts && parts[0]) return editor(main, ctx, parts[0]);
  const list = h('div', spinner());
  main.append(h('div.page-head', h('div', h('h1', 'Workflows'), h('p', 'Chain analysis steps that run in your warehouse, preview each step and schedule the result.')),
    ctx.canWrite ? h('button.primary#new-workflow', { onclick: create }, 'New workflow') : null), list);
  try {
    const items = (await api.get(WF)).results || [];
    clear(list, items.length ? h('div.table-wrap', h('table', { 'aria-label': 'Workflows' },
      h('thead', h('tr', ['Name', 'Connection', 'Schedule', 'Last run', 'Updated'].map(t => h('th', { scope: 'col' }, t)))),
      h('tbody', items.map(w => h('tr', { dataset: { workflow: w.id } },
        h('td', h('a', { href: `#/workflows/${w.id}` }, h('strong', w.name))), h('td', w.connection), h('td', w.schedule || '—'),
        h('td', w.lastRun && w.lastRun.status ? h(`span.badge.wf-${w.lastRun.status}`, w.lastRun.status) : '—'), h('td', when(w.updatedAt)))))))
      : h('div.card', empty('No workflows yet', 'Create a workflow, then add components from the palette.')));
  } catch (err) { clear(list, h('p.form-error', { role: 'alert' }, err.message)); }

  async function create() {
    const names = await connectionNames().catch(() => ['carto_dw']);
    const name = field('Name', { value: 'Untitled workflow', autocomplete: 'off' });
    const conn = field('Connection', { tag: 'select' });
    names.forEach(n => conn.input.append(h('option', { value: n }, n)));
    const ok = await dialog('New workflow', close => h('form', { onsubmit: e => { e.preventDefault(); close('ok'); } }, name, conn),
      [{ label: 'Cancel', value: null }, { label: 'Create', value: 'ok', kind: 'primary' }]);
    if (ok !== 'ok') return;
    try {
      const w = await api.post(WF, { name: name.input.value.trim() || 'Untitled workflow', connection: conn.input.value, nodes: [], edges: [] });
      location.hash = `#/workflows/${w.id}`;
    } catch (err) { toast(err.message, 'error'); }
  }
}

async function editor(main, ctx, id) {
  clear(main, spinner('Opening the workflow…'));
  const [wf, comps] = await Promise.all([api.get(`${WF}/${id}`), api.get(`${WF}/components`)]);
  const components = Object.fromEntries(comps.results.map(c => [c.type, c]));
  const state = { nodes: wf.nodes, edges: wf.edges, selected: null, connecting: null, run: null, polling: null, view: null };
  let seq = state.nodes.length;

  const canvas = h('div.wf-canvas#wf-canvas', { role: 'application', 'aria-label': 'Workflow canvas',
    ondragover: e => e.preventDefault(),
    ondrop: e => {
      e.preventDefault();
      const type = e.dataTransfer.getData('text/x-component');
      const r = canvas.getBoundingClientRect();
      if (type) addNode(type, { x: e.clientX - r.left + canvas.scrollLeft - 70, y: e.clientY - r.top + canvas.scrollTop - 20 });
    } });
  const edgesSvg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  edgesSvg.classList.add('wf-edges');
  const panel = h('aside.wf-panel#wf-panel', { 'aria-label': 'Node parameters' });
  const search = h('input#wf-search', { type: 'search', placeholder: 'Search components', 'aria-label': 'Search components', oninput: drawPalette });
  const palette = h('div.wf-palette-list');
  const status = h('span#wf-status.muted', { role: 'status', 'aria-live': 'polite' });
  const schedule = h('input#wf-schedule', { value: wf.schedule || '', placeholder: 'cron, e.g. 0 6 * * *', 'aria-label': 'Schedule (cron, UTC)' });
  const variables = h('textarea#wf-variables', { rows: 2, 'aria-label': 'Variables (JSON list of {name, type, default})' }, JSON.stringify(wf.variables || []));

  clear(main,
    h('div.page-head', h('div', h('h1#wf-title', wf.name), h('p.muted', `${wf.connection} · ${wf.privacy}`)),
      h('div.row',
        h('a.button.secondary', { href: '#/workflows' }, 'All workflows'),
        ctx.canWrite ? h('button.secondary#wf-save', { onclick: () => save().then(() => toast('Workflow saved')).catch(showError) }, 'Save') : null,
        ctx.canWrite ? h('button.primary#wf-run', { onclick: run }, 'Run') : null,
        ctx.canWrite ? h('button.secondary#wf-cancel', { onclick: cancel }, 'Cancel run') : null,
        h('button.secondary#wf-export', { onclick: exportSQL }, 'Export as SQL'), status)),
    h('div.wf-settings', h('label', 'Schedule (UTC cron) ', schedule), h('label', 'Variables ', variables)),
    h('div.wf-layout',
      h('nav.wf-palette', { 'aria-label': 'Components' }, search, palette),
      h('div.wf-canvas-wrap', canvas),
      panel));
  canvas.append(edgesSvg);
  drawPalette();
  draw();
  selectNode(null);
  if (wf.lastRun && wf.lastRun.id) loadRun(wf.lastRun.id);

  function drawPalette() {
    const q = search.value.trim().toLowerCase();
    const groups = {};
    for (const c of comps.results) {
      if (q && !(`${c.type} ${c.title} ${c.category}`.toLowerCase().includes(q))) continue;
      (groups[c.category] = groups[c.category] || []).push(c);
    }
    clear(palette, Object.entries(groups).map(([cat, list]) => h('div.wf-group', h('h3', cat),
      list.map(c => h('button.wf-item', { type: 'button', draggable: 'true', dataset: { type: c.type }, title: `Add ${c.title}`,
        ondragstart: e => e.dataTransfer.setData('text/x-component', c.type), onclick: () => addNode(c.type) }, c.title)))));
  }

  function addNode(type, pos) {
    let nid;
    do { nid = `${type.replace(/[^a-z0-9]/g, '')}${++seq}`; } while (state.nodes.some(n => n.id === nid));
    const position = pos || { x: 30 + (state.nodes.length % 3) * 195, y: 40 + Math.floor(state.nodes.length / 3) * 130 };
    const params = {};
    for (const p of components[type].params) if (p.default !== undefined) params[p.name] = p.default;
    state.nodes.push({ id: nid, type, params, position: { x: Math.max(0, Math.round(position.x)), y: Math.max(0, Math.round(position.y)) } });
    draw();
    selectNode(nid);
    canvas.querySelector(`[data-node="${nid}"]`).focus();
  }

  function removeNode(nid) {
    state.nodes = state.nodes.filter(n => n.id !== nid);
    state.edges = state.edges.filter(e => e.source !== nid && e.target !== nid);
    if (state.selected === nid) selectNode(null);
    draw();
  }

  function port(nid, name, kind) {
    return h(`button.wf-port.wf-${kind}`, { type: 'button', dataset: { node: nid, port: name, kind },
      title: kind === 'out' ? 'Output: connect from here' : `Input ${name}: connect here`,
      'aria-label': kind === 'out' ? `Connect from ${nid}` : `Connect to ${nid} input ${name}`,
      'aria-pressed': state.connecting === nid && kind === 'out' ? 'true' : undefined,
      onclick: e => { e.stopPropagation(); portClick(nid, name, kind); } }, kind === 'out' ? '●' : name);
  }

  function portClick(nid, name, kind) {
    if (kind === 'out') { state.connecting = state.connecting === nid ? null : nid; draw(); return; }
    if (!state.connecting || state.connecting === nid) return;
    state.edges = state.edges.filter(e => !(e.target === nid && e.targetPort === name));
    state.edges.push({ source: state.connecting, target: nid, targetPort: name });
    state.connecting = null;
    draw();
  }

  function draw() {
    for (const el of [...canvas.querySelectorAll('.wf-node')]) el.remove();
    for (const n of state.nodes) {
      const c = components[n.type];
      const ns = state.run && state.run.nodes && state.run.nodes[n.id];
      const badge = ns ? h(`span.badge.wf-${ns.status}`, { dataset: { status: ns.status } },
        ns.status === 'success' ? `${ns.reused ? 'cached' : 'done'} · ${fmt(ns.rows)} rows · ${ns.ms} ms` : ns.status) : null;
      const el = h('div.wf-node', { tabindex: 0, role: 'group', 'aria-label': `${c.title} ${n.id}`, dataset: { node: n.id },
        'aria-current': state.selected === n.id ? 'true' : undefined,
        style: { left: `${n.position.x}px`, top: `${n.position.y}px` },
        onclick: () => selectNode(n.id),
        onkeydown: e => nodeKey(e, n),
        onpointerdown: e => dragStart(e, n) },
        h('div.wf-ports-in', c.inputs.map(p => port(n.id, p, 'in'))),
        h('div.wf-node-title', c.title), h('div.wf-node-id.muted', n.id), badge,
        ns && ns.error ? h('div.form-error', ns.error) : null,
        c.outputs.length ? port(n.id, 'out', 'out') : null);
      canvas.append(el);
    }
    requestAnimationFrame(drawEdges);
  }

  function drawEdges() {
    const r = canvas.getBoundingClientRect();
    edgesSvg.setAttribute('width', canvas.scrollWidth);
    edgesSvg.setAttribute('height', canvas.scrollHeight);
    edgesSvg.replaceChildren();
    for (const e of state.edges) {
      const from = canvas.querySelector(`.wf-out[data-node="${e.source}"]`);
      const to = canvas.querySelector(`.wf-in[data-node="${e.target}"][data-port="${e.targetPort}"]`);
      if (!from || !to) continue;
      const a = from.getBoundingClientRect(), b = to.getBoundingClientRect();
      const x1 = a.left + a.width / 2 - r.left + canvas.scrollLeft, y1 = a.top + a.height / 2 - r.top + canvas.scrollTop;
      const x2 = b.left + b.width / 2 - r.left + canvas.scrollLeft, y2 = b.top + b.height / 2 - r.top + canvas.scrollTop;
      const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
      path.setAttribute('d', `M${x1},${y1} C${x1},${(y1 + y2) / 2} ${x2},${(y1 + y2) / 2} ${x2},${y2}`);
      path.dataset.edge = `${e.source}->${e.target}:${e.targetPort}`;
      edgesSvg.append(path);
    }
  }

  function nodeKey(e, n) {
    const step = e.shiftKey ? 50 : 10;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (e.target !== e.currentTarget) return;
    if (moves[e.key]) {
      e.preventDefault();
      n.position = { x: Math.max(0, n.position.x + moves[e.key][0]), y: Math.max(0, n.position.y + moves[e.key][1]) };
      draw();
      canvas.querySelector(`[data-node="${n.id}"]`).focus();
    } else if (e.key === 'Delete' || e.key === 'Backspace') { e.preventDefault(); removeNode(n.id); }
    else if (e.key === 'Enter') selectNode(n.id);
  }

  function dragStart(e, n) {
    if (e.target.closest('.wf-port') || e.button !== 0) return;
    const start = { x: e.clientX, y: e.clientY, px: n.position.x, py: n.position.y };
    const el = e.currentTarget;
    const move = ev => {
      n.position = { x: Math.max(0, start.px + ev.clientX - start.x), y: Math.max(0, start.py + ev.clientY - start.y) };
      el.style.left = `${n.position.x}px`; el.style.top = `${n.position.y}px`;
      drawEdges();
    };
    const up = () => { window.removeEventListener('pointermove', move); window.removeEventListener('pointerup', up); };
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
  }

  // The parameter panel: one control per parameter of the component schema; JSON for structured ones.
  function selectNode(nid, error) {
    state.selected = nid;
    for (const el of canvas.querySelectorAll('.wf-node')) el.toggleAttribute('aria-current', el.dataset.node === nid);
    if (state.view) { state.view.destroy(); state.view = null; }
    const n = state.nodes.find(x => x.id === nid);
    if (!n) { clear(panel, h('p.muted', 'Select a node to edit its parameters. Add nodes from the palette.')); return; }
    const c = components[n.type];
    const inputs = {};
    const structured = ['columns', 'aggregates', 'sort', 'mapping'];
    const form = h('form#wf-params', { onsubmit: e => { e.preventDefault(); apply(); } },
      c.params.map(p => {
        const v = n.params[p.name];
        let f;
        if (p.type === 'choice') {
          f = field(p.title, { tag: 'select', name: p.name });
          f.input.append(h('option', { value: '' }, '—'), ...p.options.map(o => h('option', { value: o, selected: v === o }, o)));
        } else if (p.type === 'boolean') {
          f = field(p.title, { type: 'checkbox', name: p.name, checked: v === true });
        } else {
          const text = v === undefined || v === null ? '' : (typeof v === 'object' ? JSON.stringify(v) : String(v));
          const multi = ['sql', 'expression', ...structured].includes(p.type);
          f = field(p.title + (p.required ? ' *' : ''), { tag: multi ? 'textarea' : 'input', name: p.name, value: text,
            type: ['number', 'integer'].includes(p.type) ? 'number' : undefined, step: p.type === 'number' ? 'any' : undefined });
          if (multi) f.input.value = text;
        }
        inputs[p.name] = { f, p };
        if (error && error.parameter === p.name) fieldErr(f, error.message);
        return f;
      }),
      h('div.row', h('button.primary', { type: 'submit' }, 'Apply'),
        h('button.secondary#wf-preview-btn', { type: 'button', onclick: () => preview(n.id) }, 'Preview'),
        h('button.danger', { type: 'button', onclick: () => removeNode(n.id) }, 'Remove')));
    const previewBox = h('div#wf-preview');
    clear(panel, h('h2', `${c.title} · ${n.id}`), form, previewBox);

    function apply() {
      let ok = true;
      const params = {};
      for (const { f, p } of Object.values(inputs)) {
        fieldErr(f, null);
        const raw = p.type === 'boolean' ? f.input.checked : f.input.value.trim();
        if (raw === '' || raw === false && p.type !== 'boolean') {
          if (p.required) { fieldErr(f, 'Required'); ok = false; }
          continue;
        }
        if (p.type === 'number' || p.type === 'integer') {
          const num = Number(raw);
          if (!Number.isFinite(num) || (p.type === 'integer' && !Number.isInteger(num))) { fieldErr(f, `Enter ${p.type === 'integer' ? 'a whole number' : 'a number'}`); ok = false; continue; }
          params[p.name] = num;
        } else if (structured.includes(p.type)) {
          try { params[p.name] = JSON.parse(raw); } catch {
            if (p.type === 'columns') params[p.name] = raw.split(',').map(s => s.trim()).filter(Boolean);
            else { fieldErr(f, 'Enter JSON'); ok = false; }
          }
        } else params[p.name] = raw;
      }
      if (ok) { n.params = params; toast('Parameters applied'); }
      return ok;
    }
  }

  function fieldErr(f, msg) {
    f.error.textContent = msg || '';
    f.error.hidden = !msg;
    if (msg) f.input.setAttribute('aria-invalid', 'true'); else f.input.removeAttribute('aria-invalid');
  }

  function showError(err) {
    const body = err.body || {};
    if (body.node && state.nodes.some(n => n.id === body.node)) selectNode(body.node, { parameter: body.parameter, message: body.error });
    status.textContent = err.message;
    toast(err.message, 'error');
  }

  async function save() {
    let vars;
    try { vars = JSON.parse(variables.value || '[]'); } catch { throw new Error('Variables must be a JSON list'); }
    const w = await api.patch(`${WF}/${id}`, { nodes: state.nodes, edges: state.edges, variables: vars, schedule: schedule.value.trim() || null });
    wf.nextRunAt = w.nextRunAt;
  }

  async function run() {
    try {
      await save();
      status.textContent = 'Starting…';
      const r = await api.post(`${WF}/${id}/runs`, {});
      loadRun(r.id);
    } catch (err) { showError(err); }
  }

  async function loadRun(runId) {
    clearTimeout(state.polling);
    try {
      state.run = await api.get(`${WF}/${id}/runs/${runId}`);
    } catch { return; }
    status.textContent = `Run ${state.run.id}: ${state.run.status}${state.run.ms != null ? ` in ${state.run.ms} ms` : ''}${state.run.error ? ` — ${state.run.error}` : ''}`;
    status.dataset.status = state.run.status;
    draw();
    if (!FINAL.includes(state.run.status)) state.polling = setTimeout(() => loadRun(runId), 500);
  }

  async function cancel() {
    if (!state.run || FINAL.includes(state.run.status)) { toast('No run in progress'); return; }
    try { await api.post(`${WF}/${id}/runs/${state.run.id}/cancel`, {}); loadRun(state.run.id); } catch (err) { showError(err); }
  }

  async function exportSQL() {
    try {
      const res = await request('GET', `${WF}/${id}/sql`, { raw: true });
      const text = await res.text();
      if (!res.ok) { let b = {}; try { b = JSON.parse(text); } catch { /* text */ } throw Object.assign(new Error(b.error || text), { body: b }); }
      await dialog('Compiled SQL', h('pre.wf-sql#wf-sql', text), [{ label: 'Close', value: null }]);
    } catch (err) { showError(err); }
  }

  async function preview(nid) {
    const box = panel.querySelector('#wf-preview');
    clear(box, spinner('Loading the preview…'));
    try {
      const p = await api.get(`${WF}/${id}/nodes/${encodeURIComponent(nid)}/preview`, { params: { limit: 20 } });
      const cols = p.schema.filter(c => !c.type.startsWith('geometry'));
      const mapBox = p.source ? h('div.map-preview.wf-map#wf-preview-map') : null;
      clear(box, h('h3', `Preview · ${p.table}`),
        p.source && ctx.canWrite ? h('button.secondary#wf-open-map', { type: 'button', onclick: () => openMap(p) }, 'Open as map') : null,
        mapBox,
        p.rows.length ? table(cols.map(c => ({ label: c.name, render: row => fmt(row[c.name]) })), p.rows, { 'aria-label': 'Preview rows' })
          : empty('No rows', 'This step produced no rows.'));
      if (mapBox) {
        state.view = new MapView(mapBox);
        const dataset = { id: 'preview', ...p.source };
        state.view.setLayers([defaultLayer('preview', 'preview', nid)], [dataset]).catch(err => toast(err.message, 'error'));
      }
    } catch (err) { clear(box, h('p.form-error', { role: 'alert' }, err.message)); }
  }

  async function openMap(p) {
    const dataset = { id: 'd1', type: 'table', source: p.table, connectionName: p.source.connectionName, geoColumn: p.source.geoColumn,
      columns: p.schema.map(c => c.name).filter(n => n !== p.source.geoColumn), format: 'tilejson', queryParameters: null };
    try {
      const m = await newMap(`${wf.name} · ${p.node}`, [dataset], [defaultLayer('l1', 'd1', p.node)]);
      location.hash = `#/maps/${m.id}`;
    } catch (err) { toast(err.message, 'error'); }
  }

  return () => { clearTimeout(state.polling); if (state.view) state.view.destroy(); };
}
