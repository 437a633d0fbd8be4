// A Mapbox Vector Tile (spec 2.1) decoder: protobuf wire format → layers of features with
// properties and geometry as rings/lines/points in tile coordinates (0..extent).

class Pbf {
  constructor(buf) { this.buf = buf; this.pos = 0; this.end = buf.length; this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength); }

  varint() {
    let result = 0, shift = 0, b;
    do {
      if (this.pos >= this.end) throw new Error('MVT: truncated varint');
      b = this.buf[this.pos++];
      // Beyond 2^53 precision is lost; feature ids and int64 values that large do not occur here.
      result += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return result;
  }

  zigzag() { const v = this.varint(); return v % 2 === 1 ? -(v + 1) / 2 : v / 2; }

  bytes() {
    const len = this.varint(), start = this.pos;
    this.pos += len;
    if (this.pos > this.end) throw new Error('MVT: truncated field');
    return this.buf.subarray(start, this.pos);
  }

  skip(wire) {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.pos += this.varint();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`MVT: unsupported wire type ${wire}`);
  }

  /** Calls fn(fieldNumber, wireType, pbf) for each field of the message. */
  fields(fn) {
    while (this.pos < this.end) {
      const key = this.varint();
      const start = this.pos;
      fn(Math.floor(key / 8), key & 7, this);
      if (this.pos === start) this.skip(key & 7);
    }
  }

  packed() {
    const sub = new Pbf(this.bytes()), out = [];
    while (sub.pos < sub.end) out.push(sub.varint());
    return out;
  }
}

const utf8 = new TextDecoder();

function value(bytes) {
  const p = new Pbf(bytes);
  let v = null;
  p.fields((f, w, p) => {
    if (f === 1) v = utf8.decode(p.bytes());
    else if (f === 2) { v = p.view.getFloat32(p.pos, true); p.pos += 4; }
    else if (f === 3) { v = p.view.getFloat64(p.pos, true); p.pos += 8; }
    else if (f === 4 || f === 5) v = p.varint();
    else if (f === 6) v = p.zigzag();
    else if (f === 7) v = p.varint() !== 0;
  });
  return v;
}

/** Geometry commands → array of parts, each an array of [x, y] (rings, lines or single points). */
export function decodeGeometry(cmds) {
  const parts = [];
  let x = 0, y = 0, part = null, i = 0;
  while (i < cmds.length) {
    const cmd = cmds[i] & 7, count = cmds[i] >> 3;
    i++;
    if (cmd === 7) { if (part && part.length) part.push(part[0]); continue; }
    for (let n = 0; n < count; n++) {
      const dx = cmds[i++], dy = cmds[i++];
      x += dx % 2 === 1 ? -(dx + 1) / 2 : dx / 2;
      y += dy % 2 === 1 ? -(dy + 1) / 2 : dy / 2;
      if (cmd === 1) { part = [[x, y]]; parts.push(part); } else if (part) part.push([x, y]);
    }
  }
  return parts;
}

export const GEOM = { 1: 'Point', 2: 'LineString', 3: 'Polygon' };

/** decode(ArrayBuffer|Uint8Array) → {layerName: {extent, features: [{id, type, properties, geometry}]}} */
export function decode(data) {
  const buf = data instanceof Uint8Array ? data : new Uint8Array(data);
  const layers = {};
  new Pbf(buf).fields((f, w, p) => {
    if (f !== 3) return;
    const lp = new Pbf(p.bytes());
    const layer = { name: '', extent: 4096, keys: [], values: [], raw: [] };
    lp.fields((lf, lw, lp) => {
      if (lf === 1) layer.name = utf8.decode(lp.bytes());
      else if (lf === 2) layer.raw.push(lp.bytes());
      else if (lf === 3) layer.keys.push(utf8.decode(lp.bytes()));
      else if (lf === 4) layer.values.push(value(lp.bytes()));
      else if (lf === 5) layer.extent = lp.varint();
    });
    const features = layer.raw.map(bytes => {
      const fp = new Pbf(bytes);
      const feat = { id: null, type: 0, properties: {}, geometry: [] };
      let tags = [], geom = [];
      fp.fields((ff, fw, fp) => {
        if (ff === 1) feat.id = fp.varint();
        else if (ff === 2) tags = fp.packed();
        else if (ff === 3) feat.type = fp.varint();
        else if (ff === 4) geom = fp.packed();
      });
      for (let i = 0; i + 1 < tags.length; i += 2) feat.properties[layer.keys[tags[i]]] = layer.values[tags[i + 1]];
      feat.geometry = decodeGeometry(geom);
      return feat;
    });
    layers[layer.name] = { extent: layer.extent, features };
  });
  return layers;
}
