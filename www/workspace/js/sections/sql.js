// SQL console: run a query on a connection, see rows and timings, and put the result on a map.
import { api } from '../http.js';
import { h, clear, table, empty, toast, fmt, busy } from '../dom.js';
import { MapView } from '../mapview.js';
import { defaultLayer } from '../style.js';
import { connectionNames, newMap } from '../workspace.js';
import { exportMenu } from '../exportmenu.js';

let last = { sql: 'SELECT * FROM public.world_countries LIMIT 20', conn: 'carto_dw' };

export async function render(main, ctx) {
  const names = await connectionNames();
  const conn = h('select#sql-conn', names.map(n => h('option', { value: n, selected: n === last.conn || undefined }, n)));
  const editor = h('textarea.code#sql-editor', { rows: 7, spellcheck: false, 'aria-describedby': 'sql-hint' }, last.sql);
  const run = h('button.primary#sql-run', { type: 'submit' }, 'Run');
  const out = h('section', { 'aria-live': 'polite' }, h('div.card', empty('Run a query', 'Results, timings and a map of any geometry column show up here.')));
  let view = null;
  const form = h('form.card', { 'aria-label': 'SQL query' },
    h('div.row', h('div.field', { style: { flex: '0 1 14rem' } }, h('label', { for: 'sql-conn' }, 'Connection'), conn)),
    h('div.field', h('label', { for: 'sql-editor' }, 'Query'), editor, h('p.hint#sql-hint', 'Ctrl+Enter runs the query. Results are capped by the server.')),
    h('div.actions', run));
  main.append(h('div.page-head', h('div', h('h1', 'SQL console'), h('p', 'Query your warehouse directly.'))), form, out);
  editor.addEventListener('keydown', e => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); } });

  form.addEventListener('submit', e => {
    e.preventDefault();
    const q = editor.value.trim();
    if (!q) { editor.focus(); return; }
    last = { sql: q, conn: conn.value };
    busy(run, async () => {
      const started = performance.now();
      try {
        const r = await api.post(`/api/v3/sql/${encodeURIComponent(conn.value)}/query`, { q });
        const ms = performance.now() - started;
        show(r, ms, q, conn.value);
      } catch (err) {
        clear(out, h('div.card', h('p.form-error', { role: 'alert' }, err.message, err.body && err.body.hint ? ` — ${err.body.hint}` : '')));
      }
    }, 'Running…');
  });

  function show(r, ms, q, connection) {
    if (view) { view.destroy(); view = null; }
    const rows = r.rows || [], schema = r.schema || [];
    const geo = schema.find(c => c.type === 'geometry');
    const meta = r.meta || {};
    const cols = schema.length ? schema.map(c => c.name) : Object.keys(rows[0] || {});
    const mapBox = h('div.map-preview#sql-map');
    // Only a query's rows can be exported (a write has none).
    const exporter = meta.command && meta.command !== 'SELECT' ? null : exportMenu('sql', () => ({ connection, query: q }), 'query');
    clear(out, h('div.card',
      h('div.page-head', h('p#sql-stats', `${(meta.rowCount ?? rows.length).toLocaleString('en')} rows · server ${meta.executionTimeMs ?? '?'} ms · round trip ${Math.round(ms)} ms${meta.truncated ? ` · truncated at ${meta.maxRows}` : ''}`),
        geo ? h('div.row', h('button.secondary#sql-show-map', { onclick: () => showMap() }, 'Show on map'),
          ctx.canWrite ? h('button.secondary', { onclick: () => toMap() }, 'Create map from query') : null) : null, exporter),
      rows.length ? table(cols.map(k => ({ label: k, render: row => (geo && k === geo.name ? h('span.muted', 'geometry') : fmt(row[k])) })), rows, { 'aria-label': 'Results' })
        : h('p.muted', meta.command && meta.command !== 'SELECT' ? `${meta.command} done.` : 'The query returned no rows.')),
      mapBox);
    mapBox.hidden = true;
    const dataset = geo && { id: 'q', type: 'query', source: q.replace(/;\s*$/, ''), connectionName: connection, geoColumn: geo.name };
    function showMap() {
      mapBox.hidden = false;
      if (view) return;
      view = new MapView(mapBox);
      view.tooltipFields = { q: cols.filter(c => c !== geo.name).slice(0, 5) };
      view.setLayers([defaultLayer('q', 'q', 'Query')], [dataset]).then(() => {
        const tj = view.entries.get('q').tilejson;
        if (tj && tj.bounds) view.fitBounds(tj.bounds);
      }).catch(err => toast(err.message, 'error'));
    }
    async function toMap() {
      try {
        const m = await newMap('Query map', [{ ...dataset, id: 'd1', columns: cols.filter(c => c !== geo.name), format: 'tilejson', queryParameters: null }], [defaultLayer('l1', 'd1', 'Query')]);
        location.hash = `#/maps/${m.id}`;
      } catch (err) { toast(err.message, 'error'); }
    }
  }
  return () => view && view.destroy();
}
