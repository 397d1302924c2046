// The state the relay's frames build (assets/js/cc-20-state.js, docs/CONTRACTS.md): snapshot,
// delta and batch frames, replays, the caps and the pruning that keep weeks of uptime flat,
// and what every subscriber is told. Feature codes js030-js049.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { load } = require('./load');

const DAY = 24 * 3600 * 1000;
const LIMITS = { events: 10, units: 5, cameras: 5, closedKeepMs: DAY, appliedAt: 4 };

/* The store on a page other than the wall, with one subscriber writing down what it is told. */
function page(limits = LIMITS) {
  const { cc, flush } = load(['cc-00-core.js', 'cc-20-state.js']);
  cc.page = 'duty';
  cc.cfg = { closed: ['cancelled', 'closed'], limits };
  cc.panels = { listPending: () => false }; // the header's list is never waiting here
  const told = [];
  cc.store.listen((kind, op, rec, live, arrived) => told.push([kind, op, rec && rec.id, live, arrived]));
  return { cc, flush, told };
}

const ids = (cc, kind) => { const out = []; cc.store.each(kind, (r) => out.push(r.id)); return out.sort(); };

const ev = (id, extra = {}) => ({ id, type: 'fire', severity: 3, status: 'reported', ts: Date.now(), ...extra });

test('js030 a snapshot replaces the store: new records in, records the server dropped out', () => {
  const { cc, told } = page();
  cc.store.applyFrame({ type: 'snapshot', seq: 5, events: [ev('E1'), ev('E2')],
    workers: [{ id: 'W1', lon: 119.9, lat: 36.7 }] });
  assert.deepEqual(ids(cc, 'event'), ['E1', 'E2']);
  assert.equal(cc.store.lastSeq(), 5);
  cc.store.applyFrame({ type: 'snapshot', seq: 9, events: [ev('E2', { title: 'new' }), ev('E3')] });
  assert.deepEqual(ids(cc, 'event'), ['E2', 'E3']);
  assert.equal(cc.store.get('event', 'E2').title, 'new');
  // a kind the snapshot does not carry is left alone
  assert.deepEqual(ids(cc, 'worker'), ['W1']);
  assert.equal(cc.store.lastSeq(), 9);
  // subscribers: every record as not live, the dropped one removed, then the snapshot itself
  assert.deepEqual(told.slice(4), [
    ['event', 'upsert', 'E2', false, false], ['event', 'upsert', 'E3', false, false],
    ['event', 'remove', 'E1', false, false], ['snapshot', 'snapshot', undefined, false, false]]);
});

test('js031 a delta is applied once: a replayed sequence number is skipped', () => {
  const { cc, told } = page();
  cc.store.applyFrame({ type: 'delta', seq: 3, kind: 'event', op: 'upsert', data: ev('E1') });
  cc.store.applyFrame({ type: 'delta', seq: 3, kind: 'event', op: 'upsert', data: ev('E1', { title: 'again' }) });
  cc.store.applyFrame({ type: 'delta', seq: 2, kind: 'event', op: 'upsert', data: ev('E2') });
  assert.deepEqual(ids(cc, 'event'), ['E1']);
  assert.equal(cc.store.get('event', 'E1').title, undefined);
  // a delta without a sequence number is applied as it comes
  cc.store.applyFrame({ type: 'delta', kind: 'event', op: 'upsert', data: ev('E2') });
  assert.deepEqual(ids(cc, 'event'), ['E1', 'E2']);
  assert.equal(cc.store.lastSeq(), 3);
  // live, and "arrived" only the first time a record is seen
  cc.store.applyFrame({ type: 'delta', seq: 4, kind: 'event', op: 'upsert', data: ev('E1') });
  assert.deepEqual(told, [['event', 'upsert', 'E1', true, true], ['event', 'upsert', 'E2', true, true],
    ['event', 'upsert', 'E1', true, false]]);
});

test('js032 a move merges into the record; an upsert replaces it; ids are strings', () => {
  const { cc } = page();
  cc.store.applyFrame({ type: 'delta', seq: 1, kind: 'worker', op: 'upsert',
    data: { id: 7, name: 'Li', lon: 1, lat: 2, status: 'on_duty' } });
  cc.store.applyFrame({ type: 'delta', seq: 2, kind: 'worker', op: 'move', data: { id: 7, lon: 3, lat: 4 } });
  assert.deepEqual(cc.store.get('worker', '7'), { id: '7', name: 'Li', lon: 3, lat: 4, status: 'on_duty' });
  cc.store.applyFrame({ type: 'delta', seq: 3, kind: 'worker', op: 'upsert', data: { id: 7, lon: 5, lat: 6 } });
  assert.deepEqual(cc.store.get('worker', '7'), { id: '7', lon: 5, lat: 6 });
});

test('js033 delete and remove drop a record and say so; unknown ids change nothing', () => {
  const { cc, told } = page();
  cc.store.applyFrame({ type: 'batch', seq: 1, items: [
    { kind: 'event', op: 'upsert', data: ev('E1') }, { kind: 'resource', op: 'upsert', data: { id: 'R1' } }] });
  cc.store.applyFrame({ type: 'batch', seq: 2, items: [
    { kind: 'event', op: 'delete', data: { id: 'E1' } }, { kind: 'resource', op: 'remove', data: { id: 'R1' } },
    { kind: 'resource', op: 'remove', data: { id: 'nobody' } }] });
  assert.equal(cc.store.size('event'), 0);
  assert.equal(cc.store.size('resource'), 0);
  assert.deepEqual(told.slice(2), [['event', 'remove', 'E1', false, false],
    ['resource', 'remove', 'R1', false, false]]);
});

test('js034 a batch applies its items in order under one sequence number', () => {
  const { cc, told } = page();
  cc.store.applyFrame({ type: 'batch', seq: 10, items: [
    { kind: 'event', op: 'upsert', data: ev('E1', { status: 'reported' }) },
    null, { kind: 'event', op: 'upsert', data: { id: 'bad' } },
    { kind: 'event', op: 'upsert', data: ev('E1', { status: 'closed' }) }] });
  assert.equal(cc.store.get('event', 'E1').status, 'closed');
  assert.equal(cc.store.lastSeq(), 10);
  cc.store.applyFrame({ type: 'batch', seq: 10, items: [{ kind: 'event', op: 'upsert', data: ev('E9') }] });
  assert.equal(cc.store.get('event', 'E9'), undefined); // a replayed batch
  assert.deepEqual(told.map((t) => t[2]), ['E1', 'bad', 'E1']);
});

test('js035 records the store does not keep (tasks, alerts, video) reach subscribers only', () => {
  const { cc, told } = page();
  cc.store.applyFrame({ type: 'batch', seq: 1, items: [
    { kind: 'alert', op: 'upsert', data: { id: 'A1' } }, { kind: 'video', op: 'upsert', data: { id: 'wall' } },
    { kind: 'task', op: 'upsert', data: { id: null } }] });
  assert.deepEqual(told, [['alert', 'upsert', 'A1', true, false], ['video', 'upsert', 'wall', true, false]]);
  assert.equal(cc.store.get('alert', 'A1'), undefined);
});

test('js036 closed events leave after closedKeepMs; open ones stay however old', () => {
  const { cc } = page();
  const now = Date.now();
  cc.store.applyFrame({ type: 'snapshot', events: [
    ev('OLD-CLOSED', { status: 'closed', ts: now - DAY - 1000 }),
    ev('OLD-CANCELLED', { status: 'cancelled', ts: now - 2 * DAY }),
    ev('NEW-CLOSED', { status: 'closed', ts: now - 1000 }),
    ev('OLD-OPEN', { status: 'reported', ts: now - 30 * DAY })] });
  assert.deepEqual(ids(cc, 'event'), ['NEW-CLOSED', 'OLD-OPEN']);
});

test('js037 over the cap, the oldest closed events go first, then the oldest of any', () => {
  const { cc } = page();
  const now = Date.now();
  const events = [];
  for (let i = 0; i < 8; i++) events.push(ev('OPEN' + i, { ts: now - i * 1000 }));
  for (let i = 0; i < 4; i++) events.push(ev('CLOSED' + i, { status: 'closed', ts: now - i * 1000 }));
  cc.store.applyFrame({ type: 'snapshot', events });
  // 12 events, cap 10: the two oldest closed ones leave, every open one stays
  assert.equal(cc.store.size('event'), 10);
  assert.equal(cc.store.get('event', 'CLOSED3'), undefined);
  assert.equal(cc.store.get('event', 'CLOSED2'), undefined);
  assert.ok(cc.store.get('event', 'OPEN7'));
  // only open events over the cap: the oldest (by `received`, else `ts`) go
  const { cc: cc2 } = page();
  const open = [];
  for (let i = 0; i < 12; i++) open.push(ev('E' + i, { ts: now - i * 1000, received: i === 11 ? now : undefined }));
  cc2.store.applyFrame({ type: 'snapshot', events: open });
  assert.deepEqual(ids(cc2, 'event'), ['E0', 'E1', 'E11', 'E2', 'E3', 'E4', 'E5', 'E6', 'E7', 'E8']);
});

test('js038 live events past the cap by a tenth are pruned at once, not a minute later', () => {
  const { cc } = page();
  const now = Date.now();
  for (let i = 0; i < 11; i++) {
    cc.store.applyFrame({ type: 'delta', seq: i + 1, kind: 'event', op: 'upsert', data: ev('E' + i, { ts: now + i }) });
  }
  assert.equal(cc.store.size('event'), 11); // 10 % over is allowed …
  cc.store.applyFrame({ type: 'delta', seq: 12, kind: 'event', op: 'upsert', data: ev('E11', { ts: now + 11 }) });
  assert.equal(cc.store.size('event'), 10); // … past it: back to the cap, oldest out
  assert.equal(cc.store.get('event', 'E0'), undefined);
  assert.equal(cc.store.get('event', 'E1'), undefined);
});

test('js039 units and cameras keep their own caps, newest kept', () => {
  const { cc } = page();
  const now = Date.now();
  const workers = [], cameras = [];
  for (let i = 0; i < 7; i++) {
    workers.push({ id: 'W' + i, ts: now - i });
    cameras.push({ id: 'C' + i, received: now - i });
  }
  cc.store.applyFrame({ type: 'snapshot', workers, cameras });
  assert.deepEqual(ids(cc, 'worker'), ['W0', 'W1', 'W2', 'W3', 'W4']);
  assert.deepEqual(ids(cc, 'camera'), ['C0', 'C1', 'C2', 'C3', 'C4']);
});

test('js040 the last 32 frames are kept for diagnosis; a fresh start forgets the sequence', () => {
  const { cc } = page();
  for (let i = 1; i <= 40; i++) cc.store.applyFrame({ type: 'stats', seq: i, stats: {} });
  cc.store.applyFrame({ type: 'delta', seq: 41, kind: 'event', op: 'upsert', data: ev('E1') });
  cc.store.applyFrame({ type: 'batch', seq: 42, items: [null, null] });
  cc.store.applyFrame({ type: 'unknown-to-this-client' });
  cc.store.applyFrame(null);
  assert.equal(cc.store.recent.length, 32);
  assert.deepEqual(cc.store.recent.slice(-3).map((r) => r.slice(0, 3)),
    [['delta', 41, 'event:E1'], ['batch', 42, 2], ['unknown-to-this-client', undefined, '']]);
  assert.equal(cc.store.lastSeq(), 42);
  cc.store.resetSeq();
  assert.equal(cc.store.lastSeq(), 0);
  cc.store.applyFrame({ type: 'delta', seq: 1, kind: 'event', op: 'upsert', data: ev('E2') });
  assert.ok(cc.store.get('event', 'E2'));
});

test('js041 a live event\'s paint time is written at the end of the frame that draws it', () => {
  const { cc, flush } = page();
  cc.store.applyFrame({ type: 'snapshot', events: [ev('OLD')] });
  cc.store.applyFrame({ type: 'delta', seq: 1, kind: 'event', op: 'upsert', data: ev('E1') });
  assert.equal(cc.store.appliedAt.size, 0);
  flush();
  assert.deepEqual(Array.from(cc.store.appliedAt.keys()), ['E1']); // not the snapshot's
  const live = (n) => cc.store.applyFrame({ type: 'delta', seq: n, kind: 'event', op: 'upsert', data: ev('E' + n) });
  [2, 3, 4, 5].forEach(live);
  flush();
  assert.deepEqual(Array.from(cc.store.appliedAt.keys()), ['E2', 'E3', 'E4', 'E5']); // capped, oldest out
  // no frame runs (a hidden tab): what waits for one is bounded too
  [6, 7, 8, 9, 10].forEach(live);
  flush();
  assert.deepEqual(Array.from(cc.store.appliedAt.keys()), ['E3', 'E4', 'E5', 'E10']);
});

test('js042 every listener sees every change, in the order they listened; one that throws stops none', () => {
  const { cc } = page();
  const seen = [];
  // as boot subscribes them on the wall: the map, the panels, the event panel
  cc.store.listen((kind, op, rec) => seen.push(['map', kind, op, rec.id]));
  cc.store.listen(() => { throw new Error('a broken view'); });
  cc.store.listen((kind, op, rec) => seen.push(['panel', kind, op, rec.id]));
  const warn = console.warn;
  console.warn = () => {};
  try {
    cc.store.applyFrame({ type: 'batch', seq: 1, items: [
      { kind: 'event', op: 'upsert', data: ev('E1') }, { kind: 'task', op: 'upsert', data: { id: 'T1' } },
      { kind: 'event', op: 'delete', data: { id: 'E1' } }] });
  } finally {
    console.warn = warn;
  }
  assert.deepEqual(seen, [['map', 'event', 'upsert', 'E1'], ['panel', 'event', 'upsert', 'E1'],
    ['map', 'task', 'upsert', 'T1'], ['panel', 'task', 'upsert', 'T1'],
    ['map', 'event', 'remove', 'E1'], ['panel', 'event', 'remove', 'E1']]);
});

test('js043 "added" marks a record new to the store, in a snapshot too; "arrived" only live', () => {
  const { cc } = page();
  const flags = [];
  cc.store.listen((kind, op, rec, live, arrived, added) => {
    if (kind === 'worker') flags.push([rec.id, live, arrived, added]);
  });
  cc.store.applyFrame({ type: 'snapshot', seq: 1, workers: [{ id: 'W1' }] });
  cc.store.applyFrame({ type: 'snapshot', seq: 2, workers: [{ id: 'W1' }] });
  cc.store.applyFrame({ type: 'delta', seq: 3, kind: 'worker', op: 'move', data: { id: 'W1' } });
  cc.store.applyFrame({ type: 'delta', seq: 4, kind: 'worker', op: 'upsert', data: { id: 'W2' } });
  assert.deepEqual(flags, [['W1', false, false, true], ['W1', false, false, false],
    ['W1', true, false, false], ['W2', true, true, true]]);
});

test('js044 stats frames and whole snapshots reach the listeners with the frame itself', () => {
  const { cc } = page();
  const frames = [];
  cc.store.listen((kind, op, rec) => { if (kind === 'stats' || kind === 'snapshot') frames.push([kind, rec]); });
  const stats = { type: 'stats', server_ts: 5, stats: { open: 3 } };
  const snap = { type: 'snapshot', seq: 7, tasks: [], alerts: [], stats: { open: 1 } };
  cc.store.applyFrame(stats);
  cc.store.applyFrame(snap);
  assert.deepEqual(frames, [['stats', stats], ['snapshot', snap]]);
});

test('js045 a snapshot is pruned after its listeners ran: by the server clock they were given', () => {
  const { cc } = page();
  const now = Date.now();
  // the browser's clock is two days behind the server's: an event closed 30 h ago by the
  // server's clock is only gone once the header has taken the server's time from the frame
  cc.store.listen((kind, op, rec) => { if (kind === 'snapshot') cc.clockOffset = rec.server_ts - now; });
  cc.store.applyFrame({ type: 'snapshot', server_ts: now + 2 * DAY,
    events: [ev('OLD', { status: 'closed', ts: now + 2 * DAY - 30 * 3600 * 1000 })] });
  assert.equal(cc.store.get('event', 'OLD'), undefined);
});
