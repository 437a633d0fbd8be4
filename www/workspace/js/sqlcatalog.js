// What the SQL editor completes: a connection's schemas and tables from the explorer API, and the columns of
// the tables a query names, fetched when completion is asked for. In sql-hint's terms a schema is a
// "table" whose "columns" are its tables, so `public.` completes table names and `public.places.` columns.
import { api } from './http.js';

const MAX_FETCH = 6;

export class SqlCatalog {
  constructor(connection) {
    this.connection = connection;
    this.reset();
  }

  reset() {
    this.schemas = [];       // [{name, tables: [{name, fqn, geometryColumn}]}] for the schema browser
    this.tables = {};        // sql-hint's map: name → column names
    this.fqns = new Map();   // lower-case name as written ("places", "public.places") → fqn for the API
    this.loaded = new Set();
    this.ready = null;
  }

  load() {
    if (!this.ready) {
      const conn = encodeURIComponent(this.connection());
      this.ready = (async () => {
        const schemas = (await api.get(`/api/v3/workspace/connections/${conn}/schemas`)).data || [];
        await Promise.all(schemas.map(async s => {
          const tables = (await api.get(`/api/v3/workspace/connections/${conn}/schemas/${encodeURIComponent(s.name)}/tables`)).data || [];
          this.tables[s.name] = tables.map(t => t.name);
          this.schemas.push({ name: s.name, tables });
          for (const t of tables) {
            const key = `${s.name}.${t.name}`;
            this.tables[key] = [];
            this.fqns.set(key.toLowerCase(), t.fqn);
            if (s.name === 'public') { this.tables[t.name] = []; this.fqns.set(t.name.toLowerCase(), t.fqn); }
          }
        }));
        this.schemas.sort((a, b) => a.name.localeCompare(b.name));
      })().catch(err => { this.ready = null; throw err; });
    }
    return this.ready;
  }

  /** Loads the columns of the known tables that `text` names; returns those names, in order of appearance. */
  async columnsFor(text) {
    const named = [];
    const re = /[A-Za-z_][\w$]*(?:\.[A-Za-z_][\w$]*)?/g;
    for (const m of text.matchAll(re)) {
      const key = m[0].toLowerCase();
      if (this.fqns.has(key) && !named.includes(m[0])) named.push(m[0]);
    }
    const missing = named.filter(n => !this.loaded.has(n.toLowerCase())).slice(0, MAX_FETCH);
    const conn = encodeURIComponent(this.connection());
    await Promise.all(missing.map(async n => {
      const fqn = this.fqns.get(n.toLowerCase());
      this.loaded.add(n.toLowerCase());
      try {
        const r = await api.get(`/api/v3/workspace/connections/${conn}/tables/${encodeURIComponent(fqn)}/rows`, { params: { limit: 1 } });
        const cols = (r.columns || []).map(c => c.name);
        for (const key of Object.keys(this.tables)) if (this.fqns.get(key.toLowerCase()) === fqn) this.tables[key] = cols;
      } catch { this.loaded.delete(n.toLowerCase()); }
    }));
    return named;
  }

  /** show-hint's asynchronous hint function over CodeMirror's sql-hint. */
  hinter(CM) {
    const hint = (cm, callback, options) => {
      this.load().then(() => this.columnsFor(cm.getValue())).then(named => {
        // Bare column names complete from the first table the query names.
        callback(CM.hint.sql(cm, { ...options, tables: this.tables, defaultTable: named[0] }));
      }).catch(() => callback(CM.hint.sql(cm, options)));
    };
    hint.async = true;
    return hint;
  }
}
