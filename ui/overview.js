// Channels overview: head, ingest, verification failures; per group cursor, lag, dead
// letters and the connected agents. Refreshed every few seconds while shown.
import * as api from './api.js';
import { el, mount, table, facts, time } from './util.js';

const REFRESH_MS = 3000;

function agents(list) {
  if (!list.length) return el('span', { class: 'muted', text: 'no agent connected' });
  return el('ul', { class: 'agents' }, list.map((a) =>
    el('li', {},
      el('span', { class: `badge ${a.state}`, text: a.state }), ' ',
      a.peer || 'unknown address', ' ',
      el('span', { class: 'muted', text: `since ${time(a.since_ms)}` }))));
}

function channelCard(c) {
  const rows = c.groups.map((g) => [
    g.name, String(g.cursor), String(g.lag),
    g.dead_letters ? el('a', { href: `#/actions/${encodeURIComponent(c.name)}`, text: String(g.dead_letters) }) : '0',
    agents(g.agents),
  ]);
  return el('section', { class: 'card', 'aria-labelledby': `ch-${c.name}` },
    el('h2', { id: `ch-${c.name}`, text: c.name }),
    facts([
      ['scheme', c.scheme],
      ['head', String(c.head)],
      ['ingested, last minute', String(c.ingested_last_minute)],
      ['verification failures', String(c.verification_failures)],
    ]),
    el('p', { class: 'links' },
      el('a', { class: 'button', href: `#/feed/${encodeURIComponent(c.name)}`, text: 'Live feed' }),
      el('a', { class: 'button', href: `#/actions/${encodeURIComponent(c.name)}`, text: 'Actions' }),
      el('a', { class: 'button', href: '#/charts', text: 'Charts' })),
    rows.length
      ? table(`Consumer groups of ${c.name}`, ['group', 'cursor', 'lag', 'dead letters', 'agents'], rows)
      : el('p', { class: 'muted', text: 'No consumer group yet: start an agent.' }));
}

/** Renders the overview into `main`; returns the cleanup. */
export async function overview(main) {
  const list = el('div', { class: 'cards' });
  mount(main, el('h1', { text: 'Channels' }), list);
  const load = async () => {
    const doc = await api.get('/v1/overview');
    mount(list, doc.channels.map(channelCard));
  };
  await load();
  const timer = setInterval(() => load().catch(() => {}), REFRESH_MS);
  return () => clearInterval(timer);
}
