"""tessera_h3 in the warehouse through the real CLI: warehouse-migrate reports it, and the functions
answer in carto_dw with the SQL API's role (the oracle comparison itself is Tests/h3)."""
from __future__ import annotations

import h3

import helpers as h


def test_warehouse_migrate_reports_tessera_h3(stack):
    r = h.tessera(stack, "warehouse-migrate", "--email", stack.admin_email, "--connection", "carto_dw")
    assert "001_quadbin.sql" in r.stdout and "tessera_h3 1.0" in r.stdout, r.stdout
    # The harness created it as carto_dw's owner (a trusted extension): no superuser was involved.
    assert h.warehouse(stack, "SELECT extowner::regrole FROM pg_extension WHERE extname = 'tessera_h3'") == "carto_dw"


def test_h3_functions_answer_in_carto_dw(stack):
    cell = h.warehouse(stack, "SELECT carto.h3_fromgeogpoint(ST_SetSRID(ST_MakePoint(-3.70, 40.42), 4326), 8)")
    assert cell == h3.latlng_to_cell(40.42, -3.70, 8)
