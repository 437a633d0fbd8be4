// The map builder: layers from tables, queries (with SQL parameters) or point aggregations (H3
// hexbins, quadbin grid), their style (style editor), tooltips, legend, layer order and visibility,
// widgets and their filters, and sharing. Everything is kept in the map's keplerMapConfig
// (visState.layers, interactionConfig.tooltip, config.widgets, config.filters, config.parameters) and
// saved automatically, so the public viewer renders the same map.
import { api } from '../http.js';
import { h, clear, field, toast, dialog, copyText, spinner, empty, optionEl } from '../dom.js';
import { MapView } from '../mapview.js';
import { resolveSource } from '../tilelayer.js';
import { defaultLayer, rgbToHex, RAMPS } from '../style.js';
import { WidgetPanel, WIDGET_TYPES, WIDGET_COLUMNS, OPERATIONS } from '../widgets.js';
import { styleControls } from './styleeditor.js';
import { columnStats } from '../classify.js';
import { PARAMETER_TYPES, NAME_RE, applyParameters, hasPlaceholders, renderParameterControls, valueError } from '../parameters.js';
import { AGGREGATIONS, RESOLUTIONS, AGG_OPERATIONS, aggregationExp, aggregateColumn, ON_GRID, indexOf, isDynamic } from '../aggregation.js';
import { connectionNames, privacyLabel } from '../workspace.js';
import { exportMenu } from '../exportmenu.js';
import { basemapPicker } from '../basemap.js';

export async function render(root, ctx, mapId) {
  clear(root, spinner('Opening the map…'));
  let map;
  try { map = await api.get(`/api/v3/workspace/maps/${encodeURIComponent(mapId)}`); }
  catch (err) {
    clear(root, h('main.main', h('div.card', empty('This map cannot be opened', err.message, h('a.button.primary', { href: '#/maps' }, 'Back to maps')))));
    return null;
  }
  const kc = map.keplerMapConfig && map.keplerMapConfig.config ? map.keplerMapConfig : { version: 'v1', config: {} };
  const cfg = kc.config;
  cfg.visState ??= { layers: [], layerBlending: 'normal', interactionConfig: {} };
  cfg.visState.layers ??= [];
  cfg.visState.interactionConfig ??= {};
  cfg.visState.interactionConfig.tooltip ??= { enabled: true, config: { fieldsToShow: {} } };
  cfg.visState.interactionConfig.tooltip.config ??= { fieldsToShow: {} };
  cfg.widgets ??= [];
  if (!cfg.filters || Array.isArray(cfg.filters)) cfg.filters = {};
  cfg.parameters ??= [];
  cfg.mapState ??= { latitude: 20, longitude: 0, zoom: 2 };
  cfg.mapStyle ??= { styleType: 'positron', visibleLayerGroups: {} };
  let datasets = map.datasets || [];
  const layers = () => cfg.visState.layers;
  const tooltips = () => cfg.visState.interactionConfig.tooltip.config.fieldsToShow;
  let selected = layers()[0] ? layers()[0].id : null;
  const readOnly = !ctx.canWrite;
  clear(root);

  // ---- layout
  const title = h('input.title-input#map-title', { value: map.title || 'Untitled map', 'aria-label': 'Map title', readOnly });
  const saveState = h('span.muted#save-state', { role: 'status' }, 'All changes saved');
  // Builder edits change the draft; the public link and embeds show the published version.
  const publishState = h('span.publish-state#publish-state', { role: 'status' });
  const showPublishState = m => {
    if (m) Object.assign(map, { publishedAt: m.publishedAt, hasUnpublishedChanges: m.hasUnpublishedChanges, passwordProtected: m.passwordProtected });
    publishState.textContent = !map.publishedAt ? 'Not published yet' : map.hasUnpublishedChanges ? 'Unpublished changes' : 'Published';
    publishState.title = !map.publishedAt ? 'Until you publish, the public link shows the map as it is now'
      : map.hasUnpublishedChanges ? 'The public link shows the last published version' : 'The public link shows this version';
    publishState.classList.toggle('unpublished', !!map.hasUnpublishedChanges);
  };
  showPublishState();
  const layerList = h('div#layer-list');
  const editor = h('div.style-editor#style-editor');
  const parameterBox = h('div#parameter-list');
  const drafts = new Map();  // dataset id → SQL being edited (kept while the query fails)
  const widgetBox = h('div#widget-list');
  const mapEl = h('div#builder-map');
  root.append(h('div.builder',
    h('header.builder-bar', h('a.button.link', { href: '#/maps' }, '← Maps'), title, saveState, h('span.spacer'),
      h(`span.badge${map.privacy === 'public' ? '.public' : ''}#privacy-badge`, privacyLabel(map.privacy)),
      publishState,
      readOnly ? null : h('button.secondary#publish-button', { onclick: publish }, 'Publish'),
      readOnly ? null : h('button.primary#share-button', { onclick: share }, 'Share')),
    h('aside.panel', { 'aria-label': 'Layers' },
      h('h2', h('span', 'Layers'), readOnly ? null : h('button.secondary#add-layer', { onclick: addLayer }, '+ Add source')), layerList,
      h('h2', h('span', 'SQL parameters'), readOnly ? null : h('button.secondary#add-parameter', { onclick: addParameter }, '+ Parameter')), parameterBox, editor),
    h('div.builder-map', mapEl),
    h('aside.panel.right', { 'aria-label': 'Widgets' },
      h('h2', h('span', 'Widgets'), readOnly ? null : h('button.secondary#add-widget', { onclick: addWidget }, '+ Add widget')), widgetBox)));
  document.title = `${map.title} — Tessera`;

  const view = new MapView(mapEl, { center: [cfg.mapState.latitude, cfg.mapState.longitude], zoom: cfg.mapState.zoom, mapStyle: cfg.mapStyle });
  if (!readOnly) basemapPicker(view, cfg.mapStyle, () => changed());
  view.tooltipFields = tooltips();
  // Widget filters are part of the map: they come back on reload and in the public viewer.
  view.filters = JSON.parse(JSON.stringify(cfg.filters));
  const panel = new WidgetPanel({ el: widgetBox, view, token: null, editable: !readOnly, state: () => ({ layers: layers(), datasets, widgets: cfg.widgets }),
    onFilters: f => { cfg.filters = JSON.parse(JSON.stringify(f)); changed(); },
    onRemove: readOnly ? null : w => {
      cfg.widgets = cfg.widgets.filter(x => x !== w);
      // A removed widget's filter goes with it.
      for (const [dataId, f] of Object.entries(view.filters)) {
        for (const [col, ops] of Object.entries(f)) {
          for (const [op, v] of Object.entries(ops)) if (v.owner === w.id) delete ops[op];
          if (!Object.keys(ops).length) delete f[col];
        }
        if (!Object.keys(f).length) delete view.filters[dataId];
      }
      cfg.filters = JSON.parse(JSON.stringify(view.filters));
      redraw(); panel.render(); changed();
    } });
  view.map.on('moveend', () => {
    const c = view.map.getCenter();
    cfg.mapState = { ...cfg.mapState, latitude: +c.lat.toFixed(5), longitude: +c.lng.toFixed(5), zoom: view.map.getZoom() };
    changed(true);
  });

  // ---- saving
  let timer = null, saving = Promise.resolve();
  function changed(quiet) {
    if (readOnly) return;
    if (!quiet) saveState.textContent = 'Unsaved changes…';
    clearTimeout(timer);
    timer = setTimeout(save, quiet ? 1500 : 600);
  }
  function save() {
    clearTimeout(timer);
    saving = saving.then(async () => {
      try {
        saveState.textContent = 'Saving…';
        showPublishState(await api.patch(`/api/v3/workspace/maps/${map.id}`, { title: title.value.trim() || 'Untitled map', keplerMapConfig: kc, datasets }));
        saveState.textContent = 'All changes saved';
      } catch (err) { saveState.textContent = 'Not saved'; toast(`Could not save: ${err.message}`, 'error'); }
    });
    return saving;
  }
  title.addEventListener('change', () => { document.title = `${title.value} — Tessera`; changed(); });

  async function redraw() {
    renderLayers();
    try { await view.setLayers(layers(), datasets); } catch (err) { toast(err.message, 'error'); }
    renderEditor();
    panel.refresh();  // category bars take the layer's colours
  }

  // ---- layers
  function renderLayers() {
    const ls = layers();
    if (!ls.length) {
      clear(layerList, h('div.empty', h('h3', 'Add your first layer'), h('p', 'A layer shows a table or a SQL query on the map.'),
        readOnly ? null : h('button.primary', { onclick: addLayer }, 'Add source')));
      return;
    }
    clear(layerList, h('ul.list', { 'aria-label': 'Layers, top first' }, ls.map((l, i) => h('li', h(`div.layer-item${l.id === selected ? '.selected' : ''}`, { dataset: { layer: l.id } },
      h('span.swatch', { style: { background: swatch(l) } }),
      h('button.name', { type: 'button', 'aria-pressed': l.id === selected ? 'true' : 'false', onclick: () => { selected = l.id; renderLayers(); renderEditor(); } }, l.config.label || 'Layer'),
      h('button.icon.toggle-visibility', { type: 'button', 'aria-label': `${l.config.isVisible === false ? 'Show' : 'Hide'} ${l.config.label}`, 'aria-pressed': l.config.isVisible === false ? 'false' : 'true',
        onclick: () => { l.config.isVisible = l.config.isVisible === false; redraw(); changed(); } }, l.config.isVisible === false ? '◌' : '●'),
      readOnly ? null : [
        h('button.icon', { type: 'button', 'aria-label': `Move ${l.config.label} up`, disabled: i === 0 || undefined, onclick: () => move(i, -1) }, '↑'),
        h('button.icon', { type: 'button', 'aria-label': `Move ${l.config.label} down`, disabled: i === ls.length - 1 || undefined, onclick: () => move(i, 1) }, '↓'),
        h('button.icon', { type: 'button', 'aria-label': `Remove ${l.config.label}`, onclick: () => removeLayer(l) }, '✕')])))));
  }
  function move(i, d) {
    const ls = layers();
    [ls[i], ls[i + d]] = [ls[i + d], ls[i]];
    redraw(); changed();
  }
  function removeLayer(l) {
    cfg.visState.layers = layers().filter(x => x !== l);
    if (!layers().some(x => x.config.dataId === l.config.dataId)) {
      datasets = datasets.filter(d => d.id !== l.config.dataId);
      cfg.widgets = cfg.widgets.filter(w => w.dataId !== l.config.dataId);
      delete tooltips()[l.config.dataId];
      panel.render();
    }
    if (selected === l.id) selected = layers()[0] ? layers()[0].id : null;
    redraw(); changed();
  }

  function columnsOf(dataId) {
    const layer = layers().find(l => l.config.dataId === dataId);
    const e = layer && view.entries.get(layer.id);
    const d = datasets.find(x => x.id === dataId);
    if (isDynamic(d)) {
      // A grid's features are its cells: their values are the aggregates TileJSON describes.
      const attrs = (e && e.tilejson && e.tilejson.tilestats && e.tilejson.tilestats.layers && e.tilejson.tilestats.layers[0] && e.tilejson.tilestats.layers[0].attributes) || [];
      return attrs.map(a => ({ name: a.attribute, type: a.type === 'Number' ? 'number' : 'string' }));
    }
    return ((e && e.schema) || []).filter(c => c.type !== 'geometry');
  }

  // ---- style editor of the selected layer
  function renderEditor() {
    const l = layers().find(x => x.id === selected);
    if (!l || readOnly) { clear(editor); return; }
    const cols = columnsOf(l.config.dataId);
    const dataset = datasets.find(d => d.id === l.config.dataId);
    const apply = () => { redraw(); changed(); };
    const label = field('Name', { value: l.config.label || '', onchange: e => { l.config.label = e.target.value; apply(); } });
    const shown = new Set((tooltips()[l.config.dataId] || []).map(f => (typeof f === 'string' ? f : f.name)));
    const tips = h('fieldset.tooltips', { style: { border: 'none', padding: 0, margin: 0 } }, h('legend', { style: { fontWeight: 550, fontSize: '.9rem' } }, 'Tooltip shows'),
      cols.length ? cols.map(c => h('label.check', h('input', { type: 'checkbox', value: c.name, checked: shown.has(c.name) || undefined, onchange: e => {
        if (e.target.checked) shown.add(c.name); else shown.delete(c.name);
        tooltips()[l.config.dataId] = [...shown].map(name => ({ name, format: null }));
        redraw();  // the tiles carry only the columns shown: a new one needs new tiles
        changed();
      } }), c.name)) : h('p.muted', 'No columns'));
    // The layer's source with its widgets' current filters: the file holds what the map shows.
    const exporter = exportMenu('layer', () => {
      const d = datasets.find(x => x.id === l.config.dataId);
      return d && { connection: d.connectionName, filters: view.filters[d.id],
        ...(d.type === 'table' ? { table: d.source } : { query: d.source, queryParameters: d.queryParameters || undefined }) };
    }, l.config.label);
    clear(editor, dataset && dataset.type === 'query' ? queryEditor(dataset) : null,
      h('h2', 'Style'), label, ...styleControls(l, cols, view.styleErrors(l.id), apply), tips,
      h('h2', 'Export layer data'), h('p.hint', 'The layer’s source, with the filters its widgets apply now.'), exporter);
  }

  /**
   * A query layer's SQL, editable: Run checks it with the Maps API first; a failing query is
   * explained here and neither replaces the working one nor loses the text typed.
   */
  function queryEditor(dataset) {
    const agg = dataset.aggregation;
    const text = drafts.get(dataset.id) ?? (dataset.sqlTemplate || dataset.source);
    const area = h('textarea.code#query-editor', { rows: 6, spellcheck: false, 'aria-label': 'SQL query of this layer', readOnly: !!agg || undefined,
      oninput: e => drafts.set(dataset.id, e.target.value) }, text);
    const error = h('p.form-error#query-error', { role: 'alert', hidden: true });
    const run = h('button.secondary#run-query', { type: 'button', onclick: async () => {
      const sql = area.value.trim().replace(/;\s*$/, '');
      error.hidden = true;
      if (!sql) { error.textContent = 'The query is empty'; error.hidden = false; return; }
      const candidate = { ...dataset, sqlTemplate: hasPlaceholders(sql) ? sql : undefined };
      if (!candidate.sqlTemplate) { candidate.source = sql; candidate.queryParameters = null; }
      const problem = applyParameters([candidate], cfg.parameters);
      if (problem) { error.textContent = problem; error.hidden = false; return; }
      run.disabled = true;
      try {
        await resolveSource(candidate);
        Object.keys(dataset).forEach(k => delete dataset[k]);
        Object.assign(dataset, candidate);
        drafts.delete(dataset.id);
        await redraw(); changed(); panel.render();
        toast('Query updated');
      } catch (err) {
        error.textContent = `The query failed: ${err.message}`;
        error.hidden = false;
      } finally { run.disabled = false; }
    } }, 'Run query');
    if (agg) {
      return h('div.query-editor', h('h2', 'Aggregation'), h('p.hint', `${AGGREGATIONS[agg.kind]} of ${agg.table}, resolution ${agg.resolution}, ${agg.operation === 'count' ? 'count' : agg.operation + ' of ' + agg.column}: computed by the warehouse over all rows.`),
        h('details', h('summary', 'SQL'), area));
    }
    return h('div.query-editor', h('h2', 'SQL query'), area,
      h('p.hint', 'Use {{name}} for a SQL parameter: its value is sent as a bound parameter, never pasted into the SQL.'), error, h('div.actions', run));
  }

  // ---- SQL parameters
  function renderParameters() {
    if (!cfg.parameters.length) {
      clear(parameterBox, h('p.muted', { style: { fontSize: '.85rem' } }, 'Controls bound to {{name}} in query layers.'));
      return;
    }
    renderParameterControls({ el: parameterBox, parameters: cfg.parameters,
      onChange: async () => {
        const problem = applyParameters(datasets, cfg.parameters);
        if (problem) throw new Error(problem);
        changed();
        await view.setLayers(layers(), datasets);
        panel.refresh();
      },
      onRemove: readOnly ? null : p => { cfg.parameters = cfg.parameters.filter(x => x !== p); renderParameters(); changed(); } });
  }

  async function addParameter() {
    const name = field('Name', { id: 'parameter-name', placeholder: 'min_pop', autocomplete: 'off' }, 'Letters, digits and _; use it in SQL as {{name}} (ranges: {{name_from}}, {{name_to}}).');
    const type = field('Control', { tag: 'select', id: 'parameter-type', options: Object.entries(PARAMETER_TYPES).map(([value, label]) => ({ value, label })) });
    const def = field('Default value', { id: 'parameter-default', autocomplete: 'off' }, 'Text: the text. Ranges: from, to (e.g. 0, 1000 or 2020-01-01, 2020-12-31). Categories: the options, comma separated (all selected).');
    const bounds = field('Slider bounds (numeric)', { id: 'parameter-bounds', placeholder: 'min, max', autocomplete: 'off' });
    const error = h('p.form-error#parameter-dialog-error', { role: 'alert', hidden: true });
    const build = () => {
      const n = name.input.value.trim(), t = type.input.value, raw = def.input.value;
      if (!NAME_RE.test(n)) return { error: 'The name must start with a letter or _ and hold only letters, digits and _' };
      if (cfg.parameters.some(p => p.name === n)) return { error: `There is already a parameter named ${n}` };
      const parts = raw.split(',').map(x => x.trim()).filter(x => x !== '');
      let p;
      if (t === 'numeric') {
        const [lo, hi] = bounds.input.value.split(',').map(x => Number(x.trim()));
        p = { name: n, type: t, value: [parts[0] === undefined ? '' : Number(parts[0]), parts[1] === undefined ? '' : Number(parts[1])] };
        if (Number.isFinite(lo) && Number.isFinite(hi) && bounds.input.value.trim()) Object.assign(p, { min: lo, max: hi });
      } else if (t === 'date') p = { name: n, type: t, value: [parts[0] || '', parts[1] || ''] };
      else if (t === 'category') p = { name: n, type: t, options: parts, value: [...parts] };
      else p = { name: n, type: t, value: raw };
      const bad = valueError(p);
      return bad ? { error: bad } : { p };
    };
    const v = await dialog('Add a SQL parameter', close => h('form', { onsubmit: e => {
      e.preventDefault();
      const r = build();
      if (r.error) { error.textContent = r.error; error.hidden = false; return; }
      close('ok');
    } }, error, name, type, def, bounds, h('div.actions', h('button.primary#parameter-submit', { type: 'submit' }, 'Add parameter'))), [{ label: 'Cancel', value: null }]);
    if (v !== 'ok') return;
    cfg.parameters.push(build().p);
    renderParameters();
    const problem = applyParameters(datasets, cfg.parameters);
    if (!problem) await redraw();
    changed();
  }

  // ---- add a source
  async function addLayer() {
    const names = await connectionNames();
    const conn = field('Connection', { tag: 'select', options: names });
    const kind = field('Source', { tag: 'select', id: 'source-kind', options: [{ value: 'table', label: 'Table' }, { value: 'query', label: 'SQL query' }] });
    const tableF = field('Table', { list: 'table-options', id: 'source-table', placeholder: 'schema.table', autocomplete: 'off' });
    const listEl = h('datalist#table-options');
    const sqlF = field('SQL query', { tag: 'textarea', id: 'source-sql', rows: 5, placeholder: 'SELECT * FROM public.my_table WHERE population > {{min_pop}}' },
      'Use {{name}} for a SQL parameter (add it under SQL parameters): its value is bound, never pasted into the SQL.');
    const geoF = field('Geometry column', { value: 'geom', id: 'source-geo' });
    const layerType = field('Layer type', { tag: 'select', id: 'layer-type', options: [{ value: 'features', label: 'Features (points, lines, polygons)' },
      ...Object.entries(AGGREGATIONS).map(([value, label]) => ({ value, label: `Aggregate points: ${label}` }))] });
    const resF = field('Cell resolution', { type: 'number', id: 'agg-resolution', value: 4, min: 1, max: 18 });
    const opF = field('Aggregate', { tag: 'select', id: 'agg-operation', options: AGG_OPERATIONS.map(o => ({ value: o, label: o === 'count' ? 'count of points' : o })) });
    const opColF = field('Of column', { id: 'agg-column', placeholder: 'a numeric column', autocomplete: 'off' });
    const aggBox = h('div.agg-options', { hidden: true }, h('div.row', resF, opF), opColF);
    sqlF.hidden = true;
    kind.input.onchange = () => {
      tableF.hidden = kind.input.value !== 'table'; sqlF.hidden = !tableF.hidden;
      layerType.hidden = kind.input.value !== 'table'; aggBox.hidden = layerType.hidden || layerType.input.value === 'features';
    };
    layerType.input.onchange = () => {
      aggBox.hidden = layerType.input.value === 'features';
      const [lo, hi, d] = RESOLUTIONS[layerType.input.value] || [1, 18, 4];
      Object.assign(resF.input, { min: lo, max: hi, value: d });
      resF.querySelector('label').textContent = layerType.input.value === 'h3' ? 'Detail (H3 resolutions below the tile)' : 'Detail (cells per tile side: 2^level)';
    };
    const loadTables = async () => {
      try {
        const c = encodeURIComponent(conn.input.value);
        const schemas = (await api.get(`/api/v3/workspace/connections/${c}/schemas`)).data || [];
        const all = await Promise.all(schemas.map(s => api.get(`/api/v3/workspace/connections/${c}/schemas/${encodeURIComponent(s.name)}/tables`).then(r => r.data || []).catch(() => [])));
        clear(listEl, all.flat().filter(t => t.geometryColumn).map(t => h('option', { value: t.fqn })));
      } catch { /* free text still works */ }
    };
    conn.input.onchange = loadTables;
    loadTables();
    const error = h('p.form-error#add-source-error', { role: 'alert', hidden: true });
    const submit = h('button.primary#add-source-submit', { type: 'submit' }, 'Add layer');
    // The dialog stays open until the source works: a failing table or query is explained in place
    // and everything typed is still there to fix.
    const made = await dialog('Add a source', close => h('form', { onsubmit: async e => {
      e.preventDefault();
      error.hidden = true;
      submit.disabled = true;
      try { close(await prepareSource()); }
      catch (err) { error.textContent = err.message; error.hidden = false; }
      finally { submit.disabled = false; }
    } }, error, conn, kind, tableF, listEl, sqlF, geoF, layerType, aggBox, h('div.actions', submit)), [{ label: 'Cancel', value: null }]);
    if (!made) return;

    async function prepareSource() {
      const isTable = kind.input.value === 'table';
      const source = (isTable ? tableF.input.value : sqlF.input.value).trim().replace(/;\s*$/, '');
      if (!source) throw new Error(isTable ? 'Give a table' : 'Write a query');
      let geo = geoF.input.value.trim() || 'geom', columns = [];
      if (isTable) {
        const t = await api.get(`/api/v3/workspace/connections/${encodeURIComponent(conn.input.value)}/tables/${encodeURIComponent(source)}`);
        geo = t.geometryColumn || geo;
        columns = (t.columns || []).map(c => c.name).filter(n => n !== geo);
      }
      let n = 1;
      while (datasets.some(d => d.id === `d${n}`) || layers().some(l => l.id === `l${n}`)) n++;
      const aggKind = isTable && layerType.input.value !== 'features' ? layerType.input.value : null;
      let dataset;
      if (ON_GRID.has(aggKind)) {
        // The grid uses the Maps API's dynamic aggregation: cells sized to the zoom, values per tile.
        const level = Number(resF.input.value), op = opF.input.value, column = op === 'count' ? null : opColF.input.value.trim();
        const [lo, hi] = RESOLUTIONS[aggKind];
        if (!Number.isInteger(level) || level < lo || level > hi) throw new Error(`The detail level must be a whole number from ${lo} to ${hi}`);
        if (op !== 'count' && !columns.includes(column)) throw new Error(`${source} has no column “${column || ''}” to ${op}`);
        const agg = { kind: aggKind, table: source, geo, resolution: level, operation: op, column };
        dataset = { id: `d${n}`, type: 'table', source, connectionName: conn.input.value, geoColumn: geo, columns, format: 'tilejson', queryParameters: null,
          spatialDataType: indexOf(aggKind), aggregationExp: aggregationExp(agg), aggregationResLevel: level, aggregation: agg };
      } else {
        dataset = { id: `d${n}`, type: isTable ? 'table' : 'query', source, connectionName: conn.input.value, geoColumn: geo, columns, format: 'tilejson', queryParameters: null };
        if (!isTable && hasPlaceholders(source)) {
          dataset.sqlTemplate = source;
          const problem = applyParameters([dataset], cfg.parameters);
          if (problem) throw new Error(problem);
        }
      }
      try { await resolveSource(dataset); }  // a broken table or query is refused here, not saved
      catch (err) { throw new Error(`This source cannot be mapped: ${err.message}`); }
      return { dataset, n, isTable, source, agg: dataset.aggregation };
    }

    const { dataset, n, isTable, source, agg } = made;
    datasets = [...datasets, dataset];
    const label = agg ? `${source.split('.').pop()} · ${{ h3: 'hexbins', quadbin: 'grid', heatmap: 'heatmap', cluster: 'clusters' }[agg.kind]}` : isTable ? source.split('.').pop() : `Query ${n}`;
    const layer = defaultLayer(`l${n}`, dataset.id, label, layers().length);
    if (agg) {
      // Styled by the aggregate from the start: 5 equal intervals (counts repeat too often for quantiles).
      layer.config.aggregated = agg.kind;
      layer.visualChannels = { colorField: { name: aggregateColumn(agg), type: 'real' }, colorScale: 'quantize' };
      Object.assign(layer.config.visConfig, { colorRange: { name: 'YlOrRd', type: 'sequential', colors: RAMPS.YlOrRd }, classes: 5, opacity: 0.8, strokeColor: [255, 255, 255], thickness: 0.5 });
    }
    layers().unshift(layer);
    selected = layer.id;
    await redraw();
    const e = view.entries.get(layer.id);
    if (isDynamic(dataset)) {
      // A grid's TileJSON spans the world (its tiles are cells): fit to the points' extent instead.
      try {
        const x = (await columnStats(dataset, dataset.geoColumn)).extent;
        if (x) view.fitBounds([x.xmin, x.ymin, x.xmax, x.ymax]);
      } catch { /* keep the view */ }
    } else if (e && e.tilejson && e.tilejson.bounds) view.fitBounds(e.tilejson.bounds);
    changed();
  }

  // ---- widgets
  async function addWidget() {
    if (!layers().length) { toast('Add a layer first: widgets summarise a layer’s data', 'error'); return; }
    const seen = new Set();
    const sources = layers().filter(l => !seen.has(l.config.dataId) && seen.add(l.config.dataId));
    const type = field('Type', { tag: 'select', id: 'widget-type', options: Object.entries(WIDGET_TYPES).map(([value, label]) => ({ value, label })) });
    const src = field('Layer', { tag: 'select', id: 'widget-layer', options: sources.map(l => ({ value: l.config.dataId, label: l.config.label })) });
    const column = field('Column', { tag: 'select', id: 'widget-column', options: [] });
    const operation = field('Operation', { tag: 'select', id: 'widget-operation', options: OPERATIONS });
    const opColumn = field('Aggregated column', { tag: 'select', id: 'widget-opcolumn', options: [] }, 'For sum, avg, min and max.');
    const fill = () => {
      const cols = columnsOf(src.input.value);
      const t = type.input.value;
      const fit = cols.filter(c => !WIDGET_COLUMNS[t] || WIDGET_COLUMNS[t].includes(c.type));
      clear(column.input, (t === 'formula' || t === 'table' ? [{ value: '', label: t === 'table' ? '(all columns)' : '(rows)' }] : []).concat(fit.map(c => ({ value: c.name, label: `${c.name} · ${c.type}` }))).map(optionEl));
      operation.hidden = opColumn.hidden = t === 'table' || t === 'range';
      clear(opColumn.input, cols.filter(c => c.type === 'number').map(c => optionEl({ value: c.name, label: c.name })));
    };
    type.input.onchange = fill; src.input.onchange = fill;
    fill();
    const v = await dialog('Add a widget', close => h('form', { onsubmit: e => { e.preventDefault(); close('ok'); } }, type, src, column, operation, opColumn),
      [{ label: 'Cancel', value: null }, { label: 'Add widget', value: 'ok', kind: 'primary' }]);
    if (v !== 'ok') return;
    const t = type.input.value, op = operation.input.value;
    let col = column.input.value;
    if (t === 'formula' && op !== 'count') col = opColumn.input.value;
    if (t !== 'formula' && t !== 'table' && !col) { toast('That layer has no column this widget can use', 'error'); return; }
    const layerLabel = (sources.find(l => l.config.dataId === src.input.value) || {}).config.label;
    const w = { id: `w${Date.now().toString(36)}`, type: t, dataId: src.input.value, column: t === 'table' ? null : col || null, operation: t === 'table' || t === 'range' ? 'count' : op,
      operationColumn: op === 'count' || t === 'formula' ? null : opColumn.input.value || null, title: `${WIDGET_TYPES[t]}: ${col || layerLabel}` };
    if (t === 'table') w.columns = col ? [col] : columnsOf(src.input.value).map(c => c.name).slice(0, 4);
    cfg.widgets.push(w);
    panel.render();
    changed();
  }

  // ---- publishing
  async function publish() {
    await save();
    const button = document.getElementById('publish-button');
    button.disabled = true;
    try {
      showPublishState(await api.post(`/api/v3/workspace/maps/${map.id}/publish`, {}));
      toast('Published: the public link and embeds now show this version');
    } catch (err) { toast(`Not published: ${err.message}`, 'error'); }
    button.disabled = false;
  }

  /** The password part of the share dialog: set, change or remove. */
  function passwordSection() {
    const input = h('input#map-password', { type: 'password', autocomplete: 'new-password', minlength: 8, placeholder: 'At least 8 characters' });
    const state = h('p.muted#map-password-state', { role: 'status' });
    const remove = h('button.secondary#remove-password', { type: 'button' }, 'Remove password');
    const show = () => {
      state.textContent = map.passwordProtected ? 'Viewers must enter the password to open the map or the embed.' : 'No password: anyone with the link can open it.';
      remove.hidden = !map.passwordProtected;
    };
    const set = async value => {
      try {
        showPublishState(await api.patch(`/api/v3/workspace/maps/${map.id}`, { password: value }));
        input.value = '';
        toast(value ? 'Password set' : 'Password removed');
      } catch (err) { toast(err.message, 'error'); }
      show();
    };
    remove.onclick = () => set(null);
    show();
    return h('div.field', h('label', { for: 'map-password' }, 'Password (optional)'),
      h('div.secret', input, h('button.secondary#set-password', { type: 'button', onclick: () => input.value && set(input.value) }, 'Set password'), remove), state);
  }

  /** Embed options → an iframe to the public viewer with the query parameters it honours. */
  function embedSection(link) {
    const width = h('input#embed-width', { type: 'text', value: '100%', 'aria-label': 'Width' });
    const height = h('input#embed-height', { type: 'number', min: 150, max: 2000, value: 480, 'aria-label': 'Height in pixels' });
    const legend = h('input#embed-legend', { type: 'checkbox', checked: true });
    const widgets = h('input#embed-widgets', { type: 'checkbox', checked: true });
    const locked = h('input#embed-lock', { type: 'checkbox' });
    const code = h('textarea.code#embed-code', { rows: 3, readonly: true });
    const render = () => {
      const q = new URLSearchParams();
      if (!legend.checked) q.set('legend', '0');
      if (!widgets.checked) q.set('widgets', '0');
      if (locked.checked) q.set('lock', '1');
      const src = link + (q.toString() ? `?${q}` : '');
      const w = /^\d+(%|px)?$/.test(width.value.trim()) ? width.value.trim() : '100%';
      const hgt = Math.min(2000, Math.max(150, parseInt(height.value, 10) || 480));
      code.value = `<iframe src="${src}" width="${w}" height="${hgt}" style="border:0" title="${(map.title || 'Map').replace(/"/g, '&quot;')}" loading="lazy"></iframe>`;
    };
    for (const el of [width, height, legend, widgets, locked]) el.addEventListener('input', render);
    render();
    return h('div.field', h('label', { for: 'embed-code' }, 'Embed'),
      h('div.embed-options',
        h('div.field', h('label', { for: 'embed-width' }, 'Width'), width),
        h('div.field', h('label', { for: 'embed-height' }, 'Height (px)'), height),
        h('label.check', legend, 'Legend'), h('label.check', widgets, 'Widgets'), h('label.check', locked, 'Lock zoom and pan')),
      code, h('div.actions', h('button.secondary#copy-embed', { type: 'button', onclick: () => copyText(code.value) }, 'Copy embed code')));
  }

  // ---- sharing
  async function share() {
    await save();
    const body = () => {
      const link = `${location.origin}/map/${encodeURIComponent(map.id)}`;
      // Three levels, as the server enforces them: private (you and admins), organization, public.
      const levels = [
        ['private', 'privacy-private', 'Private: only you (and your organisation’s admins)'],
        ['organization', 'privacy-organization', 'Organization: everyone in your organisation'],
        ['public', 'public-toggle', 'Public: anyone with the link can view'],
      ];
      const describe = p => p === 'public' ? 'Anyone with the link can view this map. Only its layers’ data is exposed.'
        : p === 'organization' ? 'Everyone in your organisation can open this map.' : 'Only you and your organisation’s admins can open this map.';
      const radios = levels.map(([value, id]) => h(`input#${id}`, { type: 'radio', name: 'privacy', value, checked: map.privacy === value || undefined }));
      const details = h('div', { hidden: map.privacy !== 'public' || undefined },
        h('div.field', h('label', { for: 'public-link' }, 'Public link'), h('div.secret', h('input#public-link', { value: link, readonly: true }),
          h('button.secondary', { type: 'button', onclick: () => copyText(link) }, 'Copy link'), h('a.button.secondary', { href: link, target: '_blank', rel: 'noopener' }, 'Open'))),
        h('p.muted#publish-note', map.publishedAt ? 'The link and the embed show the published version: press Publish to update them.'
          : 'Until you press Publish, the link and the embed show the map as it is now.'),
        passwordSection(), embedSection(link));
      const status = h('p.muted', { role: 'status' }, describe(map.privacy));
      for (const radio of radios) {
        radio.onchange = async () => {
          if (!radio.checked) return;
          const previous = map.privacy;
          radios.forEach(r => { r.disabled = true; });
          try {
            const m = await api.patch(`/api/v3/workspace/maps/${map.id}`, { privacy: radio.value });
            map.privacy = m.privacy || radio.value;
          } catch (err) {
            map.privacy = previous;
            toast(err.message, 'error');
          }
          radios.forEach(r => { r.disabled = false; r.checked = r.value === map.privacy; });
          details.hidden = map.privacy !== 'public';
          status.textContent = describe(map.privacy);
          const badge = document.getElementById('privacy-badge');
          badge.textContent = privacyLabel(map.privacy);
          badge.classList.toggle('public', map.privacy === 'public');
        };
      }
      return h('div', h('fieldset.privacy', h('legend', 'Who can open this map'),
        ...levels.map(([, , label], i) => h('label.check', radios[i], label))), status, details);
    };
    await dialog('Share this map', body, [{ label: 'Done', value: true, kind: 'primary' }]);
  }

  renderParameters();
  applyParameters(datasets, cfg.parameters);
  await redraw();
  if (!cfg.mapState.fitted && layers().length) {
    // A map made from a table or query opens fitted to its data once; afterwards the saved view wins.
    view.fitLayers();
    cfg.mapState.fitted = true;
  }
  panel.render();
  return () => { clearTimeout(timer); panel.destroy(); view.destroy(); };
}

/** The layer list's swatch: its colour, or its ramp/palette when it colours by a column. */
function swatch(l) {
  const f = l.visualChannels && l.visualChannels.colorField;
  const colors = f && l.config.visConfig.colorRange && l.config.visConfig.colorRange.colors;
  return colors ? `linear-gradient(90deg, ${colors.slice(0, 5).join(', ')})` : rgbToHex(l.config.color);
}
