/*
 * tessera_h3: the H3 functions Tessera's sources, tiles and widgets need, in C so that a request can
 * aggregate a million points. Cells cross this boundary as bigint; the hex-string forms CARTO uses are
 * SQL wrappers (tessera_h3--1.0.sql). Geometries cross as (E)WKB so the module needs no PostGIS headers.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "h3api.h"
#include "polyfill.h"

PG_MODULE_MAGIC;

/* Past a caller's cell bound (polyfill, children): a class of its own so the API can answer 400. */
#define ERRCODE_H3_TOO_MANY_CELLS MAKE_SQLSTATE('T', 'H', '3', '0', '1')

static void
check_res(int32 res)
{
	if (res < 0 || res > MAX_H3_RES)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("H3 resolution %d is out of range: it must be between 0 and 15", res)));
}

static H3Index
check_cell(int64 value)
{
	if (!isValidCell((H3Index) value))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid H3 cell id: %llx", (unsigned long long) value)));
	return (H3Index) value;
}

static void
too_many_cells(const char *what, int64 max_cells)
{
	ereport(ERROR, (errcode(ERRCODE_H3_TOO_MANY_CELLS),
					errmsg("H3 %s would return more than %lld cells", what, (long long) max_cells),
					errhint("Use a coarser resolution or a smaller area.")));
}

static ArrayType *
cells_array(const H3Index *cells, int64 n)
{
	Datum	   *d = palloc(sizeof(Datum) * (n > 0 ? n : 1));

	for (int64 i = 0; i < n; i++)
		d[i] = Int64GetDatum((int64) cells[i]);
	return construct_array(d, (int) n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* Strict hex (1-16 digits, no sign, prefix or spaces): CARTO's cell ids are plain hex strings. */
static bool
parse_hex(const char *s, int len, uint64 *out)
{
	uint64		v = 0;

	if (len < 1 || len > 16)
		return false;
	for (int i = 0; i < len; i++)
	{
		char		c = s[i];
		int			d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return false;
		v = (v << 4) | (uint64) d;
	}
	*out = v;
	return true;
}

PG_FUNCTION_INFO_V1(tessera_h3_lonlat_to_cell);
Datum
tessera_h3_lonlat_to_cell(PG_FUNCTION_ARGS)
{
	float8		lon = PG_GETARG_FLOAT8(0);
	float8		lat = PG_GETARG_FLOAT8(1);
	int32		res = PG_GETARG_INT32(2);
	LatLng		ll;
	H3Index		cell;

	check_res(res);
	/* A stray NaN/infinite point must not abort a million-row aggregation: it has no cell. */
	if (!isfinite(lon) || !isfinite(lat))
		PG_RETURN_NULL();
	ll.lat = degsToRads(lat);
	ll.lng = degsToRads(lon);
	if (latLngToCell(&ll, res, &cell) != E_SUCCESS)
		PG_RETURN_NULL();
	PG_RETURN_INT64((int64) cell);
}

/*
 * The common case of h3_fromgeogpoint read straight from PostGIS 3's serialized point (GSERIALIZED v2:
 * 3 SRID bytes, a flags byte, then type, count and native-endian doubles), which saves the two
 * ST_X/ST_Y calls that dominate a million-point aggregation. Anything else (another SRID, a bounding
 * box, an empty or non-point geometry, another format) returns NULL and the SQL wrapper takes the
 * PostGIS path, so this never decides an answer it is unsure of.
 */
#define G2FLAG_Z 0x01
#define G2FLAG_M 0x02
#define G2FLAG_VER_0 0x40

PG_FUNCTION_INFO_V1(tessera_h3_point_to_cell);
Datum
tessera_h3_point_to_cell(PG_FUNCTION_ARGS)
{
	struct varlena *g = PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(0));
	int32		res = PG_GETARG_INT32(1);
	const uint8 *p = (const uint8 *) VARDATA_ANY(g);
	size_t		len = VARSIZE_ANY_EXHDR(g);
	int32		srid;
	uint32		type,
				npoints;
	double		x,
				y;
	LatLng		ll;
	H3Index		cell;

	check_res(res);
	if (len < 4 + 8 + 16 || (p[3] & ~(G2FLAG_Z | G2FLAG_M)) != G2FLAG_VER_0)
		PG_RETURN_NULL();
	srid = (int32) (((uint32) p[0] << 16 | (uint32) p[1] << 8 | p[2]) << 11) >> 11;
	memcpy(&type, p + 4, 4);
	memcpy(&npoints, p + 8, 4);
	if ((srid != 0 && srid != 4326) || type != 1 || npoints != 1)
		PG_RETURN_NULL();
	memcpy(&x, p + 12, 8);
	memcpy(&y, p + 20, 8);
	if (!isfinite(x) || !isfinite(y))
		PG_RETURN_NULL();
	ll.lat = degsToRads(y);
	ll.lng = degsToRads(x);
	if (latLngToCell(&ll, res, &cell) != E_SUCCESS)
		PG_RETURN_NULL();
	PG_RETURN_INT64((int64) cell);
}

PG_FUNCTION_INFO_V1(tessera_h3_string_to_int);
Datum
tessera_h3_string_to_int(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	uint64		v;

	if (!parse_hex(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &v))
		ereport(ERROR, (errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						errmsg("invalid H3 cell id \"%s\": expected a hexadecimal string", text_to_cstring(t))));
	PG_RETURN_INT64((int64) v);
}

PG_FUNCTION_INFO_V1(tessera_h3_int_to_string);
Datum
tessera_h3_int_to_string(PG_FUNCTION_ARGS)
{
	char		buf[17];

	snprintf(buf, sizeof buf, "%llx", (unsigned long long) PG_GETARG_INT64(0));
	PG_RETURN_TEXT_P(cstring_to_text(buf));
}

PG_FUNCTION_INFO_V1(tessera_h3_is_valid_string);
Datum
tessera_h3_is_valid_string(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	uint64		v;

	PG_RETURN_BOOL(parse_hex(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), &v) && isValidCell((H3Index) v));
}

PG_FUNCTION_INFO_V1(tessera_h3_is_valid);
Datum
tessera_h3_is_valid(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(isValidCell((H3Index) PG_GETARG_INT64(0)));
}

PG_FUNCTION_INFO_V1(tessera_h3_resolution);
Datum
tessera_h3_resolution(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(getResolution(check_cell(PG_GETARG_INT64(0))));
}

PG_FUNCTION_INFO_V1(tessera_h3_to_parent);
Datum
tessera_h3_to_parent(PG_FUNCTION_ARGS)
{
	H3Index		cell = check_cell(PG_GETARG_INT64(0));
	int32		res = PG_GETARG_INT32(1);
	H3Index		parent;

	check_res(res);
	if (res > getResolution(cell))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("H3 parent resolution %d is finer than the cell's resolution %d", res, getResolution(cell))));
	if (cellToParent(cell, res, &parent) != E_SUCCESS)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("H3 cellToParent failed")));
	PG_RETURN_INT64((int64) parent);
}

PG_FUNCTION_INFO_V1(tessera_h3_to_children);
Datum
tessera_h3_to_children(PG_FUNCTION_ARGS)
{
	H3Index		cell = check_cell(PG_GETARG_INT64(0));
	int32		res = PG_GETARG_INT32(1);
	int64		max_cells = PG_GETARG_INT64(2);
	int64		n;
	H3Index    *out;

	check_res(res);
	if (res < getResolution(cell))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("H3 children resolution %d is coarser than the cell's resolution %d", res, getResolution(cell))));
	if (cellToChildrenSize(cell, res, &n) != E_SUCCESS)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("H3 cellToChildrenSize failed")));
	if (n > max_cells)
		too_many_cells("children", max_cells);
	out = palloc(sizeof(H3Index) * n);
	if (cellToChildren(cell, res, out) != E_SUCCESS)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("H3 cellToChildren failed")));
	PG_RETURN_ARRAYTYPE_P(cells_array(out, n));
}

/* EWKB writer: little-endian, SRID 4326, lon/lat degrees. */
static bytea *
ewkb_begin(uint32 type, size_t payload, char **p)
{
	bytea	   *b = palloc(VARHDRSZ + 9 + payload);
	uint32		t = type | 0x20000000;
	uint32		srid = 4326;

	SET_VARSIZE(b, VARHDRSZ + 9 + payload);
	*p = VARDATA(b);
	*(*p)++ = 1;
	memcpy(*p, &t, 4);
	*p += 4;
	memcpy(*p, &srid, 4);
	*p += 4;
	return b;
}

static void
put_u32(char **p, uint32 v)
{
	memcpy(*p, &v, 4);
	*p += 4;
}

static void
put_lonlat(char **p, const LatLng *ll)
{
	double		lon = radsToDegs(ll->lng);
	double		lat = radsToDegs(ll->lat);

	memcpy(*p, &lon, 8);
	memcpy(*p + 8, &lat, 8);
	*p += 16;
}

PG_FUNCTION_INFO_V1(tessera_h3_boundary_ewkb);
Datum
tessera_h3_boundary_ewkb(PG_FUNCTION_ARGS)
{
	H3Index		cell = check_cell(PG_GETARG_INT64(0));
	CellBoundary cb;
	bytea	   *b;
	char	   *p;

	if (cellToBoundary(cell, &cb) != E_SUCCESS)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("H3 cellToBoundary failed")));
	b = ewkb_begin(3, 8 + 16 * (cb.numVerts + 1), &p);
	put_u32(&p, 1);
	put_u32(&p, cb.numVerts + 1);
	for (int i = 0; i < cb.numVerts; i++)
		put_lonlat(&p, &cb.verts[i]);
	put_lonlat(&p, &cb.verts[0]);
	PG_RETURN_BYTEA_P(b);
}

PG_FUNCTION_INFO_V1(tessera_h3_center_ewkb);
Datum
tessera_h3_center_ewkb(PG_FUNCTION_ARGS)
{
	H3Index		cell = check_cell(PG_GETARG_INT64(0));
	LatLng		ll;
	bytea	   *b;
	char	   *p;

	if (cellToLatLng(cell, &ll) != E_SUCCESS)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("H3 cellToLatLng failed")));
	b = ewkb_begin(1, 16, &p);
	put_lonlat(&p, &ll);
	PG_RETURN_BYTEA_P(b);
}

/* WKB reader for the 2D polygons ST_AsBinary(ST_Force2D(...)) hands over. */
typedef struct
{
	const uint8 *p;
	const uint8 *end;
} WkbReader;

static void
wkb_need(WkbReader *r, size_t n)
{
	if ((size_t) (r->end - r->p) < n)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("H3 polyfill: truncated WKB")));
}

static uint32
wkb_u32(WkbReader *r, bool le)
{
	uint32		v;

	wkb_need(r, 4);
	v = le ? (uint32) r->p[0] | (uint32) r->p[1] << 8 | (uint32) r->p[2] << 16 | (uint32) r->p[3] << 24
		: (uint32) r->p[3] | (uint32) r->p[2] << 8 | (uint32) r->p[1] << 16 | (uint32) r->p[0] << 24;
	r->p += 4;
	return v;
}

static double
wkb_f64(WkbReader *r, bool le)
{
	uint64		v = 0;
	double		d;

	wkb_need(r, 8);
	for (int i = 0; i < 8; i++)
		v |= (uint64) r->p[le ? i : 7 - i] << (8 * i);
	r->p += 8;
	memcpy(&d, &v, 8);
	return d;
}

typedef struct
{
	H3Index    *cells;
	int64		n;
	int64		cap;
	int64		max_cells;
} CellSet;

static void
read_loop(WkbReader *r, bool le, GeoLoop *loop)
{
	uint32		n = wkb_u32(r, le);

	wkb_need(r, (size_t) n * 16);
	loop->verts = palloc(sizeof(LatLng) * (n > 0 ? n : 1));
	loop->numVerts = 0;
	for (uint32 i = 0; i < n; i++)
	{
		double		x = wkb_f64(r, le);
		double		y = wkb_f64(r, le);

		loop->verts[i].lng = degsToRads(x);
		loop->verts[i].lat = degsToRads(y);
	}
	/* H3 loops are implicitly closed; the repeated first vertex is dropped as h3-py does. */
	if (n > 1 && loop->verts[0].lat == loop->verts[n - 1].lat && loop->verts[0].lng == loop->verts[n - 1].lng)
		n--;
	loop->numVerts = (int) n;
}

static void
fill_polygon(WkbReader *r, bool le, int res, CellSet *set)
{
	uint32		nrings = wkb_u32(r, le);
	GeoPolygon	gp;
	IterCellsPolygon it;

	if (nrings == 0)
		return;
	read_loop(r, le, &gp.geoloop);
	gp.numHoles = (int) nrings - 1;
	gp.holes = palloc(sizeof(GeoLoop) * (nrings > 1 ? nrings - 1 : 1));
	for (uint32 i = 1; i < nrings; i++)
		read_loop(r, le, &gp.holes[i - 1]);
	if (gp.geoloop.numVerts < 3)
		return;
	/* The iterator yields the same cells as polygonToCells without allocating for its estimate. */
	it = iterInitPolygon(&gp, res, CONTAINMENT_CENTER);
	for (; it.cell; iterStepPolygon(&it))
	{
		if (set->n >= set->max_cells)
		{
			iterDestroyPolygon(&it);
			too_many_cells("polyfill", set->max_cells);
		}
		if (set->n == set->cap)
		{
			set->cap = set->cap ? set->cap * 2 : 1024;
			set->cells = set->cells ? repalloc_huge(set->cells, sizeof(H3Index) * set->cap)
				: palloc_extended(sizeof(H3Index) * set->cap, MCXT_ALLOC_HUGE);
		}
		set->cells[set->n++] = it.cell;
	}
	if (it.error != E_SUCCESS)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("H3 polyfill failed (H3 error %d)", (int) it.error)));
}

static void
fill_geometry(WkbReader *r, int res, CellSet *set, int depth)
{
	bool		le;
	uint32		type;

	wkb_need(r, 1);
	le = *r->p++ == 1;
	type = wkb_u32(r, le);
	if (type == 3)
		fill_polygon(r, le, res, set);
	else if ((type == 6 || type == 7) && depth < 8)
	{
		uint32		n = wkb_u32(r, le);

		for (uint32 i = 0; i < n; i++)
			fill_geometry(r, res, set, depth + 1);
	}
	else
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("H3 polyfill needs a polygon or multipolygon (WKB type %u)", type)));
}

static int
cmp_cell(const void *a, const void *b)
{
	H3Index		x = *(const H3Index *) a,
				y = *(const H3Index *) b;

	return x < y ? -1 : x > y;
}

PG_FUNCTION_INFO_V1(tessera_h3_polyfill_wkb);
Datum
tessera_h3_polyfill_wkb(PG_FUNCTION_ARGS)
{
	bytea	   *wkb = PG_GETARG_BYTEA_PP(0);
	int32		res = PG_GETARG_INT32(1);
	CellSet		set = {NULL, 0, 0, PG_GETARG_INT64(2)};
	WkbReader	r = {(const uint8 *) VARDATA_ANY(wkb), (const uint8 *) VARDATA_ANY(wkb) + VARSIZE_ANY_EXHDR(wkb)};
	int64		n = 0;

	check_res(res);
	fill_geometry(&r, res, &set, 0);
	/* Parts of a multipolygon may share a cell centre on their common edge: each cell once. */
	if (set.n > 1)
	{
		qsort(set.cells, set.n, sizeof(H3Index), cmp_cell);
		for (int64 i = 0; i < set.n; i++)
			if (n == 0 || set.cells[i] != set.cells[n - 1])
				set.cells[n++] = set.cells[i];
	}
	else
		n = set.n;
	PG_RETURN_ARRAYTYPE_P(cells_array(set.cells, n));
}
