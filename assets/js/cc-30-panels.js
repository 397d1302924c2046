/* cc-30-panels.js: the header, KPIs, bars, the live event list, the detail card, legend.

   All writes are textContent / attributes on elements the layout made (ids from
   layouts/ids.py via the config) or rows built here with createElement. Feed text never
   reaches innerHTML. Work is batched per animation frame; the list redraws at most ~4 Hz. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var P = (cc.panels = {});
  var $ = cc.$;
  function cfgLimit(name) { return cc.cfg.limits[name]; }

  /* ------------------------------------------------------------- header */

  var conn = { state: 'connecting', attempt: 0 };

  P.connection = function (state, attempt) {
    conn.state = state;
    conn.attempt = attempt || 0;
    cc.schedule('conn', renderConn);
  };

  function renderConn() {
    var box = $('CONN');
    // a replay is not live, though its socket is: the chip must not say "live" over the past
    var state = cc.store && cc.store.replaying() ? 'replay' : conn.state;
    cc.setAttr(box, 'data-state', state);
    cc.setText($('CONN_TEXT'), cc.t('conn.' + state, { n: conn.attempt }));
    if (box) box.title = conn.attempt ? cc.t('conn.reconnecting', { n: conn.attempt }) : '';
  }

  function renderClock() {
    var p = cc.timeParts(cc.serverNow());
    cc.setText($('CLOCK_TIME'), p.hour + ':' + p.minute + ':' + p.second);
    cc.setText($('CLOCK_DATE'), p.year + '-' + p.month + '-' + p.day + '  ' + cc.t('weekday.' + p.wd));
  }

  var newestData = 0; // server ms of the newest record or stats.last_ts

  P.sawData = function (ts) {
    if (ts > newestData) newestData = ts;
  };

  function renderAge() {
    var box = $('DATA_AGE');
    if (!newestData) {
      cc.setAttr(box, 'data-level', 'none');
      cc.setText($('DATA_AGE_TEXT'), cc.t('age.none'));
      return;
    }
    var age = Math.max(0, cc.serverNow() - newestData);
    var s = cc.cfg.staleS;
    var level = age >= s.red * 1000 ? 'red' : age >= s.amber * 1000 ? 'amber' : 'fresh';
    var text = cc.fmtAgo(age);
    if (lastStats && lastStats.degraded) {
      // ingest lost Redis lately: fresh-looking data may have gaps
      if (level === 'fresh') level = 'amber';
      text = cc.t('age.degraded') + ' · ' + text;
    }
    cc.setAttr(box, 'data-level', level);
    cc.setText($('DATA_AGE_TEXT'), text);
  }

  /* ------------------------------------------------------------- stats: KPIs and bars */

  var lastStats = null;

  P.stats = function (st, serverTs) {
    if (!st || typeof st !== 'object') return;
    if (isFinite(serverTs)) cc.clockOffset = serverTs - Date.now();
    lastStats = st;
    if (st.last_ts) P.sawData(Number(st.last_ts));
    cc.schedule('stats', renderStats);
  };

  function num(v) { return typeof v === 'number' && isFinite(v) ? v : Number(v) || 0; }

  function renderStats() {
    var st = lastStats;
    if (!st) return;
    cc.setText($('KPI_TODAY'), cc.fmtInt(num(st.today)));
    cc.setText($('KPI_OPEN'), cc.fmtInt(num(st.open)));
    cc.setText($('KPI_IN_PROGRESS'), cc.fmtInt(num(st.in_progress)));
    cc.setText($('KPI_CLOSED'), cc.fmtInt(num(st.closed_today)));
    var sev = st.by_severity || {};
    Object.keys(cc.cfg.severity).forEach(function (level) {
      cc.setText(cc.el('cc-kpi-sev-' + level), cc.fmtInt(num(sev[level])));
    });
    cc.setText($('KPI_WORKERS'), cc.fmtInt(num(st.workers_online)));
    var rate = num(st.ingest_rate);
    cc.setText($('KPI_RATE'), rate < 10 ? rate.toFixed(1) : cc.fmtInt(rate));
    bars('cat', cc.cfg.categories, st.by_category || {});
    bars('src', cc.cfg.sources, st.by_source || {});
  }

  function bars(group, codes, counts) {
    var max = 0;
    codes.forEach(function (c) { max = Math.max(max, num(counts[c])); });
    codes.forEach(function (c) {
      var row = cc.el('cc-bar-' + group + '-' + c);
      if (!row) return;
      var v = num(counts[c]);
      var fill = row.querySelector('.cc-bar-fill');
      var scale = max ? (v / max).toFixed(4) : '0';
      if (fill && fill._ccScale !== scale) {
        fill.style.transform = 'scaleX(' + scale + ')';
        fill._ccScale = scale;
      }
      cc.setText(row.querySelector('.cc-bar-value'), cc.fmtInt(v));
    });
  }

  /* ------------------------------------------------------------- legend and map chips */

  P.unitsChanged = function () { cc.schedule('legend', renderLegend); };

  function renderLegend() {
    cc.cfg.layers.forEach(function (kind) {
      cc.setText(cc.el('cc-legend-count-' + kind), cc.fmtInt(cc.store.size(kind)));
    });
  }

  var chips = null;
  function renderChips(open, urgent) {
    var box = $('MAP_INFO');
    if (!box) return;
    if (!chips) {
      chips = {};
      ['open', 'urgent'].forEach(function (k) {
        var c = cc.make('div', 'cc-map-chip cc-map-chip-' + k);
        c.appendChild(cc.make('span', null, cc.t('map.' + k)));
        chips[k] = cc.make('b', null, '0');
        c.appendChild(chips[k]);
        chips[k + 'Box'] = c;
        box.appendChild(c);
      });
    }
    cc.setText(chips.open, cc.fmtInt(open));
    cc.setText(chips.urgent, cc.fmtInt(urgent));
    chips.urgentBox.classList.toggle('is-alarm', urgent > 0);
  }

  /* ------------------------------------------------------------- event list */

  var rowEls = new Map(); // id → <li>, only the rows on screen
  var fresh = new Set(); // ids that arrived live and have not been drawn yet
  var listTimer = null;
  var lastList = 0;

  function isClosed(rec) { return cc.cfg.closed.indexOf(rec.status) >= 0; }
  function isUrgent(rec) { return cc.cfg.urgent.indexOf(Number(rec.severity)) >= 0; }
  function evTime(rec) { return Number(rec.first_ts || rec.ts) || 0; }

  P.eventChanged = function (rec, arrived) {
    // a fast replay brings rows in by the dozen: sliding each in would only flicker
    if (rec && arrived && !(cc.replay && cc.replay.fast())) {
      if (fresh.size > 200) fresh.clear();
      fresh.add(rec.id);
    }
    if (rec && rec.id === selected) cc.schedule('detail', renderDetail);
    // A new event is what the wall is for: draw it in the next frame (one list render per
    // frame at most). Only updates of known events wait for the throttle.
    if (arrived) listNow();
    else markList();
  };

  function listNow() {
    if (listTimer) { clearTimeout(listTimer); listTimer = null; }
    cc.schedule('list', renderList);
  }

  /* A list redraw is waiting for the throttle (the benchmark hook waits for it too). */
  P.listPending = function () { return listTimer !== null; };

  P.namesChanged = function () { markList(); cc.schedule('detail', renderDetail); };

  /* Leading-edge throttle: a lone event shows at once, a burst redraws ≤ listHz times/s. */
  function markList() {
    if (listTimer) return;
    var wait = lastList + 1000 / cfgLimit('listHz') - performance.now();
    if (wait <= 0) { cc.schedule('list', renderList); return; }
    listTimer = setTimeout(function () {
      listTimer = null;
      cc.schedule('list', renderList);
    }, wait);
  }

  /* Keep `arr` the n newest (desc); return what fell off. */
  function pushTop(arr, rec, t, n) {
    if (arr.length >= n && t <= arr[arr.length - 1][0]) return rec;
    var i = arr.length;
    while (i > 0 && arr[i - 1][0] < t) i--;
    arr.splice(i, 0, [t, rec]);
    return arr.length > n ? arr.pop()[1] : null;
  }

  function renderList() {
    lastList = performance.now();
    var n = cfgLimit('listRows'), nPin = cfgLimit('listPinned');
    var pinned = [], rest = [], open = 0, urgent = 0;
    cc.store.each('event', function (rec) {
      var t = evTime(rec);
      var closed = isClosed(rec);
      if (!closed) open++;
      var spill = rec;
      // pinned: gravest level first, newest first within a level
      if (!closed && isUrgent(rec)) {
        urgent++;
        spill = pushTop(pinned, rec, (9 - (Number(rec.severity) || 4)) * 1e13 + t, nPin);
      }
      if (spill) pushTop(rest, spill, evTime(spill), n);
    });
    var pinIds = new Set(pinned.map(function (x) { return x[1].id; }));
    var top = pinned.concat(rest).slice(0, n).map(function (x) { return x[1]; });

    var list = $('EVENT_LIST');
    if (!list) return;
    var keep = new Set();
    for (var i = 0; i < top.length; i++) {
      var rec = top[i];
      keep.add(rec.id);
      var li = rowEls.get(rec.id);
      if (!li) {
        li = makeRow();
        rowEls.set(rec.id, li);
        if (fresh.has(rec.id)) li.classList.add('is-new');
      }
      fillRow(li, rec, pinIds.has(rec.id));
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    }
    fresh.clear();
    rowEls.forEach(function (li, id) {
      if (!keep.has(id)) { li.remove(); rowEls.delete(id); }
    });
    var empty = list.querySelector('.cc-list-empty');
    if (!top.length && !empty) list.appendChild(cc.make('li', 'cc-list-empty', cc.t('list.empty')));
    if (top.length && empty) empty.remove();
    cc.setText($('EVENT_COUNT'), cc.t('list.count', { n: cc.fmtInt(cc.store.size('event')) }));
    renderChips(open, urgent);
  }

  function makeRow() {
    var li = cc.make('li', 'cc-event-row');
    li._chip = li.appendChild(cc.make('span', 'cc-sev-chip'));
    var head = li.appendChild(cc.make('div', 'cc-row-head'));
    li._type = head.appendChild(cc.make('span', 'cc-row-type'));
    li._title = head.appendChild(cc.make('span', 'cc-row-title'));
    li._time = li.appendChild(cc.make('span', 'cc-row-time'));
    li._place = li.appendChild(cc.make('span', 'cc-row-place'));
    li._status = li.appendChild(cc.make('span', 'cc-row-status'));
    li.addEventListener('animationend', function () { li.classList.remove('is-new'); });
    return li;
  }

  function fillRow(li, rec, pinned) {
    var sev = Number(rec.severity) || 4;
    var colour = cc.mapview.sevColour(sev);
    var s = cc.cfg.severity[String(sev)];
    if (li._ccKey !== rec.id + '|' + sev) {
      li.setAttribute('data-id', rec.id);
      li.setAttribute('data-severity', String(sev));
      li.style.setProperty('--sev', colour);
      li._chip.style.background = colour;
      li._ccKey = rec.id + '|' + sev;
    }
    cc.setText(li._chip, s ? s.roman : '');
    li.classList.toggle('is-closed', isClosed(rec));
    li.classList.toggle('is-pinned', pinned);
    li.classList.toggle('is-selected', rec.id === selected);
    cc.setText(li._type, cc.label('type', rec.type));
    cc.setFeedText(li._title, '{t}', { t: rec.title || '' });
    cc.setText(li._time, cc.fmtTime(evTime(rec)));
    var place = cc.mapview.placeOf(rec);
    if (place) cc.setText(li._place, place); else cc.setFeedText(li._place, '{a}', { a: rec.address || '' });
    cc.setText(li._status, cc.label('evst', rec.status || 'reported'));
    cc.setAttr(li._status, 'data-status', rec.status || 'reported');
  }

  /* ------------------------------------------------------------- detail card */

  var selected = null;

  P.selected = function () { return selected; };

  P.showDetail = function (id) {
    selected = id || null;
    rowEls.forEach(function (li, rid) { li.classList.toggle('is-selected', rid === selected); });
    renderDetail();
  };

  function field(name, text) {
    cc.setText(cc.el('cc-detail-' + name), text === undefined || text === null || text === '' ? cc.t('detail.none') : text);
  }

  /* A field showing the feed's words (a title, an address, a name): marked as feed text. */
  function feedField(name, value, template, feed) {
    if (!template && (value === undefined || value === null || value === '')) { field(name, ''); return; }
    cc.setFeedText(cc.el('cc-detail-' + name), template || '{v}', feed || { v: value });
  }

  function renderDetail() {
    if (!selected) return;
    var rec = cc.store.get('event', selected);
    if (!rec) return;
    var sev = Number(rec.severity) || 4;
    var s = cc.cfg.severity[String(sev)] || { roman: '', colour: '#90a4ae' };
    var chip = $('DETAIL_CHIP');
    if (chip) { chip.style.background = s.colour; cc.setText(chip, s.roman); }
    if (rec.title) feedField('title', rec.title); else field('title', cc.label('type', rec.type));
    field('type', cc.label('type', rec.type));
    field('category', cc.label('cat', rec.category));
    field('severity', cc.t('sev.level', { roman: s.roman }) + ' · ' + cc.t('sev.' + sev));
    var sevEl = cc.el('cc-detail-severity');
    if (sevEl) sevEl.style.color = s.colour;
    field('source', cc.label('src', rec.source));
    feedField('address', rec.address);
    field('area', cc.mapview.placeOf(rec));
    var gname = cc.mapview.gridName(rec.grid_id);
    field('grid', gname && gname !== rec.grid_id ? gname + ' (' + rec.grid_id + ')' : rec.grid_id);
    var gw = gridWorker(rec.grid_id);
    if (gw) feedField('gridworker', null, gw[0], gw[1]); else field('gridworker', '');
    feedField('reporter', rec.reporter);
    field('reported', cc.fmtDateTime(evTime(rec)));
    field('status', cc.label('evst', rec.status || 'reported'));
    feedField('description', rec.description);
    renderAgeField(rec);
  }

  /* The grid's own worker(s) (a worker's grid_id is the grid assigned to them), with status:
     [template, feed] for cc.setFeedText (their names are the feed's), or null. */
  function gridWorker(gridId) {
    if (!gridId) return null;
    var found = [], feed = {};
    cc.store.each('worker', function (w) {
      if (found.length < 2 && w.grid_id === gridId) {
        feed['w' + found.length] = w.name || w.id;
        found.push('{w' + found.length + '} · ' + cc.label('wkst', w.status || 'on_duty'));
      }
    });
    return found.length ? [found.join(cc.t('sep.clauses')), feed] : null;
  }

  function renderAgeField(rec) {
    // a closed event's age stops at its last update
    var end = isClosed(rec) ? Number(rec.ts) : cc.serverNow();
    field('age', cc.fmtDuration(end - evTime(rec)));
  }

  /* The clock and the data age at once (not at the next second): the replay (cc-88) swaps
     the clock they read. */
  P.redrawClock = function () { renderClock(); renderAge(); renderConn(); };

  /* ------------------------------------------------------------- start */

  function tick() {
    renderClock();
    renderAge();
    if (selected) {
      var rec = cc.store.get('event', selected);
      if (rec) renderAgeField(rec);
    }
    // stay on the second boundary so the clock never skips
    setTimeout(tick, 1000 - (cc.serverNow() % 1000) + 5);
  }

  /* The store's changes (cc-20), on every page: the header's data age and stats; on the wall
     also the event list, the detail card and the legend's counts. */
  function onWall() { return (cc.page || 'wall') === 'wall'; }

  function onStore(kind, op, rec, live, arrived, added) {
    if (kind === 'stats') { P.stats(rec.stats, rec.server_ts); return; }
    if (kind === 'snapshot') { if (rec.stats) P.stats(rec.stats, rec.server_ts); return; }
    if (!cc.store.keeps(kind)) return; // tasks, alerts: the event panel's (cc-60)
    if (op === 'remove') {
      if (!onWall()) return;
      if (kind === 'event') P.eventChanged(null, false);
      else P.unitsChanged(kind);
      return;
    }
    if (onWall()) {
      if (kind === 'event') P.eventChanged(rec, arrived);
      // the legend shows counts: only an arrival changes them (a re-report must not cost a
      // frame — 42,000 cameras re-report hundreds of times a second)
      else if (added) P.unitsChanged(kind);
    }
    P.sawData(cc.store.dataTs(rec));
  }

  P.init = function () {
    cc.store.listen(onStore); // on the wall after the map's (boot starts the panels second)
    var list = $('EVENT_LIST');
    if (list) {
      list.addEventListener('click', function (e) {
        var row = e.target.closest && e.target.closest('.cc-event-row');
        if (row) cc.select(row.getAttribute('data-id'), true);
      });
    }
    renderConn();
    renderLegend();
    renderList();
    tick();
  };
})();
