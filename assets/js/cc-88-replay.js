/* cc-88-replay.js: situation replay — the whole wall as it was at a past moment
   (docs/REPLAY.md; GET /api/replay/wall, /changes, /next, /actions.csv).

   The past is drawn by the very code that draws the present: the wall at the moment is a
   snapshot frame and the changes after it are delta frames, handed to the store (cc-20)
   with `replayed`, so the map, the list, the alert strip and the detail card redraw as they
   do live. While replaying, the store ignores the socket's frames (it stays connected) and
   cc.serverNow() is the replay's clock, so the header's clock, ages and the 24 h pruning
   all read the past; the counts panels are counted from the replayed records (replayStats).
   Back to live: the store forgets the replay and the socket asks for a fresh snapshot.

   Playing: its own clock at ×1 / ×10 / ×60, fetching the changes of the next minutes
   ahead of it (≤ 15 min a request), applying those due on each animation frame; units'
   moves and cameras' changes are held (the latest per unit) and applied together every
   MOVES_MS, as the relay coalesces moves live, so the map's canvases are redrawn a few
   times a second, not on every frame — at ×60 each unit moves about once a second
   anyway. Pause,
   one minute on (played) or back (a new picture), the next alert, the selected event's next
   status change (found by the server, then a new picture there). A banner and an amber frame
   say it is a replay. Export: the wall as a PNG (html-to-image, served from /vendor, loaded
   on first use) and the period's actions as CSV. Probe for tests: ccwall.replay.probe(). */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var R = (cc.replay = {});

  var ROLES = { commander: 1, leader: 1 };
  var SPEEDS = [1, 10, 60];
  var MIN = 60000;
  var AHEAD_MS = 5 * MIN; // changes fetched this far ahead of the replay clock
  var CHUNK_MS = 15 * MIN; // the API's longest span of changes
  var STATS_MS = 250; // counts redrawn at most this often while playing
  var MOVES_MS = 250; // units' held moves applied at most this often while playing
  var PNG_URL = '/vendor/html-to-image.js';

  var els = null;
  var cur = null; // {at, seq, speed, playing, buf, head, bufTo, lastSeq, fetching, end, from}
  var gen = 0; // answers to an older seek are dropped
  var raf = 0, lastFrame = 0, statsAt = 0, movesAt = 0;
  var moves = new Map(); // 'kind:id' → the unit's latest move (camera's change) held back
  var liveNow = null; // cc.serverNow of the live wall, while the replay's clock stands in
  var span = null; // GET /api/replay/span
  var pngLib = null; // the promise of html-to-image

  function t(key, vars) { return cc.t(key, vars); }

  /* A datetime-local value with seconds, read and written in the centre's time zone (the
     track replay's minute helpers, cc-86, plus the seconds). */
  function localMs(value) {
    var s = /T\d{2}:\d{2}:(\d{2})/.exec(value || '');
    return cc.tracks.time.localToMs(value) + (s ? Number(s[1]) * 1000 : 0);
  }
  function toLocal(ms) {
    return cc.tracks.time.msToLocal(ms) + ':' + cc.timeParts(ms).second;
  }
  R.time = { localMs: localMs, toLocal: toLocal };
  function role() { return ((cc.cfg && cc.cfg.session) || {}).role; }

  /* ------------------------------------------------------------- the tool */

  function btn(parent, cls, text, act) {
    var b = cc.make('button', 'cc-rpl-btn' + (cls ? ' ' + cls : ''), text);
    b.type = 'button';
    if (act) b.setAttribute('data-act', act);
    parent.appendChild(b);
    return b;
  }

  function build(wrap) {
    var root = cc.make('div', 'cc-rpl');
    root.id = 'cc-replay';
    root.setAttribute('data-state', 'closed');
    var opener = btn(root, 'cc-rpl-opener', t('replay.open'), 'open');

    // the banner, on top of the map while replaying: no one takes the past for the present
    var banner = root.appendChild(cc.make('div', 'cc-rpl-banner'));
    banner.appendChild(cc.make('span', 'cc-rpl-badge', t('replay.banner')));
    var clock = banner.appendChild(cc.make('span', 'cc-rpl-clock', ''));
    var rate = banner.appendChild(cc.make('span', 'cc-rpl-rate', ''));

    var bar = cc.make('div', 'cc-rpl-bar');
    bar.hidden = true;
    var row = bar.appendChild(cc.make('div', 'cc-rpl-row'));
    var input = cc.make('input', 'cc-rpl-input');
    input.type = 'datetime-local';
    input.step = '1';
    input.setAttribute('aria-label', t('replay.at'));
    row.appendChild(input);
    btn(row, 'cc-rpl-go', t('replay.go'), 'go');
    btn(row, null, t('replay.step_back'), 'back');
    var play = btn(row, 'cc-rpl-play', t('replay.play'), 'play');
    btn(row, null, t('replay.step'), 'step');
    var speeds = SPEEDS.map(function (s) {
      var b = btn(row, 'cc-rpl-speed', '×' + s, 'speed');
      b.setAttribute('data-speed', String(s));
      b.title = t('replay.speed');
      return b;
    });
    btn(row, null, t('replay.next_alert'), 'next-alert');
    btn(row, null, t('replay.next_change'), 'next-change');
    btn(row, null, t('replay.png'), 'png');
    btn(row, null, t('replay.csv'), 'csv');
    var live = btn(row, 'cc-rpl-close cc-rpl-live', t('replay.live'), 'live');
    var msg = bar.appendChild(cc.make('div', 'cc-rpl-msg', ''));
    root.appendChild(bar);
    wrap.appendChild(root);

    root.addEventListener('click', function (e) {
      var b = e.target.closest && e.target.closest('button[data-act]');
      if (b) act(b.getAttribute('data-act'), b);
    });
    input.addEventListener('keydown', function (e) { if (e.key === 'Enter') act('go'); });
    return { root: root, opener: opener, bar: bar, banner: banner, clock: clock, rate: rate,
      speeds: speeds, live: live, input: input, play: play, msg: msg };
  }

  function act(name, b) {
    if (name === 'open') return open();
    if (name === 'live') return R.live();
    if (name === 'go') {
      var ms = localMs(els.input.value);
      return isFinite(ms) ? R.seek(ms) : say(t('replay.err', { msg: t('replay.at') }));
    }
    if (!cur) return undefined;
    if (name === 'speed') return setSpeed(Number(b.getAttribute('data-speed')));
    if (name === 'play') return cur.playing ? pause() : R.play();
    if (name === 'step') return R.step(MIN);
    if (name === 'back') return R.seek(cur.at - MIN);
    if (name === 'next-alert') return R.next('alert');
    if (name === 'next-change') return R.next('event');
    if (name === 'png') return R.png();
    if (name === 'csv') return R.csv();
    return undefined;
  }

  function say(text) { if (els) cc.setText(els.msg, text || ''); }

  function errText(err) {
    if (err && err.code === 'no_history') return t('replay.none');
    if (err && err.code === 'out_of_range') return t('replay.range', { days: (span && span.days) || 7 });
    return t('replay.err', { msg: (err && (err.error || err.message)) || '' });
  }

  /* The tool opens on the moment an hour ago (or the oldest kept), not yet replaying. */
  function open() {
    els.bar.hidden = false;
    els.opener.hidden = true;
    els.root.setAttribute('data-state', 'open');
    var now = cc.serverNow();
    var first = els.input.value = toLocal(now - 3600000);
    cc.api('GET', '/replay/span').then(function (s) {
      span = s;
      if (s.from && !cur) {
        // the oldest moment kept, unless someone typed a moment meanwhile
        if (els.input.value === first) els.input.value = toLocal(Math.max(s.from, now - 3600000));
        say(t('replay.span', { from: cc.fmtDateTime(s.from), to: cc.fmtDateTime(s.to) }));
      } else if (!s.from) say(t('replay.none'));
    }, function (err) { say(errText(err)); });
  }

  /* ------------------------------------------------------------- entering, leaving */

  function enter() {
    if (cc.store.replaying()) return;
    if (cc.tracks) cc.tracks.close(); // one replay at a time: the unit's or the wall's
    cc.select(null); // the live event panel closes; a replayed event shows its card only
    cc.store.beginReplay();
    liveNow = cc.serverNow;
    cc.serverNow = function () { return cur ? Math.round(cur.at) : liveNow(); };
    document.body.classList.add('cc-replaying');
    els.root.setAttribute('data-state', 'replay');
    cc.panels.redrawClock(); // the connection chip says "replay" at once
  }

  /* Back to live: the present as the relay has it now, through one fresh snapshot. */
  R.live = function () {
    gen++;
    moves.clear();
    pause();
    var was = cc.store.replaying();
    cur = null;
    if (liveNow) { cc.serverNow = liveNow; liveNow = null; }
    document.body.classList.remove('cc-replaying', 'cc-replay-fast');
    if (els) {
      els.bar.hidden = true;
      els.opener.hidden = false;
      els.root.setAttribute('data-state', 'closed');
      say('');
    }
    if (was) {
      cc.select(null);
      cc.store.endReplay();
      cc.socket.resync();
    }
    cc.panels.redrawClock(); // and "live" again once the store is back
  };

  /* ------------------------------------------------------------- a moment */

  R.seek = function (at) {
    var my = ++gen;
    var speed = cur ? cur.speed : 1;
    moves.clear(); // the new picture holds them
    pause();
    say(t('replay.loading'));
    var started = performance.now();
    return cc.api('GET', '/replay/wall?at=' + Math.round(at)).then(function (f) {
      if (my !== gen) return;
      enter();
      cur = { at: f.at, seq: f.seq, speed: speed, playing: false, buf: [], head: 0,
        bufTo: f.at, lastSeq: f.seq, fetching: false, end: false, from: f.at };
      cc.store.applyFrame(f, true);
      stats(true);
      render();
      R.lastPictureMs = performance.now() - started;
      say('');
      refill();
    }, function (err) { if (my === gen) say(errText(err)); });
  };

  /* ------------------------------------------------------------- playing */

  function refill() {
    if (!cur || cur.fetching || cur.end || cur.bufTo - cur.at > AHEAD_MS) return;
    var my = gen, c = cur;
    var to = Math.min(c.bufTo + CHUNK_MS, liveNow ? liveNow() : Date.now());
    if (to <= c.bufTo) { c.end = true; return; }
    c.fetching = true;
    cc.api('GET', '/replay/changes?after=' + c.lastSeq + '&from=' + c.bufTo + '&to=' + to)
      .then(function (res) {
        if (my !== gen) return;
        c.fetching = false;
        var list = res.changes || [];
        for (var i = 0; i < list.length; i++) c.buf.push(list[i]);
        if (list.length) c.lastSeq = list[list.length - 1][1];
        c.bufTo = res.to;
        if (span && span.to && res.to >= span.to && !list.length) c.end = true;
        refill();
      }, function (err) {
        if (my !== gen) return;
        c.fetching = false;
        say(errText(err));
        pause();
      });
  }

  /* Apply every buffered change due by `until` (as the relay's delta frames). Moves are
     held while `hold` (a playing frame between two MOVES_MS); any other change of a unit
     with a held move applies that move first, so nothing older overwrites it. */
  function applyUntil(until, hold) {
    var c = cur, n = 0;
    while (c.head < c.buf.length && c.buf[c.head][0] <= until) {
      var e = c.buf[c.head++];
      var key = e[2] + ':' + (e[4] && e[4].id);
      if (e[3] === 'move' || e[2] === 'camera') { // a camera's state redraws its canvas too
        moves.delete(key); // re-inserted: the map keeps the order the moves came in
        moves.set(key, e);
      } else {
        if (moves.has(key)) applyMoves(key);
        cc.store.applyFrame({ type: 'delta', seq: e[1], kind: e[2], op: e[3], data: e[4] }, true);
      }
      n++;
    }
    if (c.head > 5000) { c.buf = c.buf.slice(c.head); c.head = 0; }
    c.at = until;
    if (!hold) applyMoves();
    return n;
  }

  /* The held moves (or the one of `only`) as one batch: no sequence check, since changes
     with later sequence numbers may have been applied since. */
  function applyMoves(only) {
    if (!moves.size) return;
    var items = [];
    if (only) {
      var e = moves.get(only);
      moves.delete(only);
      items.push({ kind: e[2], op: e[3], data: e[4] });
    } else {
      moves.forEach(function (m) { items.push({ kind: m[2], op: m[3], data: m[4] }); });
      moves.clear();
      movesAt = performance.now();
    }
    cc.store.applyFrame({ type: 'batch', items: items }, true);
  }

  /* Whether the replay is playing fast (×10, ×60): arrival effects (rings, rows sliding in)
     would only flicker, and the map and list skip them. */
  R.fast = function () { return !!(cur && cur.playing && cur.speed > 1); };

  function frame(now) {
    raf = 0;
    if (!cur || !cur.playing) return;
    var dt = Math.min(1000, Math.max(0, now - lastFrame)); // a hidden tab does not jump ahead
    lastFrame = now;
    var target = cur.at + dt * cur.speed;
    if (target > cur.bufTo) {
      target = cur.bufTo; // waiting for the next changes (or at the end of the record)
      if (cur.end) { applyUntil(target); pause(); say(t('replay.end')); render(); return; }
    }
    applyUntil(target, now - movesAt < MOVES_MS);
    stats(false);
    render();
    refill();
    raf = requestAnimationFrame(frame);
  }

  R.play = function () {
    if (!cur || cur.playing) return;
    cur.playing = true;
    lastFrame = performance.now();
    render();
    raf = requestAnimationFrame(frame);
  };

  function pause() {
    if (raf) cancelAnimationFrame(raf);
    raf = 0;
    if (cur) cur.playing = false;
    applyMoves(); // the paused picture is the moment's, every unit where it was …
    if (cur) stats(true); // … and its counts (while playing they lag up to STATS_MS)
    render();
  }
  R.pause = pause;

  function setSpeed(s) {
    if (cur && SPEEDS.indexOf(s) >= 0) cur.speed = s;
    render();
  }
  R.speed = setSpeed;

  /* `ms` on, played (the changes on the way are applied): paused there. */
  R.step = function (ms) {
    if (!cur) return Promise.resolve();
    pause();
    var target = cur.at + ms, my = gen;
    return new Promise(function (resolve) {
      (function wait() {
        if (my !== gen || !cur) return resolve();
        if (cur.bufTo >= target || cur.end) {
          applyUntil(Math.min(target, cur.bufTo));
          stats(true);
          render();
          return resolve();
        }
        refill();
        setTimeout(wait, 50);
      })();
    });
  };

  /* The next alert, or the selected event's next status change: a new picture there. */
  R.next = function (what) {
    if (!cur) return Promise.resolve();
    var q = '/replay/next?from=' + Math.round(cur.at) + '&what=' + what;
    if (what === 'event') {
      var id = cc.panels.selected();
      var rec = id && cc.store.get('event', id);
      if (!rec) { say(t('replay.pick_event')); return Promise.resolve(); }
      q += '&id=' + encodeURIComponent(id) + '&status=' + encodeURIComponent(rec.status || '');
    }
    pause();
    return cc.api('GET', q).then(function (res) {
      if (!res.at) { say(t('replay.no_next')); return undefined; }
      var keep = what === 'event' ? cc.panels.selected() : null;
      return R.seek(res.at).then(function () { if (keep) cc.select(keep, true); });
    }, function (err) { say(errText(err)); });
  };

  /* ------------------------------------------------------------- the counts panels */

  /* The KPI tiles and bars from the replayed records (cut to the user's scope), in the
     shape of the relay's stats frame: reported today, open, in progress, closed today, by
     severity / category / source (today's), workers on duty, SOS. */
  function replayStats(at) {
    // the local day as two numbers, once: formatting a time per event cost ~0.1 s a second
    // at ×60 (the counts are redrawn four times a second)
    var d0 = cc.tracks.time.todayStart(at), d1 = d0 + 86400000;
    function today(ms) { ms = Number(ms); return ms >= d0 && ms < d1; }
    var st = { today: 0, open: 0, in_progress: 0, closed_today: 0, by_severity: {},
      by_category: {}, by_source: {}, workers_online: 0, workers_sos: 0, ingest_rate: 0 };
    var closed = cc.cfg.closed, busy = cc.cfg.inProgress;
    cc.store.each('event', function (e) {
      var first = Number(e.first_ts || e.ts);
      if (closed.indexOf(e.status) < 0) st.open++;
      if (busy.indexOf(e.status) >= 0) st.in_progress++;
      if (e.status === 'closed' && today(e.status_ts || e.ts)) st.closed_today++;
      if (!today(first)) return;
      st.today++;
      var sv = String(e.severity);
      st.by_severity[sv] = (st.by_severity[sv] || 0) + 1;
      if (e.category) st.by_category[e.category] = (st.by_category[e.category] || 0) + 1;
      if (e.source) st.by_source[e.source] = (st.by_source[e.source] || 0) + 1;
    });
    cc.store.each('worker', function (w) {
      if (w.status !== 'off_duty') st.workers_online++;
      if (w.status === 'sos') st.workers_sos++;
    });
    return st;
  }
  R.stats = replayStats;

  function stats(now) {
    var p = performance.now();
    if (!cur || (!now && p - statsAt < STATS_MS)) return;
    statsAt = p;
    cc.panels.stats(replayStats(cur.at));
  }

  /* ------------------------------------------------------------- drawing the bar */

  function render() {
    if (!els || !cur) return;
    cc.panels.redrawClock(); // the header's clock runs with the replay, at any speed
    document.body.classList.toggle('cc-replay-fast', R.fast());
    var p = cc.timeParts(cur.at);
    cc.setText(els.clock, p.year + '-' + p.month + '-' + p.day + ' ' + p.hour + ':' +
      p.minute + ':' + p.second);
    cc.setText(els.play, cur.playing ? t('replay.pause') : t('replay.play'));
    els.play.classList.toggle('is-on', cur.playing);
    cc.setText(els.rate, cur.playing ? '×' + cur.speed : t('replay.pause'));
    els.speeds.forEach(function (b) {
      b.classList.toggle('is-on', Number(b.getAttribute('data-speed')) === cur.speed);
    });
    var second = Math.floor(cur.at / 1000);
    if (document.activeElement !== els.input && second !== els.shown) {
      els.shown = second; // the field is written once a replayed second, not every frame
      els.input.value = toLocal(cur.at);
    }
  }

  /* ------------------------------------------------------------- export */

  function loadPng() {
    if (window.htmlToImage) return Promise.resolve(window.htmlToImage);
    if (!pngLib) {
      pngLib = new Promise(function (resolve, reject) {
        var s = document.createElement('script');
        s.src = PNG_URL;
        s.onload = function () { resolve(window.htmlToImage); };
        s.onerror = function () { pngLib = null; reject(new Error(PNG_URL)); };
        document.head.appendChild(s);
      });
    }
    return pngLib;
  }

  function download(href, name) {
    var a = cc.make('a');
    a.href = href;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  function fileTime(ms) {
    var p = cc.timeParts(ms);
    return p.year + p.month + p.day + '-' + p.hour + p.minute + p.second;
  }

  /* The whole wall as it is drawn, banner included, as a PNG; audited on the server. */
  R.png = function () {
    if (!cur) return Promise.resolve(null);
    var at = Math.round(cur.at);
    pause();
    return loadPng().then(function (lib) {
      var root = document.getElementById(cc.cfg.ids.ROOT) || document.body;
      return lib.toPng(root, { pixelRatio: 1, backgroundColor: '#020b18', cacheBust: false,
        filter: function (node) { return !(node.classList && node.classList.contains('cc-rpl-row')); } });
    }).then(function (url) {
      R.lastPng = url;
      download(url, 'replay-' + fileTime(at) + '.png');
      return cc.api('POST', '/replay/exported', { at: at }).then(function () { return url; });
    }).catch(function (err) { say(errText(err)); return null; });
  };

  /* The actions from the moment the replay started to where it is now (at least the hour
     before it), for the incident report. */
  R.csv = function () {
    if (!cur) return;
    var to = Math.round(cur.at);
    var from = Math.min(cur.from, to - 3600000);
    if (span && span.from) from = Math.max(from, span.from);
    download(((cc.cfg && cc.cfg.api) || '/api') + '/replay/actions.csv?from=' + from + '&to=' +
      to + '&lang=' + encodeURIComponent(cc.cfg.lang), 'replay-actions.csv');
  };

  /* ------------------------------------------------------------- wiring */

  /* The map is (re)attached (cc-10): the tool lives in the map's wrapper, for the roles
     that may replay. */
  R.attach = function (m) {
    if (!m || !ROLES[role()]) return;
    var wrap = m.getContainer().parentNode;
    var old = document.getElementById('cc-replay');
    if (old) old.remove();
    els = wrap ? build(wrap) : null;
  };

  /* Test probe: what the replay shows now. */
  R.probe = function () {
    return { replaying: cc.store.replaying(), at: cur ? Math.round(cur.at) : null,
      seq: cur ? cur.seq : null, playing: !!(cur && cur.playing), speed: cur ? cur.speed : null,
      buffered: cur ? cur.buf.length - cur.head : 0, end: !!(cur && cur.end),
      lastPictureMs: R.lastPictureMs || null, message: els ? els.msg.textContent : '' };
  };
})();
