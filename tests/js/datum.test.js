// Map datums in the browser (cc.latLng in assets/js/cc-00-core.js: WGS-84 feed positions
// shifted to a GCJ-02 or BD-09 tile layer; cc.camsel.toWgs in cc-13-camsel.js: back again)
// and the camera layer's great-circle distance (cc.cameras.distance, cc-12-cameras.js), against
// the Python side (dashboard/geo.py): fixtures/datum.json holds its values and says how they
// were made. Feature codes js020-js029.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { load } = require('./load');
const { points, distances } = require('./fixtures/datum.json');

function wall(tileCrs) {
  const { cc } = load(['cc-00-core.js', 'cc-12-cameras.js', 'cc-13-camsel.js']);
  cc.cfg = { tileCrs };
  return cc;
}

// what Leaflet is given: [lat, lng]
const leaflet = (lonLat) => [lonLat[1], lonLat[0]];

function near(actual, expected, tol, what) {
  assert.equal(actual.length, expected.length, what);
  actual.forEach((v, i) => {
    assert.ok(Math.abs(v - expected[i]) <= tol,
      `${what}: ${JSON.stringify(actual)} is not within ${tol} of ${JSON.stringify(expected)}`);
  });
}

test('js020 a WGS-84 tile layer gets feed positions unchanged', () => {
  for (const crs of ['wgs84', undefined]) {
    const cc = wall(crs);
    for (const p of points) assert.deepEqual(cc.latLng(...p.wgs84), leaflet(p.wgs84));
  }
});

test('js021 GCJ-02 positions agree with dashboard/geo.py to 1e-9 degree', () => {
  const cc = wall('gcj02');
  for (const p of points) near(cc.latLng(...p.wgs84), leaflet(p.gcj02), 1e-9, p.name);
});

test('js022 BD-09 positions agree with dashboard/geo.py to 1e-9 degree', () => {
  const cc = wall('bd09');
  for (const p of points) near(cc.latLng(...p.wgs84), leaflet(p.bd09), 1e-9, p.name);
});

test('js023 outside China\'s box GCJ-02 is WGS-84 (BD-09 still adds its own offset)', () => {
  const out = points.filter((p) => p.name.endsWith('outside_box') || p.name === 'paris');
  assert.ok(out.length >= 2);
  const cc = wall('gcj02');
  for (const p of out) assert.deepEqual(cc.latLng(...p.wgs84), leaflet(p.wgs84));
});

test('js024 a map click goes back to WGS-84: GCJ-02 like geo.to_wgs84, to 1e-8 degree', () => {
  const cc = wall('gcj02');
  for (const p of points) {
    const back = cc.camsel.toWgs({ lng: p.gcj02[0], lat: p.gcj02[1] });
    near(back, p.gcj02_to_wgs84, 1e-8, p.name);
    near(back, p.wgs84, 1e-8, p.name);
  }
});

test('js025 BD-09 back to WGS-84: exact round trip; within Baidu\'s inverse (geo.py) to 2e-6', () => {
  const cc = wall('bd09');
  for (const p of points) {
    const back = cc.camsel.toWgs({ lng: p.bd09[0], lat: p.bd09[1] });
    near(back, p.wgs84, 1e-8, p.name);
    // geo.bd09_to_wgs84 uses Baidu's published approximate inverse (~1e-6 degree)
    near(back, p.bd09_to_wgs84, 2e-6, p.name);
  }
});

test('js026 on a WGS-84 map a click is already WGS-84', () => {
  const cc = wall('wgs84');
  assert.deepEqual(cc.camsel.toWgs({ lng: 119.95, lat: 36.78 }), [119.95, 36.78]);
});

test('js027 great-circle distances agree with geo.haversine_m to a millimetre', () => {
  const cc = wall('wgs84');
  for (const d of distances) {
    const m = cc.cameras.distance(d.from[0], d.from[1], d.to[0], d.to[1]);
    assert.ok(Math.abs(m - d.metres) <= 1e-3, `${JSON.stringify(d)}: ${m}`);
  }
});
