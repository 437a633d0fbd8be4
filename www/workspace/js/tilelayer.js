// Tessera's vector tiles on a Leaflet map: the Maps API handshake → TileJSON → MVT tiles fetched
// with the Bearer token (or the session cookie), decoded by mvt.js and drawn on one canvas per tile.
// Decoded features are kept per tile so a style change repaints without refetching and the
// pointer can be hit-tested for tooltips.
import * as L from '/vendor/leaflet/leaflet.esm.js';
import { decode } from './mvt.js';
import { quadbinFromZXY, cellFeatures } from './quadbin.js';
import { cover, cellToBoundary, tileResolution } from './h3.js';
import { request, sameOrigin, getCsrf } from './http.js';

/**
 * The handshake for a dataset {type: table|query, source, connectionName, geoColumn, queryParameters}
 * → {tiles: template (same origin), tilejson}. filters: the contract's filter JSON (§5.3); columns: the
 * only properties the tiles carry; thinningOrder: `<column>[:asc|:desc]`, what dense low zooms keep first.
 */
export async function resolveSource(dataset, { token, filters, columns, thinningOrder } = {}) {
  const params = { spatialDataColumn: dataset.geoColumn || 'geom', spatialDataType: 'geo', v: '3.4', client: 'tessera-www' };
  // A dynamically aggregated point source (the builder's grid and hexbin layers): the server groups the
  // points into quadbin or H3 cells per tile with aggregationExp at aggregationResLevel levels below the tile.
  if (dataset.spatialDataType === 'quadbin' || dataset.spatialDataType === 'h3') {
    Object.assign(params, { spatialDataType: dataset.spatialDataType, aggregationExp: dataset.aggregationExp, aggregationResLevel: dataset.aggregationResLevel ?? undefined });
  }
  if (dataset.type === 'query') {
    params.q = dataset.source;
    if (dataset.queryParameters) params.queryParameters = dataset.queryParameters;
  } else params.name = dataset.source;
  if (filters && Object.keys(filters).length) params.filters = filters;
  if (columns && columns.length) params.columns = columns.join(',');
  if (thinningOrder) params.thinningOrder = thinningOrder;
  const conn = encodeURIComponent(dataset.connectionName);
  const hs = await request('GET', `/api/v3/maps/${conn}/${dataset.type === 'query' ? 'query' : 'table'}`, { params, token });
  const tilejson = await request('GET', sameOrigin(hs.tilejson.url[0]), { token });
  return { tiles: sameOrigin(tilejson.tiles[0]), tilejson, nrows: hs.nrows, schema: hs.schema };
}

/**
 * What a layer's tiles must carry, and what a dense point layer keeps first at low zooms:
 * {columns: the style's, labels' and tooltips' columns (never empty: the geometry column alone gives
 * properties-free tiles), thinningOrder: the numeric column the points are sized (else coloured) by,
 * descending, so the biggest stay}. Null for the dynamic grid, whose cells have no source columns.
 */
export function tileParams(layer, dataset, tooltipFields = []) {
  if (dataset.spatialDataType === 'quadbin' || dataset.spatialDataType === 'h3') return null;
  const vc = layer.visualChannels || {};
  const fields = [vc.sizeField, vc.colorField, vc.strokeColorField].filter(f => f && f.name);
  const names = new Set([...fields.map(f => f.name), ...(layer.config.textLabel || []).map(t => t.field && t.field.name),
    ...tooltipFields.map(f => (typeof f === 'string' ? f : f && f.name))].filter(Boolean));
  const isNumber = f => f && f.name && !['string', 'boolean', 'timestamp', 'date'].includes(f.type);
  const order = [vc.sizeField, vc.colorScale !== 'ordinal' && vc.colorField].find(isNumber);
  return { columns: names.size ? [...names].sort() : [dataset.geoColumn || 'geom'], thinningOrder: order ? `${order.name}:desc` : undefined };
}

export const VectorLayer = L.GridLayer.extend({
  options: { tileSize: 256, updateWhenZooming: false, keepBuffer: 1 },

  initialize(opts) {
    L.setOptions(this, opts);
    this._cache = new Map();       // tile key → {features, scale}
    this._inflight = new Map();    // tile key → AbortController
    this._h3 = new Map();          // H3 tile (cell id) → promise of its cells, shared by the map tiles it overlaps
    this.on('tileunload', e => {
      const k = this._key(e.coords);
      this._inflight.get(k)?.abort();
      this._inflight.delete(k);
      this._cache.delete(k);
    });
  },

  _key(c) { return `${c.z}/${c.x}/${c.y}`; },

  /** New tile template (e.g. after a filter changed): refetch everything. */
  setTiles(template) {
    this.options.tiles = template;
    this._cache.clear();
    this._h3.clear();
    this.redraw();
    return this;
  },

  /** New style: repaint the tiles already loaded. */
  setStyle(style) {
    this.options.style = style;
    for (const t of Object.values(this._tiles || {})) {
      const entry = this._cache.get(this._key(t.coords));
      if (entry) this._paint(t.el, entry);
    }
    return this;
  },

  createTile(coords, done) {
    const canvas = document.createElement('canvas');
    const size = this.getTileSize();
    const dpr = window.devicePixelRatio || 1;
    canvas.width = size.x * dpr;
    canvas.height = size.y * dpr;
    canvas.dataset.tile = this._key(coords);
    const key = this._key(coords);
    const ctl = new AbortController();
    this._inflight.set(key, ctl);
    const cells = this.options.tiles.includes('{i}');
    const h3 = /[?&]spatialIndex=h3\b/.test(this.options.tiles);
    const url = cells ? this.options.tiles.replace('{i}', quadbinFromZXY(coords.z, coords.x, coords.y))
      : this.options.tiles.replace('{z}', coords.z).replace('{x}', coords.x).replace('{y}', coords.y);
    const headers = this.options.token ? { Authorization: `Bearer ${this.options.token}` } : (getCsrf() ? { 'X-CSRF-Token': getCsrf() } : {});
    const get = (u, signal) => fetch(u, { headers, signal, credentials: this.options.token ? 'omit' : 'same-origin' });
    (h3 ? this._h3Cells(coords, get) : get(url, ctl.signal)
      .then(async res => {
        if (res.status === 204) return null;
        if (!res.ok) throw new Error(`tile ${key}: HTTP ${res.status}`);
        return cells ? { cells: await res.json() } : new Uint8Array(await res.arrayBuffer());
      }))
      .then(bytes => {
        // A request its tile outlived (unloaded, or replaced under the same key after a filter change) must
        // not cache or paint old data, nor mark the replacement loaded: Leaflet finds tiles by key.
        if (ctl.signal.aborted) return;
        let entry;
        if (bytes && bytes.hexagons) entry = { features: bytes.hexagons, scale: size.x / 4096 };
        else if (bytes && bytes.cells) entry = { features: cellFeatures(bytes.cells, coords.z, coords.x, coords.y), scale: size.x / 4096 };
        else {
          const layers = bytes && bytes.length ? decode(bytes) : {};
          const first = Object.values(layers)[0];
          entry = { features: first ? first.features : [], scale: size.x / (first ? first.extent : 4096) };
        }
        this._cache.set(key, entry);
        this._paint(canvas, entry);
        if (this.options.style.render === 'heatmap') this._repaintAround(coords);
        canvas.dataset.features = String(entry.features.length);
        this.fire('tiledata', { coords, count: entry.features.length });
        done(null, canvas);
      })
      .catch(err => {
        if (err.name === 'AbortError' || ctl.signal.aborted) return;
        this.fire('tilefail', { coords, error: err });
        done(err, canvas);
      })
      .finally(() => { if (this._inflight.get(key) === ctl) this._inflight.delete(key); });
    return canvas;
  },

  /**
   * An H3 source's cells for one map tile: the H3 tiles (cells at the zoom's tile resolution) that may
   * hold cells over it, each fetched once for all the map tiles it overlaps, their cells drawn as
   * hexagons in this tile's 4096-unit space (a cell over a tile border is drawn in both tiles: no seams).
   */
  _h3Cells(coords, get) {
    const n = 2 ** coords.z;
    const lon = x => x / n * 360 - 180;
    const lat = y => Math.atan(Math.sinh(Math.PI * (1 - 2 * y / n))) * 180 / Math.PI;
    const box = [lon(coords.x), lat(coords.y + 1), lon(coords.x + 1), lat(coords.y)];
    const res = tileResolution(coords.z);
    if (this._h3.size > 2000) this._h3.clear();
    const loads = cover(box, res).map(cell => {
      const id = cell.toString(16);
      if (!this._h3.has(id)) {
        this._h3.set(id, get(this.options.tiles.replace('{i}', id)).then(async r => {
          if (r.status === 204) return [];
          if (!r.ok) throw new Error(`H3 tile ${id}: HTTP ${r.status}`);
          return r.json();
        }).catch(err => { this._h3.delete(id); throw err; }));
      }
      return this._h3.get(id);
    });
    const mid = (box[0] + box[2]) / 2;
    const toTile = ([x, y]) => {
      while (x - mid > 180) x -= 360;
      while (x - mid < -180) x += 360;
      const s = Math.sin(Math.max(-85.0511, Math.min(85.0511, y)) * Math.PI / 180);
      return [((x + 180) / 360 * n - coords.x) * 4096, ((0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * n - coords.y) * 4096];
    };
    return Promise.all(loads).then(lists => {
      const hexagons = [];
      for (const c of lists.flat()) {
        const ring = cellToBoundary(c.id).map(toTile);
        const xs = ring.map(p => p[0]), ys = ring.map(p => p[1]);
        if (Math.max(...xs) < 0 || Math.min(...xs) > 4096 || Math.max(...ys) < 0 || Math.min(...ys) > 4096) continue;
        hexagons.push({ type: 3, properties: { ...(c.properties || {}), h3: c.id }, geometry: [[...ring, ring[0]]] });
      }
      return { hexagons };
    });
  },

  _paint(canvas, entry) {
    const style = this.options.style;
    const ctx = canvas.getContext('2d');
    const dpr = canvas.width / this.getTileSize().x;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.globalAlpha = style.opacity;
    ctx.lineJoin = 'round';
    ctx.lineCap = 'round';
    const s = entry.scale;
    if (style.render === 'heatmap') return this._heat(canvas, ctx, entry, dpr);
    if (style.render === 'cluster') return this._clusters(ctx, entry);
    for (const f of entry.features) {
      const p = style.paint(f.properties);
      if (f.type === 1) {
        for (const part of f.geometry) for (const [x, y] of part) {
          ctx.beginPath();
          ctx.arc(x * s, y * s, p.radius, 0, Math.PI * 2);
          ctx.fillStyle = p.fill;
          ctx.fill();
          if (p.stroke && p.width > 0) { ctx.lineWidth = p.width; ctx.strokeStyle = p.stroke; ctx.stroke(); }
        }
      } else {
        ctx.beginPath();
        for (const part of f.geometry) {
          part.forEach(([x, y], i) => (i ? ctx.lineTo(x * s, y * s) : ctx.moveTo(x * s, y * s)));
        }
        if (f.type === 3) {
          if (style.filled) { ctx.fillStyle = p.fill; ctx.fill('evenodd'); }
          if (p.stroke && p.width > 0) { ctx.lineWidth = p.width; ctx.strokeStyle = p.stroke; ctx.stroke(); }
        } else {
          ctx.lineWidth = Math.max(1, p.width * 1.5);
          ctx.strokeStyle = p.fill;
          ctx.stroke();
        }
      }
    }
    if (style.label) this._labels(ctx, entry, style.label);
  },

  /**
   * Labels from a column, placed right of points (centre of polygons and lines), largest symbols
   * first; one that would overlap a placed label or cross the tile's edge (where the next tile could
   * not see it) is left out, so labels never collide or get cut.
   */
  _labels(ctx, entry, label) {
    const s = entry.scale, size = this.getTileSize().x;
    ctx.globalAlpha = 1;
    ctx.font = `600 ${label.size}px system-ui, sans-serif`;
    ctx.textBaseline = 'middle';
    ctx.lineWidth = 3;
    ctx.strokeStyle = label.halo;
    ctx.fillStyle = label.color;
    const placed = [];
    const items = [];
    for (const f of entry.features) {
      const text = f.properties[label.column];
      if (text === null || text === undefined || text === '') continue;
      const pts = f.geometry.flat();
      if (!pts.length) continue;
      let x, y;
      if (f.type === 1) [x, y] = pts[0];
      else {
        const xs = pts.map(p => p[0]), ys = pts.map(p => p[1]);
        x = (Math.min(...xs) + Math.max(...xs)) / 2; y = (Math.min(...ys) + Math.max(...ys)) / 2;
      }
      const r = f.type === 1 ? this.options.style.paint(f.properties).radius : 0;
      items.push({ text: String(text), x: x * s, y: y * s, r });
    }
    items.sort((a, b) => b.r - a.r);
    for (const it of items) {
      const w = ctx.measureText(it.text).width, hgt = label.size + 2;
      const left = it.r ? it.x + it.r + 3 : it.x - w / 2;
      const box = [left - 2, it.y - hgt / 2, left + w + 2, it.y + hgt / 2];
      if (box[0] < 0 || box[1] < 0 || box[2] > size || box[3] > size) continue;
      if (placed.some(b => b[0] < box[2] && box[0] < b[2] && b[1] < box[3] && box[1] < b[3])) continue;
      placed.push(box);
      ctx.strokeText(it.text, left, it.y);
      ctx.fillText(it.text, left, it.y);
    }
  },

  /**
   * A smooth heat surface from grid cells: each cell adds a soft disc (three cells or 40 px wide) weighted by its
   * value (as a fraction of the classes' top value) to an intensity buffer; each pixel's intensity is then
   * painted with the legend's ramp, sparse to dense, fading out where the density is low.
   */
  _heat(canvas, ctx, entry, dpr) {
    const style = this.options.style;
    const top = style.top > 0 ? style.top : Math.max(1, ...entry.features.map(f => style.value(f.properties) || 0));
    const buf = document.createElement('canvas');
    buf.width = canvas.width; buf.height = canvas.height;
    const b = buf.getContext('2d');
    b.setTransform(dpr, 0, 0, dpr, 0, 0);
    b.globalCompositeOperation = 'lighter';
    // The cells of the neighbouring tiles too (their kernels reach over the edge): no seams at tile borders.
    const [tz, tx, ty] = canvas.dataset.tile.split('/').map(Number), size = this.getTileSize().x;
    const around = [];
    for (let dx = -1; dx <= 1; dx++) for (let dy = -1; dy <= 1; dy++) {
      const e = dx || dy ? this._cache.get(`${tz}/${tx + dx}/${ty + dy}`) : entry;
      if (e) around.push([e, dx * size, dy * size]);
    }
    for (const [e, ox, oy] of around) for (const f of e.features) {
      // A cell adds up to a third of full heat: full colour where cells crowd, faint where one stands alone.
      const w = Math.max(0, Math.min(1, (style.value(f.properties) || 0) / top)) / 3;
      const ring = f.geometry[0];
      if (!w || !ring || !ring.length) continue;
      let [cx, cy, side] = cellBox(ring, e.scale);
      cx += ox; cy += oy;
      const r = Math.max(20, side * 1.5);  // at least 20 px, so the heat stays a surface when cells are small
      const g = b.createRadialGradient(cx, cy, 0, cx, cy, r);
      g.addColorStop(0, `rgba(0,0,0,${w})`);
      g.addColorStop(1, 'rgba(0,0,0,0)');
      b.fillStyle = g;
      b.fillRect(cx - r, cy - r, 2 * r, 2 * r);
    }
    const img = b.getImageData(0, 0, buf.width, buf.height), px = img.data;
    const lut = new Map();
    for (let i = 0; i < px.length; i += 4) {
      const a = px[i + 3];
      if (!a) continue;
      let rgb = lut.get(a);
      if (!rgb) { rgb = rgbOf(style.heat ? style.heat[Math.min(style.heat.length - 1, Math.floor(a / 256 * style.heat.length))] : style.paint({ [style.field]: a / 255 * top }).fill); lut.set(a, rgb); }
      px[i] = rgb[0]; px[i + 1] = rgb[1]; px[i + 2] = rgb[2];
      px[i + 3] = Math.round(255 * style.opacity * Math.min(1, 0.15 + a / 255 * 2.5));
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.putImageData(img, 0, 0);
  },

  /** A heat tile arrived: its loaded neighbours repaint, their surface now reaching into it. */
  _repaintAround(c) {
    for (const t of Object.values(this._tiles || {})) {
      const d = t.coords;
      if (d.z !== c.z || Math.abs(d.x - c.x) > 1 || Math.abs(d.y - c.y) > 1 || (d.x === c.x && d.y === c.y)) continue;
      const entry = this._cache.get(this._key(d));
      if (entry) this._paint(t.el, entry);
    }
  },

  /** Clusters: a circle per grid cell at its centre, its area growing with the count, the count written in it. */
  _clusters(ctx, entry) {
    const style = this.options.style, s = entry.scale;
    const top = style.top > 0 ? style.top : Math.max(1, ...entry.features.map(f => style.value(f.properties) || 0));
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    for (const f of entry.features) {
      const n = style.value(f.properties) || 0, ring = f.geometry[0];
      if (!(n > 0) || !ring) continue;
      const [cx, cy, side] = cellBox(ring, s);
      const rmax = Math.max(6, side / 2 - 1), rmin = Math.min(8, rmax);
      const r = rmin + (rmax - rmin) * Math.sqrt(Math.min(1, n / top));
      const p = style.paint(f.properties);
      ctx.beginPath();
      ctx.arc(cx, cy, r, 0, Math.PI * 2);
      ctx.fillStyle = p.fill;
      ctx.fill();
      ctx.lineWidth = 1.5; ctx.strokeStyle = '#ffffff'; ctx.stroke();
      ctx.globalAlpha = 1;
      ctx.font = `700 ${Math.max(9, Math.min(13, r))}px system-ui, sans-serif`;
      ctx.lineWidth = 3; ctx.strokeStyle = 'rgba(255,255,255,0.85)';
      const text = n >= 1e4 ? `${Math.round(n / 1e3)}k` : String(n);
      ctx.strokeText(text, cx, cy); ctx.fillStyle = '#1d2330'; ctx.fillText(text, cx, cy);
      ctx.globalAlpha = style.opacity;
    }
  },

  /** The topmost feature under a map point, or null. */
  featureAt(latlng) {
    const map = this._map;
    if (!map || !this._tileZoom && this._tileZoom !== 0) return null;
    const z = this._tileZoom;
    const size = this.getTileSize().x;
    const pt = map.project(latlng, z);
    const tx = Math.floor(pt.x / size), ty = Math.floor(pt.y / size);
    const n = 2 ** z;
    const entry = this._cache.get(`${z}/${((tx % n) + n) % n}/${ty}`);
    if (!entry) return null;
    const lx = pt.x - tx * size, ly = pt.y - ty * size;
    const s = entry.scale;
    for (let i = entry.features.length - 1; i >= 0; i--) {
      const f = entry.features[i];
      const p = this.options.style.paint(f.properties);
      if (hit(f, lx / s, ly / s, (p.radius + 3) / s, (Math.max(p.width, 1) + 4) / s)) return f;
    }
    return null;
  },
});

function hit(f, x, y, radius, tolerance) {
  if (f.type === 1) return f.geometry.some(part => part.some(([px, py]) => (px - x) ** 2 + (py - y) ** 2 <= radius * radius));
  if (f.type === 2) return f.geometry.some(part => part.some((a, i) => i > 0 && segDist(x, y, part[i - 1], a) <= tolerance));
  let inside = false;
  for (const ring of f.geometry) {
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [xi, yi] = ring[i], [xj, yj] = ring[j];
      if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
    }
  }
  return inside;
}

function segDist(x, y, [ax, ay], [bx, by]) {
  const dx = bx - ax, dy = by - ay, len = dx * dx + dy * dy;
  const t = len ? Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / len)) : 0;
  return Math.hypot(x - (ax + t * dx), y - (ay + t * dy));
}

/** A grid cell's ring → [centre x, centre y, side] in tile pixels. */
function cellBox(ring, s) {
  const xs = ring.map(p => p[0]), ys = ring.map(p => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  return [(x0 + x1) / 2 * s, (y0 + y1) / 2 * s, (x1 - x0) * s];
}

/** '#rrggbb' (what styles paint with) → [r, g, b]. */
function rgbOf(color) {
  const m = /^#([0-9a-f]{6})$/i.exec(color || '');
  const n = m ? parseInt(m[1], 16) : 0x2f6fed;
  return [n >> 16, (n >> 8) & 255, n & 255];
}
