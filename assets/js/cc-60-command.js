/* cc-60-command.js: the event panel's shared state and helpers (cc.command).

   The event panel's command loop and the alert strip (docs/COMMAND-LOOP.md) are six files
   Dash loads in order:
     cc-60-command.js   this one: the shared state and helpers, failure messages, unit
                        rows, the task store, frames, input and init
     cc-61-details.js   the selection and its details: plans, timeline, the task's stages,
                        verify / evaluate
     cc-62-urgent.js    urgent events opening the panel, the waiting chip
     cc-63-nearby.js    nearby units with the 1-3-5 verdict, the map's ring and lines
     cc-64-dispatch.js  the proposal and one-click dispatch, override, 409s, the timing probe
     cc-65-alerts.js    the alert strip and ack
   `cc.command` is what cc-50 and the tests call; `cc.command.parts` is what the six
   files share with each other (not an API). A file calls a later file's function through
   `P` at run time, never at load time.

   Rules kept here: feed text only through textContent; every collection is capped
   (tasks, alerts, pending events, timing samples); one delegated click listener, none per
   row or per frame; statuses on screen come from frames, never guessed after a POST. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var C = (cc.command = {});
  var P = (C.parts = {});
  var ID = null;

  var me = (P.me = { user: null, role: null });
  var tasks = (P.tasks = new Map()); // task id → Task
  var taskOfEvent = (P.taskOfEvent = new Map()); // event id → task id
  P.sel = null; // the event the panel shows
  P.info = null; // GET /api/events/<sel> answer
  P.prop = null; // the open proposal: {eventId, key, data, rec, picked, alt} (cc-64)
  P.busyReq = false; // a mutation is in flight
  P.watch = null; // click-to-dispatched probe: {t0, eventId, units, done} (cc-64)
  P.K = null; // cc.cfg.command, from init

  P.ENGAGED = { busy: 1, sos: 1, dispatched: 1, en_route: 1, on_scene: 1 };

  var $ = cc.$;
  P.now = function () { return performance.now(); };
  /* Nothing is acted on in the past: a replayed wall (cc-88) offers no action. */
  P.canAct = function () {
    return !cc.store.replaying() && (me.role === 'commander' || me.role === 'duty_officer');
  };

  /* A bilingual value from the API ({"zh-CN": …, "en": …}) in the page's language. */
  P.pick = function (v) {
    if (v === undefined || v === null) return '';
    if (typeof v !== 'object') return String(v);
    var lang = cc.cfg.lang;
    if (v[lang]) return String(v[lang]);
    if (v['zh-CN']) return String(v['zh-CN']);
    for (var k in v) if (Object.prototype.hasOwnProperty.call(v, k) && v[k]) return String(v[k]);
    return '';
  };

  P.clear = function (el) { while (el && el.firstChild) el.removeChild(el.firstChild); };

  P.show = function (el, on) { if (el && el.hidden === !!on) el.hidden = !on; };

  /* ------------------------------------------------------------- messages */

  /* `feed`: the template's {placeholders} that hold the feed's words (a unit's own name),
     each shown as such (cc.setFeedText), so the page's language never claims them. */
  P.say = function (text, level, feed) {
    var el = $('CMD_MSG');
    if (feed) cc.setFeedText(el, text, feed); else cc.setText(el, text);
    cc.setAttr(el, 'data-level', level || 'info');
  };

  /* What a failed request (cc.api's Error) says on the panel. */
  P.failure = function (err) {
    if (!err || !err.status) return cc.t('cmd.err_network');
    if (err.status === 401) return cc.t('cmd.err_signed_out');
    if (err.status === 403) return cc.t('cmd.err_forbidden');
    return cc.t('cmd.err_generic', { msg: err.error || err.status });
  };

  /* ------------------------------------------------------------- unit rows */

  function fmtDist(m) {
    if (!isFinite(m)) return '–';
    return m < 1000 ? cc.t('cmd.dist_m', { n: Math.round(m) })
      : cc.t('cmd.dist_km', { n: (m / 1000).toFixed(m < 10000 ? 1 : 0) });
  }

  function fmtEta(s) {
    if (!isFinite(s) || s === null) return '–';
    return s < 90 ? cc.t('cmd.eta_s', { n: Math.round(s) }) : cc.t('cmd.eta_min', { n: Math.round(s / 60) });
  }
  P.fmtDist = fmtDist; // for tests (tests/js/format.test.js)
  P.fmtEta = fmtEta;

  function verdict(u) {
    var r = u.rule135;
    if (!r || r.limit_s === null || r.limit_s === undefined) return 'none';
    return r.ok ? 'ok' : 'over';
  }

  P.kindLabel = function (u) {
    return u.kind === 'worker' ? cc.t('kind.worker') : cc.label('rsk', u.resource_kind || 'other');
  };

  function unitColour(u, rec) {
    var col = cc.cfg.colours, st = rec && rec.status;
    if (u.kind === 'worker') return col.worker[st] || col.worker.on_duty;
    return col.resource[st] || col.resource.available;
  }

  /* One shape for units from /api/events/<id> `nearby`, the proposal and the records. */
  P.unitOf = function (raw, kind) {
    var u = Object.assign({}, raw);
    if (u.kind !== 'worker' && u.kind !== 'resource') {
      if (kind === 'resource') u.resource_kind = u.resource_kind || u.kind || null;
      u.kind = kind;
    }
    u.id = String(u.id);
    u.key = u.kind + ':' + u.id;
    return u;
  };

  P.liveRec = function (u) { return cc.store.get(u.kind, u.id); };

  /* A row for a unit: colour dot, name + kind, distance, ETA, 1-3-5 badge. */
  P.unitRow = function (u, withBox) {
    var li = cc.make('li');
    li.setAttribute('data-key', u.key);
    if (withBox) {
      var box = cc.make('input');
      box.type = 'checkbox';
      box.setAttribute('data-key', u.key);
      li.appendChild(box);
      li._box = box;
    } else {
      li._dot = li.appendChild(cc.make('span', 'cc-cmd-dot'));
    }
    var name = li._name = li.appendChild(cc.feedSpan('cc-cmd-name', u.name || u.id));
    name.appendChild(cc.make('small', null, P.kindLabel(u)));
    li.appendChild(cc.make('span', 'cc-cmd-num', fmtDist(Number(u.distance_m))));
    li.appendChild(cc.make('span', 'cc-cmd-num', fmtEta(Number(u.eta_s))));
    var v = verdict(u);
    var badge = li.appendChild(cc.make('span', 'cc-r135', cc.t('r135.' + v)));
    badge.setAttribute('data-verdict', v);
    if (u.rule135 && u.rule135.limit_s) badge.title = cc.t('r135.title', { n: u.rule135.limit_s });
    P.paintStatus(li, u, P.liveRec(u));
    return li;
  };

  P.paintStatus = function (li, u, rec) {
    var st = rec && rec.status;
    var engaged = !!(st && P.ENGAGED[st]);
    li.classList.toggle('is-engaged', engaged);
    li.setAttribute('data-status', st || '');
    // the tag after the name (CSS ::after reads it from the name itself)
    cc.setAttr(li._name, 'data-status-label', engaged ? cc.label(u.kind === 'worker' ? 'wkst' : 'rsst', st) : '');
    if (li._dot) li._dot.style.background = unitColour(u, rec);
  };

  /* ------------------------------------------------------------- tasks */

  /* An event's task (also bench/dispatch_click.py's probe). */
  C.taskOf = function (eventId) {
    var id = taskOfEvent.get(String(eventId));
    return id ? tasks.get(id) || null : null;
  };

  P.currentTask = function () { return P.sel ? C.taskOf(P.sel) : null; };

  /* Keep a task; a frame is as new as an HTTP answer or newer (history only grows). */
  P.keepTask = function (t, fromFrame) {
    if (!t || !t.id) return;
    var old = tasks.get(t.id);
    if (old && !fromFrame && (old.history || []).length > (t.history || []).length) return;
    tasks.delete(t.id); // re-insert: the oldest entry is evicted first
    tasks.set(t.id, t);
    if (t.event_id) taskOfEvent.set(String(t.event_id), t.id);
    if (tasks.size > P.K.tasksMax) pruneTasks();
  };

  function pruneTasks() {
    var over = tasks.size - P.K.tasksMax;
    var it = tasks.keys();
    // closed first (oldest first), then the oldest of any stage
    var drop = [];
    tasks.forEach(function (t, id) { if (drop.length < over && t.stage === 'closed') drop.push(id); });
    while (drop.length < over) { var n = it.next(); if (n.done) break; if (drop.indexOf(n.value) < 0) drop.push(n.value); }
    drop.forEach(function (id) {
      var t = tasks.get(id);
      tasks.delete(id);
      if (t && taskOfEvent.get(String(t.event_id)) === id) taskOfEvent.delete(String(t.event_id));
    });
  }

  /* ------------------------------------------------------------- frames */

  C.frame = function (kind, data) {
    if (kind === 'task') {
      var before = tasks.get(data.id);
      P.keepTask(data, true);
      if (String(data.event_id) === P.sel) {
        if (!before || (before.assignees || []).length !== (data.assignees || []).length ||
            (data.stage === 'closed') !== (before.stage === 'closed')) {
          cc.schedule('cmd-nearby', P.renderNearby);
        }
        cc.schedule('cmd-loop', P.renderLoop);
        cc.schedule('cmd-timeline', P.renderTimeline);
        cc.schedule('cmd-overlay', P.renderOverlay);
      }
      var watch = P.watch;
      if (watch && !watch.done && watch.eventId === String(data.event_id)) {
        watch.taskId = watch.taskId || data.id;
        P.checkWatch();
      }
    } else if (kind === 'alert') {
      P.keepAlert(data);
      cc.schedule('alerts', P.renderAlerts);
    }
  };

  C.snapshot = function (taskList, alertList) {
    if (Array.isArray(taskList)) {
      var keepSel = P.currentTask();
      tasks.clear();
      taskOfEvent.clear();
      taskList.forEach(function (t) { P.keepTask(t, true); });
      if (keepSel && !tasks.has(keepSel.id)) P.keepTask(keepSel, true);
      cc.schedule('cmd-loop', P.renderLoop);
    }
    if (Array.isArray(alertList)) P.alertSnapshot(alertList);
  };

  /* ------------------------------------------------------------- input */

  function onClick(e) {
    var t = e.target;
    var btn = t.closest && t.closest('[data-cmd]');
    if (btn && !btn.disabled) {
      switch (btn.getAttribute('data-cmd')) {
        case 'dispatch': P.openProposal(); return;
        case 'cancel': P.closeProposal(); return;
        case 'confirm': P.confirm(); return;
        case 'pending': P.openNextPending(); return;
        case 'verify':
          P.mutate('/verify', { passed: btn.getAttribute('data-passed') === '1',
            note: ($('CMD_VERIFY_NOTE') || {}).value || '' }, $('CMD_VERIFY_NOTE'));
          return;
        case 'evaluate':
          P.mutate('/evaluate', { score: Number(btn.getAttribute('data-score')),
            note: ($('CMD_EVAL_NOTE') || {}).value || '' }, $('CMD_EVAL_NOTE'));
          return;
        case 'ack': {
          var card = btn.closest('.cc-alert');
          P.ack(card && card.getAttribute('data-id'), btn);
          return;
        }
        default: return;
      }
    }
    // a candidate row toggles its checkbox; the box itself reports through 'change'
    var row = t.closest && t.closest('.cc-cmd-pick');
    if (row && P.prop && t.tagName !== 'INPUT') {
      row._box.checked = !row._box.checked;
      P.togglePick(row.getAttribute('data-key'), row._box.checked);
      return;
    }
    var card2 = t.closest && t.closest('.cc-alert');
    if (card2) {
      var evId = card2.getAttribute('data-event');
      if (evId && cc.store.get('event', evId)) cc.select(evId, true);
    }
  }

  function onChange(e) {
    var t = e.target;
    if (t.type === 'checkbox' && t.closest && t.closest('.cc-cmd-pick')) P.togglePick(t.getAttribute('data-key'), t.checked);
    if (t.id === ID.CMD_NO_PLAN) P.updateHint();
  }

  function input(idName, placeholder) {
    var el = $(idName) || cc.make('input', 'cc-cmd-input');
    el.id = ID[idName];
    el.type = 'text';
    el.maxLength = 500;
    el.placeholder = placeholder;
    el.autocomplete = 'off';
    return el;
  }

  /* The inputs, made once (see layouts/command.py for why not by Dash). */
  function buildInputs() {
    var vbox = $('CMD_VERIFY_BOX'), ebox = $('CMD_EVAL_BOX'), fields = $('CMD_FIELDS');
    if (vbox && !$('CMD_VERIFY_NOTE')) vbox.insertBefore(input('CMD_VERIFY_NOTE', cc.t('cmd.verify_note')), vbox.firstChild);
    if (ebox && !$('CMD_EVAL_NOTE')) ebox.insertBefore(input('CMD_EVAL_NOTE', cc.t('cmd.eval_note')), ebox.firstChild);
    if (fields && !$('CMD_NO_PLAN')) {
      var label = cc.make('label', 'cc-cmd-check');
      var box = cc.make('input', 'cc-cmd-checkbox');
      box.type = 'checkbox';
      box.id = ID.CMD_NO_PLAN;
      label.appendChild(box);
      label.appendChild(cc.make('span', null, cc.t('cmd.no_plan')));
      fields.appendChild(label);
      fields.appendChild(input('CMD_OVERRIDE', cc.t('cmd.override')));
      fields.appendChild(input('CMD_NOTE', cc.t('cmd.note')));
    }
  }

  /* The store's changes (cc-20): tasks and alerts, the shown event's and units' changes; on the
     wall after the map and the panels (boot starts the event panel last). */
  function onStore(kind, op, rec, live, arrived) {
    if (kind === 'task' || kind === 'alert') C.frame(kind, rec);
    else if (kind === 'snapshot') C.snapshot(rec.tasks, rec.alerts);
    else if (op === 'remove') return;
    else if (kind === 'event') C.eventChanged(rec, arrived && cc.cfg.closed.indexOf(rec.status) < 0);
    else if (kind === 'worker' || kind === 'resource' || kind === 'camera') C.unitChanged(kind, rec);
  }

  C.init = function () {
    ID = cc.cfg.ids;
    P.K = cc.cfg.command;
    cc.store.listen(onStore);
    buildInputs();
    document.addEventListener('click', onClick);
    document.addEventListener('change', onChange);
    document.addEventListener('input', function (e) { if (e.target.id === ID.CMD_OVERRIDE) P.updateHint(); });
    var panel = $('DETAIL');
    if (panel) {
      panel.addEventListener('pointerdown', P.touched);
      panel.addEventListener('keydown', P.touched);
      panel.addEventListener('animationend', function () { panel.classList.remove('is-flash'); });
    }
    // a list or map click on another event is a touch too: the commander chose it
    var list = $('EVENT_LIST');
    if (list) list.addEventListener('pointerdown', P.touched);
    setInterval(P.drainPending, 2000);
    // line widths follow the type size (a 4K wall): redraw the overlay after a resize
    window.addEventListener('resize', function () { cc.schedule('cmd-overlay', P.renderOverlay); });
    var known = function () {
      P.renderLoop();
      cc.schedule('alerts', P.renderAlerts);
    };
    cc.api('GET', '/me').then(function (who) {
      me.user = who.user || null;
      me.role = who.role || null;
      known();
    }, function (err) {
      if (err.status) known(); // refused (no session): read-only
      // no answer at all: nothing changed
    });
    P.renderAlerts();
  };

  /* Test and benchmark probes (the other files add theirs). */
  Object.defineProperties(C, {
    role: { get: function () { return me.role; } },
    taskCount: { get: function () { return tasks.size; } },
  });
})();
