// DOM and formatting helpers. Everything a peer sent (headers, bodies, paths) goes into
// the page as text nodes or textContent, never as HTML.

/** Creates an element; `text` sets textContent, `on*` adds listeners, the rest are attributes. */
export function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = String(v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}

/** Replaces the children of `parent`. */
export function mount(parent, ...kids) {
  parent.replaceChildren();
  for (const k of kids.flat()) if (k) parent.append(k);
}

/** A table with a header row; `rows` are arrays of cells (strings or nodes). */
export function table(caption, head, rows) {
  return el('div', { class: 'scroll' },
    el('table', {},
      caption ? el('caption', { text: caption }) : null,
      el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c) => el('td', {}, c)))))));
}

/** A `<dl>` of label → value pairs. */
export function facts(pairs) {
  return el('dl', { class: 'facts' }, pairs.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', {}, v)]));
}

/** Shows a short message in the status region. */
export function toast(message, kind = 'ok') {
  const t = document.getElementById('toast');
  if (!t) return;
  t.className = kind;
  t.textContent = message;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.textContent = ''; t.className = ''; }, 8000);
}

/** `ms` (unix) as local date and time. */
export function time(ms) {
  return ms ? new Date(ms).toLocaleString() : '—';
}

/** A byte count for people. */
export function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** The UTF-8 text of `bytes`, or null when they are not valid UTF-8. */
export function utf8(bytes) {
  try { return new TextDecoder('utf-8', { fatal: true }).decode(bytes); } catch (_) { return null; }
}

/** A classic hex dump (offset, 16 bytes, ASCII) of at most `max` bytes. */
export function hexdump(bytes, max) {
  const lines = [];
  const end = Math.min(bytes.length, max);
  for (let i = 0; i < end; i += 16) {
    const row = bytes.subarray(i, Math.min(i + 16, end));
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = Array.from(row, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${i.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join('\n');
}

/** Single-quotes a string for a POSIX shell. */
export function shq(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

/** Copies text to the clipboard (with a fallback for browsers without the API). */
export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (_) {
    const area = el('textarea', { class: 'offscreen', 'aria-hidden': 'true' });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand('copy');
    area.remove();
    return ok;
  }
}

/** Reports a failed action in the status region. */
export function fail(e) {
  toast(e && e.message ? e.message : String(e), 'error');
}
