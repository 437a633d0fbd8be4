// Imports: upload a file (with upload progress) or give a URL; a preview (first rows, detected columns
// and types, geometry guess, editable destination) comes first, then the job's progress is polled until
// it ends, and the new table opens in the data explorer. Errors are phrased in the form's terms.
import { api, withParams } from '../http.js';
import { h, clear, field, showError, clearErrors, table, empty, when, busy, toast } from '../dom.js';
import { connectionNames } from '../workspace.js';
import { getCsrf } from '../http.js';

export async function render(main, ctx) {
  const names = await connectionNames();
  const f = {
    connection: field('Connection', { tag: 'select', options: names }),
    file: field('File', { type: 'file', accept: '.csv,.tsv,.geojson,.json,.geojsonl,.geojsons,.gpkg,.kml,.kmz,.gpx,.fgb,.zip,.tab,.txt' }, 'CSV/TSV (with lon/lat or WKT columns), GeoJSON, GeoPackage, KML/KMZ, GPX, FlatGeobuf, zipped Shapefile.'),
    url: field('URL', { type: 'url', placeholder: 'https://example.org/data.geojson' }),
    destination: field('Destination table', { placeholder: 'public.my_table' }, 'schema.table; by default the file’s name in public.'),
  };
  f.url.hidden = true;
  const overwrite = h('input#imp-overwrite', { type: 'checkbox' });
  const mode = name => h('label.check', h('input', { type: 'radio', name: 'imp-mode', value: name, checked: name === 'file' || undefined,
    onchange: () => { f.file.hidden = name !== 'file'; f.url.hidden = name !== 'url'; } }), name === 'file' ? 'Upload a file' : 'From a URL');
  const error = h('p.form-error', { role: 'alert', hidden: true });
  const submit = h('button.primary#import-preview', { type: 'submit' }, 'Preview');
  const previewBox = h('div#import-preview-box', { 'aria-live': 'polite' });
  const progress = h('div#import-progress', { 'aria-live': 'polite' });
  const history = h('div');
  const form = h('form.card', { 'aria-label': 'New import' }, h('h2', 'New import'), error,
    h('fieldset', { style: { border: 'none', padding: 0, margin: '0 0 .5rem' } }, h('legend.muted', 'Source'), h('div.row', mode('file'), mode('url'))),
    f.connection, f.file, f.url, f.destination, h('label.check', overwrite, 'Replace the table if it exists'), h('div.actions', submit), previewBox, progress);
  main.append(h('div.page-head', h('div', h('h1', 'Imports'), h('p', 'Load files into a warehouse table. Large files keep going in the background.'))),
    ctx.canWrite ? form : h('div.card', h('p', 'Viewers cannot import data.')), h('h2', 'Recent imports'), history);

  // Step 1: preview what the import would read; nothing is queued yet.
  form.addEventListener('submit', e => {
    e.preventDefault();
    clearErrors(f, error);
    clear(progress);
    const byUrl = !f.url.hidden;
    const file = f.file.input.files[0];
    if (byUrl && !f.url.input.value.trim()) { showError(new Error('Give the URL of a file'), { url: f.url }); return; }
    if (!byUrl && !file) { showError(new Error('Choose a file to upload'), { file: f.file }); return; }
    busy(submit, async () => {
      try {
        const p = byUrl ? await api.post('/api/v3/imports/preview', { url: f.url.input.value.trim() })
          // Raw bytes: a .json file must not be sent as application/json (that is the URL form of the call).
          : await api.post('/api/v3/imports/preview', new Blob([file], { type: 'application/octet-stream' }), { params: { filename: file.name } });
        showPreview(p, byUrl, file);
      } catch (err) { clear(previewBox); showError(formError(err, f.destination.input.value), { url: f.url, connection: f.connection, file: f.file }, error); }
    }, 'Reading…');
  });

  function showPreview(p, byUrl, file) {
    const suggested = `public.${((file && file.name) || 'import').replace(/\.[^.]*$/, '').toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '') || 'import'}`;
    const dest = h('input#import-destination', { value: f.destination.input.value.trim(), placeholder: suggested, 'aria-label': 'Destination table' });
    const go = h('button.primary#import-start', { type: 'button' }, 'Import');
    const cols = p.columns || [], rows = p.rows || [];
    clear(previewBox, h('div.card#import-preview-card',
      h('h3', 'Preview'),
      h('p#import-preview-summary', `${(p.format || '').toUpperCase()} · ${p.totalRows >= 0 ? `${Number(p.totalRows).toLocaleString('en')} rows` : 'rows not counted'} · `
        + (p.geometryType ? `geometry: ${p.geometryType}` : 'no geometry found (give lon/lat or WKT columns)')),
      table([{ label: 'Column', key: 'name' }, { label: 'Detected type', key: 'type' }], cols, { 'aria-label': 'Detected columns' }),
      rows.length ? table(cols.map(c => ({ label: c.name, render: r => fmtCell(r[c.sourceName] ?? r[c.name]) })), rows, { 'aria-label': 'First rows' }) : h('p.muted', 'No rows to show.'),
      h('div.field', h('label', { for: 'import-destination' }, 'Destination table'), dest, h('p.hint', 'schema.table; empty: the suggestion shown.')),
      h('div.actions', go)));
    go.addEventListener('click', () => busy(go, async () => {
      clearErrors(f, error);
      const destination = dest.value.trim() || undefined;
      try {
        let job;
        const fields = { connection: f.connection.input.value, destination, overwrite: overwrite.checked ? 'true' : undefined };
        if (byUrl) job = await api.post('/api/v3/imports', { ...fields, url: f.url.input.value.trim() });
        else job = await upload(file, fields, pct => bar('Uploading', pct));
        await follow(job, destination);
      } catch (err) { showError(formError(err, destination), { url: f.url, connection: f.connection, file: f.file }, error); clear(progress); }
    }, 'Importing…'));
  }

  function bar(label, pct, extra) {
    clear(progress, h('p', `${label}${pct != null ? ` · ${Math.round(pct)}%` : ''}${extra ? ` · ${extra}` : ''}`),
      h('div.progress', { role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round(pct || 0) }, h('span', { style: { width: `${pct || 0}%` } })));
  }

  async function follow(job, destination) {
    for (;;) {
      const p = job.progress || {};
      if (job.status === 'success') {
        const dest = job.destination;
        clear(progress, h('p.notice#import-done', { role: 'status' }, `Imported ${job.rows ?? p.rows ?? ''} rows into ${dest}. `,
          h('a#import-open', { href: `#/explorer/${encodeURIComponent(job.connection)}/${encodeURIComponent(dest)}` }, 'Open in the data explorer')));
        refresh();
        return;
      }
      if (job.status === 'failure' || job.status === 'cancelled') {
        clear(progress, h('p.form-error', { role: 'alert' }, `Import ${job.status === 'failure' ? 'failed' : 'cancelled'}: ${formMessage(job.error || 'no details', destination || job.destination)}`));
        refresh();
        return;
      }
      bar(job.status === 'pending' ? 'Waiting for a worker' : `Loading${p.phase ? ` (${p.phase})` : ''}`, p.percent ?? null, p.rows ? `${p.rows} rows` : '');
      await new Promise(r => setTimeout(r, 800));
      job = await api.get(`/api/v3/imports/${job.id}`);
    }
  }

  async function refresh() {
    try {
      const jobs = (await api.get('/api/v3/imports')).results || [];
      clear(history, jobs.length ? table([
        { label: 'Destination', render: j => j.status === 'success' ? h('a', { href: `#/explorer/${encodeURIComponent(j.connection)}/${encodeURIComponent(j.destination)}` }, j.destination) : j.destination },
        { label: 'Source', render: j => (j.source && (j.source.filename || j.source.url)) || '' },
        { label: 'Status', render: j => h(`span.badge${j.status === 'success' ? '.ok' : j.status === 'failure' ? '.bad' : ''}`, j.status) },
        { label: 'Rows', render: j => j.rows ?? '' },
        { label: 'Started', render: j => when(j.createdAt) },
        { label: '', render: j => ['pending', 'running'].includes(j.status) && ctx.canWrite
          ? h('button.secondary', { onclick: async () => { try { await api.post(`/api/v3/imports/${j.id}/cancel`, {}); refresh(); } catch (err) { toast(err.message, 'error'); } } }, 'Cancel') : '' },
      ], jobs, { 'aria-label': 'Recent imports' }) : h('div.card', empty('No imports yet', 'Upload a CSV or GeoJSON above to create your first table.')));
    } catch (err) { clear(history, h('p.form-error', err.message)); }
  }
  refresh();
}

/** The API speaks to API clients (`overwrite=true`); the form has a "Replace" choice. */
function formMessage(message, destination) {
  if (/overwrite=true/.test(message)) return `The table ${destination || ''} already exists. Choose “Replace the table if it exists” to replace it, or pick another destination.`.replace('table  ', 'table ');
  return message;
}

function formError(err, destination) {
  const e = new Error(formMessage(err.message, destination));
  e.status = err.status; e.code = err.code; e.body = err.body;
  return e;
}

function fmtCell(v) { return v == null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v); }

/** multipart upload through XMLHttpRequest, the only browser API that reports upload progress. */
function upload(file, fields, onProgress) {
  return new Promise((resolve, reject) => {
    const data = new FormData();
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) data.append(k, v);
    data.append('file', file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', withParams('/api/v3/imports', {}));
    xhr.setRequestHeader('X-CSRF-Token', getCsrf() || '');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = e => e.lengthComputable && onProgress(100 * e.loaded / e.total);
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else { const err = new Error((body && body.error) || `Upload failed (${xhr.status})`); err.status = xhr.status; reject(err); }
    };
    xhr.onerror = () => reject(new Error('The upload was interrupted'));
    xhr.send(data);
  });
}
