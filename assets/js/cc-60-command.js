/* Command wall, part 6: the event panel's command loop and the alert strip
   (docs/COMMAND-LOOP.md): details, nearby units with the 1-3-5 verdict, ranked plans, the
   proposal and one-click dispatch, the task's stages from `task` frames, verify / evaluate,
   and the alerts from the snapshot and `alert` frames.

   Rules kept here: feed text only through textContent; every collection is capped
   (tasks, alerts, pending events, timing samples); one delegated click listener, none per
   row or per frame; statuses on screen come from frames, never guessed after a POST.

   Auto-open: a level I/II event arriving live opens the panel (with a flash) unless the
   commander touched the panel for another event within `command.lockS` seconds, has a form
   open, or the last auto-opened event has not had its lockS on screen; then it waits as a
   blinking chip in the panel head and takes over once the panel has been left alone that
   long. More than `floodN` urgent arrivals within `settleMs` only count on the chip. */
(function () {
  'use strict';
  var cc = window.ccwall;
  var C = (cc.command = {});
  var ID = null, K = null;

  var me = { user: null, role: null };
  var tasks = new Map(); // task id → Task
  var taskOfEvent = new Map(); // event id → task id
  var alerts = new Map(); // alert id → open Alert
  var sel = null; // the event the panel shows
  var info = null; // GET /api/events/<sel> answer
  var infoStatus = null; // the event status `info` was read at
  var loadCtl = null;
  var refreshTimer = null;
  var shown = new Map(); // "kind:id" → nearby row
  var nearbyUnits = []; // the units listed, for the overlay
  var lastTouch = -1e9; // performance.now() of the commander's last touch of the panel
  var pending = []; // urgent event ids waiting for the panel
  var prop = null; // the open proposal: {eventId, key, data, rec, picked, alt}
  var busyReq = false; // a mutation is in flight
  var watch = null; // click-to-dispatched probe: {t0, eventId, units, done}
  var times = []; // click-to-dispatched samples (ms), bounded
  var httpTimes = []; // click-to-HTTP-answer samples (ms), bounded

  var ENGAGED = { busy: 1, sos: 1, dispatched: 1, en_route: 1, on_scene: 1 };
  var STEPS = ['dispatched', 'accepted', 'arrived', 'handled', 'verified', 'closed'];
  var STAGE_AT = { dispatched: 0, accepted: 1, arrived: 2, handled: 3, rework: 3,
    rejected: 0, need_support: 2, closed: 5 };
  var BAD = { rework: 1, rejected: 1, need_support: 1 };
  var ALERT_RANK = { sos: 0, sla_red: 1, critical_event: 2, geofence_exit: 3, sla_yellow: 4 };

  function $(name) { return cc.el(ID[name]); }
  function now() { return performance.now(); }
  function canAct() { return me.role === 'commander' || me.role === 'duty_officer'; }

  /* A bilingual value from the API ({"zh-CN": …, "en": …}) in the page's language. */
  function pick(v) {
    if (v === undefined || v === null) return '';
    if (typeof v !== 'object') return String(v);
    var lang = cc.cfg.lang;
    if (v[lang]) return String(v[lang]);
    if (v['zh-CN']) return String(v['zh-CN']);
    for (var k in v) if (Object.prototype.hasOwnProperty.call(v, k) && v[k]) return String(v[k]);
    return '';
  }

  function clear(el) { while (el && el.firstChild) el.removeChild(el.firstChild); }

  function show(el, on) { if (el && el.hidden === !!on) el.hidden = !on; }

  /* ------------------------------------------------------------- HTTP */

  function url(path) { return (cc.cfg.api || '/api') + path; }

  function call(method, path, body) {
    var opts = { method: method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    return fetch(url(path), opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        return { status: r.status, ok: r.ok, body: j && typeof j === 'object' ? j : {} };
      });
    });
  }

  /* A fresh idempotency key: crypto.randomUUID needs a secure context, a wall on an
     intranet http address is not one; getRandomValues works everywhere. */
  function newKey() {
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return 'k-' + Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
  }

  function say(text, level) {
    var el = $('CMD_MSG');
    cc.setText(el, text);
    cc.setAttr(el, 'data-level', level || 'info');
  }

  function failure(res) {
    if (!res) return cc.t('cmd.err_network');
    if (res.status === 401) return cc.t('cmd.err_signed_out');
    if (res.status === 403) return cc.t('cmd.err_forbidden');
    return cc.t('cmd.err_generic', { msg: res.body.error || res.status });
  }

  /* ------------------------------------------------------------- formatting */

  function fmtDist(m) {
    if (!isFinite(m)) return '–';
    return m < 1000 ? cc.t('cmd.dist_m', { n: Math.round(m) })
      : cc.t('cmd.dist_km', { n: (m / 1000).toFixed(m < 10000 ? 1 : 0) });
  }

  function fmtEta(s) {
    if (!isFinite(s) || s === null) return '–';
    return s < 90 ? cc.t('cmd.eta_s', { n: Math.round(s) }) : cc.t('cmd.eta_min', { n: Math.round(s / 60) });
  }

  function verdict(u) {
    var r = u.rule135;
    if (!r || r.limit_s === null || r.limit_s === undefined) return 'none';
    return r.ok ? 'ok' : 'over';
  }

  function kindLabel(u) {
    return u.kind === 'worker' ? cc.t('kind.worker') : cc.label('rsk', u.resource_kind || 'other');
  }

  function unitColour(u, rec) {
    var col = cc.cfg.colours, st = rec && rec.status;
    if (u.kind === 'worker') return col.worker[st] || col.worker.on_duty;
    return col.resource[st] || col.resource.available;
  }

  /* One shape for units from /api/events/<id> `nearby`, the proposal and the records. */
  function unitOf(raw, kind) {
    var u = Object.assign({}, raw);
    if (u.kind !== 'worker' && u.kind !== 'resource') {
      if (kind === 'resource') u.resource_kind = u.resource_kind || u.kind || null;
      u.kind = kind;
    }
    u.id = String(u.id);
    u.key = u.kind + ':' + u.id;
    return u;
  }

  function liveRec(u) { return cc.store.get(u.kind, u.id); }

  /* A row for a unit: colour dot, name + kind, distance, ETA, 1-3-5 badge. */
  function unitRow(u, withBox) {
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
    var name = li._name = li.appendChild(cc.make('span', 'cc-cmd-name', u.name || u.id));
    name.appendChild(cc.make('small', null, kindLabel(u)));
    li.appendChild(cc.make('span', 'cc-cmd-num', fmtDist(Number(u.distance_m))));
    li.appendChild(cc.make('span', 'cc-cmd-num', fmtEta(Number(u.eta_s))));
    var v = verdict(u);
    var badge = li.appendChild(cc.make('span', 'cc-r135', cc.t('r135.' + v)));
    badge.setAttribute('data-verdict', v);
    if (u.rule135 && u.rule135.limit_s) badge.title = cc.t('r135.title', { n: u.rule135.limit_s });
    paintStatus(li, u, liveRec(u));
    return li;
  }

  function paintStatus(li, u, rec) {
    var st = rec && rec.status;
    var engaged = !!(st && ENGAGED[st]);
    li.classList.toggle('is-engaged', engaged);
    li.setAttribute('data-status', st || '');
    // the tag after the name (CSS ::after reads it from the name itself)
    cc.setAttr(li._name, 'data-status-label', engaged ? cc.label(u.kind === 'worker' ? 'wkst' : 'rsst', st) : '');
    if (li._dot) li._dot.style.background = unitColour(u, rec);
  }

  /* ------------------------------------------------------------- selection */

  var opened = new Set(); // events shown in the panel lately: never pushed forward again
  var graceUntil = 0; // a closed panel stays closed a moment before a waiting event opens

  C.select = function (id) {
    if (id === sel) return;
    if (!id && sel) graceUntil = now() + K.closeGraceMs;
    if (id) {
      opened.delete(id);
      opened.add(id);
      if (opened.size > 64) opened.delete(opened.values().next().value);
    }
    sel = id;
    info = null;
    infoStatus = null;
    if (loadCtl) { loadCtl.abort(); loadCtl = null; }
    clearTimeout(refreshTimer);
    refreshTimer = null;
    closeProposal();
    say('', 'info');
    pending = pending.filter(function (p) { return p !== id; });
    renderPending();
    shown.clear();
    nearbyUnits = [];
    ['CMD_NEARBY', 'CMD_PLANS', 'CMD_STEPS', 'CMD_TIMELINE'].forEach(function (n) { clear($(n)); });
    if (id) {
      say(cc.t('cmd.loading'), 'info');
      load(id);
    }
    renderLoop();
    cc.schedule('cmd-overlay', renderOverlay);
  };

  C.selected = function () { return sel; };
  C.taskOf = function (eventId) {
    var id = taskOfEvent.get(String(eventId));
    return id ? tasks.get(id) || null : null;
  };

  function load(id) {
    if (loadCtl) loadCtl.abort();
    var ctl = (loadCtl = new AbortController());
    var rec = cc.store.get('event', id);
    var status = rec ? rec.status : null;
    fetch(url('/events/' + encodeURIComponent(id)), { credentials: 'same-origin', signal: ctl.signal,
      headers: { Accept: 'application/json' } })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
      .then(function (res) {
        if (sel !== id || ctl !== loadCtl) return;
        loadCtl = null;
        if (!res.ok) { say(cc.t('cmd.err_load'), 'error'); return; }
        info = res.body || {};
        infoStatus = status;
        if (info.task && info.task.id) keepTask(info.task, false);
        // clear only our own "loading": a dispatch answer or a 409 stays readable
        var msg = $('CMD_MSG');
        if (msg && msg.textContent === cc.t('cmd.loading')) say('', 'info');
        renderNearby();
        renderPlans();
        renderTimeline();
        renderLoop();
        cc.schedule('cmd-overlay', renderOverlay);
      })
      .catch(function (e) {
        if (e && e.name === 'AbortError') return;
        if (sel === id) say(cc.t('cmd.err_load'), 'error');
      });
  }

  /* Re-read the selected event after it changed (timeline, plans, who is nearby now). */
  function refreshSoon() {
    if (!sel || refreshTimer) return;
    var id = sel;
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      if (sel === id) load(id);
    }, K.refreshMs);
  }

  C.eventChanged = function (rec, arrivedOpen) {
    if (!rec) return;
    if (rec.id === sel && info && rec.status !== infoStatus) {
      infoStatus = rec.status;
      refreshSoon();
      renderLoop();
    }
    if (arrivedOpen && cc.cfg.urgent.indexOf(Number(rec.severity)) >= 0) urgent(rec);
  };

  /* ------------------------------------------------------------- urgent events */

  function panelBusy() {
    if (!sel) return false;
    if (prop || busyReq) return true;
    var a = document.activeElement;
    var panel = $('DETAIL');
    if (a && panel && panel.contains(a) && a.tagName === 'INPUT' && a.value) return true;
    // the commander's own use, or the last urgent event's own time on screen
    return now() - lastTouch < K.lockS * 1000 || now() < holdUntil;
  }

  var burst = [], burstN = 0, burstTimer = null;
  var deferred = false; // pending events that may take the panel once it is left alone
  var holdUntil = 0;

  /* Urgent arrivals settle for a moment first: one or two open the panel, a flood (a drill
     import, a replay after an outage) only counts on the chip, never flips the panel. */
  function urgent(rec) {
    burstN++;
    if (burst.indexOf(rec.id) < 0 && burst.length < K.pendingMax * 4) burst.push(rec.id);
    if (!burstTimer) burstTimer = setTimeout(settle, K.settleMs);
  }

  function settle() {
    burstTimer = null;
    var ids = burst, n = burstN;
    burst = [];
    burstN = 0;
    ids.forEach(function (id) {
      if (opened.has(id)) return; // the commander already has it, or had it
      pending = pending.filter(function (p) { return p !== id; });
      pending.push(id);
    });
    if (!pending.length) { renderPending(); return; }
    while (pending.length > K.pendingMax) pending.shift();
    if (n <= K.floodN && !panelBusy() && now() >= graceUntil) {
      var id = nextPending();
      if (id) { openUrgent(id); return; }
    } else if (n <= K.floodN) {
      deferred = true;
    }
    renderPending();
    flash();
  }

  function openUrgent(id) {
    pending = pending.filter(function (p) { return p !== id; });
    if (!pending.length) deferred = false;
    renderPending();
    holdUntil = now() + K.lockS * 1000;
    cc.select(id, true);
    flash();
  }

  /* The gravest, then newest, of the waiting events that are still open. */
  function nextPending() {
    var best = null, bestKey = null;
    pending = pending.filter(function (id) {
      var rec = cc.store.get('event', id);
      return rec && cc.cfg.closed.indexOf(rec.status) < 0;
    });
    pending.forEach(function (id) {
      var rec = cc.store.get('event', id);
      var key = [Number(rec.severity) || 4, -(Number(rec.first_ts || rec.ts) || 0)];
      if (!best || key[0] < bestKey[0] || (key[0] === bestKey[0] && key[1] < bestKey[1])) {
        best = id; bestKey = key;
      }
    });
    return best;
  }

  function drainPending() {
    if (!deferred || !pending.length || panelBusy() || now() < graceUntil) return;
    var id = nextPending();
    if (id) openUrgent(id);
    else { deferred = false; renderPending(); }
  }

  function renderPending() {
    var chip = $('CMD_PENDING');
    show(chip, pending.length > 0);
    cc.setText(chip, pending.length ? cc.t('cmd.pending', { n: pending.length }) : '');
  }

  var flashes = 0;

  function flash() {
    flashes++;
    var panel = $('DETAIL');
    if (!panel) return;
    panel.classList.remove('is-flash');
    void panel.offsetWidth; // restart the animation
    panel.classList.add('is-flash');
  }

  /* ------------------------------------------------------------- nearby */

  function nearbyList() {
    var nb = (info && info.nearby) || {};
    var workers = [], resources = [];
    if (Array.isArray(nb)) {
      nb.forEach(function (u) {
        var x = unitOf(u, u.kind === 'worker' ? 'worker' : 'resource');
        (x.kind === 'worker' ? workers : resources).push(x);
      });
    } else {
      (nb.workers || []).forEach(function (u) { workers.push(unitOf(u, 'worker')); });
      (nb.resources || []).forEach(function (u) { resources.push(unitOf(u, 'resource')); });
    }
    // only what could be sent: grid workers on duty, resources available
    workers = workers.filter(function (u) { return !u.status || u.status === 'on_duty'; });
    resources = resources.filter(function (u) { return !u.status || u.status === 'available'; });
    var byDist = function (a, b) { return (Number(a.distance_m) || 0) - (Number(b.distance_m) || 0); };
    workers.sort(byDist);
    resources.sort(byDist);
    // the task's own units stay listed first (the API lists only free ones): live status
    var sent = assignedUnits();
    var seen = new Set(sent.map(function (u) { return u.key; }));
    workers = workers.filter(function (u) { return !seen.has(u.key); });
    resources = resources.filter(function (u) { return !seen.has(u.key); });
    // both kinds get a share of the rows, the nearer kind fills what the other leaves
    var n = Math.max(2, K.nearbyRows - sent.length), half = Math.ceil(n / 2);
    var w = workers.slice(0, Math.max(half, n - resources.length));
    var r = resources.slice(0, n - w.length);
    return sent.sort(byDist).concat(w.concat(r).sort(byDist));
  }

  /* The current task's units as rows: distance from their live position, ETA as sent. */
  function assignedUnits() {
    var task = currentTask();
    var ev = sel ? cc.store.get('event', sel) : null;
    if (!task || task.stage === 'closed' || !ev) return [];
    return (task.assignees || []).map(function (a) {
      var rec = cc.store.get(a.kind, String(a.id)) || {};
      var rk = a.kind === 'resource' ? (a.resource_kind || rec.kind || null) : null;
      var limit = (cc.cfg.rule135 || {})[a.kind === 'worker' ? 'worker' : rk];
      var u = unitOf({ id: a.id, kind: a.kind, resource_kind: rk, name: rec.name || a.id,
        distance_m: cc.hasPos(rec) ? metres(ev, rec) : NaN, eta_s: a.eta_s }, a.kind);
      u.rule135 = limit ? { limit_s: limit, ok: Number(a.eta_s) <= limit } : null;
      u.assigned = true;
      return u;
    });
  }

  function metres(a, b) {
    var R = 6371008.8, rad = Math.PI / 180;
    var dLat = (b.lat - a.lat) * rad, dLon = (b.lon - a.lon) * rad;
    var h = Math.sin(dLat / 2) * Math.sin(dLat / 2) +
      Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) * Math.sin(dLon / 2);
    return 2 * R * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  function renderNearby() {
    var list = $('CMD_NEARBY');
    if (!list) return;
    clear(list);
    shown.clear();
    nearbyUnits = nearbyList();
    if (!nearbyUnits.length) {
      list.appendChild(cc.make('li', 'cc-cmd-empty', cc.t('cmd.nearby_empty')));
      return;
    }
    nearbyUnits.forEach(function (u) {
      var li = unitRow(u, false);
      shown.set(u.key, li);
      list.appendChild(li);
    });
  }

  C.unitChanged = function (kind, rec) {
    if (!sel) return;
    var key = kind + ':' + rec.id;
    var li = shown.get(key);
    if (li) paintStatus(li, { kind: kind, id: rec.id }, rec);
    var task = currentTask();
    if (task && (task.assignees || []).some(function (a) { return a.kind === kind && String(a.id) === String(rec.id); })) {
      cc.schedule('cmd-loop', renderLoop);
    }
    if (li || (prop && prop.picked.has(key))) cc.schedule('cmd-overlay', renderOverlay);
    if (watch && !watch.done) checkWatch();
  };

  /* ------------------------------------------------------------- plans and timeline */

  function renderPlans() {
    var list = $('CMD_PLANS'), steps = $('CMD_STEPS');
    if (!list || !steps) return;
    clear(list);
    clear(steps);
    var plans = (info && Array.isArray(info.plans)) ? info.plans : [];
    if (!plans.length) {
      list.appendChild(cc.make('li', 'cc-cmd-empty', cc.t('cmd.plans_empty')));
      return;
    }
    plans.slice(0, K.planRows).forEach(function (m) {
      var plan = m.plan || m;
      var li = cc.make('li');
      li.setAttribute('data-plan', plan.id || '');
      var line = li.appendChild(cc.make('div', 'cc-cmd-plan-line'));
      line.appendChild(cc.make('span', 'cc-cmd-plan-name', pick(plan.name) || plan.id));
      if (isFinite(m.score)) line.appendChild(cc.make('span', 'cc-cmd-plan-score', cc.t('cmd.plan_score', { n: Number(m.score).toFixed(2) })));
      var reasons = (m.reasons || []).map(pick).filter(Boolean).join('；');
      if (reasons) li.appendChild(cc.make('div', 'cc-cmd-reasons', reasons));
      list.appendChild(li);
    });
    var best = plans[0].plan || plans[0];
    (best.steps || []).slice(0, K.stepRows).forEach(function (s) {
      var li = cc.make('li');
      li.appendChild(cc.make('span', 'cc-cmd-step-no', s.order));
      li.appendChild(cc.make('span', 'cc-cmd-step-role', pick(s.role_name) || s.role || ''));
      li.appendChild(cc.make('span', 'cc-cmd-step-act', pick(s.action)));
      li.appendChild(cc.make('span', 'cc-cmd-step-lim', s.limit_min ? cc.t('cmd.step_limit', { n: s.limit_min }) : ''));
      steps.appendChild(li);
    });
  }

  function renderTimeline() {
    var list = $('CMD_TIMELINE');
    if (!list) return;
    clear(list);
    var items = [];
    ((info && info.timeline) || []).forEach(function (e) {
      if (e && e.ts) items.push([Number(e.ts), cc.label('evst', e.status)]);
    });
    var task = currentTask();
    if (task) {
      (task.history || []).forEach(function (h) {
        if (!h || !h.ts) return;
        var text = cc.label('tkst', h.stage) + (h.by ? ' · ' + h.by : '') + (h.note ? ' · ' + h.note : '');
        items.push([Number(h.ts), text]);
      });
    }
    items.sort(function (a, b) { return b[0] - a[0]; });
    if (!items.length) list.appendChild(cc.make('li', 'cc-cmd-empty', cc.t('cmd.timeline_empty')));
    items.slice(0, K.timelineRows).forEach(function (it) {
      var li = cc.make('li');
      li.appendChild(cc.make('span', null, cc.fmtTime(it[0])));
      li.appendChild(cc.make('span', null, it[1]));
      list.appendChild(li);
    });
  }

  /* ------------------------------------------------------------- tasks and the loop */

  function currentTask() {
    if (!sel) return null;
    var id = taskOfEvent.get(sel);
    return id ? tasks.get(id) || null : null;
  }

  /* Keep a task; a frame is as new as an HTTP answer or newer (history only grows). */
  function keepTask(t, fromFrame) {
    if (!t || !t.id) return;
    var old = tasks.get(t.id);
    if (old && !fromFrame && (old.history || []).length > (t.history || []).length) return;
    tasks.delete(t.id); // re-insert: the oldest entry is evicted first
    tasks.set(t.id, t);
    if (t.event_id) taskOfEvent.set(String(t.event_id), t.id);
    if (tasks.size > K.tasksMax) pruneTasks();
  }

  function pruneTasks() {
    var over = tasks.size - K.tasksMax;
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

  function renderLoop() {
    var task = currentTask();
    var ev = sel ? cc.store.get('event', sel) : null;
    var closed = !ev || cc.cfg.closed.indexOf(ev.status) >= 0;
    var taskEl = $('CMD_TASK'), stages = $('CMD_STAGES'), who = $('CMD_ASSIGNEES');
    var redispatch = !task || task.stage === 'rejected';
    show($('CMD_DISPATCH'), !!sel && me.role === 'commander' && redispatch && !closed && !prop);
    var btn = $('CMD_DISPATCH');
    if (btn) btn.disabled = busyReq;
    if (!task) {
      cc.setText(taskEl, sel ? cc.t('cmd.no_task') : '');
      clear(stages);
      clear(who);
      show($('CMD_VERIFY_BOX'), false);
      show($('CMD_EVAL_BOX'), false);
      return;
    }
    var text = [cc.t('cmd.task_by', { task: task.id, by: task.by || '' })];
    if (task.override && task.override.reason) text.push(cc.t('cmd.override_shown', { reason: task.override.reason }));
    if (task.verify) text.push(cc.t('cmd.verified', { by: task.verify.by, result: cc.t(task.verify.passed ? 'cmd.passed' : 'cmd.failed') }));
    if (task.evaluation) text.push(cc.t('cmd.evaluated', { by: task.evaluation.by, n: task.evaluation.score }));
    cc.setText(taskEl, text.join(' · '));
    taskEl.title = taskEl.textContent;
    renderStages(stages, task);
    renderAssignees(who, task);
    var verified = !!(task.verify && task.verify.passed);
    show($('CMD_VERIFY_BOX'), canAct() && task.stage === 'handled' && !verified);
    show($('CMD_EVAL_BOX'), canAct() && verified && !task.evaluation && task.stage !== 'closed');
  }

  function renderStages(ol, task) {
    if (!ol) return;
    if (ol.children.length !== STEPS.length) {
      clear(ol);
      STEPS.forEach(function (s) {
        var li = cc.make('li');
        li.setAttribute('data-stage', s);
        ol.appendChild(li);
      });
    }
    var at = STAGE_AT[task.stage];
    if (at === undefined) at = 0;
    if (task.verify && task.verify.passed && task.stage !== 'closed') at = 4;
    var bad = !!BAD[task.stage];
    for (var i = 0; i < STEPS.length; i++) {
      var li = ol.children[i];
      var label = i === 4 ? cc.label('evst', 'verified') : cc.label('tkst', STEPS[i]);
      if (bad && i === at) label = cc.label('tkst', task.stage);
      cc.setText(li, label);
      li.className = i < at || (i === at && task.stage === 'closed') ? 'is-done'
        : i === at ? (bad ? 'is-bad' : 'is-now') : '';
    }
    ol.setAttribute('data-stage', task.stage);
  }

  function renderAssignees(ul, task) {
    if (!ul) return;
    clear(ul);
    (task.assignees || []).forEach(function (a) {
      var u = { kind: a.kind, id: String(a.id), resource_kind: a.resource_kind };
      var rec = liveRec(u);
      var li = cc.make('li');
      li.setAttribute('data-key', a.kind + ':' + a.id);
      li.setAttribute('data-stage', a.stage || '');
      li.setAttribute('data-status', (rec && rec.status) || '');
      var name = li.appendChild(cc.make('span', 'cc-cmd-name', (rec && rec.name) || a.id));
      name.appendChild(cc.make('small', null, kindLabel(u)));
      li.appendChild(cc.make('span', 'cc-cmd-num', rec ? cc.label(a.kind === 'worker' ? 'wkst' : 'rsst', rec.status) : ''));
      li.appendChild(cc.make('span', 'cc-row-status', cc.label('tkst', a.stage || task.stage)));
      ul.appendChild(li);
    });
  }

  /* ------------------------------------------------------------- proposal and dispatch */

  function openProposal() {
    if (!sel || me.role !== 'commander' || busyReq) return;
    var id = sel;
    busyReq = true;
    renderLoop();
    say(cc.t('cmd.loading'), 'info');
    call('GET', '/events/' + encodeURIComponent(id) + '/proposal').then(function (res) {
      busyReq = false;
      if (sel !== id) return;
      if (!res.ok) { say(failure(res), 'error'); renderLoop(); return; }
      say('', 'info');
      startProposal(id, res.body);
    }, function () {
      busyReq = false;
      say(cc.t('cmd.err_network'), 'error');
      renderLoop();
    });
  }

  function startProposal(id, data) {
    var rec = new Map(), alt = new Map();
    (data.calls || []).forEach(function (c) {
      (c.units || []).forEach(function (u) { var x = unitOf(u, u.kind || (c.kind === 'worker' ? 'worker' : 'resource')); rec.set(x.key, x); });
    });
    var cand = data.candidates || {};
    (cand.workers || []).forEach(function (u) { var x = unitOf(u, 'worker'); if (!rec.has(x.key)) alt.set(x.key, x); });
    (cand.resources || []).forEach(function (u) { var x = unitOf(u, 'resource'); if (!rec.has(x.key)) alt.set(x.key, x); });
    prop = { eventId: id, key: newKey(), data: data, rec: rec, alt: alt,
      picked: new Set(rec.keys()), units: new Map() };
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
    renderLoop();
    updateHint();
    cc.schedule('cmd-overlay', renderOverlay);
  }

  /* Per resource call: the recommended units, then a few other candidates of that kind. */
  function renderChoices() {
    var list = $('CMD_PROPOSAL_UNITS');
    if (!list || !prop) return;
    clear(list);
    var used = new Set();
    var calls = prop.data.calls || [];
    function row(u) {
      used.add(u.key);
      var li = unitRow(u, true);
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
    if (!prop) return false;
    var noPlan = $('CMD_NO_PLAN');
    return !sameSet(prop.picked, new Set(prop.rec.keys())) || !!(noPlan && noPlan.checked && prop.data.plan);
  }

  function updateHint() {
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
    if (btn) btn.disabled = busyReq || !!hint;
  }

  function closeProposal() {
    if (!prop) return;
    prop = null;
    show($('CMD_PROPOSAL'), false);
    show($('CMD_BODY'), true);
    var panel = $('DETAIL');
    if (panel) panel.classList.remove('is-proposing');
    clear($('CMD_PROPOSAL_UNITS'));
    renderLoop();
    cc.schedule('cmd-overlay', renderOverlay);
  }

  function confirm() {
    if (!prop || busyReq) return;
    updateHint();
    var btn = $('CMD_CONFIRM');
    if (btn && btn.disabled) return;
    var p = prop;
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
    busyReq = true;
    if (btn) btn.disabled = true;
    say(cc.t('cmd.sending'), 'info');
    watch = { t0: now(), eventId: p.eventId, units: assignees, done: false };
    call('POST', '/events/' + encodeURIComponent(p.eventId) + '/dispatch', body).then(function (res) {
      busyReq = false;
      if (res.ok && res.body.task) {
        if (watch) {
          if (httpTimes.length >= K.dispatchTimes) httpTimes.shift();
          httpTimes.push(now() - watch.t0);
        }
        keepTask(res.body.task, false);
        say(cc.t(res.body.duplicate ? 'cmd.duplicate' : 'cmd.sent', { task: res.body.task.id }), 'ok');
        if (prop === p) closeProposal();
        if (watch) watch.taskId = res.body.task.id;
        checkWatch();
        renderLoop();
        renderTimeline();
        return;
      }
      watch = null;
      var code = res.body.code;
      if (code === 'has_task' || (!code && res.status === 409 && res.body.task_id && !res.body.unit)) {
        conflictTask(res.body.task_id);
        if (prop === p) closeProposal();
      } else if (code === 'override_reason_required') {
        say(cc.t('cmd.override_needed'), 'error');
      } else if (code === 'unit_busy' || (res.status === 409 && res.body.unit)) {
        var u = p.units.get('worker:' + res.body.unit) || p.units.get('resource:' + res.body.unit);
        say(cc.t('cmd.err_unit_busy', { unit: (u && u.name) || res.body.unit }), 'error');
        if (prop === p) p.key = newKey(); // a new selection is a new request
      } else {
        say(failure(res), 'error');
      }
      updateHint();
      renderLoop();
    }, function () {
      // the request may or may not have landed: keep the key, so a retry cannot dispatch twice
      busyReq = false;
      watch = null;
      say(cc.t('cmd.err_network'), 'error');
      updateHint();
      renderLoop();
    });
  }

  function conflictTask(taskId) {
    var known = tasks.get(taskId);
    var tell = function (by) { say(cc.t('cmd.err_has_task', { by: by || cc.t('cmd.someone'), task: taskId }), 'error'); };
    if (known) { tell(known.by); return; }
    tell('');
    call('GET', '/tasks/' + encodeURIComponent(taskId)).then(function (res) {
      if (res.ok && res.body.task) { keepTask(res.body.task, false); tell(res.body.task.by); renderLoop(); }
    }, function () { /* the first message stands */ });
  }

  /* Click-to-dispatched: every unit sent shows engaged (marker and rows, from its frame). */
  function checkWatch() {
    if (!watch || watch.done || !watch.taskId) return;
    var all = watch.units.every(function (a) {
      var rec = cc.store.get(a.kind, String(a.id));
      return rec && ENGAGED[rec.status];
    });
    if (all) {
      watch.done = true;
      cc.schedule('cmd-watch', function () {});
    }
  }

  cc.onFrame(function () {
    if (!watch || !watch.done) return;
    if (times.length >= K.dispatchTimes) times.shift();
    times.push(now() - watch.t0);
    watch = null;
  });

  C.dispatchTimes = function () { return times.slice(); };
  C.dispatchHttpTimes = function () { return httpTimes.slice(); };

  /* ------------------------------------------------------------- verify, evaluate */

  function mutate(path, body, noteEl) {
    if (!sel || busyReq) return;
    busyReq = true;
    setFormsDisabled(true);
    call('POST', '/events/' + encodeURIComponent(sel) + path, body).then(function (res) {
      busyReq = false;
      setFormsDisabled(false);
      if (res.ok && res.body.task) {
        keepTask(res.body.task, false);
        if (noteEl) noteEl.value = '';
        say(cc.t('cmd.saved'), 'ok');
      } else {
        say(failure(res), 'error');
      }
      renderLoop();
      renderTimeline();
    }, function () {
      busyReq = false;
      setFormsDisabled(false);
      say(cc.t('cmd.err_network'), 'error');
    });
  }

  function setFormsDisabled(on) {
    ['CMD_VERIFY_BOX', 'CMD_EVAL_BOX'].forEach(function (n) {
      var box = $(n);
      if (box) box.querySelectorAll('button').forEach(function (b) { b.disabled = on; });
    });
  }

  /* ------------------------------------------------------------- the map overlay */

  function renderOverlay() {
    var L = window.L;
    if (!L || !cc.mapview.map()) return;
    var g = cc.mapview.overlay();
    g.clearLayers();
    var ev = sel ? cc.store.get('event', sel) : null;
    if (!ev || !cc.hasPos(ev)) return;
    var at = cc.latLng(ev.lon, ev.lat);
    var rend = cc.mapview.linkRenderer();
    var s = cc.scale;
    var far = 0;
    nearbyUnits.forEach(function (u) { far = Math.max(far, Number(u.distance_m) || 0); });
    if (far > 0) {
      g.addLayer(L.circle(at, { radius: far, renderer: rend, interactive: false, color: '#38d8ff',
        weight: 1.5 * s, opacity: 0.8, dashArray: [6 * s, 4 * s], fill: true, fillOpacity: 0.05,
        className: 'cc-cmd-ring' }));
    }
    var targets = [];
    if (prop) prop.picked.forEach(function (k) { var u = prop.units.get(k); if (u) targets.push(u); });
    else {
      var task = currentTask();
      if (task && task.stage !== 'closed') {
        (task.assignees || []).forEach(function (a) { targets.push({ kind: a.kind, id: String(a.id) }); });
      } else targets = nearbyUnits;
    }
    targets.forEach(function (u) {
      var rec = liveRec(u) || u;
      if (!cc.hasPos(rec)) return;
      g.addLayer(L.polyline([at, cc.latLng(rec.lon, rec.lat)], { renderer: rend, interactive: false,
        color: prop ? '#ffd54f' : '#5fe6ff', weight: (prop ? 2 : 1.2) * s, opacity: 0.85,
        className: 'cc-cmd-link' }));
    });
  }

  /* ------------------------------------------------------------- alerts */

  var alertEls = new Map(); // alert id → card on screen (≤ alertRows)

  function keepAlert(a) {
    if (!a || !a.id) return;
    if (a.acked_by) { alerts.delete(a.id); return; }
    var fresh = !alerts.has(a.id);
    alerts.set(a.id, a);
    if (fresh) a._new = true;
    if (alerts.size > K.alertsMax) {
      var oldest = null;
      alerts.forEach(function (x) { if (!oldest || x.ts < oldest.ts) oldest = x; });
      alerts.delete(oldest.id);
    }
  }

  function alertOrder(a, b) {
    var ra = ALERT_RANK[a.kind] === undefined ? 9 : ALERT_RANK[a.kind];
    var rb = ALERT_RANK[b.kind] === undefined ? 9 : ALERT_RANK[b.kind];
    return ra - rb || (Number(a.severity) || 4) - (Number(b.severity) || 4) || (Number(b.ts) || 0) - (Number(a.ts) || 0);
  }

  function renderAlerts() {
    var list = $('ALERTS');
    if (!list) return;
    var all = Array.from(alerts.values()).sort(alertOrder);
    var top = all.slice(0, K.alertRows);
    var keep = new Set();
    top.forEach(function (a, i) {
      keep.add(a.id);
      var li = alertEls.get(a.id);
      if (!li) { li = alertCard(a); alertEls.set(a.id, li); }
      fillAlert(li, a);
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
    });
    alertEls.forEach(function (li, id) { if (!keep.has(id)) { li.remove(); alertEls.delete(id); } });
    var empty = list.querySelector('.cc-cmd-empty');
    if (!top.length && !empty) list.appendChild(cc.make('li', 'cc-cmd-empty', cc.t('alert.empty')));
    if (top.length && empty) empty.remove();
    cc.setText($('ALERT_COUNT'), all.length ? cc.t('alert.count', { n: all.length }) : '');
    cc.setText($('ALERT_MORE'), all.length > top.length ? cc.t('alert.more', { n: all.length - top.length }) : '');
  }

  function alertCard(a) {
    var li = cc.make('li', 'cc-alert');
    li._kind = li.appendChild(cc.make('span', 'cc-alert-kind'));
    li._msg = li.appendChild(cc.make('span', 'cc-alert-msg'));
    li._ack = cc.make('button', 'cc-btn', cc.t('alert.ack'));
    li._ack.setAttribute('data-cmd', 'ack');
    li._sub = cc.make('span', 'cc-alert-sub');
    li.appendChild(li._ack);
    li.appendChild(li._sub);
    li.addEventListener('animationend', function () { li.classList.remove('is-new'); });
    if (a._new) li.classList.add('is-new');
    return li;
  }

  function fillAlert(li, a) {
    li.setAttribute('data-id', a.id);
    li.setAttribute('data-kind', a.kind || '');
    li.setAttribute('data-event', a.event_id || '');
    cc.setText(li._kind, cc.label('alert.kind', a.kind));
    cc.setText(li._msg, a.message || '');
    li.title = a.message || '';
    var ev = a.event_id ? cc.store.get('event', a.event_id) : null;
    var what = ev ? (ev.title || cc.label('type', ev.type)) : (a.subject_id || '');
    cc.setText(li._sub, cc.fmtTime(Number(a.ts)) + ' · ' + what);
    show(li._ack, canAct());
    a._new = false;
  }

  function ack(id, btn) {
    if (!id || !canAct()) return;
    if (btn) btn.disabled = true;
    call('POST', '/alerts/' + encodeURIComponent(id) + '/ack', { note: '' }).then(function (res) {
      if (btn) btn.disabled = false;
      if (res.ok) { keepAlert(res.body.alert || { id: id, acked_by: me.user || '?' }); cc.schedule('alerts', renderAlerts); }
      else say(failure(res), 'error');
    }, function () {
      if (btn) btn.disabled = false;
      say(cc.t('cmd.err_network'), 'error');
    });
  }

  /* ------------------------------------------------------------- frames */

  C.frame = function (kind, data) {
    if (kind === 'task') {
      var before = tasks.get(data.id);
      keepTask(data, true);
      if (String(data.event_id) === sel) {
        if (!before || (before.assignees || []).length !== (data.assignees || []).length ||
            (data.stage === 'closed') !== (before.stage === 'closed')) {
          cc.schedule('cmd-nearby', renderNearby);
        }
        cc.schedule('cmd-loop', renderLoop);
        cc.schedule('cmd-timeline', renderTimeline);
        cc.schedule('cmd-overlay', renderOverlay);
      }
      if (watch && !watch.done && watch.eventId === String(data.event_id)) {
        watch.taskId = watch.taskId || data.id;
        checkWatch();
      }
    } else if (kind === 'alert') {
      keepAlert(data);
      cc.schedule('alerts', renderAlerts);
    }
  };

  C.snapshot = function (taskList, alertList) {
    if (Array.isArray(taskList)) {
      var keepSel = currentTask();
      tasks.clear();
      taskOfEvent.clear();
      taskList.forEach(function (t) { keepTask(t, true); });
      if (keepSel && !tasks.has(keepSel.id)) keepTask(keepSel, true);
      cc.schedule('cmd-loop', renderLoop);
    }
    if (Array.isArray(alertList)) {
      alerts.clear();
      alertList.forEach(keepAlert);
      alerts.forEach(function (a) { a._new = false; });
      cc.schedule('alerts', renderAlerts);
    }
  };

  /* ------------------------------------------------------------- input */

  function onClick(e) {
    var t = e.target;
    var btn = t.closest && t.closest('[data-cmd]');
    if (btn && !btn.disabled) {
      switch (btn.getAttribute('data-cmd')) {
        case 'dispatch': openProposal(); return;
        case 'cancel': closeProposal(); return;
        case 'confirm': confirm(); return;
        case 'pending': { var id = nextPending(); if (id) openUrgent(id); else renderPending(); return; }
        case 'verify':
          mutate('/verify', { passed: btn.getAttribute('data-passed') === '1',
            note: ($('CMD_VERIFY_NOTE') || {}).value || '' }, $('CMD_VERIFY_NOTE'));
          return;
        case 'evaluate':
          mutate('/evaluate', { score: Number(btn.getAttribute('data-score')),
            note: ($('CMD_EVAL_NOTE') || {}).value || '' }, $('CMD_EVAL_NOTE'));
          return;
        case 'ack': {
          var card = btn.closest('.cc-alert');
          ack(card && card.getAttribute('data-id'), btn);
          return;
        }
        default: return;
      }
    }
    // a candidate row toggles its checkbox; the box itself reports through 'change'
    var row = t.closest && t.closest('.cc-cmd-pick');
    if (row && prop && t.tagName !== 'INPUT') {
      row._box.checked = !row._box.checked;
      togglePick(row.getAttribute('data-key'), row._box.checked);
      return;
    }
    var card2 = t.closest && t.closest('.cc-alert');
    if (card2) {
      var evId = card2.getAttribute('data-event');
      if (evId && cc.store.get('event', evId)) cc.select(evId, true);
    }
  }

  function togglePick(key, on) {
    if (!prop || !key) return;
    if (on) prop.picked.add(key); else prop.picked.delete(key);
    updateHint();
    cc.schedule('cmd-overlay', renderOverlay);
  }

  function onChange(e) {
    var t = e.target;
    if (t.type === 'checkbox' && t.closest && t.closest('.cc-cmd-pick')) togglePick(t.getAttribute('data-key'), t.checked);
    if (t.id === ID.CMD_NO_PLAN) updateHint();
  }

  function touched() { lastTouch = now(); }

  function input(idName, placeholder) {
    var el = document.getElementById(ID[idName]) || cc.make('input', 'cc-cmd-input');
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
    if (vbox && !cc.el(ID.CMD_VERIFY_NOTE)) vbox.insertBefore(input('CMD_VERIFY_NOTE', cc.t('cmd.verify_note')), vbox.firstChild);
    if (ebox && !cc.el(ID.CMD_EVAL_NOTE)) ebox.insertBefore(input('CMD_EVAL_NOTE', cc.t('cmd.eval_note')), ebox.firstChild);
    if (fields && !cc.el(ID.CMD_NO_PLAN)) {
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

  C.init = function () {
    ID = cc.cfg.ids;
    K = cc.cfg.command;
    buildInputs();
    document.addEventListener('click', onClick);
    document.addEventListener('change', onChange);
    document.addEventListener('input', function (e) { if (e.target.id === ID.CMD_OVERRIDE) updateHint(); });
    var panel = $('DETAIL');
    if (panel) {
      panel.addEventListener('pointerdown', touched);
      panel.addEventListener('keydown', touched);
      panel.addEventListener('animationend', function () { panel.classList.remove('is-flash'); });
    }
    // a list or map click on another event is a touch too: the commander chose it
    var list = $('EVENT_LIST');
    if (list) list.addEventListener('pointerdown', touched);
    setInterval(drainPending, 2000);
    // line widths follow the type size (a 4K wall): redraw the overlay after a resize
    window.addEventListener('resize', function () { cc.schedule('cmd-overlay', renderOverlay); });
    call('GET', '/me').then(function (res) {
      if (res.ok) { me.user = res.body.user || null; me.role = res.body.role || null; }
      renderLoop();
      cc.schedule('alerts', renderAlerts);
    }, function () { /* no session: read-only */ });
    renderAlerts();
  };

  /* Test and benchmark probes. */
  Object.defineProperties(C, {
    role: { get: function () { return me.role; } },
    proposalKey: { get: function () { return prop ? prop.key : null; } },
    taskCount: { get: function () { return tasks.size; } },
    alertCount: { get: function () { return alerts.size; } },
    pending: { get: function () { return pending.slice(); } },
    flashes: { get: function () { return flashes; } },
  });
})();
