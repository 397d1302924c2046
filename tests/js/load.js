// Loads browser files (assets/js/cc-*.js) into node for the tests of their pure parts.
//
// The files are classic scripts that hang everything off window.ccwall; here `window` is
// node's global object and each load() starts a fresh namespace, so a test gets the
// functions exactly as the browser runs them. Only what the loaded files touch while they
// load or while the tested functions run is stubbed: requestAnimationFrame (frames are run by
// flush(), never by a clock) and, when a test asks for it, a small Leaflet (cc-12 projects
// camera positions with L.CRS.EPSG3857).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

const JS = path.resolve(__dirname, '..', '..', 'assets', 'js');

/* Leaflet's spherical Mercator at zoom 0 (256 px world), the only part cc-12 uses outside a
   map: enough to fill the camera arrays the selection geometry scans. */
const LEAFLET = {
  latLng: (lat, lng) => ({ lat, lng }),
  CRS: {
    EPSG3857: {
      latLngToPoint(ll) {
        const R = 6378137, d = Math.PI / 180, max = 85.0511287798;
        const lat = Math.max(Math.min(max, ll.lat), -max), sin = Math.sin(lat * d);
        const x = R * ll.lng * d, y = R * Math.log((1 + sin) / (1 - sin)) / 2;
        const scale = 0.5 / (Math.PI * R);
        return { x: 256 * (scale * x + 0.5), y: 256 * (-scale * y + 0.5) };
      },
    },
  },
  Layer: { extend: () => function CamLayer() {} },
};

/**
 * Run `files` (names under assets/js, in the order Dash loads them) in a fresh namespace.
 * opts.leaflet: provide the small Leaflet above as window.L.
 * Returns {cc, flush}: the namespace, and a function that runs the queued animation frames.
 */
function load(files, opts = {}) {
  globalThis.window = globalThis;
  delete globalThis.ccwall;
  if (opts.leaflet) globalThis.L = LEAFLET; else delete globalThis.L;
  let queued = [];
  globalThis.requestAnimationFrame = (fn) => { queued.push(fn); return queued.length; };
  for (const name of files) {
    vm.runInThisContext(fs.readFileSync(path.join(JS, name), 'utf8'), { filename: name });
  }
  const flush = () => {
    const run = queued;
    queued = [];
    run.forEach((fn) => fn(performance.now()));
  };
  return { cc: globalThis.ccwall, flush };
}

module.exports = { load };
