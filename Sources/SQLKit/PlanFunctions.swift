/// Finds the functions a query calls, from the expressions PostgreSQL prints in an EXPLAIN VERBOSE plan.
/// Scoped tokens may only call functions on an allow-list: functions such as `query_to_xml` or a
/// PL/pgSQL function read tables the planner never lists as scans. Unknown names fail closed.
/// In SQLKit (pure) because the Maps API's widget `operationExp` is held to the same allow-list.
public enum PlanFunctions {
    /// Plan keys whose strings are names, not expressions.
    public static let nameKeys: Set<String> = [
        "Node Type", "Relation Name", "Schema", "Alias", "Index Name", "CTE Name", "Subplan Name", "Parent Relationship",
        "Strategy", "Partial Mode", "Join Type", "Scan Direction", "Operation", "Command", "Sort Method", "Sort Space Type",
        "Setop", "Cache Key", "Cache Mode", "Presorted Key",
    ]

    /// SQL words that precede a parenthesis in deparsed expressions without being function calls.
    public static let keywords: Set<String> = [
        "and", "or", "not", "in", "any", "all", "some", "array", "row", "case", "when", "then", "else", "end", "is",
        "like", "ilike", "similar", "between", "over", "filter", "within", "group", "partition", "by", "order", "exists",
        "distinct", "values", "collate", "zone", "at", "varying", "precision", "time", "timestamp", "with", "without",
        "cast", "nullif", "coalesce", "greatest", "least", "subplan", "initplan", "hashed", "as", "asc", "desc", "nulls",
        "first", "last", "interval", "numeric", "character", "bit", "decimal", "varchar", "char",
    ]

    public static let allowed: Set<String> = [
        // aggregates and window functions
        "count", "sum", "avg", "min", "max", "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp",
        "array_agg", "string_agg", "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg", "bool_and", "bool_or",
        "every", "percentile_cont", "percentile_disc", "mode", "corr", "covar_pop", "covar_samp", "regr_slope",
        "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead", "first_value",
        "last_value", "nth_value",
        // text
        "lower", "upper", "initcap", "length", "char_length", "character_length", "octet_length", "substr", "substring",
        "left", "right", "trim", "btrim", "ltrim", "rtrim", "lpad", "rpad", "replace", "concat", "concat_ws",
        "split_part", "position", "strpos", "starts_with", "reverse", "repeat", "format", "md5", "translate",
        "regexp_replace", "regexp_match", "unaccent", "textcat", "quote_literal", "to_hex",
        // numbers
        "abs", "round", "trunc", "floor", "ceil", "ceiling", "sqrt", "cbrt", "power", "pow", "ln", "log", "log10",
        "exp", "mod", "sign", "div", "width_bucket", "random", "pi", "degrees", "radians", "sin", "cos", "tan",
        "asin", "acos", "atan", "atan2", "float8", "float4", "int2", "int4", "int8", "bpchar", "text", "bool",
        // dates
        "now", "date_trunc", "date_part", "extract", "to_char", "to_date", "to_timestamp", "to_number", "age",
        "make_date", "make_time", "make_timestamp", "make_timestamptz", "make_interval", "timezone", "date_bin",
        "clock_timestamp", "statement_timestamp", "transaction_timestamp", "justify_days", "justify_hours", "isfinite",
        // json
        "to_json", "to_jsonb", "row_to_json", "json_build_object", "jsonb_build_object", "json_build_array",
        "jsonb_build_array", "jsonb_extract_path", "jsonb_extract_path_text", "json_extract_path",
        "json_extract_path_text", "jsonb_typeof", "json_typeof", "jsonb_array_length", "json_array_length",
        // arrays
        "array_length", "cardinality", "array_position", "array_to_string",
        // spatial-index helpers shipped by Tessera
        "quadbin_from_lonlat", "quadbin_boundary", "quadbin_center", "quadbin_resolution", "quadbin_tochildren",
    ]

    /// PostGIS functions are allowed except those that read other tables or the catalog.
    public static let refusedPostGIS: Set<String> = ["st_estimatedextent", "st_find_extent", "find_srid", "updategeometrysrid"]

    public static func isAllowed(_ name: String) -> Bool {
        let n = name.lowercased()
        if refusedPostGIS.contains(n) { return false }
        // `postgis_*` are left out: postgis_constraint_srid(schema, table, column) and friends read the catalog.
        return allowed.contains(n) || n.hasPrefix("st_") || n.hasPrefix("geometry") || n.hasPrefix("geography")
            || n.hasPrefix("box2d")
    }

    /// Object-identifier types whose input function looks a name up in the catalog (and errors when it is
    /// missing): casting text to them probes for tables, roles, schemas or functions.
    static let catalogLookupTypes: Set<String> = [
        "regclass", "regrole", "regnamespace", "regproc", "regprocedure", "regtype", "regoper", "regoperator",
        "regconfig", "regdictionary", "regcollation",
    ]

    /// Whether SQL text may name a catalog-lookup type: any such word (even inside a string or quoted
    /// identifier, erring on the refusing side) or a Unicode-escaped identifier (`U&"…"`) that could spell one.
    public static func namesCatalogObject(_ sql: String) -> Bool {
        let lower = sql.lowercased()
        if String(lower.filter { $0 != " " }).contains("u&\"") { return true }
        var word = ""
        for c in lower.unicodeScalars {
            if c.properties.isAlphabetic || c == "_" || c.properties.numericType != nil {
                word.unicodeScalars.append(c)
            } else {
                if catalogLookupTypes.contains(word) { return true }
                word = ""
            }
        }
        return catalogLookupTypes.contains(word)
    }


    /// Scans one deparsed expression: identifiers (plain or quoted, optionally schema-qualified) directly
    /// followed by `(`, skipping string literals and type names after `::`.
    public static func functionNames(in expression: String) -> [String] {
        var names: [String] = []
        let chars = Array(expression.unicodeScalars)
        var i = 0
        var afterCast = false
        while i < chars.count {
            let c = chars[i]
            if c == "'" {
                i += 1
                while i < chars.count {
                    if chars[i] == "'" {
                        if i + 1 < chars.count, chars[i + 1] == "'" { i += 2; continue }
                        break
                    }
                    i += 1
                }
                i += 1
                afterCast = false
                continue
            }
            if c == ":" && i + 1 < chars.count && chars[i + 1] == ":" {
                afterCast = true
                i += 2
                continue
            }
            if c == "\"" || c.properties.isAlphabetic || c == "_" {
                var name = ""
                // identifier chain: a.b."c"
                repeat {
                    if i < chars.count, chars[i] == "." { name.unicodeScalars.append("."); i += 1 }
                    if i < chars.count, chars[i] == "\"" {
                        i += 1
                        var part = ""
                        while i < chars.count {
                            if chars[i] == "\"" {
                                if i + 1 < chars.count, chars[i + 1] == "\"" { part.unicodeScalars.append("\""); i += 2; continue }
                                break
                            }
                            part.unicodeScalars.append(chars[i])
                            i += 1
                        }
                        i += 1
                        name += part
                    } else {
                        while i < chars.count, chars[i].properties.isAlphabetic || chars[i].properties.numericType != nil || chars[i] == "_" || chars[i] == "$" {
                            name.unicodeScalars.append(chars[i])
                            i += 1
                        }
                    }
                } while i < chars.count && chars[i] == "."
                var j = i
                while j < chars.count, chars[j] == " " { j += 1 }
                if j < chars.count, chars[j] == "(", !afterCast {
                    let bare = name.split(separator: ".").last.map(String.init) ?? name
                    if !keywords.contains(bare.lowercased()) || name.contains(".") { names.append(name) }
                }
                afterCast = false
                continue
            }
            if c != " " { afterCast = false }
            i += 1
        }
        return names
    }
}
