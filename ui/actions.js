// Operator actions on one channel: send a test webhook, redeliver a range to a group,
// reset a group's cursor (after a confirmation that says how many events move), and
// redrive dead letters.
import * as api from './api.js';
import { el, mount, table, toast, fail, time } from './util.js';

function groupSelect(id, groups) {
  return el('select', { id }, groups.map((g) => el('option', { value: g.name, text: g.name })));
}

function numberInput(id, value) {
  return el('input', { id, type: 'number', min: 1, inputmode: 'numeric', required: true, value });
}

/** Asks in a modal dialog; resolves true when the operator confirms. */
function confirmDialog(message) {
  return new Promise((resolve) => {
    const dialog = el('dialog', { id: 'confirm', 'aria-labelledby': 'confirm-text' });
    const done = (ok) => { dialog.close(); dialog.remove(); resolve(ok); };
    dialog.append(
      el('p', { id: 'confirm-text', text: message }),
      el('div', { class: 'links' },
        el('button', { type: 'button', id: 'confirm-yes', class: 'danger', onclick: () => done(true), text: 'Reset the cursor' }),
        el('button', { type: 'button', id: 'confirm-no', autofocus: true, onclick: () => done(false), text: 'Cancel' })));
    dialog.addEventListener('cancel', () => done(false));
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** What a reset to `next` does, in words. */
export function resetMessage(group, cursor, next, head) {
  if (next <= cursor) {
    const n = cursor - next + 1;
    return `Group ${group} will receive ${n} event${n === 1 ? '' : 's'} again (offsets ${next} to ${cursor}).`;
  }
  const skipped = Math.min(next - 1, head) - cursor;
  if (skipped <= 0) return `Group ${group} is already there: nothing moves.`;
  return `Group ${group} will skip ${skipped} event${skipped === 1 ? '' : 's'} (offsets ${cursor + 1} to ${cursor + skipped}) that it has not received.`;
}

function testSection(channel, reload) {
  const send = async () => {
    try {
      const r = await api.post(api.chan(channel, '/test'));
      toast(`Test webhook signed for ${r.scheme} stored at offset ${r.offset}.`);
      reload();
    } catch (e) { fail(e); }
  };
  return el('section', { class: 'card' }, el('h2', { text: 'Send a test webhook' }),
    el('p', { text: 'Stores a sample event signed with the channel\'s scheme and secret, as a provider would send it; agents receive it like any event.' }),
    el('button', { type: 'button', id: 'send-test', onclick: send, text: 'Send test webhook' }));
}

function redeliverSection(channel, groups, head) {
  const group = groupSelect('rd-group', groups);
  const from = numberInput('rd-from', head || 1);
  const to = numberInput('rd-to', head || 1);
  const go = async (e) => {
    e.preventDefault();
    try {
      const r = await api.post(api.chan(channel, `/groups/${encodeURIComponent(group.value)}/redeliver`), { from: Number(from.value), to: Number(to.value) });
      toast(`${r.redelivered.length} event(s) queued for redelivery to ${r.group}; ${r.pending.length} not delivered yet.`);
    } catch (err) { fail(err); }
  };
  return el('section', { class: 'card' }, el('h2', { text: 'Redeliver' }),
    el('p', { text: 'Sends events again to a group; its cursor does not move.' }),
    el('form', { class: 'inline', onsubmit: go },
      el('label', { for: 'rd-group' }, 'Group', group),
      el('label', { for: 'rd-from' }, 'From offset', from),
      el('label', { for: 'rd-to' }, 'To offset', to),
      el('button', { type: 'submit', id: 'redeliver-range', text: 'Redeliver' })));
}

function resetSection(channel, groups, head, reload) {
  const group = groupSelect('rs-group', groups);
  const next = numberInput('rs-next', 1);
  const go = async (e) => {
    e.preventDefault();
    const g = groups.find((x) => x.name === group.value);
    const n = Number(next.value);
    if (!(await confirmDialog(resetMessage(g.name, g.cursor, n, head)))) return;
    try {
      const r = await api.post(api.chan(channel, `/groups/${encodeURIComponent(g.name)}/reset`), { offset: n });
      toast(`Group ${r.group} reset: next event ${r.next} (cursor was ${r.previous_cursor ?? 'none'}).`);
      reload();
    } catch (err) { fail(err); }
  };
  return el('section', { class: 'card' }, el('h2', { text: 'Reset a cursor' }),
    el('form', { class: 'inline', onsubmit: go },
      el('label', { for: 'rs-group' }, 'Group', group),
      el('label', { for: 'rs-next' }, 'Next offset to deliver', next),
      el('button', { type: 'submit', id: 'reset', class: 'danger', text: 'Reset…' })));
}

async function deadLetterSection(channel, g, reload) {
  const path = api.chan(channel, `/groups/${encodeURIComponent(g.name)}/dead-letters`);
  const doc = await api.get(path);
  const redrive = async (offsets) => {
    try {
      const r = await api.post(`${path}/redrive`, offsets ? { offsets } : undefined);
      toast(`${r.redriven.length} dead letter(s) of ${r.group} redriven${r.active ? '' : ' (they wait for an agent)'}.`);
      reload();
    } catch (e) { fail(e); }
  };
  const rows = doc.dead_letters.map((d) => [
    el('a', { href: `#/event/${encodeURIComponent(channel)}/${d.offset}`, text: String(d.offset) }),
    d.reason, String(d.attempts), d.last_status ? String(d.last_status) : '', time(d.at_ms), d.redrive_pending ? 'pending' : '',
    el('button', { type: 'button', class: 'small', onclick: () => redrive([d.offset]), text: `Redrive ${d.offset}` })]);
  return el('section', { class: 'card' }, el('h2', { text: `Dead letters of ${g.name}` }),
    rows.length
      ? [el('button', { type: 'button', class: 'redrive-all', 'data-group': g.name, onclick: () => redrive(), text: `Redrive all ${rows.length}` }),
        table(null, ['offset', 'reason', 'attempts', 'last status', 'at', 'redrive', ''], rows)]
      : el('p', { class: 'muted', text: 'None.' }));
}

/** Renders the actions of `channel`. */
export async function actions(main, channel) {
  const load = async () => {
    const doc = await api.get(api.chan(channel, '/groups'));
    const groups = doc.groups;
    const head = doc.head ?? Math.max(0, ...groups.map((g) => g.cursor + g.lag));
    const parts = [
      el('h1', {}, 'Actions: ', el('span', { class: 'mono', text: channel })),
      el('p', { class: 'links' }, el('a', { class: 'button', href: `#/feed/${encodeURIComponent(channel)}`, text: 'Live feed' })),
      table(`Consumer groups of ${channel}`, ['group', 'cursor', 'lag', 'dead letters', 'agent here'],
        groups.map((g) => [g.name, String(g.cursor), String(g.lag), String(g.dead_letters), g.active ? 'active' : '—'])),
      testSection(channel, () => load().catch(fail)),
    ];
    if (groups.length) {
      parts.push(redeliverSection(channel, groups, head), resetSection(channel, groups, head, () => load().catch(fail)));
      for (const g of groups) parts.push(await deadLetterSection(channel, g, () => load().catch(fail)));
    } else {
      parts.push(el('p', { class: 'muted', text: 'Redeliver, reset and redrive need a consumer group: start an agent.' }));
    }
    mount(main, parts);
  };
  await load();
}
