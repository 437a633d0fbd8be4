// Layer styles as stored in keplerMapConfig (visState.layers[].config + visualChannels), turned into
// a per-feature paint function, plus the legend that explains it. Class breaks are not computed
// here: classify.js asks the server for them (all rows, not the tiles on screen) and passes them in
// as `classes`, so the legend and the paint function read the very same breaks and colours.
import { SEQUENTIAL, QUALITATIVE, sequentialColors } from './palettes.js';

export const RAMPS = SEQUENTIAL;
export const PALETTES = QUALITATIVE;
export const OTHERS_COLOR = '#a0a6b4';
export const METHODS = { quantile: 'Quantiles', quantize: 'Equal intervals', jenks: 'Natural breaks (Jenks)', custom: 'Custom breaks' };
export const MIN_CLASSES = 2, MAX_CLASSES = 10;

export function hexToRgb(hex) {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex || '');
  if (!m) return [47, 111, 237];
  const n = parseInt(m[1], 16);
  return [n >> 16, (n >> 8) & 255, n & 255];
}
export function rgbToHex(rgb) {
  if (typeof rgb === 'string') return rgb;
  return '#' + (rgb || [47, 111, 237]).map(v => Math.max(0, Math.min(255, Math.round(v))).toString(16).padStart(2, '0')).join('');
}

/** A new layer's config, in kepler's shape. */
export function defaultLayer(id, dataId, label, index = 0) {
  const colors = ['#2f6fed', '#e4572e', '#17a398', '#f3a712', '#8e44ad', '#29335c'];
  return {
    id, type: 'mvt',
    config: {
      dataId, label, isVisible: true, color: hexToRgb(colors[index % colors.length]), columns: {}, textLabel: [],
      visConfig: {
        opacity: 0.85, filled: true, stroked: true, strokeColor: [255, 255, 255], thickness: 1, radius: 5,
        colorRange: { name: 'Sunset', type: 'sequential', colors: RAMPS.Sunset }, classes: 5, sizeRange: [3, 18],
      },
    },
    visualChannels: { colorField: null, colorScale: 'quantile' },
  };
}

/** The colour channels of a layer: fill and stroke, each {field, scale, range (palette name), classes}. */
export function colorChannels(layer) {
  const vc = layer.visualChannels || {}, v = layer.config.visConfig || {};
  const out = [];
  if (vc.colorField && vc.colorField.name) {
    out.push({ key: 'color', field: vc.colorField, scale: vc.colorScale, palette: v.colorRange && v.colorRange.name, classes: Number(v.classes || 5), customBreaks: v.customBreaks });
  }
  if (vc.strokeColorField && vc.strokeColorField.name) {
    out.push({ key: 'strokeColor', field: vc.strokeColorField, scale: vc.strokeColorScale || 'quantile', palette: v.strokeColorRange && v.strokeColorRange.name, classes: Number(v.strokeClasses || v.classes || 5), customBreaks: null });
  }
  return out;
}

/** What kind of classes a channel needs: categories for strings/booleans, time for dates, else numbers. */
export function channelKind(ch) {
  const t = ch.field.type;
  if (t === 'string' || t === 'boolean' || ch.scale === 'ordinal') return 'category';
  if (t === 'timestamp' || t === 'date' || ch.scale === 'time') return 'time';
  return 'number';
}

/** Dates arrive in tiles and stats as text: one parser for both, so a feature and its class agree. */
export function toTime(v) {
  if (v === null || v === undefined || v === '') return NaN;
  if (typeof v === 'number') return v;
  const s = String(v).trim().replace(' ', 'T');
  const t = Date.parse(/[zZ]|[+-]\d\d(:?\d\d)?$/.test(s) || s.length <= 10 ? s : s + 'Z');
  return t;
}

/**
 * A colour function and its legend items for one channel, from its classes:
 * {kind: 'number'|'time', breaks: [n+1 values]} or {kind: 'category', categories: [...]}.
 */
export function channelScale(ch, cls) {
  if (!cls || cls.error) return null;
  const col = ch.field.name;
  if (cls.kind === 'category') {
    const colors = QUALITATIVE[ch.palette] || QUALITATIVE.Bold;
    const cats = (cls.categories || []).slice(0, colors.length);
    const map = new Map(cats.map((k, i) => [String(k), colors[i]]));
    const others = (cls.total ?? Infinity) > cats.length;
    return {
      color: p => map.get(String(p[col])) || OTHERS_COLOR,
      legend: { type: 'categories', column: col, items: [...cats.map((k, i) => ({ label: String(k), color: colors[i] })), ...(others ? [{ label: 'Others', color: OTHERS_COLOR }] : [])] },
    };
  }
  const breaks = cls.breaks;
  const n = breaks.length - 1;
  const colors = sequentialColors(ch.palette, n);
  const value = cls.kind === 'time' ? toTime : Number;
  const color = p => {
    const raw = p[col];
    if (raw === null || raw === undefined) return OTHERS_COLOR;
    const x = value(raw);
    if (Number.isNaN(x)) return OTHERS_COLOR;
    return colors[classIndex(breaks, x)];
  };
  const fmt = cls.kind === 'time' ? fmtDate : fmtNum;
  return {
    color,
    legend: { type: 'ramp', column: col, method: ch.scale, items: colors.map((c, i) => ({ color: c, label: `${fmt(breaks[i])} – ${fmt(breaks[i + 1])}` })) },
  };
}

/** Class i holds breaks[i] <= x < breaks[i+1] (the last class includes its upper break). */
export function classIndex(breaks, x) {
  let i = 0;
  while (i < breaks.length - 2 && x >= breaks[i + 1]) i++;
  return i;
}

/**
 * Builds {paint(properties) → {fill, stroke, radius, width}, legend, label} from a layer and its
 * channels' classes ({color: {...}, strokeColor: {...}, size: {min, max}}).
 */
export function compileStyle(layer, classes = {}) {
  const c = layer.config, v = c.visConfig || {}, vc = layer.visualChannels || {};
  const base = rgbToHex(c.color);
  const strokeBase = v.stroked === false ? null : rgbToHex(v.strokeColor || [255, 255, 255]);
  const width = Number(v.thickness ?? 1), radius = Number(v.radius ?? 5);
  let fill = () => base, stroke = () => strokeBase;
  const legends = [];
  // A heatmap is coloured by the density of its points (the summed kernels), low to high along the
  // palette: its legend is that ramp, not the cells' count classes.
  const heat = c.aggregated === 'heatmap' ? sequentialColors((v.colorRange && v.colorRange.name) || 'YlOrRd', Math.max(MIN_CLASSES, Math.min(MAX_CLASSES, Number(v.classes || 5)))) : null;
  if (heat) legends.push({ channel: 'Heat', column: 'point density', items: heat.map((color, i) => ({ color, label: i === 0 ? 'sparse' : i === heat.length - 1 ? 'dense' : '' })) });
  for (const ch of heat ? [] : colorChannels(layer)) {
    const scale = channelScale(ch, classes[ch.key]);
    if (!scale) continue;
    if (ch.key === 'color') fill = scale.color;
    else if (strokeBase !== null) stroke = scale.color;
    // A heatmap's colour is the smoothed density, in the classes of the cells' counts.
    legends.push({ ...scale.legend, channel: ch.key !== 'color' ? 'Stroke' : c.aggregated === 'heatmap' ? 'Heat' : 'Fill' });
  }
  let size = () => radius;
  const sf = vc.sizeField && vc.sizeField.name;
  const sr = classes.size;
  if (sf && sr && Number.isFinite(sr.min) && Number.isFinite(sr.max)) {
    const [r0, r1] = (v.sizeRange || [3, 18]).map(Number);
    const span = sr.max - sr.min;
    // Area grows with the value (square root of radius), as proportional symbols should.
    size = p => {
      const x = Number(p[sf]);
      if (p[sf] === null || p[sf] === undefined || Number.isNaN(x)) return r0;
      const t = span > 0 ? Math.max(0, Math.min(1, (x - sr.min) / span)) : 1;
      return r0 + (r1 - r0) * Math.sqrt(t);
    };
    legends.push({ type: 'size', column: sf, items: [{ label: fmtNum(sr.min), radius: r0 }, { label: fmtNum(sr.max), radius: r1 }] });
  }
  const opacity = Math.max(0, Math.min(1, Number(v.opacity ?? 0.85)));
  const tl = (c.textLabel || [])[0];
  const label = tl && tl.field && tl.field.name && !classes.labelError
    ? { column: tl.field.name, size: Number(tl.size || 12), color: rgbToHex(tl.color || [40, 44, 52]), halo: '#ffffff' } : null;
  const cf = vc.colorField && vc.colorField.name, cb = classes.color && classes.color.breaks;
  return {
    opacity, filled: v.filled !== false, label,
    // Heatmap and cluster layers draw their grid cells as a heat surface or as counted circles.
    render: ['heatmap', 'cluster'].includes(c.aggregated) ? c.aggregated : null,
    heat, field: cf, value: cf ? (p => Number(p[cf])) : (() => 1), top: Array.isArray(cb) && cb.length ? Number(cb[cb.length - 1]) : null,
    paint: p => ({ fill: fill(p), stroke: stroke(p), width, radius: size(p) }),
    legend: { type: legends.length ? 'multi' : 'single', color: base, parts: legends, label: c.label, opacity },
  };
}

export function fmtNum(x) {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e6) return (x / 1e6).toFixed(a >= 1e7 ? 1 : 2) + 'M';
  if (a >= 1e4) return (x / 1e3).toFixed(1) + 'k';
  return Number.isInteger(x) ? String(x) : x.toFixed(a < 1 ? 3 : 1);
}

export function fmtDate(t) {
  if (!Number.isFinite(t)) return String(t);
  return new Date(t).toISOString().slice(0, 10);
}
