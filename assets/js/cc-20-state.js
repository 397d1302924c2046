/* cc-20-state.js: the state the relay's frames build (docs/PROTOCOL.md, relay → browser).

   One Map per kind, id → latest record. Every change touches just its entity's layer and
   marks the panels dirty; the panels redraw on the next animation frame (list ≤ 4 Hz).
   Memory stays flat for weeks: closed events leave after 24 h, every map has a cap. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var KINDS = ['event', 'worker', 'resource', 'camera'];
  var S = (cc.store = {});
  var store = { event: new Map(), worker: new Map(), resource: new Map(), camera: new Map() };

  var lastSeq = 0;
  var listeners = []; // other pages' views (cc-70 …): fn(kind, op, rec, live, arrived)
  var pendingPaint = new Set(); // event ids applied since the last frame
  var appliedAt = new Map(); // event id → ms (timeOrigin-based) when painted; bounded

  S.get = function (kind, id) { return store[kind] ? store[kind].get(id) : undefined; };
  S.each = function (kind, fn) { store[kind].forEach(fn); };
  S.size = function (kind) { return store[kind].size; };
  S.lastSeq = function () { return lastSeq; };
  S.appliedAt = appliedAt;

  /* The wall's map and panels (cc-10, cc-30 list, cc-60) run on the wall page only; the
     header, the store and the socket on every page (cfg.page, layouts/pages.py). */
  function onWall() { return (cc.page || 'wall') === 'wall'; }

  /* Another page's view of the frames: called for every change of any kind (also kinds
     the store does not keep, e.g. `video`), and with kind 'snapshot' after a snapshot. */
  S.listen = function (fn) { listeners.push(fn); };

  function notify(kind, op, rec, live, arrived) {
    for (var i = 0; i < listeners.length; i++) {
      try { listeners[i](kind, op, rec, live, arrived); } catch (e) { console.warn('ccwall: listener failed', e); }
    }
  }

  function limit(name) { return (cc.cfg && cc.cfg.limits[name]) || 0; }

  function isClosed(rec) { return cc.cfg.closed.indexOf(rec.status) >= 0; }

  function dataTs(rec) {
    var t = Number(rec.received || rec.ts);
    return isFinite(t) ? t : 0;
  }

  /* ------------------------------------------------------------- one change */

  function upsert(kind, op, data, live) {
    if (!data || typeof data !== 'object' || data.id === undefined || data.id === null) return;
    var m = store[kind];
    if (!m) {
      // tasks and alerts belong to the event panel and the alert strip (cc-60)
      if (cc.command && onWall() && (kind === 'task' || kind === 'alert')) cc.command.frame(kind, data);
      if (listeners.length) notify(kind, op, data, live, false);
      return; // feedback and future kinds: not shown on the wall
    }
    var id = String(data.id);
    var prev = m.get(id);
    // a move carries a whole record too, but merging keeps anything a slimmer item leaves out
    var rec = op === 'move' && prev ? Object.assign(prev, data) : data;
    rec.id = id;
    m.set(id, rec);
    var arrived = live && !prev;
    if (kind === 'event') {
      if (onWall()) {
        cc.mapview.syncEvent(rec, arrived && !isClosed(rec));
        cc.panels.eventChanged(rec, arrived);
        if (cc.command) cc.command.eventChanged(rec, arrived && !isClosed(rec));
      }
      if (live) {
        // bounded even if frames stop (a hidden tab runs no animation frames)
        if (pendingPaint.size >= limit('appliedAt')) pendingPaint.clear();
        pendingPaint.add(id);
        cc.schedule('paint', noop);
      }
      // over the cap by 10 %: prune now (back to the cap, so this runs once per ~500 events)
      if (m.size > limit('events') * 1.1) prune();
    } else if (onWall()) {
      cc.mapview.syncUnit(kind, rec);
      // the legend shows counts: only an arrival changes them (a re-report must not cost a
      // frame — 42,000 cameras re-report hundreds of times a second)
      if (!prev) cc.panels.unitsChanged(kind);
      if (cc.command) cc.command.unitChanged(kind, rec);
    }
    cc.panels.sawData(dataTs(rec));
    if (listeners.length) notify(kind, op, rec, live, arrived);
  }

  function remove(kind, id) {
    var m = store[kind];
    if (!m || !m.delete(String(id))) return;
    if (listeners.length) notify(kind, 'remove', { id: String(id) }, false, false);
    if (!onWall()) return;
    if (kind === 'event') { cc.mapview.removeEvent(String(id)); cc.panels.eventChanged(null, false); }
    else { cc.mapview.removeUnit(kind, String(id)); cc.panels.unitsChanged(kind); }
  }

  function change(kind, op, data, live) {
    if (op === 'delete' || op === 'remove') remove(kind, data && data.id);
    else upsert(kind, op, data, live);
  }

  function noop() {}

  /* Record paint time for the benchmark hook: this runs at the end of the frame's DOM work,
     right before the browser paints it. The marker is drawn at once; wait for the frame
     that also draws the list row when the list is being throttled. */
  cc.onFrame(function () {
    if (!pendingPaint.size || cc.panels.listPending()) return;
    var now = performance.timeOrigin + performance.now();
    var cap = limit('appliedAt');
    pendingPaint.forEach(function (id) {
      appliedAt.delete(id); // re-insert so the oldest entry is evicted first
      appliedAt.set(id, now);
    });
    pendingPaint.clear();
    while (appliedAt.size > cap) appliedAt.delete(appliedAt.keys().next().value);
  });

  /* ------------------------------------------------------------- whole frames */

  function snapshot(f) {
    KINDS.forEach(function (kind) {
      var list = f[kind + 's'];
      if (!Array.isArray(list)) return;
      var keep = new Set();
      for (var i = 0; i < list.length; i++) {
        var rec = list[i];
        if (!rec || rec.id === undefined) continue;
        keep.add(String(rec.id));
        upsert(kind, 'upsert', rec, false);
      }
      // drop what the server no longer has; the rest was updated in place (no flicker)
      Array.from(store[kind].keys()).forEach(function (id) { if (!keep.has(id)) remove(kind, id); });
    });
    if (cc.command && onWall()) cc.command.snapshot(f.tasks, f.alerts);
    if (typeof f.seq === 'number') lastSeq = f.seq;
    if (f.stats) cc.panels.stats(f.stats, f.server_ts);
    prune();
    if (listeners.length) notify('snapshot', 'snapshot', f, false, false);
  }

  /* Apply one relay frame (the websocket client and benchmarks call this). */
  // The last few frames, for diagnosing a wall in the field (type, seq, size, when).
  var recent = [];
  S.recent = recent;

  S.applyFrame = function (f) {
    if (!f || typeof f !== 'object') return;
    if (recent.length >= 32) recent.shift();
    recent.push([f.type, f.seq, f.type === 'batch' ? (f.items || []).length :
      f.type === 'delta' ? f.kind + ':' + (f.data && f.data.id) : '', Math.round(performance.now())]);
    switch (f.type) {
      case 'snapshot':
        snapshot(f);
        break;
      case 'delta':
        if (typeof f.seq === 'number') {
          if (f.seq <= lastSeq) return; // already applied (a replay overlap)
          lastSeq = f.seq;
        }
        change(f.kind, f.op, f.data, true);
        break;
      case 'batch':
        if (typeof f.seq === 'number') {
          if (f.seq <= lastSeq) return;
          lastSeq = f.seq;
        }
        var items = f.items || [];
        for (var i = 0; i < items.length; i++) {
          var it = items[i];
          if (it) change(it.kind, it.op, it.data, true);
        }
        break;
      case 'stats':
        cc.panels.stats(f.stats, f.server_ts);
        break;
      default:
        break; // unknown frame types are for newer clients
    }
  };

  /* A fresh start (the server lost our place): forget the sequence, keep what is drawn. */
  S.resetSeq = function () { lastSeq = 0; };

  /* ------------------------------------------------------------- pruning */

  function evictOldest(m, n, pred) {
    if (n <= 0) return [];
    var list = [];
    m.forEach(function (rec, id) { if (!pred || pred(rec)) list.push([dataTs(rec), id]); });
    list.sort(function (a, b) { return a[0] - b[0]; });
    return list.slice(0, n).map(function (x) { return x[1]; });
  }

  function prune() {
    if (!cc.cfg) return;
    var ev = store.event;
    var cutoff = cc.serverNow() - limit('closedKeepMs');
    var old = [];
    ev.forEach(function (rec, id) {
      if (isClosed(rec) && Number(rec.ts) < cutoff) old.push(id);
    });
    old.forEach(function (id) { remove('event', id); });
    var over = ev.size - limit('events');
    if (over > 0) {
      var closed = evictOldest(ev, over, isClosed);
      closed.forEach(function (id) { remove('event', id); });
      evictOldest(ev, ev.size - limit('events')).forEach(function (id) { remove('event', id); });
    }
    ['worker', 'resource', 'camera'].forEach(function (kind) {
      var cap = limit(kind === 'camera' ? 'cameras' : 'units');
      evictOldest(store[kind], store[kind].size - cap).forEach(function (id) {
        remove(kind, id);
      });
    });
  }

  S.prune = prune;
  S.startPruning = function () { setInterval(prune, 60000); };
})();
