/* cc-67-tiles.js: grids of players, and the event panel's live video (docs/VIDEO.md).

   `cc.video.tiles(container, {size})` → {set(cameras), size(n), destroy()}: up to n tiles in
   order; a camera that stays keeps its player (and its connection), the rest are stopped.
   A camera given with `covers` / `distance_m` (GET /api/events/<id> nearby.cameras) gets a
   "in view" badge and its distance.

   The event panel: when an event is selected, the first four of its nearby cameras (covering
   ones first, then nearest) play at once in a 2×2 grid at the top of the panel's body; they
   stop when the panel closes or another event is selected. `cc.video.showInPanel(cameras)`
   (the map selection) replaces them until the next event is selected. cc-61 calls
   `cc.video.panelEvent(id, info)` when the selection changes (info null) and when the
   event's details arrive. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var V = (cc.video = cc.video || {});

  var PANEL_TILES = 4;

  function fmtDist(m) {
    if (!isFinite(m) || m === null) return '';
    return m < 1000 ? cc.t('cmd.dist_m', { n: Math.round(m) })
      : cc.t('cmd.dist_km', { n: (m / 1000).toFixed(1) });
  }

  /* ------------------------------------------------------------- a grid of players */

  V.tiles = function (container, opts) {
    var n = Math.max(1, Number((opts && opts.size) || 4));
    var playerOpts = Object.assign({ muted: true, label: true }, (opts && opts.player) || {});
    var byId = new Map(); // camera id → {tile, meta, h}
    var last = [];
    var dead = false;
    container.classList.add('cc-vgrid');

    function layout() {
      container.setAttribute('data-size', String(n));
      container.style.setProperty('--cc-vcols', String(Math.ceil(Math.sqrt(n))));
    }

    function paintMeta(slot, cam) {
      var meta = slot.meta;
      var covers = cam.covers === true;
      var dist = fmtDist(Number(cam.distance_m));
      slot.tile.classList.toggle('is-covering', covers);
      cc.setText(slot.badge, covers ? cc.t('video.covers') : '');
      slot.badge.hidden = !covers;
      if (covers) slot.badge.title = cc.t('video.covers_title');
      cc.setText(slot.dist, cam.distance_m === undefined ? '' : dist);
      slot.dist.hidden = !slot.dist.textContent;
      meta.hidden = slot.badge.hidden && slot.dist.hidden;
    }

    function makeSlot(cam) {
      var tile = cc.make('div', 'cc-vt');
      var el = tile.appendChild(cc.make('div', 'cc-vt-player'));
      var meta = tile.appendChild(cc.make('div', 'cc-vt-meta'));
      var slot = { tile: tile, meta: meta, badge: meta.appendChild(cc.make('span', 'cc-vt-covers')),
        dist: meta.appendChild(cc.make('span', 'cc-vt-dist')) };
      paintMeta(slot, cam);
      slot.h = V.play(el, cam, playerOpts);
      return slot;
    }

    function emptyTile() { return cc.make('div', 'cc-vt is-empty'); }

    function set(cameras) {
      if (dead) return;
      var list = [], seen = new Set();
      (cameras || []).forEach(function (c) {
        if (!c || c.id === undefined || c.id === null || seen.has(String(c.id))) return;
        if (list.length >= n) return;
        seen.add(String(c.id));
        list.push(c);
      });
      last = list;
      // stop the players of cameras that go
      byId.forEach(function (slot, id) {
        if (!seen.has(id)) { slot.h.destroy(); slot.tile.remove(); byId.delete(id); }
      });
      var wanted = [];
      list.forEach(function (cam, i) {
        var id = String(cam.id), slot = byId.get(id);
        if (slot) { slot.h.update(cam); paintMeta(slot, cam); }
        else { slot = makeSlot(cam); byId.set(id, slot); }
        slot.tile.setAttribute('data-slot', String(i));
        wanted.push(slot.tile);
      });
      // empty places keep the grid's shape; reuse the ones already there
      var spare = Array.prototype.filter.call(container.children, function (c) {
        return c.classList.contains('is-empty');
      });
      for (var i = list.length; i < n; i++) {
        var e = spare.shift() || emptyTile();
        e.setAttribute('data-slot', String(i));
        wanted.push(e);
      }
      spare.forEach(function (e) { e.remove(); });
      // move only what is out of place (a moved <img> keeps its stream)
      wanted.forEach(function (tile, i) {
        if (container.children[i] !== tile) container.insertBefore(tile, container.children[i] || null);
      });
      while (container.children.length > wanted.length) container.lastChild.remove();
      layout();
    }

    function destroy() {
      if (dead) return;
      byId.forEach(function (slot) { slot.h.destroy(); });
      byId.clear();
      while (container.firstChild) container.removeChild(container.firstChild);
      container.classList.remove('cc-vgrid');
      container.removeAttribute('data-size');
      dead = true;
    }

    layout();
    return {
      set: set,
      size: function (k) {
        k = Math.max(1, Number(k) || 1);
        if (k === n) return;
        n = k;
        set(last);
      },
      destroy: destroy,
      states: function () {
        return last.map(function (c) { var s = byId.get(String(c.id)); return s ? s.h.state : null; });
      },
    };
  };

  /* ------------------------------------------------------------- the event panel */

  var panel = null; // {sec, grid, note, count, tiles}
  var shownFor = null; // the event the panel's tiles belong to
  var source = null; // 'event' | 'map'

  function ids() { return cc.cfg.ids; }

  function ensurePanel() {
    if (panel) return panel;
    var body = cc.el(ids().CMD_BODY);
    if (!body) return null;
    var sec = cc.make('section', 'cc-cmd-sec cc-video-sec');
    var head = sec.appendChild(cc.make('header', 'cc-cmd-sec-head'));
    head.appendChild(cc.make('h4', 'cc-cmd-h', cc.t('video.section')));
    var count = head.appendChild(cc.make('span', 'cc-video-count'));
    var note = sec.appendChild(cc.make('div', 'cc-cmd-empty cc-video-note'));
    var box = sec.appendChild(cc.make('div', 'cc-video-box'));
    var grid = box.appendChild(cc.make('div'));
    grid.id = ids().VIDEO_TILES;
    // made here, not by Dash: the players own these nodes (as cc-60 does with its inputs)
    body.insertBefore(sec, body.firstChild);
    panel = { sec: sec, box: box, grid: grid, note: note, count: count, tiles: V.tiles(grid, { size: PANEL_TILES }) };
    sec.hidden = true;
    return panel;
  }

  function paint(cameras, total, text) {
    var p = ensurePanel();
    if (!p) return;
    p.tiles.set(cameras);
    p.sec.hidden = false;
    p.box.hidden = !cameras.length;
    cc.setText(p.note, cameras.length ? '' : text);
    p.note.hidden = !!cameras.length;
    cc.setText(p.count, text && cameras.length ? text : '');
  }

  /* The selection changed (info null) or its details arrived (cc-61). */
  V.panelEvent = function (id, info) {
    var p = ensurePanel();
    if (!p) return;
    if (!id) {
      shownFor = source = null;
      p.tiles.set([]);
      p.sec.hidden = true;
      return;
    }
    if (!info) {
      if (id === shownFor) return;
      shownFor = id;
      source = 'event';
      paint([], 0, cc.t('video.loading'));
      return;
    }
    if (id !== shownFor || source !== 'event') return; // a map selection stays until the next event
    var cams = (info.nearby && Array.isArray(info.nearby.cameras)) ? info.nearby.cameras : [];
    paint(cams.slice(0, PANEL_TILES), cams.length,
      cams.length ? cc.t('video.count', { n: cams.length }) : cc.t('video.none'));
  };

  /* A map selection "to the panel": camera records or ids (ids are looked up in the store).
     Shown while an event's panel is open; returns false when no panel is open. */
  V.showInPanel = function (cameras) {
    var p = ensurePanel();
    if (!p || !cc.command || !cc.command.selected()) return false;
    var list = [];
    (cameras || []).forEach(function (c) {
      var rec = typeof c === 'object' && c !== null ? c : cc.store.get('camera', String(c));
      if (rec) list.push(rec);
    });
    source = 'map';
    paint(list.slice(0, PANEL_TILES), list.length,
      list.length ? cc.t('video.from_map', { n: list.length }) : cc.t('video.none'));
    return true;
  };

  /* Test probes: the panel's tile states in order, and where they came from. */
  V.panelStates = function () { return panel ? panel.tiles.states() : []; };
  V.panelSource = function () { return source; };
})();
