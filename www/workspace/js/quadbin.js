// Quadbin cell ids (CARTO's 64-bit index: header, mode 1, resolution, Morton-ordered x/y padded with
// ones), as 16 hex digits: the Maps API's dynamic aggregation addresses its tiles by them ({i}) and
// answers cells by them. Same layout as carto.quadbin_fromzxy in the warehouse.

export function quadbinFromZXY(z, x, y) {
  let m = 0n;
  for (let i = 0; i < z; i++) {
    m |= BigInt((x / 2 ** i) & 1) << BigInt(2 * i);
    m |= BigInt((y / 2 ** i) & 1) << BigInt(2 * i + 1);
  }
  const q = 0x4000000000000000n | 0x0800000000000000n | (BigInt(z) << 52n) | (m << BigInt(52 - 2 * z)) | (0xFFFFFFFFFFFFFn >> BigInt(2 * z));
  return q.toString(16).padStart(16, '0');
}

export function quadbinToZXY(hex) {
  const q = BigInt('0x' + hex);
  const z = Number((q >> 52n) & 31n);
  const m = (q & 0xFFFFFFFFFFFFFn) >> BigInt(52 - 2 * z);
  let x = 0, y = 0;
  for (let i = 0; i < z; i++) {
    x += Number((m >> BigInt(2 * i)) & 1n) * 2 ** i;
    y += Number((m >> BigInt(2 * i + 1)) & 1n) * 2 ** i;
  }
  return { z, x, y };
}

/** The cells of one tile's JSON answer as square polygon features in the tile's 4096-unit space. */
export function cellFeatures(cells, tz, tx, ty) {
  const out = [];
  for (const c of cells || []) {
    const { z, x, y } = quadbinToZXY(c.id);
    const n = 2 ** (z - tz);
    if (!(n >= 1)) continue;
    const size = 4096 / n, ox = (x - tx * n) * size, oy = (y - ty * n) * size;
    out.push({ type: 3, properties: { ...(c.properties || {}), quadbin: c.id },
      geometry: [[[ox, oy], [ox + size, oy], [ox + size, oy + size], [ox, oy + size], [ox, oy]]] });
  }
  return out;
}
