/* cc-86-tracks.js: a worker's or vehicle's track replayed on the wall's map (docs/TRACKS.md;
   GET /api/tracks/<kind>/<id>?from=&to=).

   Started from a unit's popup (轨迹回放) or from the small track tool at the bottom of the map
   (find a unit by id or name). The replay: the whole track as a dim line, the part travelled
   as a bright one, a moving marker, a slider over the span, play/pause, ×1/×10/×60, the
   replayed time shown large. Between two fixes the marker moves in a straight line; across a
   gap longer than GAP_MS (no report: the store keeps a standing unit's point every 5 min) it
   waits at the last fix and says so. Closing removes every layer, listener and timer it made
   (the wall runs for weeks); one replay at a time, a new one replaces the old. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var L = window.L;
  var T = (cc.tracks = {});

  var PANE = 'ccTrack';
  var HOUR = 3600000;
  var SPANS = [['1h', HOUR], ['2h', 2 * HOUR], ['8h', 8 * HOUR], ['today', 0]];
  var SPEEDS = [1, 10, 60];
  var MAX_SPAN_MS = 7 * 24 * HOUR; // the API's limit (dashboard/archive/tracks.py MAX_SPAN_MS)
  var GAP_MS = 330000; // > the store's 5-minute standing point: a longer gap is no report
  var FIND_MAX = 8; // matches listed by the finder
  var READERS = { commander: 1, duty_officer: 1, leader: 1 };

  var map = null;
  var els = null; // the tool's elements
  var cur = null; // the open replay: {kind, id, name, from, to, pts, t, speed, playing, …}
  var layers = null; // L.LayerGroup of the open replay
  var rend = null; // its SVG renderer: Leaflet leaves a renderer on the map, so we remove it
  var seq = 0; // answers of an older request are dropped
  var ctrl = null; // AbortController of the request in flight
  var raf = 0;
  var lastFrame = 0;

  /* ------------------------------------------------------------- time helpers */

  /* Epoch ms of local midnight today in the centre's zone (cc.timeParts knows the zone). */
  function todayStart(now) {
    var p = cc.timeParts(now);
    return now - ((+p.hour * 60 + +p.minute) * 60 + +p.second) * 1000 - (now % 1000);
  }

  /* A `datetime-local` value read as the centre's local time (not the browser's). */
  function localToMs(value) {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value || '');
    if (!m) return NaN;
    var guess = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
    var p = cc.timeParts(guess);
    var seen = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
    return guess - (seen - guess);
  }

  function msToLocal(ms) {
    var p = cc.timeParts(ms);
    return p.year + '-' + p.month + '-' + p.day + 'T' + p.hour + ':' + p.minute;
  }

  /* For tests (tests/js/format.test.js). */
  T.time = { todayStart: todayStart, localToMs: localToMs, msToLocal: msToLocal };

  /* ------------------------------------------------------------- the tool */

  function btn(parent, cls, text, data) {
    var b = cc.make('button', 'cc-trk-btn' + (cls ? ' ' + cls : ''), text);
    b.type = 'button';
    Object.keys(data || {}).forEach(function (k) { b.setAttribute('data-' + k, data[k]); });
    parent.appendChild(b);
    return b;
  }

  function build(container) {
    var root = cc.make('div', 'cc-trk');
    root.id = cc.cfg.ids.TRACK_ROOT;
    root.setAttribute('data-state', 'closed');
    var opener = btn(root, 'cc-trk-opener', cc.t('track.title'), { act: 'finder' });

    var panel = cc.make('div', 'cc-trk-panel');
    panel.hidden = true;
    var head = cc.make('div', 'cc-trk-head');
    var title = cc.make('span', 'cc-trk-title', cc.t('track.title'));
    var unit = cc.make('span', 'cc-trk-unit');
    head.appendChild(title); head.appendChild(unit);
    var close = btn(head, 'cc-trk-close', '×', { act: 'close' });
    close.title = cc.t('track.close');
    close.setAttribute('aria-label', cc.t('track.close'));
    panel.appendChild(head);

    // the finder: a unit by id or name
    var finder = cc.make('div', 'cc-trk-finder');
    var input = cc.make('input', 'cc-trk-input');
    input.type = 'search';
    input.placeholder = cc.t('track.find');
    input.setAttribute('aria-label', cc.t('track.find'));
    input.maxLength = 64;
    var found = cc.make('div', 'cc-trk-found');
    finder.appendChild(input); finder.appendChild(found);
    panel.appendChild(finder);

    // the span: quick choices and from–to
    var spans = cc.make('div', 'cc-trk-spans');
    // whole keys, so the table check (test_command_layout) sees every one
    var labels = { '1h': cc.t('track.span_1h'), '2h': cc.t('track.span_2h'),
      '8h': cc.t('track.span_8h'), today: cc.t('track.span_today') };
    SPANS.forEach(function (s) { btn(spans, '', labels[s[0]], { span: s[0] }); });
    var fromIn = cc.make('input', 'cc-trk-from');
    fromIn.type = 'datetime-local';
    fromIn.setAttribute('aria-label', cc.t('track.from'));
    var toIn = cc.make('input', 'cc-trk-to');
    toIn.type = 'datetime-local';
    toIn.setAttribute('aria-label', cc.t('track.to'));
    var range = cc.make('div', 'cc-trk-range');
    range.appendChild(fromIn);
    range.appendChild(cc.make('span', 'cc-trk-dash', '–'));
    range.appendChild(toIn);
    btn(range, '', cc.t('track.apply'), { act: 'range' });
    panel.appendChild(spans);
    panel.appendChild(range);

    // the replay
    var player = cc.make('div', 'cc-trk-player');
    var clock = cc.make('div', 'cc-trk-clock');
    var time = cc.make('div', 'cc-trk-time', '--:--:--');
    var date = cc.make('div', 'cc-trk-date');
    clock.appendChild(time); clock.appendChild(date);
    var controls = cc.make('div', 'cc-trk-controls');
    var play = btn(controls, 'cc-trk-play', cc.t('track.play'), { act: 'play' });
    var speeds = SPEEDS.map(function (n) {
      return btn(controls, 'cc-trk-speed', '×' + n, { speed: String(n) });
    });
    var slider = cc.make('input', 'cc-trk-slider');
    slider.type = 'range';
    slider.min = '0'; slider.max = '0'; slider.step = '1'; slider.value = '0';
    slider.setAttribute('aria-label', cc.t('track.slider'));
    var ends = cc.make('div', 'cc-trk-ends');
    var startT = cc.make('span', 'cc-trk-start'), endT = cc.make('span', 'cc-trk-end');
    ends.appendChild(startT); ends.appendChild(endT);
    player.appendChild(clock); player.appendChild(controls);
    player.appendChild(slider); player.appendChild(ends);
    panel.appendChild(player);
    var msg = cc.make('div', 'cc-trk-msg');
    panel.appendChild(msg);
    root.appendChild(panel);

    root.addEventListener('click', onClick);
    input.addEventListener('input', function () { renderFound(); });
    slider.addEventListener('input', onSlide);
    if (L) { L.DomEvent.disableClickPropagation(root); L.DomEvent.disableScrollPropagation(root); }
    container.appendChild(root);
    return { root: root, opener: opener, panel: panel, unit: unit, finder: finder, input: input,
      found: found, spans: spans, range: range, fromIn: fromIn, toIn: toIn, player: player, time: time,
      date: date, play: play, speeds: speeds, slider: slider, startT: startT, endT: endT, msg: msg };
  }

  function onClick(e) {
    var b = e.target.closest ? e.target.closest('button') : null;
    if (!b || !els || !els.root.contains(b)) return;
    var act = b.getAttribute('data-act');
    if (act === 'finder') openFinder();
    else if (act === 'close') T.close();
    else if (act === 'play') togglePlay();
    else if (act === 'range') customRange();
    else if (act === 'pick') T.open(b.getAttribute('data-kind'), b.getAttribute('data-id'));
    else if (b.hasAttribute('data-speed')) setSpeed(+b.getAttribute('data-speed'));
    else if (b.hasAttribute('data-span') && cur) load(spanOf(b.getAttribute('data-span')));
  }

  function say(text, level) {
    if (!els) return;
    cc.setText(els.msg, text);
    cc.setAttr(els.msg, 'data-level', level || 'info');
  }

  function setState(state) {
    if (!els) return;
    cc.setAttr(els.root, 'data-state', state);
    // the situation replay's opener shares the map's bottom-right corner with this panel
    document.body.classList.toggle('cc-tracking', state !== 'closed');
    els.opener.hidden = state !== 'closed';
    els.panel.hidden = state === 'closed';
    els.finder.hidden = state !== 'finding';
    els.spans.hidden = state === 'closed' || state === 'finding';
    els.range.hidden = els.spans.hidden;
    els.player.hidden = state !== 'ready';
  }

  /* ------------------------------------------------------------- the finder */

  function openFinder() {
    T.close();
    setState('finding');
    els.input.value = '';
    renderFound();
    els.input.focus();
  }

  function renderFound() {
    var q = els.input.value.trim().toLowerCase();
    var box = els.found;
    while (box.firstChild) box.removeChild(box.firstChild);
    if (!q) return;
    var hits = [];
    ['worker', 'resource'].forEach(function (kind) {
      if (hits.length >= FIND_MAX) return;
      cc.store.each(kind, function (rec) {
        if (hits.length >= FIND_MAX) return;
        var id = String(rec.id), name = rec.name ? String(rec.name) : '';
        if (id.toLowerCase().indexOf(q) >= 0 || name.toLowerCase().indexOf(q) >= 0) {
          hits.push({ kind: kind, rec: rec });
        }
      });
    });
    if (!hits.length) { box.appendChild(cc.make('div', 'cc-trk-none', cc.t('track.find_none'))); return; }
    hits.forEach(function (h) {
      var what = h.kind === 'worker' ? cc.t('kind.worker') : cc.label('rsk', h.rec.kind || 'other');
      var hit = btn(box, 'cc-trk-hit', '', { act: 'pick', kind: h.kind, id: String(h.rec.id) });
      cc.setFeedText(hit, '{name} · ' + what + ' · ' + h.rec.id, { name: h.rec.name || h.rec.id });
    });
  }

  /* ------------------------------------------------------------- loading */

  function spanOf(name) {
    var now = cc.serverNow();
    if (name === 'today') return { from: todayStart(now), to: now, name: name };
    for (var i = 0; i < SPANS.length; i++) {
      if (SPANS[i][0] === name) return { from: now - SPANS[i][1], to: now, name: name };
    }
    return { from: now - 2 * HOUR, to: now, name: '2h' };
  }

  function customRange() {
    if (!cur) return;
    var from = localToMs(els.fromIn.value), to = localToMs(els.toIn.value);
    if (!isFinite(from) || !isFinite(to) || to <= from) { say(cc.t('track.err_range'), 'error'); return; }
    if (to - from > MAX_SPAN_MS) { say(cc.t('track.err_span'), 'error'); return; }
    load({ from: from, to: to, name: 'custom' });
  }

  /* Open the replay of one unit (the popup's button, the finder, tests); `span` optional
     {from, to} epoch ms, else the last two hours. */
  T.open = function (kind, id, span) {
    if (!els || (kind !== 'worker' && kind !== 'resource') || !id) return false;
    T.close();
    var rec = cc.store.get(kind, id);
    cur = { kind: kind, id: String(id), name: (rec && rec.name) || String(id), pts: [],
      from: 0, to: 0, t: 0, speed: 1, playing: false, drawnIdx: -2 };
    var what = kind === 'worker' ? cc.t('kind.worker') : cc.label('rsk', (rec && rec.kind) || 'other');
    cc.setFeedText(els.unit, '{name} · ' + what, { name: cur.name }); // the unit's own name
    setState('loading');
    setSpeed(1);
    load(span && isFinite(span.from) ? span : spanOf('2h'));
    return true;
  };

  function load(span) {
    if (!cur) return;
    stop();
    var my = ++seq;
    if (ctrl) ctrl.abort();
    ctrl = window.AbortController ? new AbortController() : null;
    cur.from = Math.floor(span.from); cur.to = Math.floor(span.to);
    els.fromIn.value = msToLocal(cur.from);
    els.toIn.value = msToLocal(cur.to);
    Array.prototype.forEach.call(els.spans.querySelectorAll('[data-span]'), function (b) {
      b.classList.toggle('is-on', b.getAttribute('data-span') === span.name);
    });
    clearLayers(); // the old span's line must not stay while the new one loads
    setState('loading');
    say(cc.t('track.loading'));
    var path = '/tracks/' + encodeURIComponent(cur.kind) + '/' + encodeURIComponent(cur.id) +
      '?from=' + cur.from + '&to=' + cur.to;
    cc.api('GET', path, undefined, { signal: ctrl ? ctrl.signal : undefined })
      .then(function (body) {
        if (my !== seq || !cur) return;
        ctrl = null;
        show(body);
      }, function (e) {
        if (my !== seq || !cur) return;
        if (e.status) { ctrl = null; failed(e.status, e.body); return; }
        if (e.name === 'AbortError') return;
        ctrl = null;
        setState('failed');
        say(cc.t('track.err', { msg: cc.t('cmd.err_network') }), 'error');
      });
  }

  function failed(status, body) {
    setState('failed');
    if (status === 401) say(cc.t('cmd.err_signed_out'), 'error');
    else if (status === 403) say(cc.t('track.err_forbidden'), 'error');
    else if (status === 404) say(cc.t('track.err_notfound'), 'error');
    else say(cc.t('track.err', { msg: body.error || status }), 'error');
  }

  /* ------------------------------------------------------------- drawing */

  function ensurePane() {
    var pane = map.getPane(PANE) || map.createPane(PANE);
    pane.style.zIndex = '630'; // above the events: the replay is what is being looked at
    pane.style.pointerEvents = 'none';
  }

  function show(body) {
    var raw = Array.isArray(body.points) ? body.points : [];
    var pts = [];
    for (var i = 0; i < raw.length; i++) {
      var p = raw[i];
      if (Array.isArray(p) && isFinite(p[0]) && isFinite(p[1]) && isFinite(p[2])) {
        pts.push({ t: +p[0], ll: cc.latLng(+p[2], +p[1]) });
      }
    }
    cur.pts = pts;
    cur.drawnIdx = -2;
    cur.from = isFinite(body.from) ? +body.from : cur.from;
    cur.to = isFinite(body.to) ? +body.to : cur.to;
    clearLayers();
    cc.setText(els.startT, cc.fmtDateTime(cur.from));
    cc.setText(els.endT, cc.fmtDateTime(cur.to));
    if (!pts.length) {
      setState('empty');
      say(cc.t('track.empty'), 'warn');
      return;
    }
    ensurePane();
    var s = cc.scale;
    rend = L.svg({ pane: PANE, padding: 0.3 });
    var lls = pts.map(function (p) { return p.ll; });
    layers = L.layerGroup();
    cur.line = L.polyline(lls, { renderer: rend, pane: PANE, interactive: false,
      className: 'cc-track-line', color: '#5fe6ff', weight: 3 * s, opacity: 0.45 });
    cur.done = L.polyline([], { renderer: rend, pane: PANE, interactive: false,
      className: 'cc-track-done', color: '#ffd54f', weight: 4 * s, opacity: 0.95 });
    // from the last fix passed to the marker: two points redrawn per frame, not the whole way
    cur.head = L.polyline([], { renderer: rend, pane: PANE, interactive: false,
      className: 'cc-track-head', color: '#ffd54f', weight: 4 * s, opacity: 0.95 });
    cur.startM = L.circleMarker(lls[0], { renderer: rend, pane: PANE, interactive: false,
      className: 'cc-track-start', radius: 5 * s, color: '#ffffff', weight: 1.5 * s,
      fillColor: '#2ecc71', fillOpacity: 1 });
    cur.endM = L.circleMarker(lls[lls.length - 1], { renderer: rend, pane: PANE, interactive: false,
      className: 'cc-track-end', radius: 5 * s, color: '#ffffff', weight: 1.5 * s,
      fillColor: '#ff5252', fillOpacity: 1 });
    cur.marker = L.circleMarker(lls[0], { renderer: rend, pane: PANE, interactive: false,
      className: 'cc-track-marker', radius: 8 * s, color: '#ffffff', weight: 2.5 * s,
      fillColor: '#ffb300', fillOpacity: 1 });
    [cur.line, cur.done, cur.head, cur.startM, cur.endM, cur.marker].forEach(function (l) { layers.addLayer(l); });
    layers.addTo(map);
    var b = cur.line.getBounds();
    if (b.isValid()) {
      var pad = Math.round(40 * s);
      map.fitBounds(b, { padding: [pad, pad], maxZoom: 17, animate: false });
    }
    els.slider.max = String(Math.max(0, Math.round((cur.to - cur.from) / 1000)));
    setState('ready');
    say(body.thinned ? cc.t('track.thinned', { n: pts.length, total: body.total || pts.length })
      : cc.t('track.points', { n: pts.length }), body.thinned ? 'warn' : 'info');
    seek(pts[0].t, true);
  }

  function clearLayers() {
    if (layers) {
      layers.clearLayers();
      if (map) map.removeLayer(layers);
      layers = null;
    }
    if (rend) {
      if (map) map.removeLayer(rend);
      rend = null;
    }
    if (cur) { cur.line = cur.done = cur.head = cur.marker = cur.startM = cur.endM = null; }
  }

  /* The index of the last point at or before t (−1 before the first). */
  function indexAt(t) {
    var pts = cur.pts, lo = 0, hi = pts.length - 1;
    if (!pts.length || t < pts[0].t) return -1;
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (pts[mid].t <= t) lo = mid; else hi = mid - 1;
    }
    return lo;
  }

  /* Where the unit was at t: [latlng, reported] — between fixes in a straight line. */
  function positionAt(t) {
    var pts = cur.pts, i = indexAt(t);
    if (i < 0) return [pts[0].ll, false];
    if (i >= pts.length - 1) return [pts[pts.length - 1].ll, t - pts[i].t <= GAP_MS];
    var a = pts[i], b = pts[i + 1];
    if (b.t - a.t > GAP_MS) return [a.ll, t - a.t <= GAP_MS];
    var f = (t - a.t) / (b.t - a.t);
    return [[a.ll[0] + (b.ll[0] - a.ll[0]) * f, a.ll[1] + (b.ll[1] - a.ll[1]) * f], true];
  }

  function seek(t, fromCode) {
    if (!cur || !cur.marker) return;
    t = Math.max(cur.from, Math.min(cur.to, t));
    cur.t = t;
    var pos = positionAt(t);
    cur.marker.setLatLng(pos[0]);
    var path = cur.marker._path;
    if (path) path.classList.toggle('is-gap', !pos[1]);
    cur.reported = pos[1];
    var i = indexAt(t);
    if (i !== cur.drawnIdx) {
      cur.drawnIdx = i;
      cur.done.setLatLngs(i < 0 ? [] : cur.pts.slice(0, i + 1).map(function (q) { return q.ll; }));
    }
    cur.head.setLatLngs(i < 0 ? [] : [cur.pts[i].ll, pos[0]]);
    cc.setText(els.time, cc.fmtTime(t));
    var p = cc.timeParts(t);
    cc.setText(els.date, p.year + '-' + p.month + '-' + p.day + (pos[1] ? '' : ' · ' + cc.t('track.no_signal')));
    if (fromCode) els.slider.value = String(Math.round((t - cur.from) / 1000));
  }

  function onSlide() {
    if (!cur || !cur.marker) return;
    seek(cur.from + (+els.slider.value) * 1000, false);
    lastFrame = performance.now();
  }

  /* ------------------------------------------------------------- playing */

  function setSpeed(n) {
    if (cur) cur.speed = n;
    els.speeds.forEach(function (b) { b.classList.toggle('is-on', +b.getAttribute('data-speed') === n); });
  }

  function togglePlay() {
    if (!cur || !cur.marker) return;
    if (cur.playing) { stop(); return; }
    if (cur.t >= cur.to || cur.t >= cur.pts[cur.pts.length - 1].t) seek(cur.pts[0].t, true);
    cur.playing = true;
    cc.setText(els.play, cc.t('track.pause'));
    els.play.classList.add('is-on');
    lastFrame = performance.now();
    raf = requestAnimationFrame(frame);
  }

  function stop() {
    if (raf) cancelAnimationFrame(raf);
    raf = 0;
    if (cur) cur.playing = false;
    if (els) { cc.setText(els.play, cc.t('track.play')); els.play.classList.remove('is-on'); }
  }

  function frame(now) {
    raf = 0;
    if (!cur || !cur.playing || !cur.marker) return;
    var dt = Math.min(1000, Math.max(0, now - lastFrame)); // a hidden tab does not jump ahead
    lastFrame = now;
    var t = cur.t + dt * cur.speed;
    var end = Math.min(cur.to, cur.pts[cur.pts.length - 1].t);
    if (t >= end) { seek(end, true); stop(); return; }
    seek(t, true);
    raf = requestAnimationFrame(frame);
  }

  /* ------------------------------------------------------------- closing */

  T.close = function () {
    stop();
    seq++;
    if (ctrl) { ctrl.abort(); ctrl = null; }
    clearLayers();
    cur = null;
    if (els) { setState('closed'); say(''); cc.setText(els.unit, ''); }
  };

  function onKey(e) { if (e.key === 'Escape' && els && cur) T.close(); }

  /* ------------------------------------------------------------- wiring */

  /* The map is (re)attached (cc-10): the tool lives in the map's wrapper. */
  T.attach = function (m) {
    if (!m || m === map) return;
    T.close();
    map = m;
    var wrap = m.getContainer().parentNode;
    var old = cc.$('TRACK_ROOT');
    if (old) old.remove();
    els = wrap ? build(wrap) : null;
    if (els) setState('closed');
    if (!T._keys) { document.addEventListener('keydown', onKey); T._keys = true; }
  };

  /* The unit popup (cc-10) offers the replay to the roles that may read tracks. */
  T.decoratePopup = function (box, kind, rec) {
    if ((kind !== 'worker' && kind !== 'resource') || !rec || !els) return;
    var role = cc.command ? cc.command.role : null;
    if (role && !READERS[role]) return;
    var b = cc.make('button', 'cc-trk-btn cc-trk-pop', cc.t('track.title'));
    b.type = 'button';
    b.setAttribute('data-kind', kind);
    b.setAttribute('data-id', String(rec.id));
    b.addEventListener('click', function () {
      if (map) map.closePopup();
      T.open(kind, String(rec.id));
    });
    box.appendChild(b);
  };

  /* A replay is open (the map's idle return to the whole city waits). */
  T.busy = function () { return !!cur; };

  /* Test probe: what the replay shows now. */
  T.probe = function () {
    if (!cur) return { open: false };
    var ll = cur.marker ? cur.marker.getLatLng() : null;
    return { open: true, kind: cur.kind, id: cur.id, from: cur.from, to: cur.to,
      points: cur.pts.length, t: cur.t, playing: cur.playing, speed: cur.speed,
      reported: !!cur.reported, marker: ll ? [ll.lat, ll.lng] : null,
      layers: layers ? layers.getLayers().length : 0 };
  };
})();
