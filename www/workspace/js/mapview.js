// One Leaflet map showing a keplerMapConfig's layers (builder, public viewer, previews): basemap,
// vector layers per dataset with their filters, hover/click tooltips and a legend.
import * as L from '/vendor/leaflet/leaflet.esm.js';
import { request, ApiError } from './http.js';
import { h, clear, fmt, toast } from './dom.js';
import { VectorLayer, resolveSource, tileParams } from './tilelayer.js';
import { compileStyle, colorChannels } from './style.js';
import { layerClasses, equalBreaks } from './classify.js';
import { isDynamic } from './aggregation.js';
import { model } from './models.js';
import { STYLES, styleKind, templateProblem, BasemapLayer, LabelLayer, offlineTileJSON } from './basemap.js';

let configPromise = null;
/** The workspace config (anonymous): basemap, signup mode, smtp. */
export function workspaceConfig() {
  configPromise ??= request('GET', '/api/v3/workspace/config', { anonymous: true })
    .catch(() => ({ basemap: { type: 'tessera', connection: 'carto_dw', table: 'public.world_countries' } }));
  return configPromise;
}

export class MapView {
  /** opts: {token (Bearer for every request; else the session cookie), center [lat, lng], zoom,
   *  mapStyle (the map document's basemap choice; absent: the workspace's default)} */
  constructor(el, opts = {}) {
    this.token = opts.token;
    this.el = el;
    el.classList.add('mapview');
    el.mapview = this;  // lets the browser tests reach the Leaflet map
    this.map = L.map(el, { center: opts.center || [20, 0], zoom: opts.zoom ?? 2, worldCopyJump: true, attributionControl: true, keyboard: true });
    this.map.attributionControl.setPrefix('Leaflet');
    this.map.createPane('basemap').style.zIndex = 150;
    // Place labels above the data layers (tilePane, 200) and below popups and tooltips.
    this.map.createPane('basemapLabels').style.zIndex = 450;
    this._basemapLayers = [];
    this._basemapGen = 0;
    this.entries = new Map();   // layer id → {layer, dataset, vector, stats, template}
    this.filters = {};          // dataId → filter JSON
    // A <details>: on phones the legend starts folded so that it does not hide the data.
    this.legendBody = h('div.legend-body');
    this.legendEl = h('details.legend', { open: window.innerWidth > 600 }, h('summary', 'Legend'), this.legendBody);
    const Legend = L.Control.extend({ onAdd: () => this.legendEl });
    new Legend({ position: 'bottomright' }).addTo(this.map);
    L.DomEvent.disableClickPropagation(this.legendEl);
    // The thinning note depends on the zoom (the server thins low zooms of dense point layers only).
    this.map.on('zoomend', () => this.renderLegend());
    this.tip = L.tooltip({ direction: 'top', offset: [0, -6], className: 'feature-tip' });
    this.map.on('mousemove', e => this._hover(e));
    this.map.on('click', e => this._click(e));
    this.ready = this.setBasemap(opts.mapStyle);
  }

  /** The basemaps a map may use: offline light and dark, then the operator's (workspace config). */
  async basemapChoices() {
    const cfg = await workspaceConfig();
    return cfg.basemaps || [{ id: 'tessera-light', label: 'Offline light' }, { id: 'tessera-dark', label: 'Offline dark' }];
  }

  /** Why the chosen basemap is not drawn (shown by the builder's picker), or null. */
  _basemapProblem(text) {
    this.basemapProblem = text;
    if (text) this.el.dataset.basemapProblem = text; else delete this.el.dataset.basemapProblem;
    if (this.onBasemapProblem) this.onBasemapProblem(text);
  }

  _clearBasemap() {
    for (const l of this._basemapLayers) l.remove();
    if (this._basemapAttribution) this.map.attributionControl.removeAttribution(this._basemapAttribution);
    this._basemapLayers = [];
    this._basemapAttribution = null;
    this.basemap = this.labels = null;
  }

  _addBasemap(layer, attribution) {
    layer.addTo(this.map);
    this._basemapLayers.push(layer);
    if (attribution && !this._basemapAttribution) {
      this._basemapAttribution = attribution;
      this.map.attributionControl.addAttribution(attribution);
    }
    return layer;
  }

  /** Draws mapStyle's basemap ({styleType, url?}); a raster URL that is not an XYZ template or whose
   *  tiles fail falls back to the offline basemap, and says why. */
  async setBasemap(mapStyle) {
    const gen = ++this._basemapGen;
    const cfg = await workspaceConfig();
    if (gen !== this._basemapGen) return;
    this._clearBasemap();
    this._basemapProblem(null);
    const b = cfg.basemap || {};
    let kind = mapStyle ? styleKind(mapStyle) : (b.type === 'raster' || b.type === 'style' ? 'operator' : 'light');
    if (kind === 'operator' || kind === 'custom') {
      const entry = kind === 'custom' ? { type: 'raster', url: mapStyle.url, attribution: mapStyle.attribution }
        : (cfg.basemaps || []).find(x => x.id === (mapStyle && mapStyle.styleType)) || (b.url ? b : null);
      if (entry && entry.type === 'style' && await this._styleBasemap(entry)) return;
      const problem = !entry ? 'This basemap is no longer configured.' : entry.problem || templateProblem(entry.url);
      if (!problem) {
        const raster = this._addBasemap(L.tileLayer(entry.url, { attribution: '', pane: 'basemap' }),
          entry.attribution || `Basemap: ${new URL(entry.url.replace(/\{[a-z]\}/g, '0')).host}`);
        raster.once('tileerror', ev => {
          if (gen !== this._basemapGen) return;
          this._basemapProblem(`The basemap URL answers errors (tile ${ev.coords.z}/${ev.coords.x}/${ev.coords.y} did not load); the offline basemap is shown instead.`);
          this._clearBasemap();
          this._offline('light', cfg, gen);
        });
        return;
      }
      this._basemapProblem(`${problem} The offline basemap is shown instead.`);
      kind = 'light';
    }
    await this._offline(kind, cfg, gen);
  }

  /** Tessera's offline reference basemap (vector tiles + labels) in the light or dark style. */
  async _offline(kind, cfg, gen) {
    const b = cfg.basemap || {};
    const palette = STYLES[kind] || STYLES.light;
    this.el.style.background = palette.water;
    this.el.classList.toggle('basemap-dark', kind === 'dark');
    this.el.dataset.basemap = kind;
    const token = b.token || this.token;
    try {
      const tj = await offlineTileJSON(b.connection || 'carto_dw', token);
      if (gen !== this._basemapGen) return;
      this.basemap = this._addBasemap(new BasemapLayer({ tiles: tj.tiles[0], token, palette }), tj.attribution);
      this.labels = this._addBasemap(new LabelLayer(this.basemap, palette));
    } catch {
      if (gen === this._basemapGen) await this._countries(cfg);
    }
  }

  /** A Mapbox style URL: Leaflet draws raster tiles only, so its first raster source. */
  async _styleBasemap(b) {
    try {
      const style = await (await fetch(b.url)).json();
      const src = Object.values(style.sources || {}).find(x => x.type === 'raster' && x.tiles && x.tiles.length);
      if (src) {
        this._addBasemap(L.tileLayer(src.tiles[0], { attribution: '', pane: 'basemap', tileSize: src.tileSize || 256 }), src.attribution || '');
        return true;
      }
    } catch { /* fall through */ }
    return false;
  }

  /** Before the offline basemap is loaded (schema basemap): the world_countries outlines. */
  async _countries(cfg) {
    const b = cfg.basemap || {};
    const table = b.table || 'world_countries';
    const dataset = { type: 'table', source: table.includes('.') ? table : `public.${table}`, connectionName: b.connection || 'carto_dw', geoColumn: 'geom' };
    try {
      const { tiles } = await resolveSource(dataset, { token: b.token || this.token });
      const style = { opacity: 1, filled: true, paint: () => ({ fill: '#f3f1ec', stroke: '#c5cad3', width: 0.6, radius: 1 }) };
      this._addBasemap(new VectorLayer({ tiles, token: b.token || this.token, style, pane: 'basemap' }), 'Countries: Natural Earth (public domain)');
    } catch (e) {
      this.el.classList.add('no-basemap');
    }
  }

  /**
   * Shows exactly these layers (kepler order: first = on top) for these datasets. Calls run one after
   * another: two overlapping calls would each see no canvas layer yet and stack two copies of it.
   */
  setLayers(layers, datasets) {
    const run = () => this._setLayers(layers, datasets);
    this._queue = (this._queue || Promise.resolve()).then(run, run);
    return this._queue;
  }

  async _setLayers(layers, datasets) {
    const byId = new Map(datasets.map(d => [d.id, d]));
    const keep = new Set(layers.map(l => l.id));
    for (const [id, e] of this.entries) if (!keep.has(id)) { e.vector?.remove(); this.entries.delete(id); }
    const jobs = layers.map(async (layer, i) => {
      const dataset = byId.get(layer.config.dataId);
      if (!dataset) return;
      let e = this.entries.get(layer.id);
      const lean = tileParams(layer, dataset, (this.tooltipFields && this.tooltipFields[dataset.id]) || []);
      const dsKey = JSON.stringify([dataset, this.filters[dataset.id] || {}, lean]);
      if (!e || e.dsKey !== dsKey) {
        const opts = { token: this.token, filters: this.filters[dataset.id] };
        // A style naming a column the data lacks (said in the style editor) must not stop the layer from
        // drawing: then the tiles carry every column, as before the lean request.
        const src = await resolveSource(dataset, { ...opts, ...(lean || {}) }).catch(err => {
          if (lean && err instanceof ApiError && err.status === 400) return resolveSource(dataset, opts);
          throw err;
        });
        const old = this.entries.get(layer.id);
        e = { ...(old || {}), layer, dataset, dsKey, template: src.tiles, tilejson: src.tilejson, schema: src.schema };
        this.entries.set(layer.id, e);
      }
      e.layer = layer;
      // Colour classes come from the unfiltered data (all rows, from the server), so filtering never
      // repaints the legend; they are asked for again only when the source or a channel changes.
      const classKey = JSON.stringify([dataset, colorChannels(layer), layer.visualChannels && layer.visualChannels.sizeField, layer.config.textLabel]);
      if (e.classKey !== classKey) {
        e.classes = await layerClasses(layer, dataset, e.schema, { token: this.token, tilejson: e.tilejson });
        e.classKey = classKey;
      }
      const style = compileStyle(layer, e.classes);
      e.style = style;
      if (!e.vector) {
        e.vector = new VectorLayer({ tiles: e.template, token: this.token, style }).addTo(this.map);
        e.vector.getContainer().dataset.layer = layer.id;
        // One notice per layer, not one per tile, when its tiles fail (expired token, dropped table).
        e.vector.once('tilefail', ev => toast(`Some tiles of “${e.layer.config.label || 'a layer'}” could not load: ${ev.error.message}`, 'error'));
        const id = layer.id;
        e.vector.on('load', () => this._gridDomain(this.entries.get(id)));
      } else {
        if (e.vector.options.tiles !== e.template) e.vector.setTiles(e.template);
        e.vector.setStyle(style);
      }
      e.vector.setZIndex(1000 - i);
      const visible = layer.config.isVisible !== false;
      if (visible && !this.map.hasLayer(e.vector)) e.vector.addTo(this.map);
      if (!visible && this.map.hasLayer(e.vector)) e.vector.remove();
    });
    const results = await Promise.allSettled(jobs);
    this.order = layers.map(l => l.id);
    this.renderLegend();
    const failed = results.find(r => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * A dynamic grid's cells change with the zoom, and so does the range of their values: once the tiles
   * on screen have loaded, its classes are equal intervals over the values of those cells (the legend
   * follows), instead of the TileJSON domain of another zoom.
   */
  _gridDomain(e) {
    if (!e || !e.vector || !isDynamic(e.dataset) || !e.classes) return;
    const z = e.vector._tileZoom;
    let changed = false;
    for (const [key, cls] of Object.entries(e.classes)) {
      const f = key === 'color' ? e.layer.visualChannels.colorField : key === 'strokeColor' ? e.layer.visualChannels.strokeColorField : null;
      if (!f || !cls || cls.error || cls.kind !== 'number') continue;
      let min = Infinity, max = -Infinity;
      for (const [k, t] of e.vector._cache) {
        if (!k.startsWith(`${z}/`)) continue;
        for (const feature of t.features) {
          const v = Number(feature.properties[f.name]);
          if (Number.isFinite(v)) { min = Math.min(min, v); max = Math.max(max, v); }
        }
      }
      if (!Number.isFinite(min)) continue;
      const n = cls.breaks.length - 1;
      const breaks = max > min ? equalBreaks(min, max, n) : [min, min + 1];
      if (JSON.stringify(breaks) !== JSON.stringify(cls.breaks)) { e.classes[key] = { ...cls, breaks }; changed = true; }
    }
    if (!changed) return;
    e.style = compileStyle(e.layer, e.classes);
    e.vector.setStyle(e.style);
    this.renderLegend();
  }

  /** Messages about a layer's style that does not fit its data (class count, breaks, label column). */
  styleErrors(layerId) {
    const e = this.entries.get(layerId);
    if (!e || !e.classes) return {};
    const out = {};
    for (const [k, v] of Object.entries(e.classes)) if (v && v.error) out[k] = v.error;
    if (e.classes.labelError) out.label = e.classes.labelError;
    return out;
  }

  /** Filters of one dataset changed: its layers get a new handshake with `filters`. */
  async setFilters(dataId, filters, layers, datasets) {
    if (filters && Object.keys(filters).length) this.filters[dataId] = filters; else delete this.filters[dataId];
    await this.setLayers(layers, datasets);
  }

  /** The colour a layer of this dataset paints `value` with, when it colours by `column`; else null. */
  colorFor(dataId, column, value) {
    for (const id of this.order || []) {
      const e = this.entries.get(id);
      const f = e && e.layer.visualChannels && e.layer.visualChannels.colorField;
      if (e && e.style && e.dataset.id === dataId && f && f.name === column) return e.style.paint({ [column]: value }).fill;
    }
    return null;
  }

  renderLegend() {
    const items = (this.order || []).map(id => this.entries.get(id)).filter(e => e && e.style && e.layer.config.isVisible !== false);
    const z = Math.round(this.map.getZoom());
    clear(this.legendBody, items.length ? items.map(e => legendBlock(e.style.legend, thinnedNote(e.tilejson, z))) : null);
    this.legendEl.hidden = !items.length;
  }

  _pick(latlng) {
    for (const id of this.order || []) {
      const e = this.entries.get(id);
      if (!e || !e.vector || !this.map.hasLayer(e.vector)) continue;
      const f = e.vector.featureAt(latlng);
      if (f) return { entry: e, feature: f };
    }
    return null;
  }

  _hover(ev) {
    const hit = this._pick(ev.latlng);
    this.el.classList.toggle('pointing', !!hit);
    if (!hit || !this.tooltipFields) { this.map.closeTooltip(this.tip); return; }
    const content = this._tooltip(hit);
    if (!content) { this.map.closeTooltip(this.tip); return; }
    this.tip.setLatLng(ev.latlng).setContent(content);
    if (!this.map.hasLayer(this.tip)) this.tip.addTo(this.map);
  }

  /**
   * A click opens a popup with the feature's tooltip fields, or, when none were chosen, its columns
   * (the first POPUP_COLUMNS, as CARTO does): the tiles carry only the columns the style uses, so the
   * row is read from the SQL API (a table model over a few pixels round the click, the layer's filters
   * applied). The popup is never empty: it says when the feature has no columns or could not be read.
   */
  _click(ev) {
    const hit = this._pick(ev.latlng);
    if (!hit) return;
    const chosen = (this.tooltipFields && this.tooltipFields[hit.entry.dataset.id]) || [];
    const content = chosen.length ? this._tooltip(hit) : null;
    if (content) { L.popup({ maxWidth: 320 }).setLatLng(ev.latlng).setContent(content).openOn(this.map); return; }
    const { entry, feature } = hit;
    const title = () => h('strong', entry.layer.config.label || '');
    const own = Object.entries(feature.properties).filter(([k]) => !HIDDEN.has(k));
    if (isDynamic(entry.dataset)) {  // a cell's values are all there is
      L.popup({ maxWidth: 320 }).setLatLng(ev.latlng).setContent(popupBody(title(), own)).openOn(this.map);
      return;
    }
    const popup = L.popup({ maxWidth: 340 }).setLatLng(ev.latlng).setContent(h('div.tip.feature-popup', title(), h('p.muted', 'Loading…'))).openOn(this.map);
    this._row(entry, feature, ev.containerPoint).then(
      row => popup.setContent(popupBody(title(), row ? Object.entries(row) : own)),
      () => popup.setContent(popupBody(title(), own, 'Its other columns could not be read.')));
  }

  /** The clicked feature's row (without its geometry), or null when none is found there. */
  async _row(entry, feature, at) {
    const d = entry.dataset, geo = d.geoColumn || 'geom', r = 6;
    const a = this.map.containerPointToLatLng([at.x - r, at.y + r]), b = this.map.containerPointToLatLng([at.x + r, at.y - r]);
    const res = await model(d, 'table', { limit: 10, offset: 0 }, { token: this.token, filters: this.filters[d.id] || {}, bounds: L.latLngBounds(a, b) });
    const rows = (res.rows || []).map(row => Object.fromEntries(Object.entries(row).filter(([k]) => k !== geo && !HIDDEN.has(k))));
    // Several rows under the pointer: the one whose values match what the tile carries.
    const same = row => Object.entries(feature.properties).every(([k, v]) => !(k in row) || String(row[k]) === String(v));
    return rows.find(same) || rows[0] || null;
  }

  /** tooltipFields: {dataId: [column]} (kepler's interactionConfig.tooltip.config.fieldsToShow). */
  _tooltip({ entry, feature }) {
    const fields = (this.tooltipFields && this.tooltipFields[entry.dataset.id]) || [];
    if (!fields.length) return null;
    const rows = fields.map(f => (typeof f === 'string' ? f : f.name)).filter(n => n in feature.properties);
    if (!rows.length) return null;
    return h('div.tip', h('strong', entry.layer.config.label || ''),
      h('dl', rows.map(n => [h('dt', n), h('dd', fmt(feature.properties[n]))])));
  }

  /** Fits the view to the union of the visible layers' TileJSON bounds. */
  fitLayers() {
    let box = null;
    for (const e of this.entries.values()) {
      const b = e.tilejson && e.tilejson.bounds;
      if (e.layer.config.isVisible === false || !b || b.length !== 4) continue;
      box = box ? [Math.min(box[0], b[0]), Math.min(box[1], b[1]), Math.max(box[2], b[2]), Math.max(box[3], b[3])] : [...b];
    }
    if (box) this.fitBounds(box);
  }

  fitBounds(b) {
    if (b && b.length === 4 && b.every(Number.isFinite)) this.map.fitBounds([[b[1], b[0]], [b[3], b[2]]], { maxZoom: 12, padding: [20, 20] });
  }

  destroy() { this.map.remove(); }
}

/** How many columns a popup shows when no tooltip fields were chosen (CARTO shows the first ones too). */
const POPUP_COLUMNS = 10;
/** Tile bookkeeping, not the user's data. */
const HIDDEN = new Set(['_carto_feature_id']);

function popupBody(title, entries, note) {
  const shown = entries.slice(0, POPUP_COLUMNS);
  const more = entries.length - shown.length;
  return h('div.tip.feature-popup', title,
    shown.length ? h('dl', shown.map(([k, v]) => [h('dt', k), h('dd', v === null || v === undefined ? '—' : fmt(v))])) : h('p.muted', 'This feature has no columns to show.'),
    more > 0 ? h('p.muted', `and ${more} more column${more > 1 ? 's' : ''}`) : null,
    note ? h('p.muted', note) : null);
}

function legendBlock(lg, note) {
  const title = h('div.legend-title', lg.label || 'Layer');
  if (lg.type === 'single') return h('div.legend-layer', h('div.legend-row', h('span.swatch', { style: { background: lg.color } }), title), note);
  return h('div.legend-layer', title, lg.parts.map(part => h('div.legend-part', { dataset: { channel: part.channel || 'size', column: part.column } },
    h('div.legend-sub', `${part.channel ? part.channel + ' · ' : 'Size · '}${part.column}`),
    h('ul', part.items.map(it => part.type === 'size'
      ? h('li.legend-row', h('span.size-dot', { style: { width: `${2 * it.radius}px`, height: `${2 * it.radius}px` } }), it.label)
      : h('li.legend-row', h('span.swatch', { dataset: { color: it.color }, style: { background: it.color } }), it.label))))), note);
}

/** "Thinned" note when the layer's tiles drop features at this zoom (TileJSON fraction_dropped_per_zoom). */
function thinnedNote(tilejson, z) {
  const dropped = tilejson && tilejson.fraction_dropped_per_zoom;
  const f = Array.isArray(dropped) && z < dropped.length ? dropped[Math.max(0, z)] : 0;
  if (!(f > 0)) return null;
  const order = tilejson.thinning && tilejson.thinning.order;
  const how = order && order !== 'uniform' ? `the highest ${order.split(':')[0]} kept` : 'an even sample kept';
  return h('div.legend-sub.legend-thinned', { title: 'Zoom in to see every feature' },
    `Thinned at this zoom: ${f >= 0.995 ? '>99' : Math.max(1, Math.round(f * 100))}% of features hidden (${how})`);
}
