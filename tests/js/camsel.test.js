// Picking cameras on the map: the geometry the selection tools use (assets/js/cc-12-cameras.js:
// haversine circle, even-odd polygon, nearest first) and the selection they make
// (cc-13-camsel.js). Membership is exact on the WGS-84 positions, whatever the tile datum.
// Feature codes js050-js069.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { load } = require('./load');

/* A wall with `cams` ([id, lon, lat]) on the camera layer. */
function wall(cams, cfg = {}) {
  const { cc } = load(['cc-00-core.js', 'cc-12-cameras.js', 'cc-13-camsel.js'], { leaflet: true });
  cc.cfg = { tileCrs: 'wgs84', cameraLayer: {}, ...cfg };
  cc.store = { get: () => undefined };
  cams.forEach(([id, lon, lat]) => cc.cameras.sync({ id, lon, lat }));
  return cc;
}

// a 5 × 5 grid of cameras 0.001° apart around (120, 36): C<col><row>
const GRID = [];
for (let i = 0; i < 5; i++) {
  for (let j = 0; j < 5; j++) GRID.push([`C${i}${j}`, 120 + (i - 2) * 0.001, 36 + (j - 2) * 0.001]);
}

test('js050 point in polygon is even-odd ray casting on lon/lat', () => {
  const cc = wall([]);
  const inside = cc.cameras.pointInPolygon;
  const square = [[0, 0], [4, 0], [4, 4], [0, 4]];
  assert.equal(inside(2, 2, square), true);
  assert.equal(inside(5, 2, square), false);
  assert.equal(inside(-0.001, 2, square), false);
  // a U: the notch is outside
  const u = [[0, 0], [6, 0], [6, 6], [4, 6], [4, 2], [2, 2], [2, 6], [0, 6]];
  assert.equal(inside(3, 4, u), false);
  assert.equal(inside(1, 4, u), true);
  assert.equal(inside(3, 1, u), true);
  // a star drawn in one stroke: its centre is covered twice, so even-odd leaves it out
  const star = [[0, 3], [6, 3], [1, 0], [3, 6], [5, 0]];
  assert.equal(inside(3, 2.5, star), false);
  assert.equal(inside(3, 5, star), true);
});

test('js051 a circle takes every camera within its radius (haversine), nearest first', () => {
  const cc = wall(GRID);
  const d = (id) => { const p = cc.cameras.position(id); return cc.cameras.distance(120, 36, p.lon, p.lat); };
  const r = d('C31') + 0.01; // just reaches the four diagonal neighbours
  const got = cc.cameras.inCircle(120, 36, r);
  assert.equal(got.length, 9);
  assert.equal(got[0], 'C22');
  // 0.001° of longitude is ~90 m here, of latitude ~111 m; equal distances in id order
  assert.deepEqual(got.slice(1, 3), ['C12', 'C32']);
  assert.deepEqual(got.slice(3, 5).sort(), ['C21', 'C23']);
  assert.deepEqual(got.slice(5).sort(), ['C11', 'C13', 'C31', 'C33']);
  // the radius itself counts as inside
  assert.deepEqual(cc.cameras.inCircle(120, 36, d('C12')), ['C22', 'C12', 'C32']);
  assert.deepEqual(cc.cameras.inCircle(120, 36, d('C12') - 0.01), ['C22']);
  assert.deepEqual(cc.cameras.inCircle(121, 37, 1000), []);
});

test('js052 a polygon takes the cameras inside it, nearest its vertices\' centroid first', () => {
  const cc = wall(GRID);
  // a triangle over the lower-left corner of the grid
  const tri = [[119.9975, 35.9975], [120.0000, 35.9975], [119.9975, 36.0000]];
  const got = cc.cameras.inPolygon(tri);
  assert.deepEqual(got.slice().sort(), ['C00', 'C01', 'C10']);
  assert.equal(got[0], 'C00');
  assert.deepEqual(cc.cameras.inPolygon(tri.slice(0, 2)), []); // not a polygon
  assert.deepEqual(cc.cameras.inPolygon(null), []);
});

test('js053 a drawn circle or polygon is kept rounded (1e-6 °, 0.1 m) and selects its cameras', () => {
  const cc = wall(GRID);
  cc.camsel.selectCircle(120.00000012, 35.99999987, 120.04);
  assert.deepEqual(cc.camsel.shape(), { type: 'circle', lon: 120, lat: 36, radius_m: 120 });
  assert.deepEqual(cc.camsel.selection(), cc.cameras.inCircle(120, 36, 120));
  assert.equal(cc.cameras.stats().selected, 5);
  cc.camsel.selectPolygon([[119.99750004, 35.9975], [120.0000, 35.9975], [119.9975, 36.0000]]);
  assert.deepEqual(cc.camsel.shape(), { type: 'polygon',
    points: [[119.9975, 35.9975], [120, 35.9975], [119.9975, 36]] });
  assert.deepEqual(cc.camsel.selection().sort(), ['C00', 'C01', 'C10']);
  cc.camsel.clear();
  assert.deepEqual(cc.camsel.selection(), []);
  assert.equal(cc.camsel.shape(), null);
});

test('js054 a selection is capped at cameraLayer.selectionMax', () => {
  const cc = wall(GRID, { cameraLayer: { selectionMax: 3 } });
  cc.camsel.selectCircle(120, 36, 10000);
  assert.deepEqual(cc.camsel.selection(), cc.cameras.inCircle(120, 36, 10000).slice(0, 3));
});

test('js055 picking toggles single cameras, in the order picked', () => {
  const cc = wall(GRID);
  cc.camsel.toggle('C44');
  cc.camsel.toggle(0); // ids are strings
  cc.camsel.toggle('C00');
  cc.camsel.toggle('0');
  assert.deepEqual(cc.camsel.selection(), ['C44', 'C00']);
});

test('js056 the video wall gets the smallest grid that holds the selection', () => {
  const sel = wall([]).camsel;
  assert.deepEqual([0, 1, 2, 4, 5, 9, 10, 16, 17, 100].map(sel.gridFor), [1, 1, 4, 4, 9, 9, 16, 16, 16, 16]);
});

test('js057 the layer keeps only cameras with a position; a removal keeps the rest findable', () => {
  const cc = wall([['A', 120, 36], ['B', 120.001, 36], ['C', 120.002, 36]]);
  cc.cameras.sync({ id: 'NOWHERE', lon: null, lat: 36 });
  assert.equal(cc.cameras.count(), 3);
  cc.cameras.remove('A'); // the last camera moves into its slot
  assert.equal(cc.cameras.count(), 2);
  assert.equal(cc.cameras.has('A'), false);
  assert.deepEqual(cc.cameras.position('C'), { lon: 120.002, lat: 36, online: true });
  assert.deepEqual(cc.cameras.inCircle(120.001, 36, 100), ['B', 'C']);
  // a camera that loses its position leaves the layer
  cc.cameras.sync({ id: 'B', lon: undefined, lat: undefined });
  assert.deepEqual(cc.cameras.inCircle(120.001, 36, 1000), ['C']);
});

test('js058 on a GCJ-02 map, membership still uses the cameras\' WGS-84 positions', () => {
  const wgs = wall(GRID);
  const gcj = wall(GRID, { tileCrs: 'gcj02' });
  assert.deepEqual(gcj.cameras.inCircle(120, 36, 150), wgs.cameras.inCircle(120, 36, 150));
  assert.deepEqual(gcj.cameras.position('C00'), wgs.cameras.position('C00'));
});
