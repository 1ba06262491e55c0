// The console's router: one page per hash route, each rendered into <main> by its module.
import * as api from './api.js';
import { el, mount, fail } from './util.js';
import { overview } from './overview.js';
import { feed } from './feed.js';
import { eventPage } from './event.js';
import { actions } from './actions.js';
import { charts } from './charts.js';

const main = document.getElementById('main');
let cleanup = null;

const routes = [
  [/^#?\/?$/, () => overview(main)],
  [/^#\/feed\/([^/]+)$/, (m) => feed(main, decodeURIComponent(m[1]))],
  [/^#\/event\/([^/]+)\/(\d+)$/, (m) => eventPage(main, decodeURIComponent(m[1]), Number(m[2]))],
  [/^#\/actions\/([^/]+)$/, (m) => actions(main, decodeURIComponent(m[1]))],
  [/^#\/charts$/, () => charts(main)],
];

async function route() {
  if (cleanup) cleanup();
  cleanup = null;
  const hash = location.hash || '#/';
  for (const a of document.querySelectorAll('header nav a')) {
    a.toggleAttribute('aria-current', a.getAttribute('href') === hash);
  }
  const found = routes.find(([re]) => re.test(hash));
  if (!found) {
    mount(main, el('h1', { text: 'Not found' }), el('p', {}, el('a', { href: '#/', text: 'Back to the channels' })));
    return;
  }
  try {
    cleanup = (await found[1](hash.match(found[0]))) || null;
  } catch (e) {
    mount(main, el('h1', { text: 'Something went wrong' }), el('p', { class: 'error', role: 'alert', text: e.message }));
    fail(e);
  }
  document.body.dataset.page = hash.split('/')[1] || 'channels';
}

async function start() {
  await api.init();
  document.getElementById('logout').addEventListener('click', () => api.logout());
  window.addEventListener('hashchange', route);
  await route();
}

start().catch(fail);
