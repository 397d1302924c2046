/* cc-20-state.js: the state the relay's frames build (docs/PROTOCOL.md, relay → browser).

   One Map per kind, id → latest record. Every change goes out on one path, the listeners
   (S.listen): the map touches just its entity's layer, the panels mark themselves dirty and
   redraw on the next animation frame (list ≤ 4 Hz). Memory stays flat for weeks: closed
   events leave after 24 h, every map has a cap. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var KINDS = ['event', 'worker', 'resource', 'camera'];
  var S = (cc.store = {});
  var store = { event: new Map(), worker: new Map(), resource: new Map(), camera: new Map() };

  var lastSeq = 0;
  var listeners = []; // fn(kind, op, rec, live, arrived, added), in the order they listened
  var pendingPaint = new Set(); // event ids applied since the last frame
  var appliedAt = new Map(); // event id → ms (timeOrigin-based) when painted; bounded

  S.get = function (kind, id) { return store[kind] ? store[kind].get(id) : undefined; };
  S.each = function (kind, fn) { store[kind].forEach(fn); };
  S.size = function (kind) { return store[kind].size; };
  S.lastSeq = function () { return lastSeq; };
  S.appliedAt = appliedAt;
  /* Whether the store keeps records of this kind (tasks, alerts, video … it only passes on). */
  S.keeps = function (kind) { return !!store[kind]; };

  /* The one way frames reach the modules. fn(kind, op, rec, live, arrived, added) is called
     for every change of any kind, also kinds the store does not keep (task, alert, video):
       op       the frame's ('upsert', 'move' …), or 'remove' for a record that left
                ({id} only)
       live     from a delta or batch, not a snapshot
       arrived  live and new to the store; added: new to the store (a snapshot's too)
     and after a whole frame: kind 'snapshot' (rec: the frame, once its records are in) and
     kind 'stats' (rec: the frame). Listeners run in the order they listened, which boot
     (cc-50) fixes: on the wall the map (cc-10), the panels (cc-30), then the event panel
     (cc-60); on another page the header's panels, then the page's own view (cc-70, cc-82).
     One that throws is logged; the others still run. */
  S.listen = function (fn) { listeners.push(fn); };

  function notify(kind, op, rec, live, arrived, added) {
    for (var i = 0; i < listeners.length; i++) {
      try { listeners[i](kind, op, rec, live, arrived, added); } catch (e) { console.warn('ccwall: listener failed', e); }
    }
  }

  function limit(name) { return (cc.cfg && cc.cfg.limits[name]) || 0; }

  function isClosed(rec) { return cc.cfg.closed.indexOf(rec.status) >= 0; }

  /* When a record's data is from (server ms; 0 when unknown): the header's data age. */
  function dataTs(rec) {
    var t = Number(rec.received || rec.ts);
    return isFinite(t) ? t : 0;
  }
  S.dataTs = dataTs;

  /* ------------------------------------------------------------- one change */

  function upsert(kind, op, data, live) {
    if (!data || typeof data !== 'object' || data.id === undefined || data.id === null) return;
    var m = store[kind];
    if (!m) {
      // tasks and alerts belong to the event panel and the alert strip (cc-60), `video` to
      // the video wall (cc-70); feedback and future kinds: no one listens
      notify(kind, op, data, live, false, false);
      return;
    }
    var id = String(data.id);
    var prev = m.get(id);
    // a move carries a whole record too, but merging keeps anything a slimmer item leaves out
    var rec = op === 'move' && prev ? Object.assign(prev, data) : data;
    rec.id = id;
    m.set(id, rec);
    notify(kind, op, rec, live, live && !prev, !prev);
    if (kind !== 'event') return;
    if (live) {
      // bounded even if frames stop (a hidden tab runs no animation frames)
      if (pendingPaint.size >= limit('appliedAt')) pendingPaint.clear();
      pendingPaint.add(id);
      cc.schedule('paint', noop);
    }
    // over the cap by 10 %: prune now (back to the cap, so this runs once per ~500 events);
    // after the listeners, so a record pruned at once is removed after it was shown
    if (m.size > limit('events') * 1.1) prune();
  }

  function remove(kind, id) {
    var m = store[kind];
    if (!m || !m.delete(String(id))) return;
    notify(kind, 'remove', { id: String(id) }, false, false, false);
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
    if (typeof f.seq === 'number') lastSeq = f.seq;
    // the event panel takes the snapshot's tasks and alerts, the header its stats: the
    // server's clock, which the pruning then measures 24 h by
    notify('snapshot', 'snapshot', f, false, false, false);
    prune();
  }

  /* Replay (cc-88, docs/REPLAY.md): while the wall shows the past, frames from the socket
     are not applied (the socket stays open, so going back to live is one snapshot away);
     only frames the replay hands over with `replayed` are. */
  var replaying = false;
  S.replaying = function () { return replaying; };
  S.beginReplay = function () { replaying = true; };
  /* Live again: forget the replay's sequence, so the socket's next connection asks for a
     whole snapshot (cc-40 `resync`). */
  S.endReplay = function () { replaying = false; lastSeq = 0; };

  /* Apply one relay frame (the websocket client and benchmarks call this; the replay with
     `replayed` true). */
  // The last few frames, for diagnosing a wall in the field (type, seq, size, when).
  var recent = [];
  S.recent = recent;

  S.applyFrame = function (f, replayed) {
    if (!f || typeof f !== 'object') return;
    if (recent.length >= 32) recent.shift();
    recent.push([f.type, f.seq, f.type === 'batch' ? (f.items || []).length :
      f.type === 'delta' ? f.kind + ':' + (f.data && f.data.id) : '', Math.round(performance.now()),
    replayed ? 'replay' : replaying ? 'held back' : 'live']);
    if (replaying && !replayed) return; // a live frame must not leak into the past
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
        notify('stats', 'stats', f, false, false, false); // the header (cc-30)
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
