// The map builder: layers from tables or queries, their style (fill, stroke, colour by value, point
// size, opacity), tooltips, legend, layer order and visibility, widgets, and sharing. Everything is
// kept in the map's keplerMapConfig (visState.layers, interactionConfig.tooltip, config.widgets) and
// saved automatically, so the public viewer renders the same map.
import { api } from '../http.js';
import { h, clear, field, toast, dialog, copyText, spinner, empty, optionEl } from '../dom.js';
import { MapView } from '../mapview.js';
import { resolveSource } from '../tilelayer.js';
import { defaultLayer, rgbToHex, hexToRgb, RAMPS, PALETTES } from '../style.js';
import { WidgetPanel, WIDGET_TYPES, OPERATIONS } from '../widgets.js';
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
  cfg.filters ??= {};
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
  const widgetBox = h('div#widget-list');
  const mapEl = h('div#builder-map');
  root.append(h('div.builder',
    h('header.builder-bar', h('a.button.link', { href: '#/maps' }, '← Maps'), title, saveState, h('span.spacer'),
      h(`span.badge${map.privacy === 'public' ? '.public' : ''}#privacy-badge`, privacyLabel(map.privacy)),
      publishState,
      readOnly ? null : h('button.secondary#publish-button', { onclick: publish }, 'Publish'),
      readOnly ? null : h('button.primary#share-button', { onclick: share }, 'Share')),
    h('aside.panel', { 'aria-label': 'Layers' },
      h('h2', h('span', 'Layers'), readOnly ? null : h('button.secondary#add-layer', { onclick: addLayer }, '+ Add source')), layerList, editor),
    h('div.builder-map', mapEl),
    h('aside.panel.right', { 'aria-label': 'Widgets' },
      h('h2', h('span', 'Widgets'), readOnly ? null : h('button.secondary#add-widget', { onclick: addWidget }, '+ Add widget')), widgetBox)));
  document.title = `${map.title} — Tessera`;

  const view = new MapView(mapEl, { center: [cfg.mapState.latitude, cfg.mapState.longitude], zoom: cfg.mapState.zoom, mapStyle: cfg.mapStyle });
  if (!readOnly) basemapPicker(view, cfg.mapStyle, () => changed());
  view.tooltipFields = tooltips();
  const panel = new WidgetPanel({ el: widgetBox, view, token: null, editable: !readOnly, state: () => ({ layers: layers(), datasets, widgets: cfg.widgets }),
    onRemove: readOnly ? null : w => { cfg.widgets = cfg.widgets.filter(x => x !== w); panel.render(); changed(); } });
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
    return ((e && e.schema) || []).filter(c => c.type !== 'geometry');
  }

  // ---- style editor of the selected layer
  function renderEditor() {
    const l = layers().find(x => x.id === selected);
    if (!l || readOnly) { clear(editor); return; }
    const v = l.config.visConfig;
    const cols = columnsOf(l.config.dataId);
    const vc = l.visualChannels ??= { colorField: null, colorScale: 'quantize' };
    const apply = () => { redraw(); changed(); };
    const label = field('Name', { value: l.config.label || '', onchange: e => { l.config.label = e.target.value; apply(); } });
    const fill = field('Fill colour', { type: 'color', value: rgbToHex(l.config.color), oninput: e => { l.config.color = hexToRgb(e.target.value); apply(); } });
    const colorBy = field('Colour by', { tag: 'select', options: [{ value: '', label: 'One colour' }, ...cols.filter(c => c.type === 'number' || c.type === 'string' || c.type === 'boolean')
      .map(c => ({ value: c.name, label: `${c.name} (${c.type === 'number' ? 'ramp' : 'categories'})`, selected: vc.colorField && vc.colorField.name === c.name }))] });
    colorBy.input.id = 'color-by';
    colorBy.input.onchange = e => {
      const c = cols.find(x => x.name === e.target.value);
      if (!c) { vc.colorField = null; } else {
        const numeric = c.type === 'number';
        vc.colorField = { name: c.name, type: numeric ? 'real' : 'string' };
        vc.colorScale = numeric ? 'quantize' : 'ordinal';
        v.colorRange = numeric ? { name: 'Sunset', type: 'sequential', colors: RAMPS.Sunset } : { name: 'Bold', type: 'qualitative', colors: PALETTES.Bold };
      }
      apply();
    };
    const isNum = vc.colorField && vc.colorField.type !== 'string';
    const sets = isNum ? RAMPS : PALETTES;
    const ramp = vc.colorField ? field(isNum ? 'Colour ramp' : 'Palette', { tag: 'select', options: Object.keys(sets).map(n => ({ value: n, label: n, selected: v.colorRange && v.colorRange.name === n })),
      onchange: e => { v.colorRange = { name: e.target.value, type: isNum ? 'sequential' : 'qualitative', colors: sets[e.target.value] }; apply(); } }) : null;
    const stroke = field('Stroke colour', { type: 'color', value: rgbToHex(v.strokeColor), oninput: e => { v.strokeColor = hexToRgb(e.target.value); apply(); } });
    const strokeOn = h('label.check', h('input', { type: 'checkbox', checked: v.stroked !== false || undefined, onchange: e => { v.stroked = e.target.checked; apply(); } }), 'Stroke');
    const width = field('Stroke width', { type: 'range', min: 0, max: 6, step: 0.5, value: v.thickness ?? 1, onchange: e => { v.thickness = Number(e.target.value); apply(); } });
    const radius = field('Point size', { type: 'range', min: 1, max: 20, step: 1, value: v.radius ?? 5, onchange: e => { v.radius = Number(e.target.value); apply(); } });
    const opacity = field('Opacity', { type: 'range', min: 0.1, max: 1, step: 0.05, value: v.opacity ?? 0.85, onchange: e => { v.opacity = Number(e.target.value); apply(); } });
    const shown = new Set((tooltips()[l.config.dataId] || []).map(f => (typeof f === 'string' ? f : f.name)));
    const tips = h('fieldset.tooltips', { style: { border: 'none', padding: 0, margin: 0 } }, h('legend', { style: { fontWeight: 550, fontSize: '.9rem' } }, 'Tooltip shows'),
      cols.length ? cols.map(c => h('label.check', h('input', { type: 'checkbox', value: c.name, checked: shown.has(c.name) || undefined, onchange: e => {
        if (e.target.checked) shown.add(c.name); else shown.delete(c.name);
        tooltips()[l.config.dataId] = [...shown].map(name => ({ name, format: null }));
        changed();
      } }), c.name)) : h('p.muted', 'No columns'));
    // The layer's source as saved; widget filters are not applied to the export yet.
    const exporter = exportMenu('layer', () => {
      const d = datasets.find(x => x.id === l.config.dataId);
      return d && { connection: d.connectionName, ...(d.type === 'table' ? { table: d.source } : { query: d.source }) };
    }, l.config.label);
    clear(editor, h('h2', 'Style'), label, h('div.row', fill, stroke), strokeOn, colorBy, ramp, width, radius, opacity, tips,
      h('h2', 'Export layer data'), h('p.hint', 'The whole source of the layer, without widget filters.'), exporter);
  }

  // ---- add a source
  async function addLayer() {
    const names = await connectionNames();
    const conn = field('Connection', { tag: 'select', options: names });
    const kind = field('Source', { tag: 'select', options: [{ value: 'table', label: 'Table' }, { value: 'query', label: 'SQL query' }] });
    const tableF = field('Table', { list: 'table-options', placeholder: 'schema.table', autocomplete: 'off' });
    const listEl = h('datalist#table-options');
    const sqlF = field('SQL query', { tag: 'textarea', rows: 4, placeholder: 'SELECT * FROM public.my_table WHERE …' });
    const geoF = field('Geometry column', { value: 'geom' });
    sqlF.hidden = true;
    kind.input.onchange = () => { tableF.hidden = kind.input.value !== 'table'; sqlF.hidden = !tableF.hidden; };
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
    const error = h('p.form-error', { role: 'alert', hidden: true });
    const v = await dialog('Add a source', close => h('form', { onsubmit: e => { e.preventDefault(); close('ok'); } }, error, conn, kind, tableF, listEl, sqlF, geoF),
      [{ label: 'Cancel', value: null }, { label: 'Add layer', value: 'ok', kind: 'primary' }]);
    if (v !== 'ok') return;
    const isTable = kind.input.value === 'table';
    const source = (isTable ? tableF.input.value : sqlF.input.value).trim().replace(/;\s*$/, '');
    if (!source) { toast('Give a table or a query', 'error'); return; }
    let geo = geoF.input.value.trim() || 'geom', columns = [];
    if (isTable) {
      try {
        const t = await api.get(`/api/v3/workspace/connections/${encodeURIComponent(conn.input.value)}/tables/${encodeURIComponent(source)}`);
        geo = t.geometryColumn || geo;
        columns = (t.columns || []).map(c => c.name).filter(n => n !== geo);
      } catch (err) { toast(err.message, 'error'); return; }
    }
    let n = 1;
    while (datasets.some(d => d.id === `d${n}`) || layers().some(l => l.id === `l${n}`)) n++;
    const dataset = { id: `d${n}`, type: isTable ? 'table' : 'query', source, connectionName: conn.input.value, geoColumn: geo,
      columns, format: 'tilejson', queryParameters: null };
    try { await resolveSource(dataset); }  // a broken table or query is refused here, not saved
    catch (err) { toast(`This source cannot be mapped: ${err.message}`, 'error'); return; }
    datasets = [...datasets, dataset];
    const label = isTable ? source.split('.').pop() : `Query ${n}`;
    const layer = defaultLayer(`l${n}`, dataset.id, label, layers().length);
    layers().unshift(layer);
    selected = layer.id;
    await redraw();
    const e = view.entries.get(layer.id);
    if (e && e.tilejson && e.tilejson.bounds) view.fitBounds(e.tilejson.bounds);
    changed();
  }

  // ---- widgets
  async function addWidget() {
    if (!layers().length) { toast('Add a layer first: widgets summarise a layer’s data', 'error'); return; }
    const seen = new Set();
    const sources = layers().filter(l => !seen.has(l.config.dataId) && seen.add(l.config.dataId));
    const type = field('Type', { tag: 'select', options: Object.entries(WIDGET_TYPES).map(([value, label]) => ({ value, label })) });
    const src = field('Layer', { tag: 'select', options: sources.map(l => ({ value: l.config.dataId, label: l.config.label })) });
    const column = field('Column', { tag: 'select', options: [] });
    const operation = field('Operation', { tag: 'select', options: OPERATIONS });
    const opColumn = field('Aggregated column', { tag: 'select', options: [] }, 'For sum, avg, min and max.');
    const fill = () => {
      const cols = columnsOf(src.input.value);
      const t = type.input.value;
      const fit = cols.filter(c => t === 'histogram' ? c.type === 'number' : t === 'timeseries' ? (c.type === 'timestamp' || c.type === 'date') : true);
      clear(column.input, (t === 'formula' ? [{ value: '', label: '(rows)' }] : []).concat(fit.map(c => ({ value: c.name, label: `${c.name} · ${c.type}` }))).map(optionEl));
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
    if (t !== 'formula' && !col) { toast('That layer has no column this widget can use', 'error'); return; }
    const layerLabel = (sources.find(l => l.config.dataId === src.input.value) || {}).config.label;
    const w = { id: `w${Date.now().toString(36)}`, type: t, dataId: src.input.value, column: col || null, operation: op,
      operationColumn: op === 'count' ? null : opColumn.input.value || null, title: `${WIDGET_TYPES[t]}: ${col || layerLabel}` };
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
