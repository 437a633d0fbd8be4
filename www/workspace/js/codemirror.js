// Debian's CodeMirror 5 (libjs-codemirror, served by nginx at /vendor/codemirror/) with its SQL mode and the
// show-hint/sql-hint add-ons. Those are UMD scripts that register on window.CodeMirror, so they are loaded
// once, in order, as classic scripts.
const BASE = '/vendor/codemirror';
const SCRIPTS = ['lib/codemirror.js', 'mode/sql/sql.js', 'addon/hint/show-hint.js', 'addon/hint/sql-hint.js'];
const STYLES = ['lib/codemirror.css', 'addon/hint/show-hint.css'];
let loading = null;

export function loadCodeMirror() {
  if (!loading) {
    loading = (async () => {
      for (const href of STYLES) document.head.append(Object.assign(document.createElement('link'), { rel: 'stylesheet', href: `${BASE}/${href}` }));
      for (const src of SCRIPTS) {
        await new Promise((resolve, reject) => {
          const s = Object.assign(document.createElement('script'), { src: `${BASE}/${src}` });
          s.onload = resolve;
          s.onerror = () => reject(new Error(`The SQL editor could not load ${src}`));
          document.head.append(s);
        });
      }
      return window.CodeMirror;
    })();
    loading.catch(() => { loading = null; });
  }
  return loading;
}
