// H3 cells in the browser, for the builder's hexbin layer on the Maps API's dynamic H3 aggregation:
// which H3 tiles (cells) cover a map tile, and each cell's boundary to draw it. Debian has no libjs-h3,
// so this is a small port of the H3 C library's cellToBoundary (Apache-2.0, h3 4.5 as vendored for the
// tessera_h3 warehouse extension; the tables below are its baseCells.c and faceijk.c): cell → face and
// ijk coordinates → the gnomonic projection of the icosahedron face. The extra vertices H3 adds where a
// class III edge crosses an icosahedron edge are left out: such a cell is drawn with its 6 (5) corners.

// base cell: [home face, i, j, k, pentagon]
const BASE_CELLS = [[1,1,0,0,0],[2,1,1,0,0],[1,0,0,0,0],[2,1,0,0,0],[0,2,0,0,1],[1,1,1,0,0],[1,0,0,1,0],[2,0,0,0,0],[0,1,0,0,0],[2,0,1,0,0],[1,0,1,0,0],[1,0,1,1,0],[3,1,0,0,0],[3,1,1,0,0],[11,2,0,0,1],[4,1,0,0,0],[0,0,0,0,0],[6,0,1,0,0],[0,0,0,1,0],[2,0,1,1,0],[7,0,0,1,0],[2,0,0,1,0],[0,1,1,0,0],[6,0,0,1,0],[10,2,0,0,1],[6,0,0,0,0],[3,0,0,0,0],[11,1,0,0,0],[4,1,1,0,0],[3,0,1,0,0],[0,0,1,1,0],[4,0,0,0,0],[5,0,1,0,0],[0,0,1,0,0],[7,0,1,0,0],[11,1,1,0,0],[7,0,0,0,0],[10,1,0,0,0],[12,2,0,0,1],[6,1,0,1,0],[7,1,0,1,0],[4,0,0,1,0],[3,0,0,1,0],[3,0,1,1,0],[4,0,1,0,0],[6,1,0,0,0],[11,0,0,0,0],[8,0,0,1,0],[5,0,0,1,0],[14,2,0,0,1],[5,0,0,0,0],[12,1,0,0,0],[10,1,1,0,0],[4,0,1,1,0],[12,1,1,0,0],[7,1,0,0,0],[11,0,1,0,0],[10,0,0,0,0],[13,2,0,0,1],[10,0,0,1,0],[11,0,0,1,0],[9,0,1,0,0],[8,0,1,0,0],[6,2,0,0,1],[8,0,0,0,0],[9,0,0,1,0],[14,1,0,0,0],[5,1,0,1,0],[16,0,1,1,0],[8,1,0,1,0],[5,1,0,0,0],[12,0,0,0,0],[7,2,0,0,1],[12,0,1,0,0],[10,0,1,0,0],[9,0,0,0,0],[13,1,0,0,0],[16,0,0,1,0],[15,0,1,1,0],[15,0,1,0,0],[16,0,1,0,0],[14,1,1,0,0],[13,1,1,0,0],[5,2,0,0,1],[8,1,0,0,0],[14,0,0,0,0],[9,1,0,1,0],[14,0,0,1,0],[17,0,0,1,0],[12,0,0,1,0],[16,0,0,0,0],[17,0,1,1,0],[15,0,0,1,0],[16,1,0,1,0],[9,1,0,0,0],[15,0,0,0,0],[13,0,0,0,0],[8,2,0,0,1],[13,0,1,0,0],[17,1,0,1,0],[19,0,1,0,0],[14,0,1,0,0],[19,0,1,1,0],[17,0,1,0,0],[13,0,0,1,0],[17,0,0,0,0],[16,1,0,0,0],[9,2,0,0,1],[15,1,0,1,0],[15,1,0,0,0],[18,0,1,1,0],[18,0,0,1,0],[19,0,0,1,0],[17,1,0,0,0],[19,0,0,0,0],[18,0,1,0,0],[18,1,0,1,0],[19,2,0,0,1],[19,1,0,0,0],[18,0,0,0,0],[19,1,0,1,0],[18,1,0,0,0]];
const FACE_CENTERS = [[0.2199307791404606,0.6583691780274996,0.7198475378926182],[-0.2139234834501421,0.1478171829550703,0.9656017935214205],[0.1092625278784797,-0.4811951572873210,0.8697775121287253],[0.7428567301586791,-0.3593941678278028,0.5648005936517033],[0.8112534709140969,0.3448953237639384,0.4721387736413930],[-0.1055498149613921,0.9794457296411413,0.1718874610009365],[-0.8075407579970092,0.1533552485898818,0.5695261994882688],[-0.2846148069787907,-0.8644080972654206,0.4144792552473539],[0.7405621473854482,-0.6673299564565524,-0.0789837646326737],[0.8512303986474293,0.4722343788582681,-0.2289137388687808],[-0.7405621473854481,0.6673299564565524,0.0789837646326737],[-0.8512303986474292,-0.4722343788582682,0.2289137388687808],[0.1055498149613919,-0.9794457296411413,-0.1718874610009365],[0.8075407579970092,-0.1533552485898819,-0.5695261994882688],[0.2846148069787908,0.8644080972654204,-0.4144792552473539],[-0.7428567301586791,0.3593941678278027,-0.5648005936517033],[-0.8112534709140971,-0.3448953237639382,-0.4721387736413930],[-0.2199307791404607,-0.6583691780274996,-0.7198475378926182],[0.2139234834501420,-0.1478171829550704,-0.9656017935214205],[-0.1092625278784796,0.4811951572873210,-0.8697775121287253]];
const FACE_AXIS_AZ = [5.619958268523939882,5.760339081714187279,0.780213654393430055,0.430469363979999913,6.130269123335111400,2.692877706530642877,2.982963003477243874,3.532912002790141181,3.494305004259568154,3.003214169499538391,5.930472956509811562,0.138378484090254847,0.448714947059150361,0.158629650112549365,5.891865957979238535,2.711123289609793325,3.294508837434268316,3.804819692245439833,3.664438879055192436,2.361378999196363184];
// per face: [central, ij, ki, jk] as [face, i, j, k, ccwRot60]
const FACE_NEIGHBORS = [[[0,0,0,0,0],[4,2,0,2,1],[1,2,2,0,5],[5,0,2,2,3]],
  [[1,0,0,0,0],[0,2,0,2,1],[2,2,2,0,5],[6,0,2,2,3]],
  [[2,0,0,0,0],[1,2,0,2,1],[3,2,2,0,5],[7,0,2,2,3]],
  [[3,0,0,0,0],[2,2,0,2,1],[4,2,2,0,5],[8,0,2,2,3]],
  [[4,0,0,0,0],[3,2,0,2,1],[0,2,2,0,5],[9,0,2,2,3]],
  [[5,0,0,0,0],[10,2,2,0,3],[14,2,0,2,3],[0,0,2,2,3]],
  [[6,0,0,0,0],[11,2,2,0,3],[10,2,0,2,3],[1,0,2,2,3]],
  [[7,0,0,0,0],[12,2,2,0,3],[11,2,0,2,3],[2,0,2,2,3]],
  [[8,0,0,0,0],[13,2,2,0,3],[12,2,0,2,3],[3,0,2,2,3]],
  [[9,0,0,0,0],[14,2,2,0,3],[13,2,0,2,3],[4,0,2,2,3]],
  [[10,0,0,0,0],[5,2,2,0,3],[6,2,0,2,3],[15,0,2,2,3]],
  [[11,0,0,0,0],[6,2,2,0,3],[7,2,0,2,3],[16,0,2,2,3]],
  [[12,0,0,0,0],[7,2,2,0,3],[8,2,0,2,3],[17,0,2,2,3]],
  [[13,0,0,0,0],[8,2,2,0,3],[9,2,0,2,3],[18,0,2,2,3]],
  [[14,0,0,0,0],[9,2,2,0,3],[5,2,0,2,3],[19,0,2,2,3]],
  [[15,0,0,0,0],[16,2,0,2,1],[19,2,2,0,5],[10,0,2,2,3]],
  [[16,0,0,0,0],[17,2,0,2,1],[15,2,2,0,5],[11,0,2,2,3]],
  [[17,0,0,0,0],[18,2,0,2,1],[16,2,2,0,5],[12,0,2,2,3]],
  [[18,0,0,0,0],[19,2,0,2,1],[17,2,2,0,5],[13,0,2,2,3]],
  [[19,0,0,0,0],[15,2,0,2,1],[18,2,2,0,5],[14,0,2,2,3]]];

const SQRT3_2 = 0.8660254037844386, AP7_ROT = 0.3334731722518321, RES0_U = 0.38196601125010500003;
const RSQRT7 = 0.37796447300922722, EPS = 1e-16, TWO_PI = 2 * Math.PI;
// The unit vectors of the digits 0-6 (centre, k, j, jk, i, ik, ij) as ijk.
const UNIT = [[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1], [1, 0, 0], [1, 0, 1], [1, 1, 0]];
const VERTS_II = [[2, 1, 0], [1, 2, 0], [0, 2, 1], [0, 1, 2], [1, 0, 2], [2, 0, 1]];
const VERTS_III = [[5, 4, 0], [1, 5, 0], [0, 5, 4], [0, 1, 5], [4, 0, 5], [5, 0, 1]];
const IJ = 1, KI = 2, JK = 3;

const classIII = res => res % 2 === 1;
const maxDim = res => 2 * 7 ** (res / 2);
const unitScale = res => 7 ** (res / 2);
const posAngle = a => (a < 0 ? a + TWO_PI : a >= TWO_PI ? a - TWO_PI : a);

function normalize(c) {
  if (c[0] < 0) { c[1] -= c[0]; c[2] -= c[0]; c[0] = 0; }
  if (c[1] < 0) { c[0] -= c[1]; c[2] -= c[1]; c[1] = 0; }
  if (c[2] < 0) { c[0] -= c[2]; c[1] -= c[2]; c[2] = 0; }
  const m = Math.min(c[0], c[1], c[2]);
  if (m > 0) { c[0] -= m; c[1] -= m; c[2] -= m; }
  return c;
}
// c ← i·a + j·b + k·d for the unit-vector images a, b, d (aperture steps and rotations).
function transform(c, a, b, d) {
  const [i, j, k] = c;
  c[0] = i * a[0] + j * b[0] + k * d[0]; c[1] = i * a[1] + j * b[1] + k * d[1]; c[2] = i * a[2] + j * b[2] + k * d[2];
  return normalize(c);
}
const downAp7 = c => transform(c, [3, 0, 1], [1, 3, 0], [0, 1, 3]);
const downAp7r = c => transform(c, [3, 1, 0], [0, 3, 1], [1, 0, 3]);
const downAp3 = c => transform(c, [2, 0, 1], [1, 2, 0], [0, 1, 2]);
const downAp3r = c => transform(c, [2, 1, 0], [0, 2, 1], [1, 0, 2]);
const rot60ccw = c => transform(c, [1, 1, 0], [0, 1, 1], [1, 0, 1]);
const rot60cw = c => transform(c, [1, 0, 1], [1, 1, 0], [0, 1, 1]);
function upAp7r(c) {
  const i = c[0] - c[2], j = c[1] - c[2];
  c[0] = Math.round((2 * i + j) / 7); c[1] = Math.round((3 * j - i) / 7); c[2] = 0;
  return normalize(c);
}

// ---- the index's bits (BigInt: a cell is 64 bits)
export const resolution = h => Number((h >> 52n) & 15n);
const baseCell = h => Number((h >> 45n) & 127n);
const digit = (h, r) => Number((h >> BigInt((15 - r) * 3)) & 7n);
const setDigit = (h, r, d) => (h & ~(7n << BigInt((15 - r) * 3))) | (BigInt(d) << BigInt((15 - r) * 3));
const ROT_CW = [0, 3, 6, 2, 5, 1, 4];  // k→jk, jk→j, j→ij, ij→i, i→ik, ik→k
function leadingDigit(h) {
  for (let r = 1; r <= resolution(h); r++) if (digit(h, r)) return digit(h, r);
  return 0;
}
function rotateCw(h) {
  for (let r = 1, n = resolution(h); r <= n; r++) h = setDigit(h, r, ROT_CW[digit(h, r)]);
  return h;
}
const isPentagonBase = bc => BASE_CELLS[bc][4] === 1;
export const isPentagon = h => isPentagonBase(baseCell(h)) && leadingDigit(h) === 0;

export const parse = hex => BigInt('0x' + hex);
export const format = h => h.toString(16);

/** The H3 cell id → its face and ijk coordinates (H3's _h3ToFaceIjk). */
function faceIjk(h) {
  const bc = baseCell(h), res = resolution(h);
  if (isPentagonBase(bc) && leadingDigit(h) === 5) h = rotateCw(h);
  const [face, i, j, k] = BASE_CELLS[bc];
  const f = { face, coord: [i, j, k] };
  const possibleOverage = isPentagonBase(bc) || !(res === 0 || (i === 0 && j === 0 && k === 0));
  for (let r = 1; r <= res; r++) {
    if (classIII(r)) downAp7(f.coord); else downAp7r(f.coord);
    const d = digit(h, r);
    if (d > 0 && d < 7) { const u = UNIT[d]; f.coord[0] += u[0]; f.coord[1] += u[1]; f.coord[2] += u[2]; normalize(f.coord); }
  }
  if (!possibleOverage) return f;
  const orig = f.coord.slice();
  let adj = res;
  if (classIII(res)) { downAp7r(f.coord); adj++; }
  const pentLeading4 = isPentagonBase(bc) && leadingDigit(h) === 4;
  if (adjustOverage(f, adj, pentLeading4, false) !== 0) {
    if (isPentagonBase(bc)) while (adjustOverage(f, adj, false, false) !== 0);
    if (adj !== res) upAp7r(f.coord);
  } else if (adj !== res) f.coord = orig;
  return f;
}

/** Moves an address past its face's edge onto the neighbouring face: 0 none, 1 on the edge, 2 moved. */
function adjustOverage(f, res, pentLeading4, substrate) {
  const c = f.coord;
  const dim = maxDim(res) * (substrate ? 3 : 1);
  const sum = () => c[0] + c[1] + c[2];
  if (substrate && sum() === dim) return 1;
  if (sum() <= dim) return 0;
  let quadrant;
  if (c[2] > 0) {
    if (c[1] > 0) quadrant = JK;
    else {
      quadrant = KI;
      if (pentLeading4) {
        const t = [c[0] - dim, c[1], c[2]];
        rot60cw(t);
        c[0] = t[0] + dim; c[1] = t[1]; c[2] = t[2];
      }
    }
  } else quadrant = IJ;
  const [face, ti, tj, tk, rot] = FACE_NEIGHBORS[f.face][quadrant];
  f.face = face;
  for (let n = 0; n < rot; n++) rot60ccw(c);
  const s = unitScale(res) * (substrate ? 3 : 1);
  c[0] += ti * s; c[1] += tj * s; c[2] += tk * s;
  normalize(c);
  return substrate && sum() === dim ? 1 : 2;
}

/** A substrate-grid vertex (hex2d on a face) → [lng, lat] in degrees (H3's _hex2dToVec3 with substrate). */
function toLngLat(c, face, res) {
  const i = c[0] - c[2], j = c[1] - c[2];
  const x = i - 0.5 * j, y = j * SQRT3_2;
  let r = Math.hypot(x, y);
  const p = FACE_CENTERS[face];
  let v;
  if (r < EPS) v = p;
  else {
    let theta = Math.atan2(y, x);
    for (let n = 0; n < res; n++) r *= RSQRT7;
    r /= 3;
    if (classIII(res)) r *= RSQRT7;
    r = Math.atan(r * RES0_U);
    theta = posAngle(FACE_AXIS_AZ[face] - theta);
    // The tangent plane's north and east at the face centre.
    const dot = p[2];
    let north = [-dot * p[0], -dot * p[1], 1 - dot * p[2]];
    const nn = Math.hypot(...north);
    north = north.map(q => q / nn);
    const east = [north[1] * p[2] - north[2] * p[1], north[2] * p[0] - north[0] * p[2], north[0] * p[1] - north[1] * p[0]];
    const dir = [0, 1, 2].map(q => Math.cos(theta) * north[q] + Math.sin(theta) * east[q]);
    v = [0, 1, 2].map(q => Math.cos(r) * p[q] + Math.sin(r) * dir[q]);
    const n = Math.hypot(...v);
    v = v.map(q => q / n);
  }
  return [Math.atan2(v[1], v[0]) * 180 / Math.PI, Math.asin(Math.max(-1, Math.min(1, v[2]))) * 180 / Math.PI];
}

/** The cell's corners as [[lng, lat], ...] (open ring), longitudes kept continuous across ±180. */
export function cellToBoundary(h) {
  if (typeof h === 'string') h = parse(h);
  const res = resolution(h), pent = isPentagon(h);
  const f = faceIjk(h);
  let adj = res;
  downAp3(f.coord); downAp3r(f.coord);
  if (classIII(res)) { downAp7r(f.coord); adj++; }
  const base = classIII(res) ? VERTS_III : VERTS_II;
  const out = [];
  for (let n = 0; n < (pent ? 5 : 6); n++) {
    const v = { face: f.face, coord: normalize([f.coord[0] + base[n][0], f.coord[1] + base[n][1], f.coord[2] + base[n][2]]) };
    if (pent) while (adjustOverage(v, adj, false, true) === 2);
    else adjustOverage(v, adj, false, true);
    out.push(toLngLat(v.coord, v.face, adj));
  }
  for (let n = 1; n < out.length; n++) {
    while (out[n][0] - out[n - 1][0] > 180) out[n][0] -= 360;
    while (out[n][0] - out[n - 1][0] < -180) out[n][0] += 360;
  }
  return out;
}

/** The 122 resolution-0 cells. */
export function baseCells() {
  const unused = (1n << 45n) - 1n;
  return BASE_CELLS.map((_, bc) => (1n << 59n) | (BigInt(bc) << 45n) | unused);
}

/** The cell's children one resolution finer (a pentagon has no k-axis child). */
export function children(h) {
  const r = resolution(h) + 1, out = [];
  const child = (h & ~(15n << 52n)) | (BigInt(r) << 52n);
  for (let d = 0; d < 7; d++) {
    if (d === 1 && isPentagon(h)) continue;
    out.push(setDigit(child, r, d));
  }
  return out;
}

/**
 * The cells at resolution `res` whose descendants may lie in the box [west, south, east, north]
 * (degrees): found from the base cells down, keeping a cell when its boundary's box, grown by half its
 * size each way (descendants overhang their ancestor), meets the box — a superset, as the Maps API's
 * own H3 tile region is.
 */
export function cover([w, s, e, n], res) {
  let cells = baseCells();
  for (let r = 0; ; r++) {
    cells = cells.filter(h => meets(h, w, s, e, n));
    if (r === res) return cells;
    cells = cells.flatMap(children);
  }
}

function meets(h, w, s, e, n) {
  const b = cellToBoundary(h);
  const lats = b.map(p => p[1]);
  let x0 = Math.min(...b.map(p => p[0])), x1 = Math.max(...b.map(p => p[0]));
  let y0 = Math.min(...lats), y1 = Math.max(...lats);
  const gx = (x1 - x0) / 2, gy = (y1 - y0) / 2;
  x0 -= gx; x1 += gx; y0 -= gy; y1 += gy;
  // A pole's cells and the ring round it: their boxes span every longitude.
  if (y1 > 88 || y0 < -88 || isPentagon(h) && resolution(h) < 2) { x0 = -540; x1 = 540; }
  if (y0 > n || y1 < s) return false;
  return [-360, 0, 360].some(k => x0 + k <= e && x1 + k >= w);
}

/**
 * The H3 tile resolution for a 256-px map zoom (deck.gl's H3 tile layer picks about 2/3 of its 512-px zoom,
 * less 2): a tile's cell is about one map tile wide or wider; the cells drawn are `aggregationResLevel` finer.
 */
export function tileResolution(zoom) {
  return Math.max(0, Math.min(15, Math.floor((2 / 3) * (zoom - 1) - 1.5)));
}
