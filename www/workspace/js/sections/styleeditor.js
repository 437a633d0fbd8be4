// The style controls of one layer in the builder: fill and stroke colour (one colour, or by a column
// with method, class count and palette, categories or dates), size by value, opacity and labels.
// Settings are written into the layer as the user makes them; a setting the data cannot honour is
// kept and explained in place (errors come from the server-side classification, see classify.js).
import { h, field } from '../dom.js';
import { rgbToHex, hexToRgb, RAMPS, PALETTES, METHODS, MIN_CLASSES, MAX_CLASSES } from '../style.js';
import { paletteSource } from '../palettes.js';

const kindOf = c => (c.type === 'number' ? 'real' : c.type === 'timestamp' || c.type === 'date' ? 'timestamp' : 'string');

function errorLine(id, msg) {
  return h(`p.form-error.style-error#${id}`, { role: 'alert', hidden: !msg || undefined }, msg || '');
}

function paletteSelect(id, label, numeric, current, onchange) {
  const sets = numeric ? RAMPS : PALETTES;
  const groups = {};
  for (const name of Object.keys(sets)) (groups[paletteSource(name)] ??= []).push(name);
  const select = h(`select#${id}`, { onchange: e => onchange(e.target.value) }, Object.entries(groups).map(([g, names]) =>
    h('optgroup', { label: g }, names.map(n => h('option', { value: n, selected: n === current || undefined }, n)))));
  return h('div.field', h('label', { for: id }, label), select);
}

/** Controls for one colour channel (fill: colorField, stroke: strokeColorField). */
function colorChannel(l, cols, errors, apply, { key, title, idPrefix }) {
  const v = l.config.visConfig, vc = l.visualChannels;
  const fieldKey = key === 'color' ? 'colorField' : 'strokeColorField';
  const scaleKey = key === 'color' ? 'colorScale' : 'strokeColorScale';
  const rangeKey = key === 'color' ? 'colorRange' : 'strokeColorRange';
  const current = vc[fieldKey];
  const usable = cols.filter(c => ['number', 'string', 'boolean', 'timestamp', 'date'].includes(c.type));
  const by = field(title, { tag: 'select', id: `${idPrefix}-by`, options: [{ value: '', label: 'One colour' },
    ...usable.map(c => ({ value: c.name, label: `${c.name} (${c.type === 'number' ? 'numbers' : c.type === 'timestamp' || c.type === 'date' ? 'dates' : 'categories'})`, selected: current && current.name === c.name }))] });
  by.input.onchange = e => {
    const c = usable.find(x => x.name === e.target.value);
    if (!c) vc[fieldKey] = null;
    else {
      const kind = kindOf(c);
      vc[fieldKey] = { name: c.name, type: kind };
      vc[scaleKey] = kind === 'string' ? 'ordinal' : kind === 'timestamp' ? 'time' : 'quantile';
      v[rangeKey] = kind === 'string' ? { name: 'Bold', type: 'qualitative', colors: PALETTES.Bold } : { name: key === 'color' ? 'Sunset' : 'Teal', type: 'sequential', colors: RAMPS[key === 'color' ? 'Sunset' : 'Teal'] };
    }
    apply();
  };
  const out = [by];
  if (current && current.name) {
    const numeric = current.type !== 'string';
    if (key === 'color' && current.type === 'real') {
      const method = field('Method', { tag: 'select', id: 'color-method', options: Object.entries(METHODS).map(([value, label]) => ({ value, label, selected: vc.colorScale === value })) });
      method.input.onchange = e => { vc.colorScale = e.target.value; apply(); };
      const classes = field('Classes', { type: 'number', id: 'color-classes', min: MIN_CLASSES, max: MAX_CLASSES, step: 1, value: v.classes ?? 5 });
      classes.input.onchange = e => { v.classes = Number(e.target.value); apply(); };
      out.push(h('div.row', method, classes));
      if (vc.colorScale === 'custom') {
        const custom = field('Custom breaks', { id: 'custom-breaks', value: (v.customBreaks || []).join(', '), placeholder: 'e.g. 1000, 10000, 100000' },
          `${(v.classes ?? 5) - 1} values between the minimum and the maximum, ascending`);
        custom.input.onchange = e => { v.customBreaks = e.target.value.split(/[,;\s]+/).filter(Boolean).map(Number); apply(); };
        out.push(custom);
      }
    } else if (key === 'color' && current.type === 'timestamp') {
      const classes = field('Classes (equal periods)', { type: 'number', id: 'color-classes', min: MIN_CLASSES, max: MAX_CLASSES, step: 1, value: v.classes ?? 5 });
      classes.input.onchange = e => { v.classes = Number(e.target.value); apply(); };
      out.push(classes);
    }
    out.push(paletteSelect(`${idPrefix}-palette`, numeric ? 'Palette' : 'Category palette', numeric, v[rangeKey] && v[rangeKey].name, name => {
      v[rangeKey] = { name, type: numeric ? 'sequential' : 'qualitative', colors: (numeric ? RAMPS : PALETTES)[name] };
      apply();
    }));
  }
  out.push(errorLine(`${idPrefix}-error`, errors[key]));
  return out;
}

/** Every style control of a layer, in order. cols: [{name, type}] without geometry. */
export function styleControls(l, cols, errors, apply) {
  const v = l.config.visConfig, vc = (l.visualChannels ??= { colorField: null, colorScale: 'quantile' });
  const fill = field('Fill colour', { type: 'color', value: rgbToHex(l.config.color), oninput: e => { l.config.color = hexToRgb(e.target.value); apply(); } });
  const stroke = field('Stroke colour', { type: 'color', value: rgbToHex(v.strokeColor), oninput: e => { v.strokeColor = hexToRgb(e.target.value); apply(); } });
  const strokeOn = h('label.check', h('input', { type: 'checkbox', checked: v.stroked !== false || undefined, onchange: e => { v.stroked = e.target.checked; apply(); } }), 'Stroke');
  const width = field('Stroke width', { type: 'range', min: 0, max: 6, step: 0.5, value: v.thickness ?? 1, onchange: e => { v.thickness = Number(e.target.value); apply(); } });
  const numbers = cols.filter(c => c.type === 'number');
  const sizeBy = field('Size by', { tag: 'select', id: 'size-by', options: [{ value: '', label: 'One size' }, ...numbers.map(c => ({ value: c.name, label: c.name, selected: vc.sizeField && vc.sizeField.name === c.name }))] });
  sizeBy.input.onchange = e => { vc.sizeField = e.target.value ? { name: e.target.value, type: 'real' } : null; v.sizeRange ??= [3, 18]; apply(); };
  const sizing = vc.sizeField && vc.sizeField.name
    ? h('div.row', field('Smallest (px)', { type: 'number', id: 'size-min', min: 1, max: 60, value: (v.sizeRange || [3, 18])[0], onchange: e => { v.sizeRange = [Number(e.target.value), (v.sizeRange || [3, 18])[1]]; apply(); } }),
        field('Largest (px)', { type: 'number', id: 'size-max', min: 1, max: 60, value: (v.sizeRange || [3, 18])[1], onchange: e => { v.sizeRange = [(v.sizeRange || [3, 18])[0], Number(e.target.value)]; apply(); } }))
    : field('Point size', { type: 'range', min: 1, max: 20, step: 1, value: v.radius ?? 5, onchange: e => { v.radius = Number(e.target.value); apply(); } });
  const opacity = field('Opacity', { type: 'range', id: 'layer-opacity', min: 0.1, max: 1, step: 0.05, value: v.opacity ?? 0.85, onchange: e => { v.opacity = Number(e.target.value); apply(); } });
  const tl = (l.config.textLabel ??= [])[0];
  const labelBy = field('Label', { tag: 'select', id: 'label-by', options: [{ value: '', label: 'No labels' }, ...cols.map(c => ({ value: c.name, label: c.name, selected: tl && tl.field && tl.field.name === c.name }))] });
  // A saved label column the data no longer has stays selected, so the message below can name it.
  if (tl && tl.field && tl.field.name && !cols.some(c => c.name === tl.field.name)) {
    labelBy.input.append(h('option', { value: tl.field.name, selected: true }, `${tl.field.name} (missing)`));
  }
  labelBy.input.onchange = e => {
    l.config.textLabel = e.target.value ? [{ field: { name: e.target.value, type: 'string' }, size: (tl && tl.size) || 12, color: (tl && tl.color) || [40, 44, 52] }] : [];
    apply();
  };
  return [h('div.row', fill, stroke), strokeOn,
    ...colorChannel(l, cols, errors, apply, { key: 'color', title: 'Colour by', idPrefix: 'color' }),
    ...colorChannel(l, cols, errors, apply, { key: 'strokeColor', title: 'Stroke colour by', idPrefix: 'stroke' }),
    width, sizeBy, sizing, errorLine('size-error', errors.size), opacity, labelBy, errorLine('label-error', errors.label)];
}
