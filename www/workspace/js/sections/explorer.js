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
    const rowsBox = h('div');
    const mapBox = h('div.map-preview#table-map');
    const statsBox = h('div.col-stats#col-stats', { 'aria-live': 'polite' });
    clear(detail,
      h('div.card',
        h('div.page-head', h('div', h('h2#table-title', t.fqn || fqn),
          h('p#table-summary', `${fmtRows(t.rows)} rows${t.rowsExact === false ? ' (estimate)' : ''} · ${(t.columns || []).length} columns`,
            t.bytes != null ? ` · ${fmtBytes(t.bytes)} on disk` : '', `${geo ? ` · ${t.geometryType || 'geometry'} in ${geo}` : ' · no geometry'}`)),
          h('div.row', exportMenu('table', () => ({ connection: conn, table: t.fqn || fqn }), t.name || 'table'),
            geo && ctx.canWrite ? h('button.primary#create-map', { onclick: () => createMap(conn, t) }, 'Create map') : null)),
        h('h3', 'Columns'),
        table([{ label: 'Name', key: 'name' }, { label: 'Type', key: 'type' },
          { label: 'Statistics', render: c => h('button.link.col-stats-button', { type: 'button', dataset: { column: c.name }, onclick: () => showStats(c) }, 'Stats') }],
        t.columns || [], { 'aria-label': 'Columns' }), statsBox),
      h('div.card', h('h3', 'Rows'), rowsBox),
      geo ? h('div.card', h('h3', 'Map preview'), mapBox) : null);
    if (geo) {
      view = new MapView(mapBox);
      const dataset = { id: 'preview', type: 'table', source: t.fqn || fqn, connectionName: conn, geoColumn: geo };
      const layer = defaultLayer('preview', 'preview', t.name || fqn);
      view.tooltipFields = { preview: cols.slice(0, 5).map(c => c.name) };
      view.setLayers([layer], [dataset]).catch(err => toast(err.message, 'error'));
      view.fitBounds(t.bounds);
    }
    rowsGrid(rowsBox, conn, t);

    async function showStats(c) {
      clear(statsBox, spinner(`Statistics of ${c.name}…`));
      try {
        const r = await api.get(`/api/v3/stats/${encodeURIComponent(conn)}/${encodeURIComponent(t.fqn || fqn)}/${encodeURIComponent(c.name)}`);
        const rows = [];
        for (const k of ['type', 'min', 'max', 'avg', 'sum', 'count']) if (r[k] != null) rows.push([k, fmt(r[k])]);
        if (Array.isArray(r.quantiles) && r.quantiles.length) rows.push(['quantiles', r.quantiles.map(q => fmt(Array.isArray(q) ? q.join(', ') : q)).join(' · ')]);
        if (Array.isArray(r.categories)) rows.push(['top values', r.categories.slice(0, 8).map(x => `${x.category ?? 'null'} (${fmt(x.frequency)})`).join(', ')]);
        if (Array.isArray(r.extent) || r.extent) rows.push(['extent', fmt(r.extent)]);
        clear(statsBox, h('h4', `Statistics of ${c.name}`), h('dl', rows.map(([k, v]) => [h('dt', k), h('dd', v)])));
      } catch (err) { clear(statsBox, h('p.form-error', { role: 'alert' }, `${c.name}: ${err.message}`)); }
    }
  } catch (err) { clear(detail, h('div.card', h('p.form-error', { role: 'alert' }, err.message))); }

  return () => view && view.destroy();
}

function fmtRows(n) { return n == null ? '?' : Number(n).toLocaleString('en'); }
function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

const PAGE = 50;

/** The table's rows, a page at a time, sorted by a clicked column header and narrowed by a search. */
function rowsGrid(box, conn, t) {
  const fqn = t.fqn;
  const state = { orderBy: null, order: 'asc', search: '', offset: 0 };
  const search = h('input#explorer-search', { type: 'search', placeholder: 'Search all columns', 'aria-label': 'Search rows', maxlength: 200 });
  const form = h('form.row.explorer-tools', { role: 'search', onsubmit: e => { e.preventDefault(); state.search = search.value.trim(); state.offset = 0; load(); } },
    h('div.field', search), h('button.secondary#explorer-search-go', { type: 'submit' }, 'Search'));
  const pageLabel = h('span#explorer-page');
  const prev = h('button.secondary#explorer-prev', { type: 'button', onclick: () => { state.offset = Math.max(0, state.offset - PAGE); load(); } }, '← Previous');
  const next = h('button.secondary#explorer-next', { type: 'button', onclick: () => { state.offset += PAGE; load(); } }, 'Next →');
  const grid = h('div', spinner('Loading rows…'));
  clear(box, form, h('div.row.pager', prev, pageLabel, next), grid);
  let seq = 0;
  load();

  async function load() {
    const mine = ++seq;
    prev.disabled = next.disabled = true;
    try {
      const r = await api.get(`/api/v3/workspace/connections/${encodeURIComponent(conn)}/tables/${encodeURIComponent(fqn)}/rows`, {
        params: { limit: PAGE, offset: state.offset, orderBy: state.orderBy, order: state.order, search: state.search || undefined } });
      if (mine !== seq) return;
      const cols = (r.columns || []).filter(c => c.type !== 'geometry');
      const rows = r.rows || [];
      const total = state.search ? r.meta.matches : t.rows;
      const capped = state.search && r.meta.matchesCapped;
      const from = rows.length ? state.offset + 1 : 0, to = state.offset + rows.length;
      pageLabel.textContent = rows.length
        ? `Rows ${from.toLocaleString('en')}–${to.toLocaleString('en')} of ${total == null ? '?' : total.toLocaleString('en')}${capped ? '+' : ''}${state.search ? ' matching' : ''}`
        : (state.search ? 'No rows match' : 'No rows');
      prev.disabled = state.offset === 0;
      next.disabled = rows.length < PAGE || (total != null && !capped && to >= total);
      clear(grid, rows.length || cols.length ? h('div.table-wrap.data-grid', h('table#explorer-rows', { 'aria-label': 'Rows' },
        h('thead', h('tr', h('th.num', { scope: 'col' }, '#'), cols.map(c => h('th', { scope: 'col', 'aria-sort': state.orderBy === c.name ? (state.order === 'asc' ? 'ascending' : 'descending') : undefined },
          h('button.sort', { type: 'button', dataset: { column: c.name }, 'aria-sort-dir': state.orderBy === c.name ? (state.order === 'asc' ? '▲' : '▼') : undefined,
            title: `Sort by ${c.name}`, onclick: () => sortBy(c.name) }, c.name), h('span.coltype', c.type))))),
        h('tbody', rows.map((row, i) => h('tr', h('td.num', String(state.offset + i + 1)), cols.map(c => h('td', fmt(row[c.name])))))))) : empty('No rows', 'This table is empty.'));
    } catch (err) {
      if (mine === seq) clear(grid, h('p.form-error', { role: 'alert' }, err.message));
    }
  }

  function sortBy(name) {
    if (state.orderBy === name) state.order = state.order === 'asc' ? 'desc' : 'asc';
    else { state.orderBy = name; state.order = 'asc'; }
    state.offset = 0;
    load();
  }
}

async function createMap(conn, t) {
  const dataset = { id: 'd1', type: 'table', source: t.fqn, connectionName: conn, geoColumn: t.geometryColumn,
    columns: (t.columns || []).map(c => c.name).filter(n => n !== t.geometryColumn), format: 'tilejson', queryParameters: null };
  const layer = defaultLayer('l1', 'd1', t.name || t.fqn);
  try {
    const m = await newMap(`${t.name || t.fqn} map`, [dataset], [layer], t.bounds);
    location.hash = `#/maps/${m.id}`;
  } catch (err) { toast(err.message, 'error'); }
}
