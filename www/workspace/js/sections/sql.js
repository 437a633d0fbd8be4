// SQL console: a CodeMirror editor (SQL highlighting, completion of schemas, tables and columns from the
// explorer API), a paged result grid (the server sends one page of any result, so the first rows show at
// once and the tab never holds more than a page), cancel, errors marked where the server says, a map of
// geometry results, and the user's history and saved queries.
import { api } from '../http.js';
import { h, clear, empty, toast, fmt, when } from '../dom.js';
import { MapView } from '../mapview.js';
import { defaultLayer } from '../style.js';
import { connectionNames, newMap } from '../workspace.js';
import { exportMenu } from '../exportmenu.js';
import { loadCodeMirror } from '../codemirror.js';
import { SqlCatalog } from '../sqlcatalog.js';

export const PAGE_SIZE = 500;
let last = { sql: 'SELECT * FROM public.world_countries LIMIT 20', conn: 'carto_dw' };

export async function render(main, ctx) {
  const names = await connectionNames();
  const conn = h('select#sql-conn', names.map(n => h('option', { value: n, selected: n === last.conn || undefined }, n)));
  const editor = h('textarea.code#sql-editor', { rows: 9, spellcheck: false, 'aria-describedby': 'sql-hint' }, last.sql);
  const run = h('button.primary#sql-run', { type: 'submit' }, 'Run');
  const cancel = h('button.secondary#sql-cancel', { type: 'button', hidden: true, onclick: () => running && running.abort() }, 'Cancel');
  const saveName = h('input#sql-save-name', { type: 'text', placeholder: 'Name', 'aria-label': 'Saved query name', maxlength: 200 });
  const save = h('button.secondary#sql-save', { type: 'button', onclick: () => saveQuery() }, 'Save query');
  const out = h('section#sql-out', { 'aria-live': 'polite' }, h('div.card', empty('Run a query', 'The first rows show at once; page through the rest, export them or put them on a map.')));
  const savedList = h('ul.list#sql-saved', h('li.muted', 'Loading…'));
  const historyList = h('ul.list#sql-history', h('li.muted', 'Loading…'));
  const tablesBox = h('div#sql-tables', h('p.muted', 'Loading…'));
  let view = null, running = null, counting = null, marks = [];
  const form = h('form.card', { 'aria-label': 'SQL query' },
    h('div.row', h('div.field', { style: { flex: '0 1 14rem' } }, h('label', { for: 'sql-conn' }, 'Connection'), conn)),
    h('div.field', h('label', { for: 'sql-editor' }, 'Query'), editor,
      h('p.hint#sql-hint', 'Ctrl+Enter runs the query; Ctrl+Space completes schemas, tables and columns.')),
    h('div.actions.sql-actions', h('div.row', saveName, save), h('div.row', cancel, run)));
  main.append(h('div.page-head', h('div', h('h1', 'SQL console'), h('p', 'Query your warehouse directly.'))),
    h('div.sql-layout', h('div', form, out),
      h('aside.card.sql-side', { 'aria-label': 'Saved queries and history' },
        h('h3', 'Tables'), tablesBox,
        h('h3', 'Saved queries'), savedList,
        h('div.page-head', h('h3', 'History'), h('button.link#sql-history-clear', { type: 'button', onclick: () => clearHistory() }, 'Clear')),
        historyList)));

  // The editor falls back to the plain textarea if CodeMirror cannot load.
  const catalog = new SqlCatalog(() => conn.value);
  const CM = await loadCodeMirror().catch(err => { toast(err.message, 'error'); return null; });
  const cm = CM && CM.fromTextArea(editor, {
    mode: 'text/x-pgsql', lineNumbers: true, lineWrapping: true, indentUnit: 2, viewportMargin: Infinity,
    extraKeys: { 'Ctrl-Enter': () => form.requestSubmit(), 'Cmd-Enter': () => form.requestSubmit(), 'Ctrl-Space': 'autocomplete' },
    hintOptions: { hint: catalog.hinter(CM), completeSingle: false },
  });
  if (cm) {
    cm.on('inputRead', (_, change) => {
      const typed = change.text.join('');
      if (typed === '.' || /^\w$/.test(typed)) {
        const token = cm.getTokenAt(cm.getCursor());
        if (typed === '.' || (token.string.length >= 2 && /^\w+$/.test(token.string))) cm.showHint({ completeSingle: false });
      }
    });
    cm.on('change', clearMarks);
  } else {
    editor.addEventListener('keydown', e => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); } });
  }
  conn.addEventListener('change', () => { catalog.reset(); loadTables(); });
  const getText = () => (cm ? cm.getValue() : editor.value);
  const setText = t => { if (cm) { cm.setValue(t); cm.focus(); } else editor.value = t; };
  loadSide();

  form.addEventListener('submit', e => {
    e.preventDefault();
    const text = getText();
    const q = text.trim();
    if (!q) { (cm || editor).focus(); return; }
    last = { sql: text, conn: conn.value };
    execute({ q, conn: conn.value, lead: text.length - text.trimStart().length }, 0, true);
  });

  function setRunning(controller) {
    running = controller;
    run.disabled = !!controller;
    run.textContent = controller ? 'Running…' : 'Run';
    cancel.hidden = !controller;
  }

  /** Fetches one page of `query` (a fresh run when `first`), shows it, and records a first run in the history. */
  async function execute(query, offset, first) {
    if (running) running.abort();
    if (first && counting) { counting.abort(); counting = null; }
    const controller = new AbortController();
    setRunning(controller);
    const started = performance.now();
    if (first) clear(out, h('div.card', h('p.loading#sql-running', { role: 'status' }, h('span.spin', { 'aria-hidden': 'true' }), 'Running… Cancel stops the statement on the server.')));
    try {
      const r = await api.post(`/api/v3/sql/${encodeURIComponent(query.conn)}/query`, { q: query.q, limit: PAGE_SIZE, offset },
        { signal: controller.signal });
      if (first) query.total = r.meta && !r.meta.truncated ? r.meta.rowCount : null;
      show(r, query, offset);
      // The time until the page is on screen: the answer, its table and one frame.
      await new Promise(resolve => requestAnimationFrame(() => resolve()));
      const ms = performance.now() - started;
      const stats = document.getElementById('sql-stats');
      if (stats) { stats.dataset.firstPageMs = String(Math.round(ms)); stats.querySelector('.rt').textContent = `${Math.round(ms)} ms to first rows`; }
      if (first) {
        record(query, { rowCount: r.meta && r.meta.rowCount, durationMs: Math.round(ms) });
        if (query.total == null && r.meta && r.meta.truncated && isRowQuery(query.q)) countRows(query);
      }
    } catch (err) {
      if (err.name === 'AbortError') {
        clear(out, h('div.card', h('p.notice#sql-cancelled', { role: 'status' }, 'Query cancelled: the server stopped the statement.')));
        if (first) record(query, { error: 'cancelled' });
      } else {
        showError(err, query);
        if (first) record(query, { error: err.message });
      }
    } finally {
      if (running === controller) setRunning(null);
    }
  }

  function show(r, query, offset) {
    if (view) { view.destroy(); view = null; }
    const rows = r.rows || [], schema = r.schema || [], meta = r.meta || {};
    const geo = schema.find(c => c.type === 'geometry');
    const cols = schema.length ? schema.map(c => c.name) : Object.keys(rows[0] || {});
    const isWrite = meta.command && meta.command !== 'SELECT';
    const mapBox = h('div.map-preview#sql-map');
    const exporter = isWrite ? null : exportMenu('sql', () => ({ connection: query.conn, query: query.q }), 'query');
    const from = rows.length ? offset + 1 : offset, to = offset + rows.length;
    const totalText = () => (query.total != null ? query.total.toLocaleString('en') : (meta.truncated ? 'more' : to.toLocaleString('en')));
    const pageLabel = h('span#sql-page', rows.length ? `Rows ${from.toLocaleString('en')}–${to.toLocaleString('en')} of ${totalText()}` : '');
    query.onTotal = () => { pageLabel.textContent = `Rows ${from.toLocaleString('en')}–${to.toLocaleString('en')} of ${totalText()}`; };
    const pager = rows.length && (offset > 0 || meta.truncated) ? h('div.row.pager',
      h('button.secondary#sql-prev', { type: 'button', disabled: offset === 0, onclick: () => execute(query, Math.max(0, offset - PAGE_SIZE), false) }, '← Previous'),
      pageLabel,
      h('button.secondary#sql-next', { type: 'button', disabled: !meta.truncated, onclick: () => execute(query, offset + PAGE_SIZE, false) }, 'Next →')) : pageLabel;
    const grid = rows.length ? h('div.table-wrap.sql-grid', h('table', { 'aria-label': 'Results' },
      h('thead', h('tr', h('th.num', { scope: 'col' }, '#'), schema.length
        ? schema.map(c => h('th', { scope: 'col' }, c.name, h('span.coltype', c.type)))
        : cols.map(c => h('th', { scope: 'col' }, c)))),
      h('tbody', rows.map((row, i) => h('tr', h('td.num', String(offset + i + 1)),
        cols.map(k => h('td', geo && k === geo.name ? h('span.muted', row[k] == null ? 'null' : 'geometry') : fmt(row[k]))))))))
      : h('p.muted', isWrite ? `${meta.command} done.` : 'The query returned no rows.');
    clear(out, h('div.card',
      h('div.page-head', h('p#sql-stats', { dataset: { rows: String(rows.length), serverMs: String(meta.executionTimeMs ?? '') } },
        `${rows.length.toLocaleString('en')} rows on this page · server ${meta.executionTimeMs ?? '?'} ms · `, h('span.rt', '')),
        geo ? h('div.row', h('button.secondary#sql-show-map', { type: 'button', onclick: () => showMap() }, 'Show on map'),
          ctx.canWrite ? h('button.secondary#sql-create-map', { type: 'button', onclick: () => toMap() }, 'Create map from query') : null) : null, exporter),
      pager, grid),
      mapBox);
    mapBox.hidden = true;
    const dataset = geo && { id: 'q', type: 'query', source: query.q.replace(/;\s*$/, ''), connectionName: query.conn, geoColumn: geo.name };
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

  /** The whole result's size, counted by the server after the first page is shown. */
  async function countRows(query) {
    const controller = new AbortController();
    counting = controller;
    try {
      const r = await api.post(`/api/v3/sql/${encodeURIComponent(query.conn)}/query`,
        { q: `SELECT count(*) AS n FROM (${query.q.replace(/;\s*$/, '')}\n) AS tessera_count` }, { signal: controller.signal });
      query.total = Number(r.rows[0].n);
      if (query.onTotal) query.onTotal();
    } catch { /* the pager keeps saying "more" */ } finally { if (counting === controller) counting = null; }
  }

  function showError(err, query) {
    const pos = err.body && Number.isInteger(err.body.position) ? err.body.position : null;
    let where = '';
    if (pos != null && cm && getText().trim() === query.q) {
      const from = cm.posFromIndex(query.lead + pos - 1);
      const word = cm.findWordAt(from);
      const to = word.head.line === from.line && word.head.ch > from.ch ? word.head : { line: from.line, ch: from.ch + 1 };
      marks.push(cm.markText(from, to, { className: 'cm-sql-error', attributes: { title: err.message } }));
      cm.addLineClass(from.line, 'background', 'sql-error-line');
      marks.push({ clear: () => cm.removeLineClass(from.line, 'background', 'sql-error-line') });
      where = ` (line ${from.line + 1}, column ${from.ch + 1})`;
    }
    clear(out, h('div.card', h('p.form-error#sql-error', { role: 'alert', dataset: pos != null ? { position: String(pos) } : {} },
      err.message, where, err.body && err.body.hint ? ` — ${err.body.hint}` : '')));
  }

  function clearMarks() { for (const m of marks) m.clear(); marks = []; }

  // ---- history and saved queries -------------------------------------------------------------------
  function record(query, result) {
    api.post('/api/v3/workspace/sql/history', { connection: query.conn, sql: query.q, ...result })
      .then(() => loadHistory()).catch(() => {});
  }

  function loadSide() { loadTables(); loadSaved(); loadHistory(); }

  /** The schema browser: a connection's tables; a click puts the table's name at the cursor. */
  async function loadTables() {
    try {
      await catalog.load();
      clear(tablesBox, catalog.schemas.length ? catalog.schemas.map(s => h('details.sql-schema', { open: s.name === 'public' || undefined },
        h('summary', `${s.name} · ${s.tables.length}`),
        h('ul.list', s.tables.map(t => h('li', h('button.item', { type: 'button', title: `Insert ${t.fqn}`, dataset: { fqn: t.fqn },
          onclick: () => insert(t.fqn) }, h('span', t.name), h('span.muted', t.geometryColumn ? '◆' : '')))))))
        : h('p.muted', 'No tables you can read.'));
    } catch (err) { clear(tablesBox, h('p.form-error', err.message)); }
  }

  function insert(text) {
    if (cm) { cm.replaceSelection(text); cm.focus(); } else editor.setRangeText(text, editor.selectionStart, editor.selectionEnd, 'end');
  }

  function entryItem(e, extra) {
    const first = e.sql.split('\n').find(l => l.trim()) || e.sql;
    return h('li', h('a.item.sql-entry', { href: '#/sql', title: e.sql, onclick: ev => { ev.preventDefault(); load(e); } },
      h('span', e.name || first.slice(0, 80)),
      h('span.muted', e.name ? first.slice(0, 60) : [e.connection, ' · ',
        e.error ? (e.error === 'cancelled' ? 'cancelled' : 'error') : `${(e.rowCount ?? 0).toLocaleString('en')} rows`, ' · ', when(e.createdAt)])), extra || null);
  }

  function load(e) {
    if ([...conn.options].some(o => o.value === e.connection)) conn.value = e.connection;
    setText(e.sql);
    if (e.name) saveName.value = e.name;
  }

  async function loadSaved() {
    try {
      const r = await api.get('/api/v3/workspace/sql/queries');
      clear(savedList, (r.data || []).length ? r.data.map(e => entryItem(e,
        h('button.link.danger', { type: 'button', 'aria-label': `Delete ${e.name}`, onclick: () => api.del(`/api/v3/workspace/sql/queries/${e.id}`).then(loadSaved).catch(err => toast(err.message, 'error')) }, 'Delete')))
        : h('li.muted', 'Name a query and save it to keep it here.'));
    } catch (err) { clear(savedList, h('li.form-error', err.message)); }
  }

  async function loadHistory() {
    try {
      const r = await api.get('/api/v3/workspace/sql/history');
      clear(historyList, (r.data || []).length ? r.data.slice(0, 30).map(e => entryItem(e)) : h('li.muted', 'Queries you run show up here.'));
    } catch (err) { clear(historyList, h('li.form-error', err.message)); }
  }

  async function saveQuery() {
    const name = saveName.value.trim();
    if (!name) { saveName.focus(); toast('Give the query a name to save it', 'error'); return; }
    try {
      await api.post('/api/v3/workspace/sql/queries', { name, connection: conn.value, sql: getText() });
      toast(`Saved “${name}”`);
      loadSaved();
    } catch (err) { toast(err.message, 'error'); }
  }

  async function clearHistory() {
    try { await api.del('/api/v3/workspace/sql/history'); loadHistory(); } catch (err) { toast(err.message, 'error'); }
  }

  return () => {
    if (running) running.abort();
    if (counting) counting.abort();
    if (view) view.destroy();
    if (cm) cm.toTextArea();
  };
}

/** Whether the statement yields rows that a count(*) around it can count (not a write, not a utility). */
function isRowQuery(q) {
  const body = q.replace(/^(\s|--[^\n]*\n|\/\*[\s\S]*?\*\/)+/, '');
  return /^(select|with|values|table)\b/i.test(body) && !/;\s*\S/.test(body);
}
