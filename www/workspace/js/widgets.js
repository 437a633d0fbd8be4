// Widgets of a map (formula, category, pie, histogram, range, time series, table): each reads the SQL
// API model of its dataset inside the current viewport, with every filter but its own; clicking a
// category, brushing bars or moving a range filters the dataset, which re-handshakes its layers with
// the Maps API `filters` param. Filters of all widgets combine (AND) and are saved with the map.
import { h, clear, fmt } from './dom.js';
import { model, filtersExcept } from './models.js';
import { fmtNum, PALETTES, OTHERS_COLOR } from './style.js';

export const WIDGET_TYPES = { formula: 'Formula', category: 'Category', pie: 'Pie', histogram: 'Histogram', range: 'Range', timeseries: 'Time series', table: 'Table' };
/** Which columns a widget type can use. */
export const WIDGET_COLUMNS = { histogram: ['number'], range: ['number'], timeseries: ['timestamp', 'date'] };
const STEP_MS = { day: 86400000, week: 7 * 86400000, hour: 3600000 };
export const OPERATIONS = ['count', 'sum', 'avg', 'min', 'max'];

export class WidgetPanel {
  /**
   * opts: {el, view (MapView), state () → {layers, datasets, widgets}, token, editable, onRemove(widget)}
   */
  constructor(opts) {
    Object.assign(this, opts);
    this.cards = new Map();
    this.seq = 0;
    let timer = null;
    this.onMove = () => { clearTimeout(timer); timer = setTimeout(() => this.refresh(), 250); };
    this.view.map.on('moveend', this.onMove);
  }

  destroy() { this.view.map.off('moveend', this.onMove); }

  render() {
    const { widgets } = this.state();
    clear(this.el, widgets.length ? widgets.map(w => this._card(w)) : h('div.empty', h('h3', 'No widgets'),
      h('p', this.editable ? 'Add a widget to summarise a layer’s data in the current view; clicking it filters the map.' : 'This map has no widgets.')));
    this.refresh();
  }

  _card(w) {
    const body = h('div.widget-body', { 'aria-live': 'polite' }, h('p.muted', 'Loading…'));
    const card = h('section.widget', { dataset: { widget: w.id, type: w.type }, 'aria-label': w.title },
      h('h3', h('span', w.title || WIDGET_TYPES[w.type]),
        h('span', this._hasFilter(w) ? h('button.link.clear-filter', { type: 'button', onclick: () => this.setFilter(w, null) }, 'Clear') : null,
          this.onRemove ? h('button.icon', { type: 'button', 'aria-label': `Remove widget ${w.title}`, onclick: () => this.onRemove(w) }, '✕') : null)),
      h('div.muted.widget-subtitle', { style: { fontSize: '.8rem' } }, subtitle(w)), body);
    this.cards.set(w.id, { card, body });
    return card;
  }

  _dataset(w) { return this.state().datasets.find(d => d.id === w.dataId); }
  _hasFilter(w) {
    const f = this.view.filters[w.dataId] || {};
    return Object.values(f).some(ops => Object.values(ops).some(o => o.owner === w.id));
  }

  /** Sets (or clears, with null) one widget's filter on its dataset and re-filters layers and widgets. */
  async setFilter(w, op) {
    const all = JSON.parse(JSON.stringify(this.view.filters[w.dataId] || {}));
    const mine = filtersExcept(all, w.id);
    if (op) mine[w.column] = { ...(mine[w.column] || {}), ...op };
    const { layers, datasets } = this.state();
    await this.view.setFilters(w.dataId, mine, layers, datasets);
    if (this.onFilters) this.onFilters(this.view.filters);
    this.render();
  }

  async refresh() {
    const { widgets } = this.state();
    const seq = ++this.seq;
    await Promise.all(widgets.map(async w => {
      const slot = this.cards.get(w.id);
      const dataset = this._dataset(w);
      if (!slot || !dataset) return;
      try {
        const content = await this._load(w, dataset);
        if (seq === this.seq) clear(slot.body, content);
      } catch (err) {
        if (seq === this.seq) clear(slot.body, h('p.form-error', err.message));
      }
    }));
  }

  async _load(w, dataset) {
    const opts = { token: this.token, bounds: this.view.map.getBounds(), filters: filtersExcept(this.view.filters[w.dataId], w.id) };
    const op = w.operation || 'count';
    const active = (this.view.filters[w.dataId] || {})[w.column] || {};
    const valueParams = { operation: op, operationColumn: w.operationColumn || w.column };
    if (w.type === 'formula') {
      const r = await model(dataset, 'formula', { column: op === 'count' ? '*' : w.column, operation: op }, { ...opts, filters: this.view.filters[w.dataId] || {} });
      const v = r.rows && r.rows[0] ? r.rows[0].value : null;
      return h('div.big.formula-value', { dataset: { value: v == null ? '' : String(v) } }, v == null ? '—' : fmt(Number(v)));
    }
    if (w.type === 'category' || w.type === 'pie') {
      const r = await model(dataset, 'category', { column: w.column, ...valueParams, orderBy: 'frequency_desc' }, opts);
      const rows = (r.rows || []).slice(0, w.type === 'pie' ? 6 : 12);
      if (!rows.length) return h('p.muted', 'No data in this view.');
      const selected = new Set(((active.in && active.in.owner === w.id && active.in.values) || []).map(String));
      const toggle = name => {
        const next = new Set(selected);
        if (next.has(String(name))) next.delete(String(name)); else next.add(String(name));
        const values = rows.map(r => r.name).filter(n => next.has(String(n)));
        this.setFilter(w, values.length ? { in: { values, owner: w.id } } : null);
      };
      if (w.type === 'pie') return this._pie(w, rows, selected, toggle);
      const max = Math.max(...rows.map(x => Number(x.value) || 0), 1);
      return h('div.cats', { role: 'group', 'aria-label': w.title }, rows.map(x => h(`button.cat${selected.size && !selected.has(String(x.name)) ? '.dimmed' : ''}`, {
        type: 'button', 'aria-pressed': selected.has(String(x.name)) ? 'true' : 'false', dataset: { category: String(x.name), value: String(x.value) },
        onclick: () => toggle(x.name) },
        h('span', x.name === null ? 'null' : String(x.name)), h('strong', fmtNum(Number(x.value))),
        h('span.bar', h('span', { style: { width: `${(100 * (Number(x.value) || 0)) / max}%`, background: (!(selected.size && !selected.has(String(x.name))) && this.view.colorFor(w.dataId, w.column, x.name)) || '' } })))));
    }
    if (w.type === 'histogram') return this._histogram(w, dataset, opts, op, active);
    if (w.type === 'range') return this._range(w, dataset, opts, active);
    if (w.type === 'timeseries') return this._timeseries(w, dataset, opts, valueParams, active);
    if (w.type === 'table') return this._table(w, dataset, opts);
    return h('p.muted', 'Unknown widget type');
  }

  _pie(w, rows, selected, toggle) {
    const total = rows.reduce((a, x) => a + (Number(x.value) || 0), 0) || 1;
    let angle = -Math.PI / 2;
    const colors = PALETTES.Bold;
    const slices = rows.map((x, i) => {
      const share = (Number(x.value) || 0) / total, a0 = angle, a1 = angle + share * 2 * Math.PI;
      angle = a1;
      const color = this.view.colorFor(w.dataId, w.column, x.name) || colors[i % colors.length];
      const large = a1 - a0 > Math.PI ? 1 : 0;
      const d = share >= 0.9999 ? 'M50,2 A48,48 0 1 1 49.99,2 Z'
        : `M50,50 L${50 + 48 * Math.cos(a0)},${50 + 48 * Math.sin(a0)} A48,48 0 ${large} 1 ${50 + 48 * Math.cos(a1)},${50 + 48 * Math.sin(a1)} Z`;
      return { x, color, d };
    });
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 100 100');
    svg.setAttribute('class', 'pie');
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', w.title);
    for (const s of slices) {
      const path = document.createElementNS(ns, 'path');
      path.setAttribute('d', s.d);
      path.setAttribute('fill', selected.size && !selected.has(String(s.x.name)) ? OTHERS_COLOR : s.color);
      path.setAttribute('stroke', '#fff');
      path.dataset.category = String(s.x.name);
      path.addEventListener('click', () => toggle(s.x.name));
      svg.append(path);
    }
    return h('div.pie-widget', svg, h('ul.pie-legend', slices.map(s => h('li', h('button.link', { type: 'button', dataset: { category: String(s.x.name), value: String(s.x.value) },
      'aria-pressed': selected.has(String(s.x.name)) ? 'true' : 'false', onclick: () => toggle(s.x.name) },
      h('span.swatch', { style: { background: s.color } }), `${s.x.name} · ${fmtNum(Number(s.x.value))} (${Math.round((100 * Number(s.x.value)) / total)}%)`)))));
  }

  /** Ten bins over the column's whole range; click one, shift-click another to brush a range of bins. */
  async _histogram(w, dataset, opts, op, active) {
    const range = await model(dataset, 'range', { column: w.column }, { ...opts, bounds: null, filters: {} });
    const min = Number(range.rows[0].min), max = Number(range.rows[0].max);
    if (!Number.isFinite(min) || !Number.isFinite(max)) return h('p.muted', 'No numbers to show.');
    const n = 10, step = (max - min) / n || 1;
    const ticks = Array.from({ length: n - 1 }, (_, i) => min + step * (i + 1));
    const r = await model(dataset, 'histogram', { column: w.column, operation: op, ticks }, opts);
    const values = Array(n).fill(0);
    for (const row of r.rows || []) if (row.tick >= 0 && row.tick < n) values[row.tick] = Number(row.value) || 0;
    const top = Math.max(...values, 1);
    // The brush is a closed_open filter (bins are [lo, hi)), so it combines with a range widget's
    // `between` on the same column instead of replacing it.
    const own = active.closed_open && active.closed_open.owner === w.id ? active.closed_open : null;
    const sel = own ? own.bins : null;   // [first, last] bin of the brush
    const edge = i => (i >= n ? max : min + i * step);
    const brush = (i, extend) => {
      let lo = i, hi = i;
      if (extend && sel) { lo = Math.min(sel[0], i); hi = Math.max(sel[1], i); }
      else if (sel && sel[0] === i && sel[1] === i) { this.setFilter(w, null); return; }
      // The last bin includes the maximum, like the histogram model's own last bin.
      const upper = hi === n - 1 ? max + Math.max(Math.abs(step), 1) : edge(hi + 1);
      this.setFilter(w, { closed_open: { values: [[edge(lo), upper]], bins: [lo, hi], owner: w.id } });
    };
    return h('div', h('div.bars', { role: 'group', 'aria-label': `${w.title}: click a bar, shift-click another to select a range` }, values.map((v, i) => {
      const on = sel && i >= sel[0] && i <= sel[1];
      return h(`button${sel && !on ? '.dimmed' : ''}`, { type: 'button', style: { height: `${Math.max(2, (100 * v) / top)}%` }, dataset: { bin: String(i), value: String(v) },
        title: `${fmtNum(edge(i))} – ${fmtNum(edge(i + 1))}: ${fmtNum(v)}`, 'aria-label': `${fmtNum(edge(i))} to ${fmtNum(edge(i + 1))}: ${fmtNum(v)}`, 'aria-pressed': on ? 'true' : 'false',
        onclick: e => brush(i, e.shiftKey) });
    })), h('div.row', { style: { justifyContent: 'space-between', fontSize: '.78rem' } }, h('span.muted', fmtNum(min)),
      sel ? h('span.brush-label', `${fmtNum(edge(sel[0]))} – ${fmtNum(edge(sel[1] + 1))}`) : null, h('span.muted', fmtNum(max))));
  }

  /** Two handles over the column's whole range; the rows inside [low, high] stay. */
  async _range(w, dataset, opts, active) {
    const range = await model(dataset, 'range', { column: w.column }, { ...opts, bounds: null, filters: {} });
    const min = Number(range.rows[0].min), max = Number(range.rows[0].max);
    if (!Number.isFinite(min) || !Number.isFinite(max)) return h('p.muted', 'No numbers to show.');
    const own = active.between && active.between.owner === w.id ? active.between.values[0] : null;
    const [lo, hi] = own || [min, max];
    const step = (max - min) / 100 || 1;
    const a = h('input.range-low', { type: 'range', min, max, step, value: lo, 'aria-label': `${w.column} from` });
    const b = h('input.range-high', { type: 'range', min, max, step, value: hi, 'aria-label': `${w.column} to` });
    const label = h('div.range-label', `${fmtNum(lo)} – ${fmtNum(hi)}`);
    const commit = () => {
      let x = Number(a.value), y = Number(b.value);
      if (x > y) [x, y] = [y, x];
      if (x <= min && y >= max) this.setFilter(w, null);
      else this.setFilter(w, { between: { values: [[x, y]], owner: w.id } });
    };
    a.oninput = b.oninput = () => { label.textContent = `${fmtNum(Math.min(+a.value, +b.value))} – ${fmtNum(Math.max(+a.value, +b.value))}`; };
    a.onchange = b.onchange = commit;
    return h('div.range-widget', label, a, b, h('div.row', { style: { justifyContent: 'space-between', fontSize: '.78rem' } }, h('span.muted', fmtNum(min)), h('span.muted', fmtNum(max))));
  }

  /** Every bucket from the column's first to its last date, empty ones included; ▶ plays them in turn. */
  async _timeseries(w, dataset, opts, valueParams, active) {
    const stepSize = w.stepSize || 'month';
    const [r, range] = await Promise.all([
      model(dataset, 'timeseries', { column: w.column, stepSize, ...valueParams }, opts),
      model(dataset, 'range', { column: w.column }, { ...opts, bounds: null, filters: {} })]);
    const got = new Map((r.rows || []).map(x => [Number(x.name), Number(x.value) || 0]));
    const t0 = Number(range.rows[0].min), t1 = Number(range.rows[0].max);
    if (!Number.isFinite(t0) || !Number.isFinite(t1)) return h('p.muted', 'No dates to show.');
    const buckets = timeBuckets(t0, t1, stepSize);
    for (const k of got.keys()) if (!buckets.includes(k)) buckets.push(k);
    buckets.sort((x, y) => x - y);
    const rows = buckets.map((t, i) => ({ t, end: buckets[i + 1] ?? nextBucket(t, stepSize), value: got.get(t) || 0 }));
    const top = Math.max(...rows.map(x => x.value), 1);
    const own = active.closed_open && active.closed_open.owner === w.id ? active.closed_open.values[0] : null;
    const pick = row => this.setFilter(w, own && own[0] === row.t ? null : { closed_open: { values: [[row.t, row.end]], owner: w.id } });
    const play = h('button.secondary.play', { type: 'button', 'aria-label': this.playing === w.id ? 'Stop' : 'Play', onclick: () => this._play(w, rows) }, this.playing === w.id ? '■' : '▶');
    return h('div', h('div.row', { style: { justifyContent: 'space-between' } }, play, own ? h('span.brush-label', new Date(own[0]).toISOString().slice(0, 10)) : h('span')),
      h('div.bars.timeseries', rows.map(x => {
        const on = own && own[0] === x.t;
        const label = new Date(x.t).toISOString().slice(0, 10);
        return h(`button${own && !on ? '.dimmed' : ''}${x.value ? '' : '.empty-bucket'}`, { type: 'button', style: { height: `${Math.max(x.value ? 2 : 0.5, (100 * x.value) / top)}%` },
          dataset: { time: String(x.t), value: String(x.value) }, title: `${label}: ${fmtNum(x.value)}`, 'aria-label': `${label}: ${fmtNum(x.value)}`, 'aria-pressed': on ? 'true' : 'false',
          onclick: () => pick(x) });
      })), h('div.row', { style: { justifyContent: 'space-between', fontSize: '.78rem' } },
        h('span.muted', new Date(rows[0].t).toISOString().slice(0, 10)), h('span.muted', new Date(rows[rows.length - 1].t).toISOString().slice(0, 10))));
  }

  /** ▶ shows one bucket after another on the map; ■ (or the end) stops and shows all times again. */
  async _play(w, rows) {
    if (this.playing === w.id) { this.playing = null; return; }
    this.playing = w.id;
    for (const row of rows) {
      if (this.playing !== w.id) break;
      await this.setFilter(w, { closed_open: { values: [[row.t, row.end]], owner: w.id } });
      if (this.playing !== w.id) break;
      await new Promise(res => setTimeout(res, 700));
    }
    // The loop alone clears, after its last frame was set, so a stop never leaves a stale frame behind.
    this.playing = null;
    await this.setFilter(w, null);
  }

  /** Rows in view, 10 a page, sorted by a header click; a row with a location pans the map to it. */
  async _table(w, dataset, opts) {
    const st = (this.tableState ??= {})[w.id] ??= { page: 0, sortBy: null, dir: 'asc' };
    const columns = (w.columns && w.columns.length ? w.columns : null);
    const geo = dataset.geoColumn || 'geom';
    // The geometry rides along (EWKB hex) so that a row can take the map to its feature.
    const params = { limit: 10, offset: st.page * 10, ...(columns ? { column: [...columns, geo] } : {}), ...(st.sortBy ? { sortBy: st.sortBy, sortDirection: st.dir } : {}) };
    const r = await model(dataset, 'table', params, { ...opts, filters: this.view.filters[w.dataId] || {} });
    const rows = r.rows || [];
    const total = Number((r.metadata && r.metadata.total) || 0);
    const cols = columns || (rows[0] ? Object.keys(rows[0]).filter(k => k !== geo) : []);
    if (!rows.length) return h('p.muted', 'No rows in this view.');
    const sort = c => { st.dir = st.sortBy === c && st.dir === 'asc' ? 'desc' : 'asc'; st.sortBy = c; st.page = 0; this.refresh(); };
    const pages = Math.max(1, Math.ceil(total / 10));
    return h('div.table-widget', h('div.table-scroll', h('table', h('thead', h('tr', cols.map(c => h('th', h('button.link', { type: 'button', dataset: { sort: c }, onclick: () => sort(c) },
      c, st.sortBy === c ? (st.dir === 'asc' ? ' ▲' : ' ▼') : ''))))),
      h('tbody', rows.map(row => h('tr', { tabindex: 0, title: 'Show on the map', onclick: () => this._locate(row[geo]),
        onkeydown: e => { if (e.key === 'Enter') this._locate(row[geo]); } }, cols.map(c => h('td', row[c] === null ? '' : fmt(row[c])))))))),
      h('div.row.table-pager', { style: { justifyContent: 'space-between', fontSize: '.8rem' } },
        h('button.link', { type: 'button', disabled: st.page === 0 || undefined, onclick: () => { st.page--; this.refresh(); } }, '‹ Prev'),
        h('span.muted.table-total', { dataset: { total: String(total) } }, `Page ${st.page + 1} of ${pages} · ${fmtNum(total)} rows`),
        h('button.link', { type: 'button', disabled: st.page >= pages - 1 || undefined, onclick: () => { st.page++; this.refresh(); } }, 'Next ›')));
  }

  /** Linked to the map: a row's click centres the map on its feature (the first point of its geometry). */
  _locate(ewkb) {
    const p = firstPoint(ewkb);
    if (p) this.view.map.setView([p[1], p[0]], Math.max(this.view.map.getZoom(), 6));
  }
}

/** [lon, lat] of the first coordinate of an EWKB hex geometry (WGS84 assumed), or null. */
export function firstPoint(hex) {
  if (typeof hex !== 'string' || hex.length < 18 || !/^[0-9a-f]+$/i.test(hex)) return null;
  const bytes = new Uint8Array(hex.match(/../g).map(b => parseInt(b, 16)));
  const dv = new DataView(bytes.buffer);
  let o = 0;
  const read = () => {
    const le = dv.getUint8(o) === 1; o += 1;
    const type = dv.getUint32(o, le); o += 4;
    if (type & 0x20000000) o += 4;  // SRID
    const base = type & 0xff;
    if (base === 1) return [dv.getFloat64(o, le), dv.getFloat64(o + 8, le)];
    if (base === 2) { o += 4; return [dv.getFloat64(o, le), dv.getFloat64(o + 8, le)]; }
    if (base === 3) { o += 8; return [dv.getFloat64(o, le), dv.getFloat64(o + 8, le)]; }
    if (base >= 4 && base <= 7) { o += 4; return read(); }
    return null;
  };
  try { return read(); } catch { return null; }
}

/** The widget's subtitle: what is aggregated, of which column, by which column. */
export function subtitle(w) {
  const op = w.operation || 'count';
  const of = op === 'count' ? 'count' : `${op} of ${w.operationColumn || w.column}`;
  if (w.type === 'formula') return op === 'count' ? 'count of rows' : `${op} of ${w.column}`;
  if (w.type === 'table') return (w.columns && w.columns.length) ? w.columns.join(', ') : 'rows in view';
  if (w.type === 'range') return `range of ${w.column}`;
  if (w.type === 'histogram') return `${op === 'count' ? 'count' : op} by ${w.column}`;
  return `${of} by ${w.column}`;
}

/** Bucket starts (epoch ms, UTC) from the bucket of t0 to the bucket of t1, as the server truncates. */
export function timeBuckets(t0, t1, step) {
  const out = [];
  let t = bucketStart(t0, step);
  while (t <= t1 && out.length < 5000) { out.push(t); t = nextBucket(t, step); }
  return out;
}
function bucketStart(t, step) {
  const d = new Date(t);
  if (step === 'year') return Date.UTC(d.getUTCFullYear(), 0, 1);
  if (step === 'month') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  const week0 = 4 * 86400000;  // Monday 1970-01-05, the server's week origin
  const ms = STEP_MS[step] || 86400000;
  const origin = step === 'week' ? week0 : 0;
  return Math.floor((t - origin) / ms) * ms + origin;
}
function nextBucket(t, step) {
  const d = new Date(t);
  if (step === 'year') return Date.UTC(d.getUTCFullYear() + 1, 0, 1);
  if (step === 'month') return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  return t + (STEP_MS[step] || 86400000);
}
