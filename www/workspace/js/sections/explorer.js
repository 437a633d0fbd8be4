// Data explorer: a connection's schemas and tables; a table's columns, row count, first rows and a
// map preview, and a shortcut to a new map built on it.
import { api } from '../http.js';
import { h, clear, table, empty, spinner, toast, fmt } from '../dom.js';
import { MapView } from '../mapview.js';
import { defaultLayer } from '../style.js';
import { connectionNames, quoteFqn, newMap } from '../workspace.js';
import { exportMenu } from '../exportmenu.js';

export async function render(main, ctx, parts) {
  const names = await connectionNames();
  const conn = parts[0] || names[0] || 'carto_dw';
  const fqn = parts[1];
  const picker = h('select#explorer-conn', { 'aria-label': 'Connection', onchange: e => { location.hash = `#/explorer/${encodeURIComponent(e.target.value)}`; } },
    names.map(n => h('option', { value: n, selected: n === conn || undefined }, n)));
  const tree = h('nav.tree', { 'aria-label': 'Schemas and tables' }, spinner());
  const detail = h('section', { 'aria-live': 'polite' });
  main.append(
    h('div.page-head', h('div', h('h1', 'Data explorer'), h('p', 'Browse tables, check their columns and rows, and preview them on a map.')),
      h('div.field', h('label', { for: 'explorer-conn' }, 'Connection'), picker)),
    h('div.grid2', h('div.card', tree), detail));
  let view = null;

  try {
    const r = await api.get(`/api/v3/workspace/connections/${encodeURIComponent(conn)}/schemas`);
    const schemas = r.data || [];
    if (!schemas.length) clear(tree, empty('No schemas', 'This connection has no schemas you can read.'));
    else clear(tree, schemas.map(s => schemaBlock(s)));
  } catch (err) { clear(tree, h('p.form-error', { role: 'alert' }, err.message)); }

  function schemaBlock(s) {
    const ul = h('ul.list');
    const block = h('div', h('h3', `${s.name}${typeof s.tables === 'number' ? ` · ${s.tables}` : ''}`), ul);
    api.get(`/api/v3/workspace/connections/${encodeURIComponent(conn)}/schemas/${encodeURIComponent(s.name)}/tables`).then(r => {
      const tables = r.data || [];
      clear(ul, tables.length ? tables.map(t => h('li', h('a.item', {
        href: `#/explorer/${encodeURIComponent(conn)}/${encodeURIComponent(t.fqn)}`, 'aria-current': t.fqn === fqn ? 'true' : undefined,
        dataset: { fqn: t.fqn } }, h('span', t.name), h('span.muted', t.geometryType ? '◆' : '', t.rows != null ? ` ${fmtRows(t.rows)}` : '')))) : h('li.muted', 'No tables'));
    }).catch(err => clear(ul, h('li.form-error', err.message)));
    return block;
  }

  if (!fqn) {
    detail.append(h('div.card', empty('Pick a table', 'Choose a table on the left to see its columns, rows and a map preview. Import a file to add one.',
      h('a.button.secondary', { href: '#/imports' }, 'Import data'))));
    return;
  }
  detail.append(h('div.card', spinner()));
  try {
    const t = await api.get(`/api/v3/workspace/connections/${encodeURIComponent(conn)}/tables/${encodeURIComponent(fqn)}`);
    const geo = t.geometryColumn;
    const cols = (t.columns || []).filter(c => c.name !== geo);
    const rowsBox = h('div', spinner('Loading rows…'));
    const mapBox = h('div.map-preview#table-map');
    clear(detail,
      h('div.card',
        h('div.page-head', h('div', h('h2#table-title', t.fqn || fqn),
          h('p', `${fmtRows(t.rows)} rows${t.rowsExact === false ? ' (estimate)' : ''} · ${(t.columns || []).length} columns${geo ? ` · ${t.geometryType || 'geometry'} in ${geo}` : ' · no geometry'}`)),
          h('div.row', exportMenu('table', () => ({ connection: conn, table: t.fqn || fqn }), t.name || 'table'),
            geo && ctx.canWrite ? h('button.primary#create-map', { onclick: () => createMap(conn, t) }, 'Create map') : null)),
        h('h3', 'Columns'),
        table([{ label: 'Name', key: 'name' }, { label: 'Type', key: 'type' }], t.columns || [], { 'aria-label': 'Columns' })),
      geo ? h('div.card', h('h3', 'Map preview'), mapBox) : null,
      h('div.card', h('h3', 'First rows'), rowsBox));
    if (geo) {
      view = new MapView(mapBox);
      const dataset = { id: 'preview', type: 'table', source: t.fqn || fqn, connectionName: conn, geoColumn: geo };
      const layer = defaultLayer('preview', 'preview', t.name || fqn);
      view.tooltipFields = { preview: cols.slice(0, 5).map(c => c.name) };
      view.setLayers([layer], [dataset]).catch(err => toast(err.message, 'error'));
      view.fitBounds(t.bounds);
    }
    const select = cols.length ? cols.map(c => quoteFqn(c.name)).join(', ') : '*';
    api.get(`/api/v3/sql/${encodeURIComponent(conn)}/query`, { params: { q: `SELECT ${select} FROM ${quoteFqn(t.fqn || fqn)} LIMIT 50` } })
      .then(r => clear(rowsBox, (r.rows || []).length
        ? table(Object.keys(r.rows[0]).map(k => ({ label: k, render: row => fmt(row[k]) })), r.rows, { 'aria-label': 'Rows' })
        : empty('No rows', 'This table is empty.')))
      .catch(err => clear(rowsBox, h('p.form-error', { role: 'alert' }, err.message)));
  } catch (err) { clear(detail, h('div.card', h('p.form-error', { role: 'alert' }, err.message))); }

  return () => view && view.destroy();
}

function fmtRows(n) { return n == null ? '?' : Number(n).toLocaleString('en'); }

async function createMap(conn, t) {
  const dataset = { id: 'd1', type: 'table', source: t.fqn, connectionName: conn, geoColumn: t.geometryColumn,
    columns: (t.columns || []).map(c => c.name).filter(n => n !== t.geometryColumn), format: 'tilejson', queryParameters: null };
  const layer = defaultLayer('l1', 'd1', t.name || t.fqn);
  try {
    const m = await newMap(`${t.name || t.fqn} map`, [dataset], [layer], t.bounds);
    location.hash = `#/maps/${m.id}`;
  } catch (err) { toast(err.message, 'error'); }
}
