// The Export menu of the SQL console, the explorer and a builder layer: the chosen format becomes an
// export job (POST /api/v3/sql/{connection}/exports), its progress is shown until the file is
// written, then the browser downloads it through the job's short-lived signed URL.
import { api } from './http.js';
import { h, clear } from './dom.js';

export const EXPORT_FORMATS = [
  ['csv', 'CSV'], ['geojson', 'GeoJSON'], ['gpkg', 'GeoPackage'], ['fgb', 'FlatGeobuf'], ['shp', 'Shapefile (zip)'],
];

/** source(): {connection, query, queryParameters?} or {connection, table}, plus the layer's widget `filters` if any,
 * read when the user exports; name: the file's name. */
export function exportMenu(idPrefix, source, name) {
  const format = h(`select#${idPrefix}-export-format`, { 'aria-label': 'Export format' }, EXPORT_FORMATS.map(([v, label]) => h('option', { value: v }, label)));
  const go = h(`button.secondary#${idPrefix}-export`, { type: 'button', onclick: () => start() }, 'Export');
  const status = h(`div.export-status#${idPrefix}-export-status`, { 'aria-live': 'polite' });
  let polling = null;

  async function start() {
    const s = source();
    if (!s) return;
    go.disabled = true;
    try {
      let job = await api.post(`/api/v3/sql/${encodeURIComponent(s.connection)}/exports`,
        { format: format.value, name: name || undefined, ...(s.table ? { table: s.table } : { query: s.query, queryParameters: s.queryParameters || undefined }),
          filters: s.filters && Object.keys(s.filters).length ? s.filters : undefined });
      const path = `/api/v3/sql/${encodeURIComponent(s.connection)}/exports/${job.jobId}`;
      polling = path;
      for (;;) {
        if (polling !== path) return;
        if (job.status === 'success' && job.downloadUrl) {
          clear(status, h('p.notice', { role: 'status' }, `Export ready (${fmtBytes(job.result && job.result.bytes)}). `,
            h(`a#${idPrefix}-export-download`, { href: job.downloadUrl, download: '' }, 'Download again')));
          location.assign(job.downloadUrl);
          return;
        }
        if (['failure', 'cancelled', 'expired'].includes(job.status)) {
          clear(status, h('p.form-error', { role: 'alert' }, job.status === 'failure'
            ? `Export failed: ${(job.error && job.error.msg) || 'no details'}` : `Export ${job.status}.`));
          return;
        }
        const p = job.progress || {};
        clear(status, h('p', job.status === 'pending' ? 'Export waiting for a worker…' : `Writing ${format.selectedOptions[0].textContent}… ${fmtBytes(p.bytes)}`,
          ' ', h('button.secondary', { type: 'button', onclick: () => api.del(path).catch(() => {}) }, 'Cancel')),
          h('div.progress.indeterminate', { role: 'progressbar', 'aria-label': 'Export progress' }, h('span', { style: { width: '100%' } })));
        await new Promise(r => setTimeout(r, 800));
        job = await api.get(path);
      }
    } catch (err) {
      clear(status, h('p.form-error', { role: 'alert' }, `Export failed: ${err.message}`));
    } finally { go.disabled = false; }
  }
  return h('div.export-menu', h('div.row', format, go), status);
}

function fmtBytes(n) {
  if (n == null) return '';
  return n < 1024 * 1024 ? `${Math.max(1, Math.round(n / 1024))} KB` : `${(n / 1024 / 1024).toFixed(1)} MB`;
}
