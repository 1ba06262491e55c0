// Charts from the relay's in-process ring buffers (GET /v1/stats): ingest and delivery
// rate, delivery latency and lag, drawn as inline SVG. No external Prometheus needed.
import * as api from './api.js';
import { el, mount } from './util.js';

const SVG = 'http://www.w3.org/2000/svg';
const REFRESH_MS = 2000;
const W = 320;
const H = 120;
const PAD = 24;

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** Buckets on a complete timeline (missing ones are zero), oldest first. */
function timeline(buckets, now, width, count) {
  const byT = new Map(buckets.map((b) => [b.t, b]));
  const end = now - (now % width);
  const out = [];
  for (let t = end - (count - 1) * width; t <= end; t += width) out.push(byT.get(t) || { t, ingested: 0, delivered: 0, latency_ms_sum: 0, latency_count: 0, lag: 0 });
  return out;
}

function chart(title, unit, points) {
  const max = Math.max(1, ...points);
  const step = (W - PAD * 2) / Math.max(1, points.length - 1);
  const xy = points.map((v, i) => `${(PAD + i * step).toFixed(1)},${(H - PAD - (v / max) * (H - PAD * 2)).toFixed(1)}`);
  const last = points.length ? points[points.length - 1] : 0;
  const label = `${title}: last ${last.toFixed(unit === 'ms' ? 0 : 1)} ${unit}, peak ${max.toFixed(unit === 'ms' ? 0 : 1)} ${unit}`;
  const box = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, class: 'chart' });
  const t = svg('title', {});
  t.textContent = label;
  box.append(t,
    svg('line', { x1: PAD, y1: H - PAD, x2: W - PAD, y2: H - PAD, class: 'axis' }),
    svg('line', { x1: PAD, y1: PAD, x2: PAD, y2: H - PAD, class: 'axis' }),
    svg('polyline', { points: xy.join(' '), class: 'line' }));
  const top = svg('text', { x: PAD + 4, y: PAD - 6, class: 'tick' });
  top.textContent = `${max.toFixed(unit === 'ms' ? 0 : 1)} ${unit}`;
  box.append(top);
  return el('figure', { class: 'chart-box' }, box, el('figcaption', { text: label }));
}

function channelCharts(c, now, range) {
  const fine = range === 'minutes2';
  const list = fine ? timeline(c.seconds, now, 1, 120) : timeline(c.minutes, now, 60, 60);
  const perMin = fine ? 60 : 1;
  const latency = list.map((b) => (b.latency_count ? b.latency_ms_sum / b.latency_count : 0));
  return el('section', { class: 'card' }, el('h2', { text: c.name }),
    el('div', { class: 'charts' },
      chart('Ingest rate', 'ev/min', list.map((b) => b.ingested * perMin)),
      chart('Delivery rate', 'ev/min', list.map((b) => b.delivered * perMin)),
      chart('Delivery latency', 'ms', latency),
      chart('Lag', 'events', list.map((b) => b.lag))));
}

/** Renders the charts page; returns the cleanup (stops refreshing). */
export async function charts(main) {
  let range = 'hour';
  const body = el('div', { id: 'charts' });
  const toggle = el('button', { type: 'button', id: 'range', 'aria-pressed': 'false', text: 'Show the last 2 minutes' });
  const load = async () => {
    const doc = await api.get('/v1/stats');
    mount(body, doc.channels.map((c) => channelCharts(c, doc.now, range)));
  };
  toggle.addEventListener('click', () => {
    range = range === 'hour' ? 'minutes2' : 'hour';
    toggle.setAttribute('aria-pressed', String(range !== 'hour'));
    toggle.textContent = range === 'hour' ? 'Show the last 2 minutes' : 'Show the last hour';
    load().catch(() => {});
  });
  mount(main, el('h1', { text: 'Charts' }),
    el('p', {}, 'Per channel, from the relay\'s own ring buffers (one-minute buckets for the last hour, one-second buckets for the last 2 minutes). ', toggle),
    body);
  await load();
  const timer = setInterval(() => load().catch(() => {}), REFRESH_MS);
  return () => clearInterval(timer);
}
