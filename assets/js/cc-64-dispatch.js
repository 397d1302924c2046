/* cc-64-dispatch.js: the proposal and one-click dispatch (docs/COMMAND-LOOP.md): the
   recommended units per resource call with other candidates, the override reason a changed
   pick needs, the confirm with its idempotency key, the 409 answers (the event has a task,
   a unit is busy), and the click-to-dispatched timing probe. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var C = cc.command, P = C.parts;
  var $ = cc.$, now = P.now, say = P.say, clear = P.clear, show = P.show, pick = P.pick;
  var unitOf = P.unitOf;

  var times = []; // click-to-dispatched samples (ms), bounded
  var httpTimes = []; // click-to-HTTP-answer samples (ms), bounded

  /* A fresh idempotency key: crypto.randomUUID needs a secure context, a wall on an
     intranet http address is not one; getRandomValues works everywhere. */
  function newKey() {
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return 'k-' + Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
  }

  P.openProposal = function () {
    if (!P.sel || P.me.role !== 'commander' || P.busyReq) return;
    var id = P.sel;
    P.busyReq = true;
    P.renderLoop();
    say(cc.t('cmd.loading'), 'info');
    cc.api('GET', '/events/' + encodeURIComponent(id) + '/proposal').then(function (data) {
      P.busyReq = false;
      if (P.sel !== id) return;
      say('', 'info');
      startProposal(id, data);
    }, function (err) {
      P.busyReq = false;
      if (err.status && P.sel !== id) return; // a refusal for an event no longer shown
      say(P.failure(err), 'error');
      P.renderLoop();
    });
  };

  function startProposal(id, data) {
    var rec = new Map(), alt = new Map();
    (data.calls || []).forEach(function (c) {
      (c.units || []).forEach(function (u) { var x = unitOf(u, u.kind || (c.kind === 'worker' ? 'worker' : 'resource')); rec.set(x.key, x); });
    });
    var cand = data.candidates || {};
    (cand.workers || []).forEach(function (u) { var x = unitOf(u, 'worker'); if (!rec.has(x.key)) alt.set(x.key, x); });
    (cand.resources || []).forEach(function (u) { var x = unitOf(u, 'resource'); if (!rec.has(x.key)) alt.set(x.key, x); });
    var prop = (P.prop = { eventId: id, key: newKey(), data: data, rec: rec, alt: alt,
      picked: new Set(rec.keys()), units: new Map() });
    rec.forEach(function (u, k) { prop.units.set(k, u); });
    alt.forEach(function (u, k) { prop.units.set(k, u); });
    var box = $('CMD_NO_PLAN');
    if (box) { box.checked = !data.plan; box.disabled = !data.plan; }
    var ov = $('CMD_OVERRIDE'), note = $('CMD_NOTE');
    if (ov) ov.value = '';
    if (note) note.value = '';
    var plan = data.plan && (data.plan.plan || data.plan);
    cc.setText($('CMD_PROPOSAL_HEAD'), plan ? cc.t('cmd.proposal_plan', { name: pick(plan.name) || plan.id })
      : cc.t('cmd.proposal_noplan'));
    renderChoices();
    show($('CMD_BODY'), false);
    show($('CMD_PROPOSAL'), true);
    // the details step aside for the proposal (the head keeps the event's title)
    var panel = $('DETAIL');
    if (panel) panel.classList.add('is-proposing');
    P.renderLoop();
    P.updateHint();
    cc.schedule('cmd-overlay', P.renderOverlay);
  }

  /* Per resource call: the recommended units, then a few other candidates of that kind. */
  function renderChoices() {
    var list = $('CMD_PROPOSAL_UNITS'), prop = P.prop;
    if (!list || !prop) return;
    clear(list);
    var used = new Set();
    var calls = prop.data.calls || [];
    var K = P.K;
    function row(u) {
      used.add(u.key);
      var li = P.unitRow(u, true);
      li.classList.add('cc-cmd-pick');
      if (prop.rec.has(u.key)) { li.classList.add('is-rec'); li._name.setAttribute('data-rec-label', cc.t('cmd.recommended')); }
      li._box.checked = prop.picked.has(u.key);
      list.appendChild(li);
    }
    function head(text, short) {
      var h = cc.make('li', 'cc-cmd-call' + (short ? ' is-short' : ''), text);
      list.appendChild(h);
    }
    calls.forEach(function (c) {
      var kindName = c.kind === 'worker' ? cc.t('kind.worker') : cc.label('rsk', c.kind);
      var text = cc.t('cmd.call', { kind: kindName, count: c.count });
      if (c.max_eta_s) text += ' · ' + cc.t('cmd.call_eta', { n: Math.round(c.max_eta_s / 60) });
      head(text, (c.units || []).length < c.count);
      (c.units || []).forEach(function (u) { row(prop.units.get(unitOf(u, u.kind || (c.kind === 'worker' ? 'worker' : 'resource')).key)); });
      var n = 0;
      prop.alt.forEach(function (u) {
        if (n >= K.altPerCall || used.has(u.key)) return;
        var match = c.kind === 'worker' ? u.kind === 'worker' : u.kind === 'resource' && u.resource_kind === c.kind;
        if (match) { row(u); n++; }
      });
    });
    // no plan (or units the plan did not ask for): the nearest of each kind
    var rest = [];
    prop.alt.forEach(function (u) { if (!used.has(u.key)) rest.push(u); });
    if (rest.length) {
      head(calls.length ? cc.t('cmd.other_units') : cc.t('cmd.proposal_noplan'), false);
      var w = rest.filter(function (u) { return u.kind === 'worker'; }).slice(0, K.altPerCall + 1);
      var r = rest.filter(function (u) { return u.kind === 'resource'; }).slice(0, K.altPerCall + 1);
      w.concat(r).forEach(row);
    }
    (prop.data.unfilled || []).forEach(function (f) {
      if (!f || typeof f !== 'object') return;
      var kindName = f.kind === 'worker' ? cc.t('kind.worker') : cc.label('rsk', f.kind);
      head(cc.t('cmd.unfilled', { kind: kindName, n: f.missing || f.short || f.count || '' }), true);
    });
  }

  function sameSet(a, b) {
    if (a.size !== b.size) return false;
    var same = true;
    a.forEach(function (k) { if (!b.has(k)) same = false; });
    return same;
  }

  function differs() {
    var prop = P.prop;
    if (!prop) return false;
    var noPlan = $('CMD_NO_PLAN');
    return !sameSet(prop.picked, new Set(prop.rec.keys())) || !!(noPlan && noPlan.checked && prop.data.plan);
  }

  P.updateHint = function () {
    var prop = P.prop;
    if (!prop) return;
    var ov = $('CMD_OVERRIDE');
    var diff = differs();
    var reason = ov ? ov.value.trim() : '';
    var hint = '';
    if (!prop.picked.size) hint = cc.t('cmd.select_none');
    else if (diff && !reason) hint = cc.t('cmd.override_needed');
    cc.setText($('CMD_PROPOSAL_HINT'), hint);
    if (ov) ov.classList.toggle('is-required', diff && !reason);
    var btn = $('CMD_CONFIRM');
    if (btn) btn.disabled = P.busyReq || !!hint;
  };

  P.togglePick = function (key, on) {
    var prop = P.prop;
    if (!prop || !key) return;
    if (on) prop.picked.add(key); else prop.picked.delete(key);
    P.updateHint();
    cc.schedule('cmd-overlay', P.renderOverlay);
  };

  P.closeProposal = function () {
    if (!P.prop) return;
    P.prop = null;
    show($('CMD_PROPOSAL'), false);
    show($('CMD_BODY'), true);
    var panel = $('DETAIL');
    if (panel) panel.classList.remove('is-proposing');
    clear($('CMD_PROPOSAL_UNITS'));
    P.renderLoop();
    cc.schedule('cmd-overlay', P.renderOverlay);
  };

  P.confirm = function () {
    if (!P.prop || P.busyReq) return;
    P.updateHint();
    var btn = $('CMD_CONFIRM');
    if (btn && btn.disabled) return;
    var p = P.prop;
    var noPlan = $('CMD_NO_PLAN');
    var plan = p.data.plan && (p.data.plan.plan || p.data.plan);
    var assignees = [];
    p.picked.forEach(function (k) { var u = p.units.get(k); if (u) assignees.push({ id: u.id, kind: u.kind }); });
    var body = {
      key: p.key,
      plan_id: noPlan && noPlan.checked ? null : plan ? plan.id : null,
      assignees: assignees,
      note: ($('CMD_NOTE') || {}).value || '',
      override_reason: differs() ? (($('CMD_OVERRIDE') || {}).value || '').trim() : '',
    };
    P.busyReq = true;
    if (btn) btn.disabled = true;
    say(cc.t('cmd.sending'), 'info');
    P.watch = { t0: now(), eventId: p.eventId, units: assignees, done: false };
    cc.api('POST', '/events/' + encodeURIComponent(p.eventId) + '/dispatch', body, { need: 'task' }).then(function (res) {
      P.busyReq = false;
      if (P.watch) {
        if (httpTimes.length >= P.K.dispatchTimes) httpTimes.shift();
        httpTimes.push(now() - P.watch.t0);
      }
      P.keepTask(res.task, false);
      say(cc.t(res.duplicate ? 'cmd.duplicate' : 'cmd.sent', { task: res.task.id }), 'ok');
      if (P.prop === p) P.closeProposal();
      if (P.watch) P.watch.taskId = res.task.id;
      P.checkWatch();
      P.renderLoop();
      P.renderTimeline();
    }, function (err) {
      P.busyReq = false;
      P.watch = null;
      var code = err.code, b = err.body;
      if (!err.status) {
        // the request may or may not have landed: keep the key, so a retry cannot dispatch twice
        say(cc.t('cmd.err_network'), 'error');
      } else if (code === 'has_task' || (!code && err.status === 409 && b.task_id && !b.unit)) {
        conflictTask(b.task_id);
        if (P.prop === p) P.closeProposal();
      } else if (code === 'override_reason_required') {
        say(cc.t('cmd.override_needed'), 'error');
      } else if (code === 'unit_busy' || (err.status === 409 && b.unit)) {
        var u = p.units.get('worker:' + b.unit) || p.units.get('resource:' + b.unit);
        // a worker's or vehicle's name is the feed's (no English one exists): marked as such
        say(cc.t('cmd.err_unit_busy'), 'error', { unit: (u && u.name) || b.unit });
        if (P.prop === p) p.key = newKey(); // a new selection is a new request
      } else {
        say(P.failure(err), 'error');
      }
      P.updateHint();
      P.renderLoop();
    });
  };

  function conflictTask(taskId) {
    var known = P.tasks.get(taskId);
    var tell = function (by) { say(cc.t('cmd.err_has_task', { by: by || cc.t('cmd.someone'), task: taskId }), 'error'); };
    if (known) { tell(known.by); return; }
    tell('');
    cc.api('GET', '/tasks/' + encodeURIComponent(taskId), undefined, { need: 'task' }).then(function (res) {
      P.keepTask(res.task, false);
      tell(res.task.by);
      P.renderLoop();
    }, function () { /* the first message stands */ });
  }

  /* Click-to-dispatched: every unit sent shows engaged (marker and rows, from its frame). */
  P.checkWatch = function () {
    var watch = P.watch;
    if (!watch || watch.done || !watch.taskId) return;
    var all = watch.units.every(function (a) {
      var rec = cc.store.get(a.kind, String(a.id));
      return rec && P.ENGAGED[rec.status];
    });
    if (all) {
      watch.done = true;
      cc.schedule('cmd-watch', function () {});
    }
  };

  cc.onFrame(function () {
    var watch = P.watch;
    if (!watch || !watch.done) return;
    if (times.length >= P.K.dispatchTimes) times.shift();
    times.push(now() - watch.t0);
    P.watch = null;
  });

  C.dispatchTimes = function () { return times.slice(); };
  C.dispatchHttpTimes = function () { return httpTimes.slice(); };

  Object.defineProperty(C, 'proposalKey', { get: function () { return P.prop ? P.prop.key : null; } });
})();
