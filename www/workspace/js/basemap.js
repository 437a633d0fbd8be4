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
    const out = [], streetIds = new Set();
    for (const t of Object.values(this._tiles || {})) {
      const entry = this._cache.get(this._key(this._wrapCoords(t.coords)));
      if (!entry) continue;
      for (const feat of entry.layers.places?.features || []) {
        const [x, y] = feat.geometry[0][0];
        out.push({ name: feat.properties.name, population: +feat.properties.population || 0,
          x: t.coords.x * 256 + x * entry.scale - origin.x, y: t.coords.y * 256 + y * entry.scale - origin.y });
      }
      // A street's name line comes whole in every tile it crosses: taken once, by its id.
      for (const feat of entry.layers.street_names?.features || []) {
        const id = feat.properties.id;
        if (streetIds.has(id)) continue;
        streetIds.add(id);
        const ox = t.coords.x * 256 - origin.x, oy = t.coords.y * 256 - origin.y;
        for (const part of feat.geometry) {
          out.push({ name: String(feat.properties.name), street: true, cls: +feat.properties.class || 6,
            line: part.map(([x, y]) => [ox + x * entry.scale, oy + y * entry.scale]) });
        }
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
   * Street names (main roads from z12, every named street from z13; smaller type below
   * z14): each name once, written glyph by glyph along its street's line (the server merged the street's
   * ways), where the line bends gently, as near the middle of what is on screen as fits; never upside
   * down, never over another label, dropped when it fits nowhere.
   */
  _streets(ctx, streets, boxes, size, zoom) {
    const px = zoom <= 12 ? 8 : zoom === 13 ? 9 : 10;
    // A condensed face where there is one: street names are long and their streets short at z12-13.
    ctx.font = `500 ${px}px "DejaVu Sans Condensed", "Arial Narrow", "Roboto Condensed", system-ui, "DejaVu Sans", sans-serif`;
    ctx.fontStretch = 'condensed';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    const names = new Set(this.streets);
    for (const it of streets) {
      if (names.has(it.name)) continue;
      const glyphs = placeAlong(it.line, [...it.name].map(ch => ({ ch, w: ctx.measureText(ch).width })), px, size, boxes);
      if (!glyphs) continue;
      const own = glyphs.map(g => g.box);
      boxes.push(...own);
      names.add(it.name);
      this.streets.push(it.name);
      this.labelBoxes.push({ name: it.name, kind: 'street', boxes: own });
      for (const g of glyphs) {
        ctx.save();
        ctx.translate(g.x, g.y);
        ctx.rotate(g.a);
        ctx.lineWidth = 2.5; ctx.strokeStyle = this.palette.halo; ctx.strokeText(g.ch, 0, 0);
        ctx.fillStyle = this.palette.street; ctx.fillText(g.ch, 0, 0);
        ctx.restore();
      }
    }
    ctx.textAlign = 'start';
    ctx.fontStretch = 'normal';
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
    const all = this.source.places().filter(p => p.street || (p.x > -50 && p.y > -20 && p.x < size.x + 50 && p.y < size.y + 20));
    const countries = all.filter(p => p.country).sort((a, b) => b.area - a.area || (a.name < b.name ? -1 : 1));
    const places = all.filter(p => !p.country && !p.street).sort((a, b) => b.population - a.population || (a.name < b.name ? -1 : 1));
    const streets = all.filter(p => p.street).map(p => ({ ...p, len: pathLength(p.line) }))
      .sort((a, b) => a.cls - b.cls || b.len - a.len || (a.name < b.name ? -1 : 1));
    // Cities of two million and more come before the country names (as on reference maps, a country name
    // moves aside for London or Paris, not the city for the name), then the countries, then the rest.
    const major = places.filter(p => p.population >= 2e6);
    const candidates = [...major, ...countries, ...places.filter(p => p.population < 2e6)]
      .filter(p => { const k = `${p.country ? 'c' : 'p'}|${p.name}|${p.population}`; if (seen.has(k)) return false; seen.add(k); return true; })
      .slice(0, 600);
    const boxes = [];
    this.placed = [];
    this.labelBoxes = [];
    this.countries = [];
    this.streets = [];
    ctx.textBaseline = 'middle';
    ctx.lineJoin = 'round';
    // Main roads' names (primary, secondary) come after the cities of a million and before the other
    // places, which move aside (a town's name has four spots around its dot, a street's name only its
    // street: at z12 the demo extract's main road lies under the label of Helsinki); other streets last.
    const zoom = map.getZoom(), main = streets.filter(r => r.cls <= 3);
    let mainDone = false;
    for (const p of candidates) {
      if (!mainDone && !p.country && p.population < 1e6) {
        mainDone = true;
        this._streets(ctx, main, boxes, size, zoom);
      }
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
        this.labelBoxes.push({ name: p.name, kind: 'country', boxes: [boxAt(y)] });
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
      // Its dot must not sit on a label placed before it either (then neither dot nor name is drawn).
      const dot = [p.x - 3, p.y - 3, p.x + 3, p.y + 3];
      if (boxes.some(b => b[0] < dot[2] && dot[0] < b[2] && b[1] < dot[3] && dot[1] < b[3])) continue;
      const spot = spots.find(([x, y]) => free([x - 2, y - hgt / 2 - 2, x + w + 2, y + hgt / 2 + 2]));
      if (!spot) continue;
      const [tx, ty] = spot;
      boxes.push([p.x - 3, p.y - 3, p.x + 3, p.y + 3], [tx - 2, ty - hgt / 2 - 2, tx + w + 2, ty + hgt / 2 + 2]);
      this.labelBoxes.push({ name: p.name, kind: 'place', boxes: boxes.slice(-2) });
      this.placed.push(p.name);
      ctx.fillStyle = this.palette.dot;
      ctx.beginPath(); ctx.arc(p.x, p.y, big ? 2.6 : 2, 0, Math.PI * 2); ctx.fill();
      ctx.strokeStyle = this.palette.halo; ctx.lineWidth = 3;
      ctx.strokeText(p.name, tx, ty);
      ctx.fillStyle = this.palette.label;
      ctx.fillText(p.name, tx, ty);
    }
    if (!mainDone) this._streets(ctx, main, boxes, size, zoom);
    this._streets(ctx, streets.filter(r => r.cls > 3), boxes, size, zoom);
    c.dataset.labels = String(this.placed.length);
    c.dataset.countries = this.countries.join('|');
  },
});

export function pathLength(line) {
  let n = 0;
  for (let i = 1; i < line.length; i++) n += Math.hypot(line[i][0] - line[i - 1][0], line[i][1] - line[i - 1][1]);
  return n;
}

/** The point of `line` at distance `d` along it (past an end: along the end segment, extended). */
function pointAt(line, cum, d) {
  let i = 1;
  while (i < line.length - 1 && cum[i] < d) i++;
  const [x0, y0] = line[i - 1], [x1, y1] = line[i];
  const f = (d - cum[i - 1]) / (cum[i] - cum[i - 1] || 1);
  return [x0 + (x1 - x0) * f, y0 + (y1 - y0) * f];
}

/**
 * Glyphs `[{ch, w}]` set along `line` (container pixels): candidates from the middle of the line's on-screen
 * stretch outwards; a glyph's angle is its own chord's, each within 30° of the previous one and the whole
 * name within 60°; read left to right; every glyph box inside the view and clear of `boxes`. Returns
 * [{ch, x, y, a, box}] or null.
 */
export function placeAlong(line, glyphs, px, size, boxes) {
  // A name may overhang its line's ends by half a glyph (its street goes on, drawn or not).
  const width = glyphs.reduce((n, g) => n + g.w, 0), pad = 2, over = px / 2;
  const inside = ([x, y]) => x >= 0 && y >= 0 && x <= size.x && y <= size.y;
  const forward = [line, line.slice().reverse()].map(l => {
    const cum = [0];
    for (let i = 1; i < l.length; i++) cum.push(cum[i - 1] + Math.hypot(l[i][0] - l[i - 1][0], l[i][1] - l[i - 1][1]));
    return { l, cum };
  });
  const total = forward[0].cum[forward[0].cum.length - 1];
  if (total + 2 * over < width + 2 * pad) return null;
  // The stretch of the line on screen (by distance along it): labels go where they can be read.
  let lo = Infinity, hi = -Infinity;
  for (let d = -over; d <= total + over; d += 2) if (inside(pointAt(forward[0].l, forward[0].cum, d))) { lo = Math.min(lo, d); hi = Math.max(hi, d); }
  if (hi - lo < width + 2 * pad) return null;
  const mid = (lo + hi) / 2, step = Math.max(6, width / 3);
  const centres = [mid];
  for (let k = 1; k * step <= (hi - lo) / 2; k++) centres.push(mid - k * step, mid + k * step);
  const clear = box => !boxes.some(b => b[0] < box[2] + 2 && box[0] < b[2] + 2 && b[1] < box[3] + 2 && box[1] < b[3] + 2);
  for (const c of centres) {
    if (c - width / 2 < lo + pad || c + width / 2 > hi - pad) continue;
    // Read left to right: along the line, or against it when the stretch under the name points left.
    const [ax] = pointAt(forward[0].l, forward[0].cum, c - width / 2), [bx] = pointAt(forward[0].l, forward[0].cum, c + width / 2);
    const { l, cum } = forward[bx >= ax ? 0 : 1];
    let d = (bx >= ax ? c : total - c) - width / 2;
    const out = [];
    let ok = true, first = null, prev = null;
    for (const g of glyphs) {
      const [x0, y0] = pointAt(l, cum, d), [x1, y1] = pointAt(l, cum, d + g.w);
      const a = Math.atan2(y1 - y0, x1 - x0);
      const turn = p => { let t = Math.abs(a - p); return t > Math.PI ? 2 * Math.PI - t : t; };
      if ((prev !== null && turn(prev) > Math.PI / 6) || (first !== null && turn(first) > Math.PI / 3) || Math.abs(a) > Math.PI * 0.55) { ok = false; break; }
      if (first === null) first = a;
      prev = a;
      const x = (x0 + x1) / 2, y = (y0 + y1) / 2, r = Math.max(g.w, px) / 2 + 0.5;
      const box = [x - r, y - r, x + r, y + r];
      if (!inside([box[0], box[1]]) || !inside([box[2], box[3]]) || !clear(box)) { ok = false; break; }
      out.push({ ch: g.ch, x, y, a, box });
      d += g.w;
    }
    if (ok) return out;
  }
  return null;
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
