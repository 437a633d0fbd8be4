// Basemaps: Tessera's offline reference basemap (maps-api `…/basemap` vector tiles, drawn here in a
// light or a dark cartographic style, place labels placed by population with collision handling across
// tiles) and XYZ raster templates (the operator's, or one typed into the builder's picker).
// The choice lives in the map document's keplerMapConfig.config.mapStyle, so the public viewer draws
// the same: {styleType: 'tessera-light' | 'tessera-dark' | 'operator' | 'custom', url?, attribution?}.
import * as L from '/vendor/leaflet/leaflet.esm.js';
import { decode } from './mvt.js';
import { request, sameOrigin, getCsrf } from './http.js';
import { h } from './dom.js';

export const STYLES = {
  light: { water: '#c9dbe6', land: '#f6f4ee', coast: '#9fb8c8', river: '#b3cddc', border: '#a89aad', state: '#c4b9c6',
    road: ['#ffffff', '#fbe3a6', '#fdf0c4', '#ffffff', '#ffffff', '#ffffff', '#f4f4f4'], casing: '#d8d4cc',
    label: '#333840', halo: 'rgba(255,255,255,0.92)', dot: '#59606b', country: '#6e6577', street: '#4a4f57' },
  dark: { water: '#1b2733', land: '#2b2d31', coast: '#3d5366', river: '#2a3d50', border: '#7a6f86', state: '#544d5c',
    road: ['#4a4d52', '#6b5b3a', '#5d5443', '#4a4d52', '#45484d', '#414449', '#3b3e42'], casing: '#1e1f22',
    label: '#e3e6ea', halo: 'rgba(20,22,26,0.9)', dot: '#c9ced6', country: '#a79fb1', street: '#b9bec6' },
};

/** Old documents and CARTO's names map onto the offline styles. */
export function styleKind(mapStyle) {
  const t = (mapStyle && mapStyle.styleType) || 'tessera-light';
  if (t === 'tessera-dark' || t === 'dark-matter' || t === 'darkmatter') return 'dark';
  if (t === 'operator' || t === 'custom') return t;
  return 'light';
}

/** Why a URL is not a usable XYZ raster template, or null when it is one. */
export function templateProblem(url) {
  const u = String(url || '').trim();
  if (!u) return 'Enter a tile URL template.';
  let parsed;
  try { parsed = new URL(u.replace(/\{[a-z]\}/g, '0')); } catch { return 'Not a URL: an XYZ template looks like https://tile.example.org/{z}/{x}/{y}.png'; }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return 'Only http(s) tile URLs can be drawn.';
  const missing = ['{z}', '{x}', '{y}'].filter(p => !u.includes(p));
  if (missing.length) return `Not an XYZ template: the URL needs ${missing.join(', ')} (e.g. https://tile.example.org/{z}/{x}/{y}.png).`;
  return null;
}

/** The offline basemap's vector tiles: every layer of one tile painted on one canvas. */
export const BasemapLayer = L.GridLayer.extend({
  options: { tileSize: 256, updateWhenZooming: false, keepBuffer: 1, pane: 'basemap' },

  initialize(opts) {
    L.setOptions(this, opts);
    this._cache = new Map();
    this.on('tileunload', e => this._cache.delete(this._key(this._wrapCoords(e.coords))));
  },

  _key(c) { return `${c.z}/${c.x}/${c.y}`; },

  setPalette(palette) {
    this.options.palette = palette;
    for (const t of Object.values(this._tiles || {})) {
      const entry = this._cache.get(this._key(this._wrapCoords(t.coords)));
      if (entry) this._paint(t.el, entry);
    }
  },

  createTile(coords, done) {
    const canvas = document.createElement('canvas');
    const dpr = window.devicePixelRatio || 1;
    canvas.width = canvas.height = 256 * dpr;
    const key = this._key(coords);
    canvas.dataset.tile = key;
    const url = this.options.tiles.replace('{z}', coords.z).replace('{x}', coords.x).replace('{y}', coords.y);
    const token = this.options.token;
    const headers = token ? { Authorization: `Bearer ${token}` } : (getCsrf() ? { 'X-CSRF-Token': getCsrf() } : {});
    fetch(url, { headers, credentials: token ? 'omit' : 'same-origin' })
      .then(async res => {
        if (res.status === 204) return {};
        if (!res.ok) throw new Error(`basemap tile ${key}: HTTP ${res.status}`);
        return decode(new Uint8Array(await res.arrayBuffer()));
      })
      .then(layers => {
        const entry = { layers, scale: 256 / ((Object.values(layers)[0] || {}).extent || 4096) };
        entry.streets = coords.z >= 13 ? streetRuns(layers.roads?.features || [], entry.scale) : [];
        this._cache.set(key, entry);
        this._paint(canvas, entry);
        canvas.dataset.layers = Object.keys(layers).join(',');
        this.fire('tiledata', { coords });
        done(null, canvas);
      })
      .catch(err => { this._paint(canvas, { layers: {}, scale: 1 }); done(err, canvas); });
    return canvas;
  },

  _paint(canvas, { layers, scale: s }) {
    const p = this.options.palette;
    const ctx = canvas.getContext('2d');
    const dpr = canvas.width / 256;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = p.water;
    ctx.fillRect(0, 0, 256, 256);
    ctx.lineJoin = 'round';
    ctx.lineCap = 'round';
    const path = f => {
      ctx.beginPath();
      for (const part of f.geometry) part.forEach(([x, y], i) => (i ? ctx.lineTo(x * s, y * s) : ctx.moveTo(x * s, y * s)));
    };
    // GSHHG levels: land 1, lake 2, island in a lake 3, pond 4; painted in that order. One path per
    // level, filled once: the pieces ST_Subdivide cut a polygon into then show no anti-aliased seams.
    const areas = [...(layers.land?.features || []), ...(layers.water?.features || [])];
    for (const level of [1, 2, 3, 4]) {
      const fs = areas.filter(f => (f.properties.level || 1) === level);
      if (!fs.length) continue;
      ctx.beginPath();
      for (const f of fs) for (const part of f.geometry) part.forEach(([x, y], i) => (i ? ctx.lineTo(x * s, y * s) : ctx.moveTo(x * s, y * s)));
      ctx.fillStyle = level % 2 ? p.land : p.water;
      ctx.fill('nonzero');
    }
    const z = this._tileZoom ?? 0;
    for (const f of layers.rivers?.features || []) {
      path(f); ctx.strokeStyle = p.river; ctx.lineWidth = f.properties.level <= 2 ? Math.min(2.2, 0.6 + z * 0.15) : 0.7; ctx.stroke();
    }
    for (const f of layers.coast?.features || []) { path(f); ctx.strokeStyle = p.coast; ctx.lineWidth = z < 4 ? 0.5 : 0.8; ctx.stroke(); }
    const roads = (layers.roads?.features || []).slice().sort((a, b) => b.properties.class - a.properties.class);
    const roadWidth = c => [3, 3, 2.6, 2.2, 1.8, 1.2, 0.8][c] * Math.min(4, 2 ** ((z - 12) * 0.6));
    for (const f of roads) { path(f); ctx.strokeStyle = p.casing; ctx.lineWidth = roadWidth(f.properties.class) + 1.2; ctx.stroke(); }
    for (const f of roads) { path(f); ctx.strokeStyle = p.road[f.properties.class] || p.road[6]; ctx.lineWidth = roadWidth(f.properties.class); ctx.stroke(); }
    for (const f of layers.boundaries?.features || []) {
      path(f);
      const national = f.properties.level === 1;
      ctx.setLineDash(national ? [] : [3, 2]);
      ctx.strokeStyle = national ? p.border : p.state;
      ctx.lineWidth = national ? (z < 3 ? 0.6 : 1.1) : 0.6;
      ctx.stroke();
    }
    ctx.setLineDash([]);
  },

  /** Label candidates (places, countries, street runs) of the tiles at the current zoom, in container pixels. */
  places() {
    const map = this._map;
    if (!map || this._tileZoom !== map.getZoom()) return [];
    const origin = map.getPixelBounds().min;
    const out = [];
    for (const t of Object.values(this._tiles || {})) {
      const entry = this._cache.get(this._key(this._wrapCoords(t.coords)));
      if (!entry) continue;
      for (const feat of entry.layers.places?.features || []) {
        const [x, y] = feat.geometry[0][0];
        out.push({ name: feat.properties.name, population: +feat.properties.population || 0,
          x: t.coords.x * 256 + x * entry.scale - origin.x, y: t.coords.y * 256 + y * entry.scale - origin.y });
      }
      for (const r of entry.streets || []) {
        out.push({ ...r, street: true, x: t.coords.x * 256 + r.x - origin.x, y: t.coords.y * 256 + r.y - origin.y });
      }
      for (const feat of entry.layers.countries?.features || []) {
        const [x, y] = feat.geometry[0][0];
        out.push({ name: feat.properties.name, country: true, area: +feat.properties.area_km2 || 0,
          x: t.coords.x * 256 + x * entry.scale - origin.x, y: t.coords.y * 256 + y * entry.scale - origin.y });
      }
    }
    return out;
  },
});

/**
 * Labels over the whole map, never overlapping one another: cities of two million and more, country names
 * (z1-z5, the largest first, centred, spaced capitals), then the other places (most populous first), then
 * street names (z13+).
 */
export const LabelLayer = L.Layer.extend({
  initialize(source, palette) { this.source = source; this.palette = palette; this.placed = []; },

  onAdd(map) {
    this.canvas = L.DomUtil.create('canvas', 'basemap-labels');
    this.canvas.style.pointerEvents = 'none';
    map.getPane('basemapLabels').appendChild(this.canvas);
    this._schedule = () => { if (!this._frame) this._frame = requestAnimationFrame(() => { this._frame = null; this.redraw(); }); };
    map.on('moveend zoomend resize', this._schedule);
    map.on('zoomstart', this._hide, this);
    this.source.on('tiledata load', this._schedule);
    this._schedule();
  },

  onRemove(map) {
    map.off('moveend zoomend resize', this._schedule);
    map.off('zoomstart', this._hide, this);
    this.source.off('tiledata load', this._schedule);
    this.canvas.remove();
  },

  _hide() { if (this.canvas) this.canvas.style.visibility = 'hidden'; },

  setPalette(palette) { this.palette = palette; this.redraw(); },

  /**
   * Street names (z13+), after the places: each name once, along the chord of one of its street's
   * nearly straight runs that is longer than the name, major streets and long runs first, never
   * overlapping another label.
   */
  _streets(ctx, runs, boxes, size) {
    this.streets = [];
    const names = new Set();
    ctx.font = '500 10px system-ui, "DejaVu Sans", sans-serif';
    ctx.textAlign = 'center';
    for (const it of runs) {
      if (names.has(it.name)) continue;
      const w = ctx.measureText(it.name).width;
      if (w + 8 > it.len) continue;
      let a = it.a;
      if (a > Math.PI / 2) a -= Math.PI; else if (a < -Math.PI / 2) a += Math.PI;  // never upside down
      const hw = (Math.abs(Math.cos(a)) * w + Math.abs(Math.sin(a)) * 12) / 2, hh = (Math.abs(Math.sin(a)) * w + Math.abs(Math.cos(a)) * 12) / 2;
      const box = [it.x - hw, it.y - hh, it.x + hw, it.y + hh];
      if (box[0] < 0 || box[1] < 0 || box[2] > size.x || box[3] > size.y) continue;
      if (boxes.some(b => b[0] < box[2] && box[0] < b[2] && b[1] < box[3] && box[1] < b[3])) continue;
      boxes.push(box);
      names.add(it.name);
      this.streets.push(it.name);
      ctx.save();
      ctx.translate(it.x, it.y);
      ctx.rotate(a);
      ctx.lineWidth = 2.5; ctx.strokeStyle = this.palette.halo; ctx.strokeText(it.name, 0, 0);
      ctx.fillStyle = this.palette.street; ctx.fillText(it.name, 0, 0);
      ctx.restore();
    }
    ctx.textAlign = 'start';
  },

  redraw() {
    const map = this._map;
    if (!map) return;
    const size = map.getSize(), dpr = window.devicePixelRatio || 1;
    const c = this.canvas;
    c.width = size.x * dpr; c.height = size.y * dpr;
    c.style.width = `${size.x}px`; c.style.height = `${size.y}px`;
    L.DomUtil.setPosition(c, map.containerPointToLayerPoint([0, 0]));
    c.style.visibility = '';
    const ctx = c.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const seen = new Set();
    const all = this.source.places().filter(p => p.x > -50 && p.y > -20 && p.x < size.x + 50 && p.y < size.y + 20);
    const countries = all.filter(p => p.country).sort((a, b) => b.area - a.area || (a.name < b.name ? -1 : 1));
    const places = all.filter(p => !p.country && !p.street).sort((a, b) => b.population - a.population || (a.name < b.name ? -1 : 1));
    const streets = all.filter(p => p.street).sort((a, b) => a.cls - b.cls || b.len - a.len);
    // Cities of two million and more come before the country names (as on reference maps, a country name
    // moves aside for London or Paris, not the city for the name), then the countries, then the rest.
    const major = places.filter(p => p.population >= 2e6);
    const candidates = [...major, ...countries, ...places.filter(p => p.population < 2e6)]
      .filter(p => { const k = `${p.country ? 'c' : 'p'}|${p.name}|${p.population}`; if (seen.has(k)) return false; seen.add(k); return true; })
      .slice(0, 600);
    const boxes = [];
    this.placed = [];
    this.countries = [];
    ctx.textBaseline = 'middle';
    ctx.lineJoin = 'round';
    for (const p of candidates) {
      if (p.country) {
        const text = p.name.toUpperCase(), big = p.area >= 1e6;
        ctx.font = `600 ${big ? 12 : 10}px system-ui, "DejaVu Sans", sans-serif`;
        ctx.letterSpacing = '1.5px';
        const w = ctx.measureText(text).width, hgt = big ? 14 : 12;
        // On its point, or a line above or below it when a major city already stands there.
        const boxAt = y => [p.x - w / 2 - 2, y - hgt / 2 - 2, p.x + w / 2 + 2, y + hgt / 2 + 2];
        const y = [p.y, p.y - hgt - 4, p.y + hgt + 4].find(y => {
          const box = boxAt(y);
          return !(box[0] < 0 || box[1] < 0 || box[2] > size.x || box[3] > size.y || boxes.some(b => b[0] < box[2] + 6 && box[0] < b[2] + 6 && b[1] < box[3] + 2 && box[1] < b[3] + 2));
        });
        if (y === undefined) {
          ctx.letterSpacing = '0px';
          continue;
        }
        boxes.push(boxAt(y));
        this.countries.push(p.name);
        ctx.textAlign = 'center';
        ctx.strokeStyle = this.palette.halo; ctx.lineWidth = 3;
        ctx.strokeText(text, p.x, y);
        ctx.fillStyle = this.palette.country;
        ctx.fillText(text, p.x, y);
        ctx.textAlign = 'start';
        ctx.letterSpacing = '0px';
        continue;
      }
      const big = p.population >= 5e5, mid = p.population >= 1e5;
      ctx.font = `${big ? 600 : 400} ${big ? 13 : mid ? 12 : 11}px system-ui, "DejaVu Sans", sans-serif`;
      const w = ctx.measureText(p.name).width, hgt = big ? 14 : 12;
      // Right of the dot first, then left, above, below: a big city whose usual spot is taken by a
      // country name or a neighbour still gets its label instead of yielding to a smaller town.
      const spots = [[p.x + 6, p.y], [p.x - 6 - w, p.y], [p.x - w / 2, p.y - hgt], [p.x - w / 2, p.y + hgt]];
      const free = box => box[0] >= 0 && box[1] >= 0 && box[2] <= size.x && box[3] <= size.y
        && !boxes.some(b => b[0] < box[2] + 6 && box[0] < b[2] + 6 && b[1] < box[3] + 2 && box[1] < b[3] + 2);
      const spot = spots.find(([x, y]) => free([x - 2, y - hgt / 2 - 2, x + w + 2, y + hgt / 2 + 2]));
      if (!spot) continue;
      const [tx, ty] = spot;
      boxes.push([p.x - 3, p.y - 3, p.x + 3, p.y + 3], [tx - 2, ty - hgt / 2 - 2, tx + w + 2, ty + hgt / 2 + 2]);
      this.placed.push(p.name);
      ctx.fillStyle = this.palette.dot;
      ctx.beginPath(); ctx.arc(p.x, p.y, big ? 2.6 : 2, 0, Math.PI * 2); ctx.fill();
      ctx.strokeStyle = this.palette.halo; ctx.lineWidth = 3;
      ctx.strokeText(p.name, tx, ty);
      ctx.fillStyle = this.palette.label;
      ctx.fillText(p.name, tx, ty);
    }
    this._streets(ctx, streets, boxes, size);
    c.dataset.labels = String(this.placed.length);
    c.dataset.countries = this.countries.join('|');
  },
});

/**
 * A tile's named streets as label candidates in tile pixels: OpenStreetMap cuts a street into a way
 * per block, so the ways of one name are chained end to end first (they share their end nodes); then
 * each nearly straight run (turns within 25° of the run's first direction) is a candidate
 * {name, cls, len, x, y, a}: its length, the middle and the angle of its chord.
 */
export function streetRuns(roads, s) {
  const byName = new Map();
  for (const f of roads) {
    if (!f.properties.name) continue;
    const k = String(f.properties.name);
    if (!byName.has(k)) byName.set(k, { cls: f.properties.class, parts: [] });
    const g = byName.get(k);
    g.cls = Math.min(g.cls, f.properties.class);
    g.parts.push(...f.geometry.map(part => part.slice()));
  }
  const out = [];
  for (const [name, g] of byName) {
    for (const part of chainParts(g.parts)) {
      let start = 0, len = 0, dir = null;
      for (let i = 1; i <= part.length; i++) {
        const a = i < part.length ? Math.atan2(part[i][1] - part[i - 1][1], part[i][0] - part[i - 1][0]) : null;
        let turn = a === null || dir === null ? 0 : Math.abs(a - dir);
        if (turn > Math.PI) turn = 2 * Math.PI - turn;
        if (a === null || turn > 0.44) {
          const [x0, y0] = part[start], [x1, y1] = part[i - 1];
          if (len > 0) out.push({ name, cls: g.cls, len, x: (x0 + x1) / 2 * s, y: (y0 + y1) / 2 * s, a: Math.atan2(y1 - y0, x1 - x0) });
          start = i - 1; len = 0; dir = a;
        }
        if (a === null) break;
        if (dir === null) dir = a;
        len += Math.hypot(part[i][0] - part[i - 1][0], part[i][1] - part[i - 1][1]) * s;
      }
    }
  }
  return out;
}

/** Lines that share end points joined into longer lines (each input part used once). */
export function chainParts(parts) {
  const same = (a, b) => a[0] === b[0] && a[1] === b[1];
  const left = parts.filter(p => p.length >= 2);
  const out = [];
  while (left.length) {
    let line = left.pop();
    for (let grown = true; grown;) {
      grown = false;
      for (let i = 0; i < left.length; i++) {
        const p = left[i], head = line[0], tail = line[line.length - 1];
        if (same(tail, p[0])) line = line.concat(p.slice(1));
        else if (same(tail, p[p.length - 1])) line = line.concat(p.slice(0, -1).reverse());
        else if (same(head, p[p.length - 1])) line = p.slice(0, -1).concat(line);
        else if (same(head, p[0])) line = p.slice(1).reverse().concat(line);
        else continue;
        left.splice(i, 1);
        grown = true;
        break;
      }
    }
    out.push(line);
  }
  return out;
}

/** The offline basemap's TileJSON (maps-api), for this token or the session. */
export async function offlineTileJSON(connection, token) {
  const t = await request('GET', `/api/v3/maps/${encodeURIComponent(connection)}/basemap`, { token });
  return { ...t, tiles: [sameOrigin(t.tiles[0])] };
}

/**
 * The builder's picker, a control on the map: offline light, offline dark, the operator's XYZ
 * basemaps and a custom XYZ template. `onChange(mapStyle)` saves the choice; problems are shown in
 * the control (and the map keeps drawing).
 */
export function basemapPicker(view, mapStyle, onChange) {
  const select = h('select#basemap-select', { 'aria-label': 'Basemap' });
  const urlInput = h('input#basemap-url', { type: 'url', placeholder: 'https://…/{z}/{x}/{y}.png', 'aria-label': 'XYZ tile URL template' });
  const apply = h('button.secondary#basemap-apply', { type: 'button' }, 'Use');
  const custom = h('div.basemap-custom', { hidden: true }, urlInput, apply);
  const message = h('p.basemap-error#basemap-error', { role: 'alert', hidden: true });
  const box = h('div.basemap-picker.leaflet-bar', h('label', { for: 'basemap-select' }, 'Basemap'), select, custom, message);
  const fill = choices => {
    select.replaceChildren(...choices.map(c => h('option', { value: c.id }, c.label)), h('option', { value: 'custom' }, 'Custom XYZ URL…'));
    select.value = mapStyle.styleType === 'custom' ? 'custom' : (choices.find(c => c.id === mapStyle.styleType) || choices[0]).id;
    custom.hidden = select.value !== 'custom';
    if (mapStyle.styleType === 'custom') urlInput.value = mapStyle.url || '';
  };
  view.basemapChoices().then(fill);
  view.onBasemapProblem = text => { message.textContent = text || ''; message.hidden = !text; };
  select.addEventListener('change', () => {
    custom.hidden = select.value !== 'custom';
    view.onBasemapProblem(null);
    if (select.value === 'custom') { urlInput.focus(); return; }
    Object.assign(mapStyle, { styleType: select.value }); delete mapStyle.url;
    view.setBasemap(mapStyle); onChange(mapStyle);
  });
  const useCustom = () => {
    const problem = templateProblem(urlInput.value);
    if (problem) { view.onBasemapProblem(problem); return; }
    Object.assign(mapStyle, { styleType: 'custom', url: urlInput.value.trim() });
    view.onBasemapProblem(null);
    view.setBasemap(mapStyle); onChange(mapStyle);
  };
  apply.addEventListener('click', useCustom);
  urlInput.addEventListener('keydown', e => { if (e.key === 'Enter') useCustom(); });
  const Picker = L.Control.extend({ onAdd: () => box });
  new Picker({ position: 'topright' }).addTo(view.map);
  L.DomEvent.disableClickPropagation(box);
  L.DomEvent.disableScrollPropagation(box);
  return box;
}
