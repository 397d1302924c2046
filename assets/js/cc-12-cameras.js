/* cc-12-cameras.js: the map's camera layer, one canvas over typed arrays (docs/VIDEO.md).

   A city runs tens of thousands of cameras (Bao'an: 42,000 channels), far past what one
   Leaflet marker each can carry.

   So the cameras live in typed arrays (Web-Mercator position computed once per position
   change, WGS-84 position for exact selections, online, heading, fov, all-round, selected)
   and ONE canvas draws them: zoomed out, a grid of clusters (count and an arc for the
   offline share) computed by scanning the arrays at each redraw — 42k points take ~1 ms —
   zoomed in (or alone in a cell), one icon per camera: online/offline colour, a view sector
   along heading ± fov/2, a ring for PTZ / all-round cameras.

   A redraw happens at once when the view settles (moveend) and at most once a second for
   feed updates, and only when a changed camera is inside the drawn area (which covers
   every change to a visible cluster's numbers). Nothing here grows with uptime: the arrays
   hold at most the store's camera limit, removal swaps the last camera into the gap. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var L = window.L;
  var C = (cc.cameras = {});

  var EARTH_R = 6371008.8; // metres, the mean radius dashboard/geo.py uses
  var RAD = Math.PI / 180;
  var PAD = 0.1; // the canvas reaches this share of the view beyond each edge (drag margin);
  // every redraw clears and uploads the whole canvas, so the margin is kept small
  var PANE = 'ccCams';
  var PANE_Z = 445; // under the workers and resources (450), over the boundaries

  /* ------------------------------------------------------------- storage */

  var cap = 0, n = 0;
  var ids = []; // index → id
  var index = new Map(); // id → index
  var nx, ny, lon, lat, head, fov, rangeM; // Float64/Float32 arrays of length cap
  var online, allRound, sel; // Uint8Array

  function grow(min) {
    var next = Math.max(1024, cap * 2);
    while (next < min) next *= 2;
    function f64(old) { var a = new Float64Array(next); if (old) a.set(old.subarray(0, n)); return a; }
    function f32(old) { var a = new Float32Array(next); if (old) a.set(old.subarray(0, n)); return a; }
    function u8(old) { var a = new Uint8Array(next); if (old) a.set(old.subarray(0, n)); return a; }
    nx = f64(nx); ny = f64(ny); lon = f64(lon); lat = f64(lat);
    head = f32(head); fov = f32(fov); rangeM = f32(rangeM);
    online = u8(online); allRound = u8(allRound); sel = u8(sel);
    cap = next;
  }

  // Shrink back when most cameras have gone (a new city, a reset): no high-water mark kept.
  function maybeShrink() {
    if (cap <= 4096 || n * 4 > cap) return;
    var keep = n, old = { nx: nx, ny: ny, lon: lon, lat: lat, head: head, fov: fov, rangeM: rangeM,
      online: online, allRound: allRound, sel: sel };
    cap = 0; nx = ny = lon = lat = head = fov = rangeM = online = allRound = sel = null;
    n = 0;
    grow(keep * 2);
    n = keep;
    nx.set(old.nx.subarray(0, n)); ny.set(old.ny.subarray(0, n));
    lon.set(old.lon.subarray(0, n)); lat.set(old.lat.subarray(0, n));
    head.set(old.head.subarray(0, n)); fov.set(old.fov.subarray(0, n));
    rangeM.set(old.rangeM.subarray(0, n)); online.set(old.online.subarray(0, n));
    allRound.set(old.allRound.subarray(0, n)); sel.set(old.sel.subarray(0, n));
  }

  function num(v) { return typeof v === 'number' && isFinite(v) ? v : NaN; }

  /* The normalised Web-Mercator point ([0,1] across the world) of a WGS-84 position, in the
     tile layer's datum: at zoom z the pixel is this × crs.scale(z). */
  var merc = L ? L.CRS.EPSG3857 : null;
  function project(lo, la) {
    var ll = cc.latLng(lo, la);
    var p = merc.latLngToPoint(L.latLng(ll[0], ll[1]), 0);
    return [p.x / 256, p.y / 256];
  }

  function inView(i) {
    return view.on && nx[i] >= view.x0 && nx[i] <= view.x1 && ny[i] >= view.y0 && ny[i] <= view.y1;
  }

  /* Put or update one camera; marks the layer dirty only when something visible changed. */
  C.sync = function (rec) {
    if (!rec || rec.id === undefined || !merc) return;
    var id = String(rec.id);
    if (!cc.hasPos(rec)) { C.remove(id); return; }
    var i = index.get(id), fresh = i === undefined;
    var wasIn = !fresh && inView(i);
    if (fresh) {
      if (n >= cap) grow(n + 1);
      i = n++;
      ids[i] = id;
      index.set(id, i);
      sel[i] = selected.has(id) ? 1 : 0;
      lon[i] = NaN;
    }
    var changed = fresh;
    if (lon[i] !== rec.lon || lat[i] !== rec.lat) {
      var p = project(rec.lon, rec.lat);
      lon[i] = rec.lon; lat[i] = rec.lat; nx[i] = p[0]; ny[i] = p[1];
      changed = true;
    }
    var on = rec.online === false ? 0 : 1;
    if (online[i] !== on) { online[i] = on; changed = true; }
    var h = num(rec.heading), f = num(rec.fov);
    var round = rec.ptz === true || !(h === h) ? 1 : 0;
    // NaN never equals itself: compare "both NaN" explicitly so a re-report is no change
    if (!(head[i] === h || (head[i] !== head[i] && h !== h))) { head[i] = h; changed = true; }
    if (!(fov[i] === f || (fov[i] !== fov[i] && f !== f))) { fov[i] = f; changed = true; }
    if (allRound[i] !== round) { allRound[i] = round; changed = true; }
    var r = num(rec.range_m);
    rangeM[i] = r === r && r > 0 ? r : 150;
    if (changed && (wasIn || inView(i))) dirty();
  };

  C.remove = function (id) {
    id = String(id);
    var i = index.get(id);
    if (i === undefined) return;
    var vis = inView(i);
    var last = --n;
    if (i !== last) {
      var lid = ids[last];
      ids[i] = lid; index.set(lid, i);
      nx[i] = nx[last]; ny[i] = ny[last]; lon[i] = lon[last]; lat[i] = lat[last];
      head[i] = head[last]; fov[i] = fov[last]; rangeM[i] = rangeM[last];
      online[i] = online[last]; allRound[i] = allRound[last]; sel[i] = sel[last];
    }
    ids.length = n;
    index.delete(id);
    maybeShrink();
    if (vis) dirty();
  };

  C.count = function () { return n; };
  C.has = function (id) { return index.has(String(id)); };

  /* ------------------------------------------------------------- selection support */

  var selected = new Set(); // ids highlighted (cc-13 sets them)

  C.setSelected = function (list) {
    selected = new Set((list || []).map(String));
    for (var i = 0; i < n; i++) sel[i] = selected.has(ids[i]) ? 1 : 0;
    redrawSoon(true);
  };

  function haversine(lo1, la1, lo2, la2) {
    var p1 = la1 * RAD, p2 = la2 * RAD, dp = p2 - p1, dl = (lo2 - lo1) * RAD;
    var s1 = Math.sin(dp / 2), s2 = Math.sin(dl / 2);
    var h = s1 * s1 + Math.cos(p1) * Math.cos(p2) * s2 * s2;
    return 2 * EARTH_R * Math.asin(Math.min(1, Math.sqrt(h)));
  }
  C.distance = haversine;

  /* Ids of the cameras within r_m metres (haversine on WGS-84) of a point, nearest first. */
  C.inCircle = function (lo, la, rM) {
    var out = [];
    // a cheap box first: 1° of latitude is ≥ 110 km everywhere
    var dLat = rM / 110000 + 1e-6, dLon = dLat / Math.max(0.01, Math.cos(la * RAD));
    for (var i = 0; i < n; i++) {
      if (Math.abs(lat[i] - la) > dLat || Math.abs(lon[i] - lo) > dLon) continue;
      var d = haversine(lo, la, lon[i], lat[i]);
      if (d <= rM) out.push([d, ids[i]]);
    }
    out.sort(function (a, b) { return a[0] - b[0] || (a[1] < b[1] ? -1 : 1); });
    return out.map(function (x) { return x[1]; });
  };

  /* Even-odd ray casting on lon/lat: the same test tests/video/test_camlayer_browser.py runs. */
  function pointInPolygon(x, y, pts) {
    var inside = false;
    for (var a = 0, b = pts.length - 1; a < pts.length; b = a++) {
      var xa = pts[a][0], ya = pts[a][1], xb = pts[b][0], yb = pts[b][1];
      if ((ya > y) !== (yb > y) && x < (xb - xa) * (y - ya) / (yb - ya) + xa) inside = !inside;
    }
    return inside;
  }
  C.pointInPolygon = pointInPolygon;

  /* Ids of the cameras inside a polygon [[lon, lat], …], nearest its vertex centroid first. */
  C.inPolygon = function (pts) {
    if (!Array.isArray(pts) || pts.length < 3) return [];
    var x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity, cx = 0, cy = 0;
    pts.forEach(function (p) {
      x0 = Math.min(x0, p[0]); x1 = Math.max(x1, p[0]); y0 = Math.min(y0, p[1]); y1 = Math.max(y1, p[1]);
      cx += p[0] / pts.length; cy += p[1] / pts.length;
    });
    var out = [];
    for (var i = 0; i < n; i++) {
      var x = lon[i], y = lat[i];
      if (x < x0 || x > x1 || y < y0 || y > y1 || !pointInPolygon(x, y, pts)) continue;
      out.push([haversine(cx, cy, x, y), ids[i]]);
    }
    out.sort(function (a, b) { return a[0] - b[0] || (a[1] < b[1] ? -1 : 1); });
    return out.map(function (x) { return x[1]; });
  };

  /* The camera drawn under a container point (an icon, or a cell holding one camera), or
     null; `cluster` tells when a cluster was hit instead ({lat, lng, count}). */
  C.at = function (pt) {
    if (!layer._map || !view.on) return null;
    var hit = hitTest(pt);
    return hit && hit.id ? hit.id : null;
  };
  C.hit = function (pt) { return layer._map && view.on ? hitTest(pt) : null; };

  C.position = function (id) {
    var i = index.get(String(id));
    return i === undefined ? null : { lon: lon[i], lat: lat[i], online: !!online[i] };
  };

  /* ------------------------------------------------------------- the canvas layer */

  var view = { on: false, x0: 0, y0: 0, x1: 0, y1: 0, k: 1, ox: 0, oy: 0, icons: false };
  var cfg = null;
  function lc() {
    cfg = cfg || (cc.cfg && cc.cfg.cameraLayer) || {};
    return cfg;
  }

  var CamLayer = L ? L.Layer.extend({
    onAdd: function (map) {
      var pane = map.getPane(PANE) || map.createPane(PANE);
      pane.style.zIndex = String(PANE_Z);
      pane.style.pointerEvents = 'none';
      var c = (this._canvas = L.DomUtil.create('canvas', 'cc-cam-canvas leaflet-zoom-animated'));
      c.style.pointerEvents = 'none';
      pane.appendChild(c);
      this._ctx = c.getContext('2d');
      this._reset();
    },
    onRemove: function () {
      L.DomUtil.remove(this._canvas);
      this._canvas = this._ctx = null;
      view.on = false;
      clearTimeout(timer); timer = null;
    },
    getEvents: function () {
      return { moveend: this._reset, resize: this._reset, viewreset: this._reset,
        zoomanim: this._animZoom };
    },
    /* Same transform as Leaflet's own renderers during a zoom animation. */
    _animZoom: function (e) {
      var map = this._map, scale = map.getZoomScale(e.zoom, this._zoom);
      var viewHalf = map.getSize().multiplyBy(0.5 + PAD);
      var centre = map.project(this._center, e.zoom);
      var offset = viewHalf.multiplyBy(-scale).add(centre).subtract(map._getNewPixelOrigin(e.center, e.zoom));
      L.DomUtil.setTransform(this._canvas, offset, scale);
    },
    _reset: function () {
      var map = this._map;
      if (!map || !this._canvas) return;
      var size = map.getSize(), dpr = window.devicePixelRatio || 1;
      var w = Math.round(size.x * (1 + 2 * PAD)), h = Math.round(size.y * (1 + 2 * PAD));
      var tl = map.containerPointToLayerPoint(size.multiplyBy(-PAD)).round();
      L.DomUtil.setPosition(this._canvas, tl);
      if (this._w !== w || this._h !== h || this._dpr !== dpr) {
        this._canvas.width = Math.round(w * dpr); this._canvas.height = Math.round(h * dpr);
        this._canvas.style.width = w + 'px'; this._canvas.style.height = h + 'px';
        this._w = w; this._h = h; this._dpr = dpr;
      }
      this._center = map.getCenter();
      this._zoom = map.getZoom();
      var k = map.options.crs.scale(this._zoom); // world width in pixels at this zoom
      var po = map.getPixelOrigin();
      view.k = k; view.ox = tl.x + po.x; view.oy = tl.y + po.y; view.w = w; view.h = h;
      view.x0 = view.ox / k; view.y0 = view.oy / k; view.x1 = (view.ox + w) / k; view.y1 = (view.oy + h) / k;
      view.zoom = this._zoom; view.dpr = dpr; view.tl = tl;
      view.on = true;
      draw();
    },
  }) : null;
  var layer = CamLayer ? new CamLayer() : { _map: null };
  C.layer = function () { return layer; };
  C.canvas = function () { return layer._canvas || null; };

  /* ------------------------------------------------------------- redraw pacing */

  var lastDraw = 0, timer = null, pending = false;

  function dirty() { if (view.on) redrawSoon(false); }

  /* A feed change: at most one redraw a second. A selection change: on the next frame. */
  function redrawSoon(now) {
    if (!layer._map || !view.on) return;
    if (now) { cc.schedule('cams', draw); return; }
    if (pending) return;
    pending = true;
    var wait = Math.max(0, (lc().redrawMs || 1000) - (performance.now() - lastDraw));
    timer = setTimeout(function () { timer = null; cc.schedule('cams', draw); }, wait);
  }

  /* ------------------------------------------------------------- drawing */

  var drawList = new Int32Array(0); // indices drawn as icons this redraw (reused)
  var cellCount = new Int32Array(0), cellOff = new Int32Array(0), cellSel = new Int32Array(0);
  var cellSx = new Float64Array(0), cellSy = new Float64Array(0), cellOne = new Int32Array(0);
  var grid = { cols: 0, rows: 0, size: 60, gx: 0, gy: 0 };
  var stats = { n: 0, drawn: 0, clusters: 0, clustered: 0, icons: 0, offlineIcons: 0,
    selectedIcons: 0, sectors: 0, rings: 0, mode: 'off', draws: 0, lastMs: 0, zoom: 0, cell: 0 };

  function ensureCells(m) {
    if (cellCount.length >= m) return;
    var len = Math.max(m, cellCount.length * 2);
    cellCount = new Int32Array(len); cellOff = new Int32Array(len); cellSel = new Int32Array(len);
    cellSx = new Float64Array(len); cellSy = new Float64Array(len); cellOne = new Int32Array(len);
  }

  function colours() {
    var col = (cc.cfg && cc.cfg.colours && cc.cfg.colours.camera) || {};
    var l = lc();
    return { on: col.online || '#7fb2e0', off: col.offline || '#3a4756',
      offEdge: l.offlineEdge || '#8a96a3', cluster: l.cluster || '#10304f',
      arc: l.offlineArc || '#b0bec5', sel: l.selected || '#ffffff', text: l.text || '#e6f2ff' };
  }

  /* Scan every camera once: bucket the drawn area into cells (anchored to the world pixel
     grid, so clusters do not jump while panning) and sum count, offline, selected, centroid. */
  function bucket() {
    var s = cc.scale || 1, size = Math.max(8, (lc().cellPx || 60) * s);
    var gx = Math.floor(view.ox / size), gy = Math.floor(view.oy / size);
    var cols = Math.ceil((view.ox + view.w) / size) - gx + 1;
    var rows = Math.ceil((view.oy + view.h) / size) - gy + 1;
    var m = cols * rows;
    ensureCells(m);
    cellCount.fill(0, 0, m); cellOff.fill(0, 0, m); cellSel.fill(0, 0, m);
    cellSx.fill(0, 0, m); cellSy.fill(0, 0, m);
    var k = view.k, ox = view.ox, oy = view.oy, w = view.w, h = view.h;
    for (var i = 0; i < n; i++) {
      var x = nx[i] * k - ox, y = ny[i] * k - oy;
      if (x < 0 || y < 0 || x >= w || y >= h) continue;
      var c = (Math.floor((y + oy) / size) - gy) * cols + (Math.floor((x + ox) / size) - gx);
      cellCount[c]++;
      if (!online[i]) cellOff[c]++;
      if (sel[i]) cellSel[c]++;
      cellSx[c] += x; cellSy[c] += y;
      cellOne[c] = i;
    }
    grid.cols = cols; grid.rows = rows; grid.size = size; grid.gx = gx; grid.gy = gy;
    return m;
  }

  function cellOf(x, y) {
    return (Math.floor((y + view.oy) / grid.size) - grid.gy) * grid.cols +
      (Math.floor((x + view.ox) / grid.size) - grid.gx);
  }

  function iconMode() { return view.zoom >= (lc().iconZoom || 15); }

  function draw() {
    pending = false;
    clearTimeout(timer); timer = null;
    var ctx = layer._ctx;
    if (!ctx || !view.on) return;
    var t0 = performance.now();
    var dpr = view.dpr, s = cc.scale || 1, col = colours();
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, view.w, view.h);
    var m = bucket(), all = iconMode();
    var st = { clusters: 0, clustered: 0, icons: 0, offlineIcons: 0, selectedIcons: 0, sectors: 0,
      rings: 0 };
    // individual icons: every camera when zoomed in, else the ones alone in their cell
    var k = view.k, ox = view.ox, oy = view.oy, w = view.w, h = view.h;
    var mpp = metresPerPixel(), secMin = 10 * s, secMax = 64 * s;
    if (drawList.length < n) drawList = new Int32Array(cap);
    var nl = 0;
    for (var i = 0; i < n; i++) {
      var x = nx[i] * k - ox, y = ny[i] * k - oy;
      if (x < -secMax || y < -secMax || x >= w + secMax || y >= h + secMax) continue;
      if (!all) {
        if (x < 0 || y < 0 || x >= w || y >= h) continue;
        if (cellCount[cellOf(x, y)] !== 1) continue;
      }
      drawList[nl++] = i;
    }
    var list = drawList.subarray(0, nl);
    // sectors under everything, one path per colour
    [1, 0].forEach(function (on) {
      ctx.beginPath();
      var any = false;
      for (var j = 0; j < list.length; j++) {
        var i = list[j];
        if (online[i] !== on || allRound[i] || !(fov[i] > 0)) continue;
        var x = nx[i] * k - ox, y = ny[i] * k - oy;
        var r = Math.min(secMax, Math.max(secMin, rangeM[i] / mpp));
        var a = (head[i] - 90) * RAD, half = Math.min(180, fov[i]) / 2 * RAD;
        ctx.moveTo(x, y);
        ctx.arc(x, y, r, a - half, a + half);
        ctx.closePath();
        any = true;
        st.sectors++;
      }
      if (!any) return;
      ctx.globalAlpha = on ? 0.22 : 0.16;
      ctx.fillStyle = on ? col.on : col.offEdge;
      ctx.fill();
      ctx.globalAlpha = on ? 0.55 : 0.35;
      ctx.lineWidth = 1 * s;
      ctx.strokeStyle = on ? col.on : col.offEdge;
      ctx.stroke();
      ctx.globalAlpha = 1;
    });
    // all-round (PTZ) rings
    ctx.beginPath();
    for (var j = 0; j < list.length; j++) {
      var i2 = list[j];
      if (!allRound[i2]) continue;
      var x2 = nx[i2] * k - ox, y2 = ny[i2] * k - oy;
      ctx.moveTo(x2 + 7 * s, y2);
      ctx.arc(x2, y2, 7 * s, 0, 2 * Math.PI);
      st.rings++;
    }
    ctx.lineWidth = 1.6 * s;
    ctx.strokeStyle = col.on;
    ctx.globalAlpha = 0.7;
    if (st.rings) ctx.stroke();
    ctx.globalAlpha = 1;
    // the dots: online, then offline (with a light edge so they read on the dark map)
    var rd = 3.6 * s;
    [1, 0].forEach(function (on) {
      ctx.beginPath();
      var any = false;
      for (var j = 0; j < list.length; j++) {
        var i = list[j];
        if (online[i] !== on) continue;
        var x = nx[i] * k - ox, y = ny[i] * k - oy;
        if (x < 0 || y < 0 || x >= w || y >= h) continue;
        ctx.moveTo(x + rd, y);
        ctx.arc(x, y, rd, 0, 2 * Math.PI);
        any = true;
        st.icons++;
        if (!on) st.offlineIcons++;
      }
      if (!any) return;
      ctx.fillStyle = on ? col.on : col.off;
      ctx.fill();
      if (!on) { ctx.lineWidth = 1 * s; ctx.strokeStyle = col.offEdge; ctx.stroke(); }
    });
    // selected cameras: a white ring
    ctx.beginPath();
    for (var j2 = 0; j2 < list.length; j2++) {
      var i3 = list[j2];
      if (!sel[i3]) continue;
      var x3 = nx[i3] * k - ox, y3 = ny[i3] * k - oy;
      ctx.moveTo(x3 + 9 * s, y3);
      ctx.arc(x3, y3, 9 * s, 0, 2 * Math.PI);
      st.selectedIcons++;
    }
    if (st.selectedIcons) { ctx.lineWidth = 2.4 * s; ctx.strokeStyle = col.sel; ctx.stroke(); }
    if (!all) drawClusters(ctx, m, s, col, st);
    var ms = performance.now() - t0;
    lastDraw = performance.now();
    stats.n = n; stats.clusters = st.clusters; stats.clustered = st.clustered;
    stats.icons = st.icons; stats.offlineIcons = st.offlineIcons; stats.selectedIcons = st.selectedIcons;
    stats.sectors = st.sectors; stats.rings = st.rings;
    stats.drawn = st.icons + st.clustered; stats.mode = all ? 'icons' : 'clusters';
    stats.draws++; stats.lastMs = ms; stats.totalMs = (stats.totalMs || 0) + ms;
    stats.zoom = view.zoom; stats.cell = grid.size;
  }

  function metresPerPixel() {
    // at the centre of the drawn area: the Mercator scale is 1/cos(lat)
    var yc = (view.y0 + view.y1) / 2;
    var latc = Math.atan(Math.sinh(Math.PI * (1 - 2 * yc)));
    return 2 * Math.PI * 6378137 * Math.cos(latc) / view.k;
  }

  var fontFamily = '';

  function drawClusters(ctx, m, s, col, st) {
    if (!fontFamily) fontFamily = getComputedStyle(document.body).fontFamily || 'sans-serif';
    ctx.font = Math.round(11.5 * s) + 'px ' + fontFamily;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    for (var c = 0; c < m; c++) {
      var cnt = cellCount[c];
      if (cnt < 2) continue;
      var x = cellSx[c] / cnt, y = cellSy[c] / cnt;
      var r = Math.min(24, 9 + 2.6 * Math.log(cnt)) * s;
      ctx.beginPath();
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.globalAlpha = 0.82;
      ctx.fillStyle = col.cluster;
      ctx.fill();
      ctx.globalAlpha = 1;
      // the ring: online share in the online colour, offline share as an arc from 12 o'clock
      var off = cellOff[c] / cnt, a0 = -Math.PI / 2;
      ctx.lineWidth = 2.6 * s;
      if (off < 1) {
        ctx.beginPath();
        ctx.arc(x, y, r, a0 + off * 2 * Math.PI, a0 + 2 * Math.PI);
        ctx.strokeStyle = col.on;
        ctx.stroke();
      }
      if (off > 0) {
        ctx.beginPath();
        ctx.arc(x, y, r, a0, a0 + Math.max(off * 2 * Math.PI, 0.25));
        ctx.strokeStyle = col.arc;
        ctx.stroke();
      }
      if (cellSel[c]) {
        ctx.beginPath();
        ctx.arc(x, y, r + 3.5 * s, 0, 2 * Math.PI);
        ctx.lineWidth = 2 * s;
        ctx.strokeStyle = col.sel;
        ctx.stroke();
      }
      ctx.fillStyle = col.text;
      ctx.fillText(cnt < 10000 ? String(cnt) : Math.round(cnt / 1000) + 'k', x, y + 0.5);
      st.clusters++;
      st.clustered += cnt;
    }
  }

  /* What is drawn under a container point: {id} for an icon, {cluster: {latlng, count}}. */
  function hitTest(pt) {
    var map = layer._map, s = cc.scale || 1;
    var lp = map.containerPointToLayerPoint(L.point(pt.x, pt.y));
    var x = lp.x - view.tl.x, y = lp.y - view.tl.y;
    var k = view.k, ox = view.ox, oy = view.oy, all = iconMode();
    var best = -1, bestD = (9 * s) * (9 * s);
    for (var i = 0; i < n; i++) {
      var dx = nx[i] * k - ox - x, dy = ny[i] * k - oy - y, d = dx * dx + dy * dy;
      if (d > bestD) continue;
      if (!all && cellCount[cellOf(nx[i] * k - ox, ny[i] * k - oy)] !== 1) continue;
      best = i; bestD = d;
    }
    if (best >= 0) return { id: ids[best] };
    if (all) return null;
    var c = cellOf(x, y);
    if (c < 0 || c >= grid.cols * grid.rows || cellCount[c] < 2) return null;
    var cx = cellSx[c] / cellCount[c], cy = cellSy[c] / cellCount[c];
    var r = (Math.min(24, 9 + 2.6 * Math.log(cellCount[c])) + 4) * s;
    if ((cx - x) * (cx - x) + (cy - y) * (cy - y) > r * r) return null;
    var ll = map.layerPointToLatLng(L.point(cx + view.tl.x, cy + view.tl.y));
    return { cluster: { latlng: ll, count: cellCount[c] } };
  }

  /* ------------------------------------------------------------- click → popup */

  var popup = null;

  C.popup = function (id) {
    var map = layer._map, i = index.get(String(id));
    if (!map || i === undefined) return;
    var rec = cc.store.get('camera', id) || {};
    var box = cc.make('div', 'cc-cam-pop');
    box.setAttribute('data-camera', id);
    box.appendChild(cc.feed(cc.make('div', 'cc-pop-title', rec.name || id)));
    var sub = [cc.t('cam.kind'), online[i] ? cc.t('cam.online') : cc.t('cam.offline')];
    if (rec.ptz) sub.push(cc.t('camsel.ptz'));
    else if (fov[i] > 0) sub.push(cc.t('camsel.facing', { h: Math.round(head[i]), f: Math.round(fov[i]) }));
    box.appendChild(cc.make('div', 'cc-pop-sub', sub.join(' · ')));
    box.appendChild(cc.make('div', 'cc-pop-sub', id));
    if (rec.ts) box.appendChild(cc.make('div', 'cc-pop-sub', cc.fmtDateTime(Number(rec.ts))));
    var ll = cc.latLng(lon[i], lat[i]);
    popup = popup || L.popup({ closeButton: true, autoPan: false, offset: [0, -4] });
    popup.setLatLng(ll).setContent(box).openOn(map);
  };

  /* A click on the map (not on an event or unit): the camera under it, or zoom into a
     cluster. The selection tools take clicks first while one is active. */
  function onClick(e) {
    if (!layer._map || !view.on || (cc.camsel && cc.camsel.busy())) return;
    var hit = hitTest(e.containerPoint);
    if (!hit) return;
    if (hit.id) { C.popup(hit.id); return; }
    var map = layer._map;
    map.setView(hit.cluster.latlng, Math.min(map.getMaxZoom(), map.getZoom() + 2));
  }

  /* ------------------------------------------------------------- wiring */

  C.stats = function () {
    var out = Object.assign({}, stats);
    out.n = n; out.cap = cap; out.visible = !!layer._map && view.on; out.selected = selected.size;
    return out;
  };

  /* Redraw now (tests, and cc-13 after a selection). */
  C.redraw = function () { if (layer._map && view.on) draw(); };

  /* The container point of a camera (tests aim clicks and read pixels with it). */
  C.containerPoint = function (id) {
    var i = index.get(String(id)), map = layer._map;
    if (!map || i === undefined) return null;
    var ll = cc.latLng(lon[i], lat[i]);
    var p = map.latLngToContainerPoint(L.latLng(ll[0], ll[1]));
    return { x: p.x, y: p.y };
  };

  C.attach = function (map) {
    if (map && cc.camsel) cc.camsel.attach(map);
    if (!map || map._ccCamClick) return;
    map._ccCamClick = true;
    map.on('click', onClick);
  };
})();
