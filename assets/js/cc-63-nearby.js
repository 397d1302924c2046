/* cc-63-nearby.js: the units near the selected event (docs/COMMAND-LOOP.md): the
   list with the 1-3-5 verdict, the task's own units first, and the map overlay (a ring out
   to the farthest unit listed, lines to the units sent, picked or listed). */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var C = cc.command, P = C.parts;
  var $ = cc.$, clear = P.clear, unitOf = P.unitOf, liveRec = P.liveRec;

  var shown = new Map(); // "kind:id" → nearby row
  var nearbyUnits = []; // the units listed, for the overlay

  P.resetNearby = function () {
    shown.clear();
    nearbyUnits = [];
  };

  function nearbyList() {
    var nb = (P.info && P.info.nearby) || {};
    var workers = [], resources = [];
    if (Array.isArray(nb)) {
      nb.forEach(function (u) {
        var x = unitOf(u, u.kind === 'worker' ? 'worker' : 'resource');
        (x.kind === 'worker' ? workers : resources).push(x);
      });
    } else {
      (nb.workers || []).forEach(function (u) { workers.push(unitOf(u, 'worker')); });
      (nb.resources || []).forEach(function (u) { resources.push(unitOf(u, 'resource')); });
    }
    // only what could be sent: grid workers on duty, resources available
    workers = workers.filter(function (u) { return !u.status || u.status === 'on_duty'; });
    resources = resources.filter(function (u) { return !u.status || u.status === 'available'; });
    var byDist = function (a, b) { return (Number(a.distance_m) || 0) - (Number(b.distance_m) || 0); };
    workers.sort(byDist);
    resources.sort(byDist);
    // the task's own units stay listed first (the API lists only free ones): live status
    var sent = assignedUnits();
    var seen = new Set(sent.map(function (u) { return u.key; }));
    workers = workers.filter(function (u) { return !seen.has(u.key); });
    resources = resources.filter(function (u) { return !seen.has(u.key); });
    // both kinds get a share of the rows, the nearer kind fills what the other leaves
    var n = Math.max(2, P.K.nearbyRows - sent.length), half = Math.ceil(n / 2);
    var w = workers.slice(0, Math.max(half, n - resources.length));
    var r = resources.slice(0, n - w.length);
    return sent.sort(byDist).concat(w.concat(r).sort(byDist));
  }

  /* The current task's units as rows: distance from their live position, ETA as sent. */
  function assignedUnits() {
    var task = P.currentTask();
    var ev = P.sel ? cc.store.get('event', P.sel) : null;
    if (!task || task.stage === 'closed' || !ev) return [];
    return (task.assignees || []).map(function (a) {
      var rec = cc.store.get(a.kind, String(a.id)) || {};
      var rk = a.kind === 'resource' ? (a.resource_kind || rec.kind || null) : null;
      var limit = (cc.cfg.rule135 || {})[a.kind === 'worker' ? 'worker' : rk];
      var u = unitOf({ id: a.id, kind: a.kind, resource_kind: rk, name: rec.name || a.id,
        distance_m: cc.hasPos(rec) ? metres(ev, rec) : NaN, eta_s: a.eta_s }, a.kind);
      u.rule135 = limit ? { limit_s: limit, ok: Number(a.eta_s) <= limit } : null;
      return u;
    });
  }

  function metres(a, b) {
    var R = 6371008.8, rad = Math.PI / 180;
    var dLat = (b.lat - a.lat) * rad, dLon = (b.lon - a.lon) * rad;
    var h = Math.sin(dLat / 2) * Math.sin(dLat / 2) +
      Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) * Math.sin(dLon / 2);
    return 2 * R * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  P.renderNearby = function () {
    var list = $('CMD_NEARBY');
    if (!list) return;
    clear(list);
    shown.clear();
    nearbyUnits = nearbyList();
    if (!nearbyUnits.length) {
      list.appendChild(cc.make('li', 'cc-cmd-empty', cc.t('cmd.nearby_empty')));
      return;
    }
    nearbyUnits.forEach(function (u) {
      var li = P.unitRow(u, false);
      shown.set(u.key, li);
      list.appendChild(li);
    });
  };

  C.unitChanged = function (kind, rec) {
    if (!P.sel) return;
    var key = kind + ':' + rec.id;
    var li = shown.get(key);
    if (li) P.paintStatus(li, { kind: kind, id: rec.id }, rec);
    var task = P.currentTask();
    if (task && (task.assignees || []).some(function (a) { return a.kind === kind && String(a.id) === String(rec.id); })) {
      cc.schedule('cmd-loop', P.renderLoop);
    }
    if (li || (P.prop && P.prop.picked.has(key))) cc.schedule('cmd-overlay', P.renderOverlay);
    if (P.watch && !P.watch.done) P.checkWatch();
  };

  /* ------------------------------------------------------------- the map overlay */

  P.renderOverlay = function () {
    var L = window.L;
    if (!L || !cc.mapview.map()) return;
    var g = cc.mapview.overlay();
    g.clearLayers();
    var ev = P.sel ? cc.store.get('event', P.sel) : null;
    if (!ev || !cc.hasPos(ev)) return;
    var at = cc.latLng(ev.lon, ev.lat);
    var rend = cc.mapview.linkRenderer();
    var s = cc.scale;
    var prop = P.prop;
    var far = 0;
    nearbyUnits.forEach(function (u) { far = Math.max(far, Number(u.distance_m) || 0); });
    if (far > 0) {
      g.addLayer(L.circle(at, { radius: far, renderer: rend, interactive: false, color: '#38d8ff',
        weight: 1.5 * s, opacity: 0.8, dashArray: [6 * s, 4 * s], fill: true, fillOpacity: 0.05,
        className: 'cc-cmd-ring' }));
    }
    var targets = [];
    if (prop) prop.picked.forEach(function (k) { var u = prop.units.get(k); if (u) targets.push(u); });
    else {
      var task = P.currentTask();
      if (task && task.stage !== 'closed') {
        (task.assignees || []).forEach(function (a) { targets.push({ kind: a.kind, id: String(a.id) }); });
      } else targets = nearbyUnits;
    }
    targets.forEach(function (u) {
      var rec = liveRec(u) || u;
      if (!cc.hasPos(rec)) return;
      g.addLayer(L.polyline([at, cc.latLng(rec.lon, rec.lat)], { renderer: rend, interactive: false,
        color: prop ? '#ffd54f' : '#5fe6ff', weight: (prop ? 2 : 1.2) * s, opacity: 0.85,
        className: 'cc-cmd-link' }));
    });
  };
})();
