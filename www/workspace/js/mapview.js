// One Leaflet map showing a keplerMapConfig's layers (builder, public viewer, previews): basemap,
// vector layers per dataset with their filters, hover/click tooltips and a legend.
import * as L from '/vendor/leaflet/leaflet.esm.js';
import { request } from './http.js';
import { h, clear, fmt, toast } from './dom.js';
import { VectorLayer, resolveSource, numericStats } from './tilelayer.js';
import { compileStyle } from './style.js';
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

  /** Shows exactly these layers (kepler order: first = on top) for these datasets. */
  async setLayers(layers, datasets) {
    const byId = new Map(datasets.map(d => [d.id, d]));
    const keep = new Set(layers.map(l => l.id));
    for (const [id, e] of this.entries) if (!keep.has(id)) { e.vector?.remove(); this.entries.delete(id); }
    const jobs = layers.map(async (layer, i) => {
      const dataset = byId.get(layer.config.dataId);
      if (!dataset) return;
      let e = this.entries.get(layer.id);
      const dsKey = JSON.stringify([dataset, this.filters[dataset.id] || {}]);
      if (!e || e.dsKey !== dsKey) {
        const src = await resolveSource(dataset, { token: this.token, filters: this.filters[dataset.id] });
        const old = this.entries.get(layer.id);
        // Colour classes come from the unfiltered data, so filtering never repaints the legend.
        const statsKey = JSON.stringify(dataset);
        const keep = old && old.statsKey === statsKey;
        e = { ...(old || {}), layer, dataset, dsKey, statsKey, template: src.tiles, tilejson: src.tilejson, schema: src.schema,
              stats: keep ? old.stats : numericStats(src.tilejson) };
        this.entries.set(layer.id, e);
      }
      e.layer = layer;
      await this._categories(e);
      const style = compileStyle(layer, e.stats);
      e.style = style;
      if (!e.vector) {
        e.vector = new VectorLayer({ tiles: e.template, token: this.token, style }).addTo(this.map);
        e.vector.getContainer().dataset.layer = layer.id;
        // One notice per layer, not one per tile, when its tiles fail (expired token, dropped table).
        e.vector.once('tilefail', ev => toast(`Some tiles of “${e.layer.config.label || 'a layer'}” could not load: ${ev.error.message}`, 'error'));
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

  /** Categories of a string colour column: the top values by count (unfiltered, so colours stay put). */
  async _categories(e) {
    const f = e.layer.visualChannels && e.layer.visualChannels.colorField;
    if (!f || f.type !== 'string' || (e.stats[f.name] && e.stats[f.name].categories)) return;
    try {
      const r = await model(e.dataset, 'category', { column: f.name, operation: 'count', orderBy: 'frequency_desc' }, { token: this.token });
      e.stats[f.name] = { categories: (r.rows || []).slice(0, 10).map(x => x.name) };
    } catch { e.stats[f.name] = { categories: [] }; }
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
    clear(this.legendBody, items.length ? items.map(e => legendBlock(e.style.legend)) : null);
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

  _click(ev) {
    const hit = this._pick(ev.latlng);
    if (!hit) return;
    const content = this._tooltip(hit, true);
    if (content) L.popup({ maxWidth: 320 }).setLatLng(ev.latlng).setContent(content).openOn(this.map);
  }

  /** tooltipFields: {dataId: [column]} (kepler's interactionConfig.tooltip.config.fieldsToShow). */
  _tooltip({ entry, feature }, all = false) {
    let fields = (this.tooltipFields && this.tooltipFields[entry.dataset.id]) || [];
    if (!fields.length && all) fields = Object.keys(feature.properties);
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

function legendBlock(lg) {
  const title = h('div.legend-title', lg.label || 'Layer');
  if (lg.type === 'single') return h('div.legend-layer', h('div.legend-row', h('span.swatch', { style: { background: lg.color } }), title));
  return h('div.legend-layer', title, h('div.legend-sub', lg.column),
    h('ul', lg.items.map(it => h('li.legend-row', h('span.swatch', { style: { background: it.color } }), it.label))));
}
