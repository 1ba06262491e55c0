// One event: facts, headers, the body in several views, delivery state per group, and
// actions (copy the original bytes, copy as curl, download, redeliver).
import * as api from './api.js';
import { el, mount, table, facts, size, utf8, hexdump, shq, copy, toast, fail } from './util.js';

const SHOW_BYTES = 64 * 1024;
const HOP_BY_HOP = new Set(['host', 'content-length', 'connection', 'transfer-encoding', 'keep-alive', 'upgrade', 'te', 'trailer', 'proxy-connection']);

function header(ev, name) {
  const h = ev.headers.find(([n]) => n.toLowerCase() === name);
  return h ? h[1] : '';
}

/** The views a body offers: pretty JSON, form fields, raw text, hex. */
function views(ev, bytes, text) {
  const out = [];
  if (text !== null) {
    try { const pretty = JSON.stringify(JSON.parse(text), null, 2); out.push(['JSON', () => pretty]); } catch (_) { /* not JSON */ }
    if (header(ev, 'content-type').includes('x-www-form-urlencoded')) {
      const lines = [...new URLSearchParams(text)].map(([k, v]) => `${k} = ${v}`);
      out.push(['Form', () => lines.join('\n')]);
    }
    out.push(['Raw', () => text]);
  }
  out.push(['Hex', () => hexdump(bytes, bytes.length)]);
  return out;
}

function bodyViewer(ev, bytes, text) {
  const pre = el('pre', { id: 'body', class: 'body', tabindex: '0', 'aria-label': 'Event body' });
  const more = el('button', { type: 'button', id: 'show-all', hidden: true });
  const tabs = el('div', { class: 'tabs', role: 'group', 'aria-label': 'Body view' });
  const list = views(ev, bytes, text);
  const show = (i, all) => {
    const [name, make] = list[i];
    const content = make();
    pre.dataset.view = name;
    const cut = !all && content.length > SHOW_BYTES;
    pre.textContent = cut ? content.slice(0, SHOW_BYTES) : content;
    // Wrapping a huge unbroken line is slow in browsers: long bodies scroll sideways.
    pre.classList.toggle('nowrap', content.length > SHOW_BYTES);
    more.hidden = !cut;
    more.textContent = `Show all (${size(content.length)})`;
    more.onclick = () => show(i, true);
    for (const [j, b] of [...tabs.children].entries()) b.setAttribute('aria-pressed', String(j === i));
  };
  list.forEach(([name], i) => tabs.append(el('button', { type: 'button', 'data-view': name, onclick: () => show(i, false), text: name })));
  const raw = list.findIndex(([n]) => n === 'JSON');
  show(raw >= 0 ? raw : 0, false);
  return [tabs, pre, more];
}

function curl(ev, text) {
  const url = `${location.origin}/hooks/${encodeURIComponent(ev.channel)}${ev.path}${ev.query ? `?${ev.query}` : ''}`;
  const parts = [`curl -X ${ev.method} ${shq(url)}`];
  for (const [n, v] of ev.headers) if (!HOP_BY_HOP.has(n.toLowerCase())) parts.push(`-H ${shq(`${n}: ${v}`)}`);
  parts.push(`--data-binary ${shq(text)}`);
  return parts.join(' \\\n  ');
}

function redeliverForm(channel, offset, groups) {
  const select = el('select', { id: 'redeliver-group' }, groups.map((g) => el('option', { value: g.group, text: g.group })));
  const go = async (e) => {
    e.preventDefault();
    try {
      const r = await api.post(api.chan(channel, `/groups/${encodeURIComponent(select.value)}/redeliver`), { from: offset, to: offset });
      toast(r.redelivered.length ? `Event ${offset} queued for redelivery to ${r.group}.` : `Event ${offset} is still pending for ${r.group}: it will be delivered anyway.`);
    } catch (err) { fail(err); }
  };
  if (!groups.length) return el('p', { class: 'muted', text: 'No consumer group to redeliver to yet.' });
  return el('form', { class: 'inline', onsubmit: go },
    el('label', { for: 'redeliver-group' }, 'Group', select),
    el('button', { type: 'submit', id: 'redeliver', text: 'Redeliver' }));
}

function deliveryRows(list) {
  return list.map((d) => [d.group, el('span', { class: `badge ${d.state}`, text: d.state.replace('_', ' ') }), String(d.cursor),
    d.reason || '', d.attempts === undefined ? '' : String(d.attempts), d.last_status ? String(d.last_status) : '', d.redrive_pending ? 'yes' : '']);
}

/** Renders event `offset` of `channel`. */
export async function eventPage(main, channel, offset) {
  const doc = await api.get(api.chan(channel, `/events/${offset}`));
  const bytes = await api.bytes(api.chan(channel, `/events/${offset}/body`));
  const ev = doc.event;
  const text = utf8(bytes);
  const copyBody = el('button', { type: 'button', id: 'copy-body', disabled: text === null, text: 'Copy body' });
  copyBody.addEventListener('click', async () => toast((await copy(text)) ? 'Body copied (the original bytes).' : 'Copy failed.'));
  const copyCurl = el('button', { type: 'button', id: 'copy-curl', disabled: text === null, text: 'Copy as curl' });
  copyCurl.addEventListener('click', async () => toast((await copy(curl(ev, text))) ? 'curl command copied.' : 'Copy failed.'));
  mount(main,
    el('h1', {}, `Event ${offset} `, el('span', { class: 'muted', text: `in ${channel}` })),
    el('p', { class: 'links' },
      el('a', { class: 'button', href: `#/feed/${encodeURIComponent(channel)}`, text: 'Back to the feed' }),
      copyBody, copyCurl,
      el('a', { class: 'button', id: 'download', href: api.chan(channel, `/events/${offset}/body`), download: `${channel}-${offset}.bin`, text: 'Download raw body' })),
    facts([
      ['id', ev.id], ['received', ev.received_at], ['method', ev.method],
      ['path', (ev.path || '/') + (ev.query ? `?${ev.query}` : '')],
      ['verified by', doc.scheme], ['from', doc.peer || '—'], ['size', size(doc.size)],
    ]),
    el('h2', { text: 'Delivery' }),
    doc.deliveries.length
      ? el('div', { id: 'deliveries' }, table('Delivery state per consumer group', ['group', 'state', 'cursor', 'reason', 'attempts', 'last status', 'redrive pending'], deliveryRows(doc.deliveries)))
      : el('p', { class: 'muted', text: 'No consumer group has subscribed to this channel yet.' }),
    redeliverForm(channel, offset, doc.deliveries),
    el('h2', { text: 'Headers' }),
    el('div', { id: 'headers' }, table(null, ['name', 'value'], ev.headers.map(([n, v]) => [el('span', { class: 'mono', text: n }), el('span', { class: 'mono', text: v })]))),
    el('h2', { text: text === null ? 'Body (binary)' : 'Body' }),
    ...bodyViewer(ev, bytes, text));
}
