// Layer styles as stored in keplerMapConfig (visState.layers[].config + visualChannels), turned into
// a per-feature paint function, plus the legend that explains it.

export const RAMPS = {
  Sunset: ['#f3e79b', '#fac484', '#f8a07e', '#eb7f86', '#ce6693', '#a059a0', '#5c53a5'],
  Teal: ['#d1eeea', '#a8dbd9', '#85c4c9', '#68abb8', '#4f90a6', '#3b738f', '#2a5674'],
  Emrld: ['#d3f2a3', '#97e196', '#6cc08b', '#4c9b82', '#217a79', '#105965', '#074050'],
  Magenta: ['#f3cbd3', '#eaa9bd', '#dd88ac', '#ca699d', '#b14d8e', '#91357d', '#6c2167'],
  Temps: ['#009392', '#39b185', '#9ccb86', '#e9e29c', '#eeb479', '#e88471', '#cf597e'],
};
export const PALETTES = {
  Bold: ['#7F3C8D', '#11A579', '#3969AC', '#F2B701', '#E73F74', '#80BA5A', '#E68310', '#008695', '#CF1C90', '#f97b72'],
  Vivid: ['#E58606', '#5D69B1', '#52BCA3', '#99C945', '#CC61B0', '#24796C', '#DAA51B', '#2F8AC4', '#764E9F', '#ED645A'],
  Pastel: ['#66C5CC', '#F6CF71', '#F89C74', '#DCB0F2', '#87C55F', '#9EB9F3', '#FE88B1', '#C9DB74', '#8BE0A4', '#B497E7'],
};
export const OTHERS_COLOR = '#a0a6b4';

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
        colorRange: { name: 'Sunset', type: 'sequential', colors: RAMPS.Sunset },
      },
    },
    visualChannels: { colorField: null, colorScale: 'quantize' },
  };
}

/**
 * Builds {paint(properties) → {fill, stroke, radius, width}, legend} from a layer and what is known
 * about its columns: stats = {column: {min, max}} for numbers, {column: {categories: [...]}} for strings.
 */
export function compileStyle(layer, stats = {}) {
  const c = layer.config, v = c.visConfig || {};
  const base = rgbToHex(c.color);
  const stroke = v.stroked === false ? null : rgbToHex(v.strokeColor || [255, 255, 255]);
  const width = Number(v.thickness ?? 1), radius = Number(v.radius ?? 5);
  const field = layer.visualChannels && layer.visualChannels.colorField;
  let color = () => base;
  let legend = { type: 'single', color: base };
  if (field && field.name) {
    const s = stats[field.name] || {};
    if (field.type === 'string' || layer.visualChannels.colorScale === 'ordinal') {
      const colors = (v.colorRange && v.colorRange.type === 'qualitative' && v.colorRange.colors) || PALETTES.Bold;
      const cats = (s.categories || []).slice(0, colors.length);
      const map = new Map(cats.map((k, i) => [String(k), colors[i]]));
      color = p => map.get(String(p[field.name])) || OTHERS_COLOR;
      legend = { type: 'categories', column: field.name, items: [...cats.map((k, i) => ({ label: String(k), color: colors[i] })), { label: 'Others', color: OTHERS_COLOR }] };
    } else {
      const colors = (v.colorRange && v.colorRange.type !== 'qualitative' && v.colorRange.colors) || RAMPS.Sunset;
      const breaks = rampBreaks(Number(s.min ?? 0), Number(s.max ?? 1), s.avg, colors.length);
      color = p => {
        const x = p[field.name];
        if (x === null || x === undefined || Number.isNaN(Number(x))) return OTHERS_COLOR;
        let i = 0;
        while (i < colors.length - 1 && Number(x) >= breaks[i + 1]) i++;
        return colors[i];
      };
      legend = { type: 'ramp', column: field.name, items: colors.map((col, i) => ({ color: col, label: fmtNum(breaks[i]) + ' – ' + fmtNum(breaks[i + 1]) })) };
    }
  }
  const opacity = Math.max(0, Math.min(1, Number(v.opacity ?? 0.85)));
  return {
    opacity, filled: v.filled !== false,
    paint: p => ({ fill: color(p), stroke, width, radius }),
    legend: { ...legend, label: c.label, opacity },
  };
}

/**
 * n+1 class breaks from min to max: equal steps, or geometric ones for skewed positive data (mean in
 * the lowest tenth of the range, e.g. populations), where equal steps would paint almost everything
 * in the first colour.
 */
export function rampBreaks(min, max, avg, n) {
  if (!(max > min)) return Array.from({ length: n + 1 }, (_, i) => min + i);
  const skewed = min >= 0 && Number.isFinite(avg) && avg - min < (max - min) / 10 && max / Math.max(min, 1) > 10;
  if (skewed) {
    const lo = Math.max(min, 1), ratio = Math.pow(max / lo, 1 / n);
    return Array.from({ length: n + 1 }, (_, i) => (i === 0 ? min : lo * Math.pow(ratio, i)));
  }
  return Array.from({ length: n + 1 }, (_, i) => min + ((max - min) * i) / n);
}

export function fmtNum(x) {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1e6) return (x / 1e6).toFixed(1) + 'M';
  if (a >= 1e4) return (x / 1e3).toFixed(1) + 'k';
  return Number.isInteger(x) ? String(x) : x.toFixed(a < 1 ? 3 : 1);
}
