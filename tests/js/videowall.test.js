// What the video wall's tiles show (assets/js/cc-68-wallpick.js): the followed event, its
// cameras in the event panel's order, the tour of online cameras by area, pinned tiles
// winning; and the plural forms of the strings (cc.t, cc-00-core.js). Feature codes
// js090-js109.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { load } = require('./load');

function pick() {
  const { cc } = load(['cc-00-core.js', 'cc-68-wallpick.js']);
  return cc.wallpick;
}

const RULES = { urgent: [1, 2], closed: ['closed', 'cancelled'] };
const ev = (id, severity, firstTs, status = 'reported') => ({ id, severity, first_ts: firstTs, ts: firstTs, status });

// A camera in town T (370283001..) and community C of it; playable unless told otherwise.
function cam(id, town, community, extra = {}) {
  const grid = `370283${String(town).padStart(3, '0')}${String(community).padStart(3, '0')}001`;
  return { id, grid_id: grid, online: true, stream_type: 'mjpeg', stream_url: `http://v/${id}.mjpg`, ...extra };
}

test('js090 the gravest open level-I/II event is followed, the newest among equals', () => {
  const W = pick();
  const events = [ev('E3', 3, 900), ev('A2', 2, 100), ev('B2', 2, 300), ev('C1', 1, 50, 'closed')];
  assert.equal(W.followed(events, null, RULES), 'B2');
  events.push(ev('D1', 1, 10));
  assert.equal(W.followed(events, null, RULES), 'D1'); // graver beats newer
  assert.equal(W.followed([ev('E3', 3, 900), ev('E4', 4, 950)], null, RULES), null);
  assert.equal(W.followed([], null, RULES), null);
});

test('js091 a focused event is followed until an urgent one arrives after the focus', () => {
  const W = pick();
  const events = [ev('OLD1', 1, 100), ev('FOCUS', 3, 150)];
  // a commander opened a level-III event on the wall at 200: it wins over the older level I
  assert.equal(W.followed(events, { event_id: 'FOCUS', ts: 200 }, RULES), 'FOCUS');
  // a level II arriving after it takes over
  events.push(ev('NEW2', 2, 250));
  assert.equal(W.followed(events, { event_id: 'FOCUS', ts: 200 }, RULES), 'NEW2');
  // the focused event closed: the urgent rule again, over every open event
  const closed = [ev('OLD1', 1, 100), ev('FOCUS', 3, 150, 'closed')];
  assert.equal(W.followed(closed, { event_id: 'FOCUS', ts: 200 }, RULES), 'OLD1');
  // a focus on an event this screen does not have (out of scope, gone): as if none
  assert.equal(W.followed([ev('OLD1', 1, 100)], { event_id: 'NOPE', ts: 200 }, RULES), 'OLD1');
});

test('js092 the followed event fills the unpinned tiles in the ranking order', () => {
  const W = pick();
  const ranking = ['COVER', 'RING', 'AWAY', 'FAR'];
  const got = W.fill({ grid: 4, pinned: [], ranking, plan: null, step: 0 });
  assert.deepEqual(got.map((s) => [s.id, s.src]),
    [['COVER', 'follow'], ['RING', 'follow'], ['AWAY', 'follow'], ['FAR', 'follow']]);
  // one tile: the first of the ranking (the camera that sees it best)
  assert.deepEqual(W.fill({ grid: 1, pinned: [], ranking, plan: null }).map((s) => s.id), ['COVER']);
});

test('js099 offline cameras of the event go behind the others, in the ranking\'s order', () => {
  const W = pick();
  const off = new Set(['COVER', 'AWAY']);
  const ranked = W.liveFirst(['COVER', 'RING', 'AWAY', 'FAR'], (id) => off.has(id));
  assert.deepEqual(ranked, ['RING', 'FAR', 'COVER', 'AWAY']);
  // four tiles: all still shown; two tiles: the two that can give a picture
  assert.deepEqual(W.fill({ grid: 2, pinned: [], ranking: ranked, plan: null }).map((s) => s.id),
    ['RING', 'FAR']);
});

test('js093 pinned tiles win: kept in place, never shown twice, the follow fills around them', () => {
  const W = pick();
  const ranking = ['COVER', 'RING', 'AWAY'];
  const got = W.fill({ grid: 4, pinned: [null, 'MINE', null, 'RING'], ranking, plan: null });
  assert.deepEqual(got.map((s) => [s.id, s.src]),
    [['COVER', 'follow'], ['MINE', 'pin'], ['AWAY', 'follow'], ['RING', 'pin']]);
  // a pinned tile past the grid is not on screen: it does not hold its camera back
  const small = W.fill({ grid: 1, pinned: [null, 'COVER'], ranking, plan: null });
  assert.deepEqual(small.map((s) => s.id), ['COVER']);
  // every tile pinned: nothing else shows
  const full = W.fill({ grid: 1, pinned: ['MINE'], ranking, plan: null });
  assert.deepEqual(full, [{ id: 'MINE', src: 'pin' }]);
});

test('js094 the tour plan takes online cameras with a stream, by town then community', () => {
  const W = pick();
  const plan = W.tourPlan([
    cam('b2', 2, 1), cam('a1', 1, 1), cam('c1', 1, 2), cam('a0', 1, 1),
    cam('off', 1, 1, { online: false }), cam('none', 1, 1, { stream_type: 'none' }),
    cam('nourl', 1, 1, { stream_url: '' }), { id: 'lost', online: true, stream_type: 'mjpeg', stream_url: 'http://v/x' },
  ]);
  assert.equal(plan.total, 5);
  assert.ok(plan.has.has('a0') && !plan.has.has('off'));
  assert.deepEqual(plan.towns.map((t) => [t.code, t.communities.map((c) => [c.code, c.ids])]), [
    ['370283001', [['370283001001', ['a0', 'a1']], ['370283001002', ['c1']]]],
    ['370283002', [['370283002001', ['b2']]]],
    ['', [['', ['lost']]]], // no area: last
  ]);
});

test('js095 the tour goes round the towns, a town\'s communities in turn, the next cameras each visit', () => {
  const W = pick();
  const cams = [];
  for (let i = 0; i < 6; i++) cams.push(cam(`T1C1-${i}`, 1, 1));
  for (let i = 0; i < 3; i++) cams.push(cam(`T1C2-${i}`, 1, 2));
  for (let i = 0; i < 6; i++) cams.push(cam(`T2C1-${i}`, 2, 1));
  const plan = W.tourPlan(cams);
  const ids = (step, n = 2) => W.tour(plan, step, n).map((p) => p.id);
  assert.deepEqual(ids(0), ['T1C1-0', 'T1C1-1']); // town 1, its first community
  assert.deepEqual(ids(1), ['T2C1-0', 'T2C1-1']); // town 2
  assert.deepEqual(ids(2), ['T1C2-0', 'T1C2-1']); // town 1 again, its next community
  assert.deepEqual(ids(3), ['T2C1-2', 'T2C1-3']); // town 2's only community, the next two
  assert.deepEqual(ids(4), ['T1C1-2', 'T1C1-3']); // back to town 1's first, where it left off
  const at = W.tour(plan, 2, 2);
  assert.deepEqual([at[0].town, at[0].community], ['370283001', '370283001002']);
});

test('js096 the tour never shows a camera twice on one screen, nor one already there', () => {
  const W = pick();
  const cams = [cam('a', 1, 1), cam('b', 1, 1), cam('c', 2, 1)];
  const plan = W.tourPlan(cams);
  for (let step = 0; step < 20; step++) {
    const got = W.tour(plan, step, 16).map((p) => p.id);
    assert.equal(got.length, 3, `step ${step}`);
    assert.equal(new Set(got).size, 3, `step ${step}`);
    const skip = W.tour(plan, step, 2, new Set(['a'])).map((p) => p.id);
    assert.ok(!skip.includes('a') && new Set(skip).size === skip.length, `step ${step}`);
  }
  // a small community fills the rest from the next areas
  assert.deepEqual(W.tour(plan, 1, 3).map((p) => p.id), ['c', 'b', 'a']); // town 1's second visit starts further on
  assert.deepEqual(W.tour(W.tourPlan([]), 0, 4), []);
  // a small community borrows from its own town's next community first, so the next step
  // (another town) does not show the borrowed cameras again
  const towns = W.tourPlan([cam('x', 1, 1), cam('y0', 1, 2), cam('y1', 1, 2), cam('y2', 1, 2),
    cam('z0', 2, 1), cam('z1', 2, 1)]);
  assert.deepEqual(W.tour(towns, 0, 3).map((p) => p.id), ['x', 'y0', 'y1']);
  assert.deepEqual(W.tour(towns, 1, 3).map((p) => p.id), ['z0', 'z1', 'y0']);
});

test('js097 fill: pinned, then the event, then the tour; no camera twice', () => {
  const W = pick();
  const plan = W.tourPlan([cam('COVER', 1, 1), cam('t1', 1, 1), cam('t2', 2, 1), cam('MINE', 2, 1)]);
  const got = W.fill({ grid: 4, pinned: [null, 'MINE'], ranking: ['COVER'], plan, step: 0 });
  assert.deepEqual(got.map((s) => [s.id, s.src]),
    [['COVER', 'follow'], ['MINE', 'pin'], ['t1', 'tour'], ['t2', 'tour']]);
  assert.equal(got[2].community, '370283001001');
  // nothing to follow: the tour fills every unpinned tile at once
  const tour = W.fill({ grid: 4, pinned: [], ranking: [], plan, step: 0 });
  assert.deepEqual(tour.map((s) => s.src), ['tour', 'tour', 'tour', 'tour']);
  assert.equal(new Set(tour.map((s) => s.id)).size, 4);
  // more tiles than cameras: the rest stay empty rather than repeat
  const big = W.fill({ grid: 9, pinned: [], ranking: [], plan, step: 5 });
  assert.equal(big.filter((s) => s.id).length, 4);
  assert.deepEqual(big.slice(4), Array(5).fill({ id: null, src: null }));
});

test('js098 counts take the singular at 1 in English, Chinese reads naturally', () => {
  const { cc } = load(['cc-00-core.js']);
  cc.strings = { 'vw.grid_n': '{n|# tile|# tiles}', 'video.count': '{n|# camera|# cameras}',
    'zh.grid_n': '{n|单画面|#画面}', 'mixed': '{a} of {n|# grid|# grids}' };
  assert.equal(cc.t('vw.grid_n', { n: 1 }), '1 tile');
  assert.equal(cc.t('vw.grid_n', { n: 4 }), '4 tiles');
  assert.equal(cc.t('vw.grid_n', { n: 0 }), '0 tiles');
  assert.equal(cc.t('video.count', { n: '1' }), '1 camera');
  assert.equal(cc.t('video.count', { n: '1,001' }), '1,001 cameras');
  assert.equal(cc.t('zh.grid_n', { n: 1 }), '单画面');
  assert.equal(cc.t('zh.grid_n', { n: 16 }), '16画面');
  assert.equal(cc.t('mixed', { a: 2, n: 1 }), '2 of 1 grid');
  // a count not given stays visible as it is
  assert.equal(cc.t('vw.grid_n', {}), '{n|# tile|# tiles}');
});
