/* cc-70-videowall.js: the video wall page, /video (docs/VIDEO.md).

   1/4/9/16 tiles, the camera list, saved layouts, following events, the tour. Also, on the
   wall page, `opened(id)`: a commander opening an event points the video wall at it
   (POST /api/video/focus).

   State: `wall` = {grid, tiles, follow, event_id, focus_ts, ts} as last applied: `tiles` are
   the pinned ones (a person's), `event_id` the focused event. The server's wall (GET,
   `video` frames, PUT answers) wins when its ts is not older. What the other tiles show is
   worked out here on every screen (cc-68 `cc.wallpick`): the followed event's cameras (GET
   /api/video/cameras, the event panel's ranking), then the tour, whose step is the wall
   clock ÷ `tourS` so every screen shows the same. Tiles play through cc.video.play (cc-66);
   a camera that stays on screen keeps its player when tiles move, a camera that goes has
   its player torn down. Feed text only through textContent; the list shows the first
   `listMax` matches of a store that may hold 42k. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var V = (cc.videowall = {});
  var ID = null, K = null;

  var wall = { grid: 4, tiles: [], follow: true, event_id: null, focus_ts: null, ts: 0 };
  var shown = []; // what each tile shows: {id, src: 'pin'|'follow'|'tour'|null, town, community}
  var followId = null; // the event followed (cc.wallpick.followed)
  var ranking = null; // {event, ids, at}: the followed event's cameras, as the server ranks them
  var rankingFor = null; // the event whose ranking is on its way
  var plan = null, planDirty = true, planStep = -1; // the tour's plan (cc.wallpick.tourPlan), stale?, built at
  var stepTimer = null;
  var toldNone = null; // the event whose "no camera near" was said
  var canEdit = false;
  var picked = -1; // the tile clicked, waiting for a camera
  var players = new Map(); // camera id → {screen, handle, rec}
  var slots = []; // tile elements, in order
  var layouts = []; // the saved layouts, by name
  var camRows = []; // pooled <li>s of the camera list
  var listed = new Map(); // camera id → its <li>, the rows on screen
  var camsTimer = null, camsAt = 0;
  var layoutsTimer = null;
  var msgTimer = null;
  var confirmName = null, confirmTimer = null;
  var outbox = null, dones = [], sending = false; // this screen's changes on their way
  var deferred = null; // the newest wall the server sent meanwhile

  var $ = cc.$;

  /* ------------------------------------------------------------- HTTP (cc.api) */

  function ignore() { /* read again later, or the next frame tells */ }

  /* What a failed request (cc.api's Error) says on this page. */
  function failure(err) {
    if (!err || !err.status) return cc.t('vw.err_network');
    if (err.status === 403) return cc.t('vw.err_forbidden');
    if (err.code === 'too_many_layouts') return cc.t('vw.err_full');
    if (err.code === 'bad_name') return cc.t('vw.err_name');
    return cc.t('vw.err', { msg: err.error || err.status });
  }

  /* A message in the tool bar; with `feed`, `text` is a template whose {names} are the
     feed's words (an event's title), marked as such (cc.setFeedText). */
  function say(text, level, feed) {
    var el = $('VW_MSG');
    if (feed) cc.setFeedText(el, text, feed); else cc.setText(el, text);
    cc.setAttr(el, 'data-level', level || 'info');
    clearTimeout(msgTimer);
    if (text) msgTimer = setTimeout(function () { cc.setText(el, ''); }, 8000);
  }

  /* ------------------------------------------------------------- the wall's state */

  function gridOf(n) { return K.grids.indexOf(Number(n)) >= 0 ? Number(n) : wall.grid; }

  function cleanTiles(list) {
    var out = [];
    if (!Array.isArray(list)) return out;
    for (var i = 0; i < list.length && i < K.tilesMax; i++) {
      out.push(typeof list[i] === 'string' && list[i] ? list[i] : null);
    }
    while (out.length && out[out.length - 1] === null) out.pop();
    return out;
  }

  /* A wall from the server (GET, frame or PUT answer): applied unless older than ours. */
  function applyWall(w) {
    if (!w || typeof w !== 'object') return false;
    var ts = Number(w.ts) || 0;
    if (ts < wall.ts) return false;
    var tiles = cleanTiles(w.tiles);
    wall = { grid: gridOf(w.grid), tiles: tiles, follow: w.follow !== false,
      event_id: typeof w.event_id === 'string' ? w.event_id : null,
      focus_ts: Number(w.focus_ts) || null, ts: ts };
    refollow();
    render();
    return true;
  }

  function reloadWall() {
    cc.api('GET', '/video/wall').then(serverWall, ignore);
  }

  /* A wall the server sent (frame, GET or PUT answer). While this screen's own changes are
     on their way it is older than what is shown (it would flick the tiles back): keep the
     newest, and weigh it against our last answer when they have landed. */
  function serverWall(w) {
    if (sending || outbox) {
      if (w && typeof w === 'object' && (!deferred || Number(w.ts) >= Number(deferred.ts))) deferred = w;
      return;
    }
    applyWall(w);
  }

  /* An editor's change: shown at once, then PUT, one request at a time (changes made
     meanwhile go together in the next), so the server applies them in the order made. */
  function commit(change, done) {
    if (!canEdit) return;
    if (change.tiles) change.tiles = cleanTiles(change.tiles);
    Object.keys(change).forEach(function (k) { wall[k] = change[k]; });
    if ('follow' in change) refollow();
    render();
    outbox = Object.assign(outbox || {}, change);
    if (done) dones.push(done);
    if (!sending) send();
  }

  function send() {
    var body = outbox, after = dones;
    outbox = null;
    dones = [];
    sending = true;
    cc.api('PUT', '/video/wall', body).then(function (w) {
      sending = false;
      after.forEach(function (fn) { fn(); });
      if (outbox) { send(); return; }
      if (deferred && Number(deferred.ts) > Number(w.ts)) w = deferred;
      deferred = null;
      applyWall(w);
    }, function (err) {
      sending = false;
      say(failure(err), 'error');
      outbox = null;
      dones = [];
      deferred = null;
      reloadWall();
    });
  }

  function padded() {
    var tiles = wall.tiles.slice();
    while (tiles.length < K.tilesMax) tiles.push(null);
    return tiles;
  }

  /* Put a camera on a tile; if it is on another tile already, the two tiles swap. */
  function assign(slot, camId) {
    var tiles = padded();
    var from = tiles.indexOf(camId);
    if (from === slot) return;
    if (from >= 0) tiles[from] = tiles[slot];
    tiles[slot] = camId;
    commit({ tiles: tiles });
  }

  function swap(a, b) {
    if (a === b) return;
    var tiles = padded();
    var x = tiles[a];
    tiles[a] = tiles[b];
    tiles[b] = x;
    commit({ tiles: tiles });
  }

  /* A tile dragged onto another: two pinned ones swap; what an unpinned one shows is pinned
     where it was dropped. */
  function moveTile(from, to) {
    if (wall.tiles[from]) swap(from, to);
    else if (shown[from] && shown[from].id) assign(to, shown[from].id);
  }

  function clearSlot(slot) {
    var tiles = padded();
    tiles[slot] = null;
    commit({ tiles: tiles });
  }

  /* ------------------------------------------------------------- following, the tour */

  var W = cc.wallpick;

  function eventTitle(id) {
    var rec = cc.store.get('event', id);
    return rec ? rec.title || cc.label('type', rec.type) || id : id;
  }

  /* Which event the wall follows now; its cameras are read when it changes. */
  function refollow() {
    var next = null;
    if (wall.follow) {
      var events = [];
      cc.store.each('event', function (rec) { events.push(rec); });
      next = W.followed(events, { event_id: wall.event_id, ts: wall.focus_ts },
        { urgent: cc.cfg.urgent, closed: cc.cfg.closed });
    }
    if (next === followId) return;
    followId = next;
    loadRanking();
    render();
  }

  function loadRanking() {
    if (!followId) { ranking = null; rankingFor = null; return; }
    var id = followId;
    rankingFor = id;
    cc.api('GET', '/video/cameras?event_id=' + encodeURIComponent(id)).then(function (res) {
      done((res.cameras || []).map(function (c) { return c && typeof c.id === 'string' ? c.id : null; }));
    }, function () { done([]); }); // out of scope or gone: the tour fills the tiles
    function done(ids) {
      if (rankingFor === id) rankingFor = null;
      if (followId !== id) return;
      ranking = { event: id, ids: ids.filter(Boolean).slice(0, K.tilesMax), at: Date.now() };
      if (!ranking.ids.length && toldNone !== id) {
        toldNone = id;
        say(cc.t('vw.no_cameras', { title: '{title}' }), 'info', { title: eventTitle(id) });
      }
      render();
    }
  }

  function tourStep() { return K.tourS > 0 ? Math.floor(Date.now() / (K.tourS * 1000)) : 0; }

  /* Rebuilt at most once a step (the tiles do not jump between steps), at once while empty. */
  function tourPlan(step) {
    if (!(K.tourS > 0)) return null;
    if (!plan || (planDirty && (!plan.total || planStep !== step))) {
      var cams = [];
      cc.store.each('camera', function (rec) { cams.push(rec); });
      plan = W.tourPlan(cams, cc.video && cc.video.streamType);
      planDirty = false;
      planStep = step;
    }
    return plan;
  }

  /* At every step of the tour (on the wall clock's boundaries): the next cameras, the plan
     rebuilt if cameras came, went or changed meanwhile, the ranking read again when old. */
  function armStep() {
    clearTimeout(stepTimer);
    if (!(K.tourS > 0)) return;
    var every = K.tourS * 1000;
    stepTimer = setTimeout(function () {
      if (followId && ranking && !rankingFor && Date.now() - ranking.at > K.rankingRefreshMs) loadRanking();
      render();
      armStep();
    }, every - (Date.now() % every) + 20);
  }

  /* What every tile shows now. While the followed event's cameras are on their way the
     tiles stay as they are (no flash of the tour before them). */
  function pick() {
    if (followId && (!ranking || ranking.event !== followId) && rankingFor === followId) return;
    var ids = followId && ranking && ranking.event === followId ? ranking.ids : [];
    ids = W.liveFirst(ids, function (id) { var r = camRecord(id); return !!r && r.online === false; });
    var step = tourStep();
    shown = W.fill({ grid: wall.grid, pinned: wall.tiles, ranking: ids, plan: tourPlan(step), step: step });
  }

  function shownAt(id) {
    for (var i = 0; i < shown.length; i++) if (shown[i] && shown[i].id === id) return i;
    return -1;
  }

  function areaName(town, community) {
    var names = cc.cfg.video.areas || {};
    var parts = [town && names[town], community && names[community]].filter(Boolean);
    return parts.length ? parts.join(' · ') : cc.t('vw.area_none');
  }

  /* The tile's caption beside its number: why this camera is here, and where it stands,
     into `el` (the followed event's title is the feed's words: marked, cc.setFeedText). */
  function caption(el, s, rec) {
    var feed = {}, text = '';
    if (s && s.id && s.src === 'tour') {
      text = cc.t('vw.src.tour', { area: areaName(s.town, s.community) });
    } else if (s && s.id) {
      var a = W.areaOf(rec || {});
      var where = rec ? areaName(a.town, a.community) : '';
      if (s.src === 'follow') feed.title = eventTitle(followId);
      var why = s.src === 'follow' ? cc.t('vw.src.follow', { title: '{title}' }) : cc.t('vw.src.pin');
      text = where ? why + ' · ' + where : why;
    }
    cc.setFeedText(el, text, feed);
    if (feed.title) el.setAttribute('data-feed-title', ''); else el.removeAttribute('data-feed-title');
  }

  function onVideo(data) {
    if (!data || typeof data !== 'object') return;
    if (data.id === 'wall') {
      serverWall(data);
    } else if (data.id === 'focus') {
      if (data.wall) serverWall(data.wall);
      else if (data.follow && !(data.cameras || []).length) {
        say(cc.t('vw.no_cameras', { title: '{title}' }), 'info', { title: eventTitle(data.event_id) });
      }
    } else if (data.id === 'layouts') {
      clearTimeout(layoutsTimer);
      layoutsTimer = setTimeout(loadLayouts, 300); // a burst of saves is one read
    }
  }

  function onChange(kind, op, rec, live, arrived) {
    if (kind === 'camera') {
      var p = rec && players.get(rec.id);
      if (p && op !== 'remove') refreshPlayer(p, rec);
      // the tour's plan follows at its next step (a re-sort of 42k per flip would not do);
      // a wall with nothing to tour yet takes the first cameras at once
      if (arrived || op === 'remove' || op === 'upsert') planDirty = true;
      if (arrived && plan && !plan.total) render();
      // a move of a camera already there costs one row at most, not a scan of 42k
      if (!canEdit) return;
      if (arrived || op === 'remove') camsDirty();
      else if (listed.has(rec.id)) fillCam(listed.get(rec.id), rec);
    } else if (kind === 'video') {
      onVideo(rec);
    } else if (kind === 'event') {
      cc.schedule('vw-follow', refollow);
      if (rec && rec.id === followId) {
        cc.schedule('vw-event', renderEvent);
        // its title is in the captions
        cc.schedule('vw-render', renderNow);
      }
    } else if (kind === 'snapshot') {
      // a fresh start: frames may have been missed, read the wall again
      // the event first: the tiles' first picture is its cameras, never the tour before them
      planDirty = true;
      refollow();
      render();
      reloadWall();
      if (canEdit) searchNow();
      cc.schedule('vw-event', renderEvent);
    }
  }

  /* ------------------------------------------------------------- players */

  function camRecord(id) { return cc.store.get('camera', id) || null; }

  function startPlayer(p) {
    if (p.handle || !p.rec) return;
    if (cc.video && typeof cc.video.play === 'function') {
      try {
        p.handle = cc.video.play(p.screen, p.rec, { muted: true, label: true });
      } catch (e) {
        console.warn('ccwall: player failed', e);
      }
    }
    if (!p.handle) fallback(p);
  }

  /* Without the player (cc-66) a tile still says which camera it is and whether it is up. */
  function fallback(p) {
    var rec = p.rec;
    p.screen.setAttribute('data-camera', p.id);
    p.screen.setAttribute('data-state', rec ? (rec.online === false ? 'offline' : 'unsupported') : 'unknown');
    var name = p.screen.querySelector('.cc-vw-screen-name') ||
      p.screen.appendChild(cc.feed(cc.make('div', 'cc-vw-screen-name')));
    var state = p.screen.querySelector('.cc-vw-screen-state') ||
      p.screen.appendChild(cc.make('div', 'cc-vw-screen-state'));
    cc.setText(name, rec ? rec.name || p.id : p.id);
    cc.setText(state, !rec ? cc.t('vw.unknown') : rec.online === false ? cc.t('cam.offline')
      : cc.t('vw.player_missing'));
  }

  function makePlayer(id) {
    var p = { id: id, screen: cc.make('div', 'cc-vw-screen'), handle: null, rec: camRecord(id) };
    p.screen.setAttribute('data-camera', id);
    if (p.rec) startPlayer(p);
    else fallback(p); // not in the feed (yet): the record starts it when it comes
    players.set(id, p);
    return p;
  }

  function refreshPlayer(p, rec) {
    p.rec = rec;
    if (p.handle) {
      try { p.handle.update(rec); } catch (e) { console.warn('ccwall: player update failed', e); }
    } else {
      while (p.screen.firstChild) p.screen.removeChild(p.screen.firstChild);
      startPlayer(p);
    }
    var i = shownAt(p.id), slot = slots[i];
    if (slot) {
      cc.setText(slot._name, rec.name || p.id);
      caption(slot._src, shown[i], rec);
    }
  }

  function dropPlayer(p) {
    if (p.handle) {
      try { p.handle.destroy(); } catch (e) { console.warn('ccwall: player destroy failed', e); }
    }
    p.screen.remove();
    players.delete(p.id);
  }

  /* ------------------------------------------------------------- render */

  function makeSlot(i) {
    var el = cc.make('div', 'cc-vw-tile');
    el.setAttribute('data-slot', String(i));
    el._hold = el.appendChild(cc.make('div', 'cc-vw-tile-hold'));
    el._empty = el.appendChild(cc.make('div', 'cc-vw-tile-empty',
      canEdit ? cc.t('vw.empty_tile') : cc.t('vw.empty_view')));
    var bar = el.appendChild(cc.make('div', 'cc-vw-tile-bar'));
    bar.appendChild(cc.make('span', 'cc-vw-tile-no', String(i + 1)));
    el._name = bar.appendChild(cc.feedSpan('cc-vw-tile-name')); // a camera's own name
    el._src = bar.insertBefore(cc.make('span', 'cc-vw-tile-src'), bar.firstChild);
    if (canEdit) {
      var pin = bar.appendChild(cc.make('button', 'cc-vw-tile-pin', cc.t('vw.pin')));
      pin.type = 'button';
      pin.title = cc.t('vw.pin_title');
      pin.setAttribute('data-vw', 'pin');
      var clear = bar.appendChild(cc.make('button', 'cc-vw-tile-clear', '×'));
      clear.type = 'button';
      clear.title = cc.t('vw.clear');
      clear.setAttribute('data-vw', 'clear');
    }
    return el;
  }

  function render() { cc.schedule('vw-render', renderNow); }

  function renderNow() {
    var grid = $('VW_GRID');
    if (!grid) return;
    var n = wall.grid;
    cc.setAttr(grid, 'data-grid', String(n));
    while (slots.length < n) slots.push(grid.appendChild(makeSlot(slots.length)));
    while (slots.length > n) slots.pop().remove();
    if (picked >= n) picked = -1;
    pick();
    var want = new Set();
    for (var i = 0; i < n; i++) {
      var s = shown[i] || { id: null, src: null };
      var id = s.id || null;
      var slot = slots[i];
      cc.setAttr(slot, 'data-camera', id || '');
      cc.setAttr(slot, 'data-src', s.src || '');
      slot.classList.toggle('is-empty', !id);
      slot.classList.toggle('is-pinned', s.src === 'pin');
      slot.classList.toggle('is-picked', i === picked);
      slot.draggable = canEdit && !!id;
      if (!id) { cc.setText(slot._name, ''); cc.setText(slot._src, ''); continue; }
      want.add(id);
      var p = players.get(id) || makePlayer(id);
      if (p.screen.parentNode !== slot._hold) slot._hold.appendChild(p.screen);
      var rec = p.rec;
      cc.setText(slot._name, rec ? rec.name || id : id);
      caption(slot._src, s, rec);
      cc.setAttr(slot._src, 'title', slot._src.textContent); // the whole of it when cut short
    }
    Array.from(players.values()).forEach(function (p) { if (!want.has(p.id)) dropPlayer(p); });
    renderTools();
    renderEvent();
    listed.forEach(function (li, id) { var rec = camRecord(id); if (rec) fillCam(li, rec); });
  }

  function renderTools() {
    var follow = $('VW_FOLLOW');
    cc.setAttr(follow, 'aria-pressed', wall.follow ? 'true' : 'false');
    if (follow) follow.classList.toggle('is-on', wall.follow);
    var box = $('VW_GRIDS');
    if (box) {
      Array.prototype.forEach.call(box.querySelectorAll('[data-grid]'), function (b) {
        b.classList.toggle('is-on', Number(b.getAttribute('data-grid')) === wall.grid);
      });
    }
  }

  function renderEvent() {
    var box = $('VW_EVENT');
    if (!box) return;
    var text = box.querySelector('.cc-vw-event-text');
    var id = followId;
    if (!id) {
      var touring = shown.some(function (s) { return s && s.src === 'tour'; });
      var none = !touring && K.tourS > 0 && shown.some(function (s) { return s && !s.id; });
      cc.setAttr(box, 'data-state', touring ? 'tour' : 'none');
      box.style.removeProperty('--sev');
      cc.setText(text, touring ? cc.t('vw.touring', { s: K.tourS })
        : none ? cc.t('vw.tour_none') : cc.t('vw.event_none'));
      return;
    }
    var rec = cc.store.get('event', id);
    var sev = rec ? String(Number(rec.severity) || 4) : '';
    var s = cc.cfg.severity[sev];
    cc.setAttr(box, 'data-state', 'event');
    cc.setAttr(box, 'data-event', id);
    if (s) box.style.setProperty('--sev', s.colour);
    // an event with no camera near is still followed (the tour fills in): say so
    var nocam = ranking && ranking.event === id && !ranking.ids.length;
    cc.setFeedText(text, cc.t(nocam ? 'vw.event_nocam' : 'vw.event',
      { what: (s ? s.roman + ' · ' : '') + '{title}' }), { title: eventTitle(id) });
  }

  /* ------------------------------------------------------------- the camera list */

  function camsDirty() {
    if (camsTimer) return;
    var wait = Math.max(0, camsAt + K.listRefreshMs - performance.now());
    camsTimer = setTimeout(function () { camsTimer = null; cc.schedule('vw-cams', renderCams); }, wait);
  }

  function searchNow() {
    clearTimeout(camsTimer);
    camsTimer = null;
    cc.schedule('vw-cams', renderCams);
  }

  function fillCam(li, rec) {
    var on = shownAt(rec.id);
    cc.setAttr(li, 'data-id', rec.id);
    cc.setAttr(li, 'data-online', rec.online === false ? '0' : '1');
    cc.setText(li._name, rec.name || rec.id);
    cc.setText(li._id, rec.id);
    cc.setText(li._tile, on >= 0 && on < wall.grid ? cc.t('vw.on_tile', { n: on + 1 }) : '');
  }

  function renderCams() {
    camsAt = performance.now();
    var list = $('VW_CAMS');
    var input = $('VW_SEARCH');
    if (!list) return;
    var q = input ? input.value.trim().toLowerCase() : '';
    var shown = [], total = 0, max = K.listMax;
    listed.clear();
    cc.store.each('camera', function (rec) {
      if (q && String(rec.id).toLowerCase().indexOf(q) < 0 &&
          String(rec.name || '').toLowerCase().indexOf(q) < 0) return;
      total++;
      if (shown.length < max) shown.push(rec);
    });
    for (var i = 0; i < shown.length; i++) {
      var li = camRows[i];
      if (!li) {
        li = camRows[i] = cc.make('li', 'cc-vw-cam');
        li.draggable = true;
        li._dot = li.appendChild(cc.make('span', 'cc-vw-cam-dot'));
        li._name = li.appendChild(cc.feedSpan('cc-vw-cam-name'));
        li._id = li.appendChild(cc.make('span', 'cc-vw-cam-id'));
        li._tile = li.appendChild(cc.make('span', 'cc-vw-cam-tile'));
      }
      fillCam(li, shown[i]);
      listed.set(shown[i].id, li);
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    }
    while (list.children.length > shown.length) list.lastChild.remove();
    if (!shown.length) {
      var none = cc.make('li', 'cc-vw-cam-none', cc.t('vw.cam_none'));
      list.appendChild(none);
    }
    cc.setText($('VW_CAM_COUNT'), cc.t('vw.cam_count', { total: cc.fmtInt(total), shown: cc.fmtInt(shown.length) }));
  }

  /* ------------------------------------------------------------- saved layouts */

  function loadLayouts() {
    cc.api('GET', '/video/layouts').then(function (res) {
      layouts = Array.isArray(res.layouts) ? res.layouts : [];
      renderLayouts();
    }, ignore);
  }

  function renderLayouts() {
    var ul = $('VW_LAYOUTS');
    if (!ul) return;
    while (ul.firstChild) ul.removeChild(ul.firstChild);
    if (!layouts.length) ul.appendChild(cc.make('li', 'cc-vw-layout-none', cc.t('vw.layouts_none')));
    layouts.forEach(function (l) {
      if (!l || typeof l.name !== 'string') return;
      var li = cc.make('li', 'cc-vw-layout');
      li.setAttribute('data-name', l.name);
      var text = li.appendChild(cc.make('div', 'cc-vw-layout-text'));
      text.appendChild(cc.feedSpan('cc-vw-layout-name', l.name)); // named by a person
      text.appendChild(cc.make('span', 'cc-vw-layout-meta', cc.t('vw.layout_meta', { n: l.grid, by: l.by || '' })));
      if (canEdit) {
        var recall = li.appendChild(cc.make('button', 'cc-vw-btn cc-vw-recall', cc.t('vw.recall')));
        recall.type = 'button';
        recall.setAttribute('data-vw', 'recall');
        var del = li.appendChild(cc.make('button', 'cc-vw-btn cc-vw-delete',
          confirmName === l.name ? cc.t('vw.confirm_delete') : cc.t('vw.delete')));
        del.type = 'button';
        del.setAttribute('data-vw', 'delete');
        if (confirmName === l.name) del.classList.add('is-confirm');
      }
      ul.appendChild(li);
    });
  }

  function saveLayout() {
    var input = $('VW_LAYOUT_NAME');
    var name = input ? input.value.trim() : '';
    if (!name || name.length > K.nameMax || name.indexOf('/') >= 0) { say(cc.t('vw.err_name'), 'error'); return; }
    cc.api('PUT', '/video/layouts/' + encodeURIComponent(name), { grid: wall.grid, tiles: wall.tiles.slice(0, wall.grid) })
      .then(function () {
        if (input) input.value = '';
        say(cc.t('vw.saved', { name: name }), 'ok');
        loadLayouts();
      }, function (err) { say(failure(err), 'error'); });
  }

  function recallLayout(name) {
    var l = layouts.filter(function (x) { return x.name === name; })[0];
    if (!l) return;
    picked = -1;
    commit({ grid: gridOf(l.grid), tiles: cleanTiles(l.tiles) }, function () {
      say(cc.t('vw.recalled', { name: name }), 'ok');
    });
  }

  function deleteLayout(name) {
    if (confirmName !== name) {
      // two clicks: a big screen has no undo
      confirmName = name;
      clearTimeout(confirmTimer);
      confirmTimer = setTimeout(function () { confirmName = null; renderLayouts(); }, 4000);
      renderLayouts();
      return;
    }
    confirmName = null;
    // no body: cc.api's X-Requested-With is what the server lets through
    cc.api('DELETE', '/video/layouts/' + encodeURIComponent(name)).then(function () {
      say(cc.t('vw.deleted', { name: name }), 'ok');
      loadLayouts();
    }, function (err) { say(failure(err), 'error'); });
  }

  /* ------------------------------------------------------------- input */

  function slotOf(el) {
    var tile = el && el.closest && el.closest('.cc-vw-tile');
    return tile ? Number(tile.getAttribute('data-slot')) : -1;
  }

  function onClick(e) {
    var t = e.target;
    var btn = t.closest && t.closest('[data-vw]');
    if (btn && !btn.disabled) {
      var li = btn.closest('.cc-vw-layout');
      switch (btn.getAttribute('data-vw')) {
        case 'grid': picked = -1; commit({ grid: gridOf(btn.getAttribute('data-grid')) }); return;
        case 'follow': commit({ follow: !wall.follow }); return;
        case 'clear-all': picked = -1; commit({ tiles: [] }); return;
        case 'clear': clearSlot(slotOf(btn)); return;
        case 'pin': pinShown(slotOf(btn)); return;
        case 'save': saveLayout(); return;
        case 'recall': if (li) recallLayout(li.getAttribute('data-name')); return;
        case 'delete': if (li) deleteLayout(li.getAttribute('data-name')); return;
        default: return;
      }
    }
    var cam = t.closest && t.closest('.cc-vw-cam');
    if (cam) {
      var id = cam.getAttribute('data-id');
      var slot = picked;
      if (slot < 0) slot = firstEmpty();
      if (slot < 0) return;
      picked = slot + 1 < wall.grid && !wall.tiles[slot + 1] ? slot + 1 : -1; // next tile on
      assign(slot, id);
      return;
    }
    var s = slotOf(t);
    if (s >= 0) {
      picked = picked === s ? -1 : s;
      if (picked >= 0) say(cc.t('vw.picked', { n: picked + 1 }), 'info');
      render();
    }
  }

  /* The first tile nobody pinned (it may show the event or the tour meanwhile). */
  function firstEmpty() {
    for (var i = 0; i < wall.grid; i++) if (!wall.tiles[i]) return i;
    return -1;
  }

  /* Keep what an unpinned tile shows there: it becomes the person's. */
  function pinShown(slot) {
    var s = shown[slot];
    if (s && s.id && s.src !== 'pin') assign(slot, s.id);
  }

  var DRAG = 'text/plain';

  function onDragStart(e) {
    var t = e.target;
    if (!e.dataTransfer || !t.closest) return;
    var cam = t.closest('.cc-vw-cam');
    if (cam) { e.dataTransfer.setData(DRAG, 'cam:' + cam.getAttribute('data-id')); e.dataTransfer.effectAllowed = 'copyMove'; return; }
    var s = slotOf(t);
    if (s >= 0 && shown[s] && shown[s].id) { e.dataTransfer.setData(DRAG, 'tile:' + s); e.dataTransfer.effectAllowed = 'move'; }
  }

  function onDragOver(e) {
    var s = slotOf(e.target);
    if (s < 0) return;
    e.preventDefault();
    slots.forEach(function (el, i) { el.classList.toggle('is-drop', i === s); });
  }

  function endDrag() { slots.forEach(function (el) { el.classList.remove('is-drop'); }); }

  function onDrop(e) {
    var s = slotOf(e.target);
    endDrag();
    if (s < 0 || !e.dataTransfer) return;
    e.preventDefault();
    var data = e.dataTransfer.getData(DRAG) || '';
    if (data.indexOf('cam:') === 0) assign(s, data.slice(4));
    else if (data.indexOf('tile:') === 0) moveTile(Number(data.slice(5)), s);
  }

  function input(idName, placeholder, maxLength) {
    var el = $(idName) || cc.make('input', 'cc-vw-input');
    el.id = ID[idName];
    el.type = 'text';
    el.maxLength = maxLength;
    el.placeholder = placeholder;
    el.autocomplete = 'off';
    el.spellcheck = false;
    return el;
  }

  function buildInputs() {
    var box = $('VW_SEARCH_BOX');
    if (box && !$('VW_SEARCH')) {
      var search = box.appendChild(input('VW_SEARCH', cc.t('vw.search'), 64));
      var wait = null;
      search.addEventListener('input', function () { clearTimeout(wait); wait = setTimeout(searchNow, 150); });
    }
    var form = $('VW_LAYOUT_FORM');
    if (form && !$('VW_LAYOUT_NAME')) {
      var name = form.insertBefore(input('VW_LAYOUT_NAME', cc.t('vw.layout_name'), K.nameMax), form.firstChild);
      name.addEventListener('keydown', function (e) { if (e.key === 'Enter') saveLayout(); });
    }
  }

  /* ------------------------------------------------------------- start */

  function init() {
    ID = cc.cfg.ids;
    K = cc.cfg.video;
    canEdit = !!K.canEdit;
    var grid = $('VW_GRID');
    if (grid) wall.grid = gridOf(grid.getAttribute('data-grid'));
    cc.store.listen(onChange);
    var root = $('VW_ROOT');
    if (root && canEdit) {
      buildInputs();
      root.addEventListener('click', onClick);
      root.addEventListener('dragstart', onDragStart);
      root.addEventListener('dragover', onDragOver);
      root.addEventListener('dragleave', function (e) { if (slotOf(e.target) < 0) endDrag(); });
      root.addEventListener('dragend', endDrag);
      root.addEventListener('drop', onDrop);
      loadLayouts();
    }
    refollow();
    renderNow();
    armStep();
    if (canEdit) searchNow();
    reloadWall();
  }

  cc.pages = cc.pages || {};
  cc.pages.video = { init: init };

  /* ------------------------------------------------------------- on the wall page */

  var lastFocus = { id: null, at: 0 };
  var FOCUS_REPEAT_MS = 10000;

  function inScope(rec, scope) {
    return ['grid_id', 'community_id', 'town_id'].some(function (k) {
      var v = String(rec[k] || '');
      return v && (v === scope || v.indexOf(scope) === 0);
    });
  }

  /* The wall's panel opened an event: a commander or duty officer points the video wall
     at it. Fire and forget; sent only when the server would take it (role, scope), so a
     refusal never reaches the console. */
  V.opened = function (id) {
    if (!cc.cfg || cc.page !== 'wall' || !id) return;
    var me = cc.cfg.session;
    if (!me || (me.role !== 'commander' && me.role !== 'duty_officer')) return;
    var rec = cc.store.get('event', id);
    if (!rec || (me.scope && !inScope(rec, me.scope))) return;
    var now = Date.now();
    if (lastFocus.id === id && now - lastFocus.at < FOCUS_REPEAT_MS) return;
    lastFocus = { id: id, at: now };
    cc.api('POST', '/video/focus', { event_id: id }).then(null, ignore);
  };

  /* Test probes. */
  Object.defineProperties(V, {
    wall: { get: function () { return JSON.parse(JSON.stringify(wall)); } },
    players: { get: function () { return players.size; } },
    shown: { get: function () { return JSON.parse(JSON.stringify(shown)); } },
    followed: { get: function () { return followId; } },
  });
})();
