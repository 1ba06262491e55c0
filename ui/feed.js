// The live feed of one channel over Server-Sent Events. At most KEEP events are held
// and at most SHOW rows are in the DOM, so a busy channel cannot grow the page.
import { el, mount, size, toast } from './util.js';
import * as api from './api.js';

const KEEP = 5000;
const SHOW = 500;
const PREVIEW_CHARS = 120;

function matches(e, f) {
  if (f.method && e.method !== f.method) return false;
  if (f.from && e.offset < f.from) return false;
  if (f.to && e.offset > f.to) return false;
  if (f.header) {
    const h = f.header.toLowerCase();
    if (!e.headers.some(([n, v]) => `${n}: ${v}`.toLowerCase().includes(h))) return false;
  }
  if (f.body && !e.preview.toLowerCase().includes(f.body.toLowerCase())) return false;
  return true;
}

function row(channel, e) {
  const target = e.path + (e.query ? `?${e.query}` : '');
  const preview = e.binary ? `(binary, ${size(e.size)})` : e.preview.slice(0, PREVIEW_CHARS);
  return el('tr', { 'data-offset': e.offset },
    el('td', {}, el('a', { href: `#/event/${encodeURIComponent(channel)}/${e.offset}`, text: String(e.offset) })),
    el('td', { text: new Date(e.received_at).toLocaleTimeString() }),
    el('td', { text: e.method }),
    el('td', { class: 'mono', text: target || '/' }),
    el('td', { text: size(e.size) }),
    el('td', { class: 'mono preview', text: preview }));
}

function filters(onChange) {
  const input = (id, label, type = 'text') => el('label', { for: id }, label,
    el('input', { id, type, inputmode: type === 'number' ? 'numeric' : undefined, min: type === 'number' ? 1 : undefined, oninput: onChange }));
  const method = el('select', { id: 'f-method', onchange: onChange },
    ['', 'POST', 'PUT', 'PATCH', 'GET', 'DELETE'].map((m) => el('option', { value: m, text: m || 'any' })));
  return el('form', { class: 'filters', role: 'search', onsubmit: (ev) => ev.preventDefault() },
    el('label', { for: 'f-method' }, 'Method', method),
    input('f-header', 'Header contains'),
    input('f-body', 'Body contains'),
    input('f-from', 'From offset', 'number'),
    input('f-to', 'To offset', 'number'));
}

function readFilters() {
  const v = (id) => document.getElementById(id).value.trim();
  return { method: v('f-method'), header: v('f-header'), body: v('f-body'), from: Number(v('f-from')) || 0, to: Number(v('f-to')) || 0 };
}

/** Renders the feed of `channel`; returns the cleanup (closes the stream). */
export async function feed(main, channel) {
  const events = [];
  let held = []; // events that arrived while paused, shown on resume
  let paused = false;
  const body = el('tbody', { id: 'feed-rows' });
  const status = el('p', { class: 'muted', id: 'feed-status', 'aria-live': 'polite' });
  const pause = el('button', { type: 'button', id: 'pause', 'aria-pressed': 'false', text: 'Pause' });
  let scheduled = false;
  const render = () => {
    scheduled = false;
    const f = readFilters();
    const shown = [];
    for (let i = events.length - 1; i >= 0 && shown.length < SHOW; i--) {
      if (matches(events[i], f)) shown.push(row(channel, events[i]));
    }
    body.replaceChildren(...shown);
    const extra = paused && held.length ? `; ${held.length} new while paused` : '';
    status.textContent = `${shown.length} shown (at most ${SHOW}) of ${events.length} kept${extra}`;
  };
  const keep = (batch) => {
    events.push(...batch);
    if (events.length > KEEP) events.splice(0, events.length - KEEP);
  };
  const later = () => { if (!scheduled) { scheduled = true; requestAnimationFrame(render); } };
  pause.addEventListener('click', () => {
    paused = !paused;
    if (!paused) keep(held.splice(0));
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? 'Resume' : 'Pause';
    later();
  });
  mount(main,
    el('h1', {}, 'Live feed: ', el('span', { class: 'mono', text: channel })),
    el('p', { class: 'links' }, pause,
      el('a', { class: 'button', href: `#/actions/${encodeURIComponent(channel)}`, text: 'Actions' })),
    filters(later),
    status,
    el('div', { class: 'scroll' }, el('table', { class: 'feed' },
      el('caption', { text: `Events of ${channel}, newest first` }),
      el('thead', {}, el('tr', {}, ['offset', 'time', 'method', 'path', 'size', 'body'].map((h) => el('th', { scope: 'col', text: h })))),
      body)));
  await api.get(api.chan(channel, '/events?limit=1')); // 404 for an unknown channel, before streaming
  const source = new EventSource(api.chan(channel, '/feed'));
  source.addEventListener('events', (m) => {
    const batch = JSON.parse(m.data);
    if (paused) {
      held.push(...batch);
      if (held.length > KEEP) held = held.slice(-KEEP);
    } else {
      keep(batch);
    }
    later();
  });
  source.addEventListener('error', () => { if (source.readyState === EventSource.CLOSED) toast('The live feed closed; reload to reconnect.', 'error'); });
  render();
  return () => source.close();
}
