/* cc-82-duty.js: the duty desk page, /duty (docs/DUTY.md, "The duty desk").

   The queue of alarms nobody has acknowledged, from GET /api/duty/queue, read again on every
   `alert` frame of the websocket (and every pollMs, which also brings a silence set on
   another desk).

   The alarm plays by the gravest sounding alarm (WebAudio, generated tones): level I or an
   SOS a two-tone siren every soundEveryS['1'] s, level II a double beep, the rest a chime;
   it repeats until every alarm is acknowledged, handed to a commander or silenced. A browser
   keeps audio suspended until a user gesture: the banner says so and any click resumes it.
   For tests the root element carries data-sounding (0/1), data-beeps (plays so far) and
   data-audio (the AudioContext's state). Feed text only through textContent. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var D = (cc.duty = {});

  var ID = null, K = null;
  var board = null; // the last answer of GET /api/duty/queue
  var skew = 0; // server clock − browser clock, from that answer
  var timer = null, soon = null, failures = 0, loading = false, again = false;
  var audio = null, beeps = 0, lastPlay = 0;
  var sounding = []; // ids of the alarms sounding now (queue minus silenced)
  var noteFor = null; // the alert id the note dialog is for
  var reasonEl = null, minutesEl = null, silenceBtn = null, unsilenceBtn = null;

  var $ = cc.$;
  function now() { return Date.now() + skew; }

  function say(text, level) {
    var el = $('DUTY_MSG');
    cc.setText(el, text);
    cc.setAttr(el, 'data-level', level || 'info');
  }

  /* What a failed request (cc.api's Error) says on the desk. */
  function failed(err) {
    if (!err || !err.status) return cc.t('cmd.err_network');
    if (err.status === 401) return cc.t('cmd.err_signed_out');
    if (err.status === 403) return cc.t('cmd.err_forbidden');
    return cc.t('duty.failed', { msg: err.error || err.status });
  }

  /* ------------------------------------------------------------- the queue */

  function load() {
    clearTimeout(timer);
    if (loading) { again = true; return; }
    loading = true;
    cc.api('GET', '/duty/queue').then(function (body) {
      failures = 0;
      board = body;
      skew = Number(board.server_ts) - Date.now() || 0;
      if ($('DUTY_MSG').getAttribute('data-level') === 'warn') say('');
      render();
    }).catch(function (e) {
      failures += 1;
      console.warn('duty: queue not loaded', e && e.message);
      say(cc.t('duty.load_failed'), 'warn');
    }).then(function () {
      loading = false;
      if (again) { again = false; load(); return; }
      timer = setTimeout(load, K.pollMs * Math.pow(2, Math.min(failures, 2)));
    });
  }

  /* An alert changed somewhere: read the queue again soon (the server decides the scope). */
  function later() {
    clearTimeout(soon);
    soon = setTimeout(load, 150);
  }

  function silenceOn() {
    return !!(board && board.silence && Number(board.silence.until) > now());
  }

  function rank(a) { return a.kind === 'sos' ? 0 : Number(a.severity) || 4; }

  function computeSounding() {
    if (!board) return [];
    var covered = new Set(silenceOn() ? board.silence.covers || [] : []);
    return board.queue.filter(function (a) { return !covered.has(a.id); }).map(function (a) { return a.id; });
  }

  function levelName(a) {
    var sev = cc.cfg.severity[String(a.severity)];
    return sev ? cc.t('sev.level', { roman: sev.roman }) : '';
  }

  function row(a, small) {
    var li = cc.make('li', 'cc-duty-row cc-sv-' + (Number(a.severity) || 0));
    li.setAttribute('data-id', a.id);
    li.setAttribute('data-kind', a.kind || '');
    li.setAttribute('data-severity', String(a.severity || ''));
    var head = li.appendChild(cc.make('div', 'cc-duty-row-head'));
    head.appendChild(cc.make('span', 'cc-duty-level', a.kind === 'sos' ? cc.label('alert.kind', 'sos') : levelName(a)));
    head.appendChild(cc.make('span', 'cc-duty-kind', cc.label('alert.kind', a.kind)));
    var area = cc.cfg.lang === 'en' ? a.area_name_en || a.area_name : a.area_name;
    head.appendChild(cc.make('span', 'cc-duty-area', area || a.area || ''));
    head.appendChild(cc.make('span', 'cc-duty-time', cc.fmtTime(Number(a.ts))));
    var age = head.appendChild(cc.make('span', 'cc-duty-age', cc.fmtAgo(now() - Number(a.ts))));
    age.setAttribute('data-ts', String(a.ts));
    cc.setAlertText(li.appendChild(cc.make('div', 'cc-duty-text')), a);
    var notes = Array.isArray(a.notes) ? a.notes : [];
    var sub = li.appendChild(cc.make('div', 'cc-duty-sub'));
    if (small && a.acked_by) {
      sub.appendChild(cc.make('span', '', cc.t('duty.acked_by', { by: a.acked_by, time: cc.fmtTime(Number(a.acked_ts)) })));
    } else if (small) {
      sub.appendChild(cc.make('span', 'cc-duty-to', cc.t('duty.handed_to', { to: a.handed_to || cc.t('duty.any_commander') })));
      sub.appendChild(cc.make('span', '', cc.t('duty.handed_by', { by: a.handed_by || '', time: cc.fmtTime(Number(a.handed_ts)) })));
    }
    if (notes.length) {
      var last = notes[notes.length - 1];
      var n = sub.appendChild(cc.make('span', 'cc-duty-lastnote'));
      cc.setFeedText(n, cc.t('duty.notes', { n: notes.length }) + ' · {by}' + cc.t('sep.colon') + '{text}',
        { by: last.by || '', text: last.text || '' });
      n.title = last.text || '';
    }
    // the queue's rows: every action; a handed row: a commander's acknowledgement closes it
    var cmds = !small ? [['ack', 'duty.ack'], ['note', 'duty.note'], ['handoff', 'duty.handoff']]
      : !a.acked_by && isCommander() ? [['ack', 'duty.ack']] : [];
    if (cmds.length) {
      var acts = li.appendChild(cc.make('div', 'cc-duty-acts'));
      cmds.forEach(function (p) {
        var b = acts.appendChild(cc.make('button', 'cc-btn cc-duty-btn cc-duty-do-' + p[0], cc.t(p[1])));
        b.type = 'button';
        b.setAttribute('data-cmd', p[0]);
      });
    }
    return li;
  }

  function isCommander() { return !!(cc.cfg.session && cc.cfg.session.role === 'commander'); }

  /* Rows are kept while their alert is unchanged (a button under the pointer stays the
     same element across re-reads); a changed alert gets a new row. */
  var kept = new WeakMap(); // list element → Map(alert id → [signature, li])

  function fillList(el, list, max, small, emptyKey) {
    var old = kept.get(el) || new Map();
    var next = new Map();
    var want = list.slice(0, max).map(function (a) {
      var sig = JSON.stringify(a);
      var had = old.get(a.id);
      var li = had && had[0] === sig ? had[1] : row(a, small);
      next.set(a.id, [sig, li]);
      return li;
    });
    if (!list.length) want.push(cc.make('li', 'cc-duty-empty', cc.t(emptyKey)));
    if (list.length > max) want.push(cc.make('li', 'cc-duty-more', cc.t('duty.more', { n: list.length - max })));
    kept.set(el, next);
    var keep = new Set(want);
    Array.from(el.children).forEach(function (child) { if (!keep.has(child)) child.remove(); });
    want.forEach(function (li, i) { if (el.children[i] !== li) el.insertBefore(li, el.children[i] || null); });
  }

  function render() {
    if (!board) return;
    fillList($('DUTY_QUEUE'), board.queue, K.rows, false, 'duty.empty');
    fillList($('DUTY_HANDED'), board.handed, K.sideRows, true, 'duty.none');
    fillList($('DUTY_RECENT'), board.recent, K.sideRows, true, 'duty.none');
    cc.setText($('DUTY_COUNT'), board.queue.length ? cc.t('duty.count', { n: waitingText() }) : '');
    update();
  }

  /* "200" or "500+": the list shows the gravest QUEUE_MAX, one read looks at SCAN_MAX. */
  function waitingText() {
    var n = Math.max(Number(board.waiting) || 0, board.queue.length);
    return String(n) + (board.more ? '+' : '');
  }

  /* What sounds and what the state line says; called on every render and every tick. */
  function update() {
    var before = new Set(sounding);
    sounding = computeSounding();
    if (sounding.some(function (id) { return !before.has(id); })) lastPlay = 0; // a new alarm: at once
    var root = $('DUTY_ROOT');
    cc.setAttr(root, 'data-sounding', sounding.length ? '1' : '0');
    var state = $('DUTY_STATE');
    var on = silenceOn();
    if (on && !sounding.length) {
      var s = board.silence;
      cc.setText(state, cc.t('duty.silenced', { time: cc.fmtTime(Number(s.until)), by: s.by || '', reason: s.reason || '' }));
    } else {
      var n = sounding.length + (board.waiting > board.queue.length ? '+' : '');
      cc.setText(state, sounding.length ? cc.t('duty.sounding', { n: n }) : cc.t('duty.quiet'));
    }
    cc.setAttr(state, 'data-state', sounding.length ? 'sounding' : on ? 'silenced' : 'quiet');
    if (unsilenceBtn) unsilenceBtn.hidden = !on;
    var ids = new Set(sounding);
    var rows = $('DUTY_QUEUE').children;
    for (var i = 0; i < rows.length; i++) {
      var id = rows[i].getAttribute('data-id');
      if (id) rows[i].classList.toggle('is-sounding', ids.has(id));
    }
  }

  /* ------------------------------------------------------------- sound */

  function ctx() {
    if (audio) return audio;
    var AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return null;
    try { audio = new AC(); } catch (e) { return null; }
    audio.onstatechange = audioState;
    return audio;
  }

  function audioState() {
    var a = audio;
    var state = a ? a.state : 'none';
    cc.setAttr($('DUTY_ROOT'), 'data-audio', state);
    var banner = $('DUTY_SOUND');
    if (banner) banner.hidden = !a || state === 'running';
    if (state === 'running') lastPlay = 0; // sound just came on: play what is waiting
  }

  function enableSound() {
    var a = ctx();
    if (a && a.state !== 'running') a.resume().then(audioState, function () { /* still blocked */ });
  }

  function tone(a, type, freq, start, dur, vol) {
    var osc = a.createOscillator();
    var gain = a.createGain();
    osc.type = type;
    osc.frequency.setValueAtTime(freq, start);
    gain.gain.setValueAtTime(0.0001, start);
    gain.gain.exponentialRampToValueAtTime(vol, start + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + dur);
    osc.connect(gain);
    gain.connect(a.destination);
    osc.start(start);
    osc.stop(start + dur + 0.02);
  }

  function play(level) {
    var a = audio;
    if (!a || a.state !== 'running') return false;
    var t0 = a.currentTime + 0.01;
    if (level === '1') { // siren: two tones, four times
      for (var i = 0; i < 4; i++) tone(a, 'square', i % 2 ? 770 : 960, t0 + i * 0.22, 0.2, 0.12);
    } else if (level === '2') { // double beep
      tone(a, 'square', 880, t0, 0.18, 0.1);
      tone(a, 'square', 880, t0 + 0.28, 0.18, 0.1);
    } else { // chime
      tone(a, 'sine', 660, t0, 0.7, 0.25);
      tone(a, 'sine', 990, t0 + 0.18, 0.9, 0.2);
    }
    beeps += 1;
    cc.setAttr($('DUTY_ROOT'), 'data-beeps', String(beeps));
    return true;
  }

  function gravest() {
    if (!sounding.length || !board) return null;
    var ids = new Set(sounding), best = 9;
    board.queue.forEach(function (a) { if (ids.has(a.id)) best = Math.min(best, rank(a)); });
    return best <= 1 ? '1' : best === 2 ? '2' : 'other';
  }

  function tick() {
    if (!board) return;
    update();
    var level = gravest();
    if (level && Date.now() - lastPlay >= K.soundEveryS[level] * 1000 && play(level)) {
      lastPlay = Date.now();
    }
    var ages = document.querySelectorAll('#' + ID.DUTY_ROOT + ' .cc-duty-age');
    for (var i = 0; i < ages.length; i++) cc.setText(ages[i], cc.fmtAgo(now() - Number(ages[i].getAttribute('data-ts'))));
  }

  /* ------------------------------------------------------------- actions */

  /* Show an action's outcome at once (the re-read that follows confirms it): the alert
     leaves the queue, and a handed one joins the hand-overs. */
  function drop(id, handed) {
    if (!board) return;
    var was = board.queue.filter(function (a) { return a.id === id; })[0];
    if (handed && was) {
      board.handed = [Object.assign({}, was, handed)].concat(board.handed.filter(function (a) { return a.id !== id; }));
    }
    board.queue = board.queue.filter(function (a) { return a.id !== id; });
    if (!handed) board.handed = board.handed.filter(function (a) { return a.id !== id; });
    render();
  }

  function act(cmd, id, btn) {
    if (cmd === 'note') return openNote(id);
    if (btn) btn.disabled = true;
    var req = cmd === 'ack' ? cc.api('POST', '/alerts/' + encodeURIComponent(id) + '/ack', { note: '' })
      : cc.api('POST', '/duty/alerts/' + encodeURIComponent(id) + '/handoff', {});
    req.then(function (res) {
      if (btn) btn.disabled = false;
      say(cc.t(cmd === 'ack' ? 'duty.done_ack' : 'duty.done_handoff'), 'ok');
      drop(id, cmd === 'handoff' ? res.alert : null);
      load();
    }, function (err) {
      if (btn) btn.disabled = false;
      say(failed(err), 'error');
    });
  }

  function buildNote() {
    var box = $('DUTY_NOTE');
    box.appendChild(cc.make('div', 'cc-duty-note-title', cc.t('duty.note_title')));
    box._for = box.appendChild(cc.make('div', 'cc-duty-note-for'));
    var text = box.appendChild(cc.make('textarea', 'cc-duty-note-text'));
    text.maxLength = 500;
    text.rows = 3;
    box._text = text;
    var bar = box.appendChild(cc.make('div', 'cc-duty-note-bar'));
    var save = bar.appendChild(cc.make('button', 'cc-btn cc-duty-btn cc-duty-note-save', cc.t('duty.note_save')));
    var cancel = bar.appendChild(cc.make('button', 'cc-btn cc-duty-btn cc-duty-note-cancel', cc.t('duty.cancel')));
    save.type = cancel.type = 'button';
    cancel.addEventListener('click', function () { box.hidden = true; noteFor = null; });
    save.addEventListener('click', function () {
      var value = text.value.trim();
      if (!value) { say(cc.t('duty.need_note'), 'error'); text.focus(); return; }
      save.disabled = true;
      cc.api('POST', '/duty/alerts/' + encodeURIComponent(noteFor) + '/note', { text: value }).then(function () {
        save.disabled = false;
        box.hidden = true;
        noteFor = null;
        say(cc.t('duty.done_note'), 'ok');
        load();
      }, function (err) { save.disabled = false; say(failed(err), 'error'); });
    });
  }

  function openNote(id) {
    var box = $('DUTY_NOTE');
    var a = board && board.queue.filter(function (x) { return x.id === id; })[0];
    noteFor = id;
    if (a) cc.setAlertText(box._for, a); else cc.setText(box._for, id);
    box._text.value = '';
    box.hidden = false;
    box._text.focus();
  }

  function buildSilence() {
    var bar = $('DUTY_TOOLBAR');
    var form = cc.make('div', 'cc-duty-silence');
    reasonEl = form.appendChild(cc.make('input', 'cc-duty-reason'));
    reasonEl.type = 'text';
    reasonEl.maxLength = K.reasonMax;
    reasonEl.placeholder = cc.t('duty.reason');
    reasonEl.setAttribute('aria-label', cc.t('duty.reason'));
    minutesEl = form.appendChild(cc.make('select', 'cc-duty-minutes'));
    K.minutes.forEach(function (m) {
      var o = minutesEl.appendChild(cc.make('option', '', cc.t('duty.minutes', { n: m })));
      o.value = String(m);
    });
    silenceBtn = form.appendChild(cc.make('button', 'cc-btn cc-duty-btn cc-duty-silence-btn', cc.t('duty.silence')));
    unsilenceBtn = form.appendChild(cc.make('button', 'cc-btn cc-duty-btn cc-duty-unsilence', cc.t('duty.unsilence')));
    silenceBtn.type = unsilenceBtn.type = 'button';
    unsilenceBtn.hidden = true;
    bar.insertBefore(form, $('DUTY_MSG'));
    silenceBtn.addEventListener('click', function () {
      var reason = reasonEl.value.trim();
      if (!reason) {
        reasonEl.setAttribute('aria-invalid', 'true');
        say(cc.t('duty.need_reason'), 'error');
        reasonEl.focus();
        return;
      }
      reasonEl.removeAttribute('aria-invalid');
      silenceBtn.disabled = true;
      cc.api('POST', '/duty/silence', { reason: reason, minutes: Number(minutesEl.value) }).then(function (res) {
        silenceBtn.disabled = false;
        reasonEl.value = '';
        if (board) board.silence = res.silence;
        say(cc.t('duty.done_silence'), 'ok');
        update();
        load();
      }, function (err) { silenceBtn.disabled = false; say(failed(err), 'error'); });
    });
    unsilenceBtn.addEventListener('click', function () {
      // no body: cc.api's X-Requested-With is what the server lets through
      cc.api('DELETE', '/duty/silence').then(function () {
        if (board) board.silence = null;
        say(cc.t('duty.done_unsilence'), 'ok');
        update();
        load();
      }, function (err) { say(failed(err), 'error'); });
    });
  }

  D.init = function () {
    ID = cc.cfg.ids;
    K = cc.cfg.duty;
    buildSilence();
    buildNote();
    ['DUTY_QUEUE', 'DUTY_HANDED'].forEach(function (name) {
      $(name).addEventListener('click', function (ev) {
        var btn = ev.target.closest && ev.target.closest('button[data-cmd]');
        var li = btn && btn.closest('li[data-id]');
        if (li) act(btn.getAttribute('data-cmd'), li.getAttribute('data-id'), btn);
      });
    });
    // any click is the gesture a browser wants before it plays sound
    document.addEventListener('click', enableSound, true);
    document.addEventListener('keydown', enableSound, true);
    ctx();
    audioState();
    cc.store.listen(function (kind) { if (kind === 'alert' || kind === 'snapshot') later(); });
    setInterval(tick, 250);
    load();
  };

  /* For tests: what the desk thinks. */
  D.state = function () {
    return { sounding: sounding.slice(), beeps: beeps, audio: audio ? audio.state : 'none',
      queue: board ? board.queue.map(function (a) { return a.id; }) : [] };
  };

  cc.pages = cc.pages || {};
  cc.pages.duty = { init: D.init };
})();
