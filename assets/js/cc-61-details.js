/* cc-61-details.js: the event the panel shows and its details (docs/COMMAND-LOOP.md):
   loading /api/events/<id>, the ranked plans and the best plan's steps, the timeline, the
   task's stages and assignees, verify / evaluate. Shared state lives on
   `cc.command.parts` (cc-60-command.js). */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var C = cc.command, P = C.parts;
  var $ = cc.$, now = P.now, say = P.say, clear = P.clear, show = P.show, pick = P.pick;

  var STEPS = ['dispatched', 'accepted', 'arrived', 'handled', 'verified', 'closed'];
  var STAGE_AT = { dispatched: 0, accepted: 1, arrived: 2, handled: 3, rework: 3,
    rejected: 0, need_support: 2, closed: 5 };
  var BAD = { rework: 1, rejected: 1, need_support: 1 };

  var infoStatus = null; // the event status `P.info` was read at
  var loadCtl = null;
  var refreshTimer = null;
  P.opened = new Set(); // events shown in the panel lately: never pushed forward again
  P.graceUntil = 0; // a closed panel stays closed a moment before a waiting event opens

  /* ------------------------------------------------------------- selection */

  C.select = function (id) {
    if (id === P.sel) return;
    if (!id && P.sel) P.graceUntil = now() + P.K.closeGraceMs;
    if (id) {
      P.opened.delete(id);
      P.opened.add(id);
      if (P.opened.size > 64) P.opened.delete(P.opened.values().next().value);
    }
    P.sel = id;
    P.info = null;
    infoStatus = null;
    if (loadCtl) { loadCtl.abort(); loadCtl = null; }
    clearTimeout(refreshTimer);
    refreshTimer = null;
    P.closeProposal();
    say('', 'info');
    P.unpend(id);
    P.resetNearby();
    if (cc.video) cc.video.panelEvent(id, null); // live video tiles (cc-67)
    ['CMD_NEARBY', 'CMD_PLANS', 'CMD_STEPS', 'CMD_TIMELINE'].forEach(function (n) { clear($(n)); });
    if (id) {
      say(cc.t('cmd.loading'), 'info');
      load(id);
    }
    P.renderLoop();
    cc.schedule('cmd-overlay', P.renderOverlay);
  };

  C.selected = function () { return P.sel; };

  function load(id) {
    if (loadCtl) loadCtl.abort();
    var ctl = (loadCtl = new AbortController());
    var rec = cc.store.get('event', id);
    var status = rec ? rec.status : null;
    cc.api('GET', '/events/' + encodeURIComponent(id), undefined, { signal: ctl.signal, strict: true })
      .then(function (body) {
        if (P.sel !== id || ctl !== loadCtl) return;
        loadCtl = null;
        var info = (P.info = body);
        infoStatus = status;
        if (info.task && info.task.id) P.keepTask(info.task, false);
        // clear only our own "loading": a dispatch answer or a 409 stays readable
        var msg = $('CMD_MSG');
        if (msg && msg.textContent === cc.t('cmd.loading')) say('', 'info');
        P.renderNearby();
        if (cc.video) cc.video.panelEvent(id, info);
        renderPlans();
        P.renderTimeline();
        P.renderLoop();
        cc.schedule('cmd-overlay', P.renderOverlay);
      })
      .catch(function (e) {
        if (e && e.name === 'AbortError') return;
        if (e && e.status) { // an answer, but no details (a 404 …): only this load's to tell
          if (P.sel !== id || ctl !== loadCtl) return;
          loadCtl = null;
        }
        if (P.sel === id) say(cc.t('cmd.err_load'), 'error');
      });
  }

  /* Re-read the selected event after it changed (timeline, plans, who is nearby now). */
  function refreshSoon() {
    if (!P.sel || refreshTimer) return;
    var id = P.sel;
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      if (P.sel === id) load(id);
    }, P.K.refreshMs);
  }

  C.eventChanged = function (rec, arrivedOpen) {
    if (!rec) return;
    if (rec.id === P.sel && P.info && rec.status !== infoStatus) {
      infoStatus = rec.status;
      refreshSoon();
      P.renderLoop();
    }
    // a replay shows what arrived but takes neither the panel nor the map: at ×60 urgent
    // events would fly the map about every few seconds (the bar's "next alert" goes to them)
    if (arrivedOpen && !cc.store.replaying() &&
        cc.cfg.urgent.indexOf(Number(rec.severity)) >= 0) P.urgent(rec);
  };

  /* ------------------------------------------------------------- plans and timeline */

  function renderPlans() {
    var list = $('CMD_PLANS'), steps = $('CMD_STEPS');
    if (!list || !steps) return;
    clear(list);
    clear(steps);
    var info = P.info;
    var plans = (info && Array.isArray(info.plans)) ? info.plans : [];
    if (!plans.length) {
      list.appendChild(cc.make('li', 'cc-cmd-empty', cc.t('cmd.plans_empty')));
      return;
    }
    plans.slice(0, P.K.planRows).forEach(function (m) {
      var plan = m.plan || m;
      var li = cc.make('li');
      li.setAttribute('data-plan', plan.id || '');
      var line = li.appendChild(cc.make('div', 'cc-cmd-plan-line'));
      line.appendChild(cc.make('span', 'cc-cmd-plan-name', pick(plan.name) || plan.id));
      if (isFinite(m.score)) line.appendChild(cc.make('span', 'cc-cmd-plan-score', cc.t('cmd.plan_score', { n: cc.fmtInt(m.score) })));
      var reasons = (m.reasons || []).map(pick).filter(Boolean).join(cc.t('sep.clauses'));
      if (reasons) li.appendChild(cc.make('div', 'cc-cmd-reasons', reasons));
      list.appendChild(li);
    });
    var best = plans[0].plan || plans[0];
    (best.steps || []).slice(0, P.K.stepRows).forEach(function (s) {
      var li = cc.make('li');
      li.appendChild(cc.make('span', 'cc-cmd-step-no', s.order));
      li.appendChild(cc.make('span', 'cc-cmd-step-role', pick(s.role_name) || s.role || ''));
      li.appendChild(cc.make('span', 'cc-cmd-step-act', pick(s.action)));
      li.appendChild(cc.make('span', 'cc-cmd-step-lim', s.limit_min ? cc.t('cmd.step_limit', { n: s.limit_min }) : ''));
      steps.appendChild(li);
    });
  }

  P.renderTimeline = function () {
    var list = $('CMD_TIMELINE');
    if (!list) return;
    clear(list);
    var items = [];
    ((P.info && P.info.timeline) || []).forEach(function (e) {
      if (e && e.ts) items.push([Number(e.ts), cc.label('evst', e.status)]);
    });
    var task = P.currentTask();
    if (task) {
      (task.history || []).forEach(function (h) {
        if (!h || !h.ts) return;
        var text = cc.label('tkst', h.stage) + (h.by ? ' · ' + h.by : '') + (h.note ? ' · ' + h.note : '');
        items.push([Number(h.ts), text]);
      });
    }
    items.sort(function (a, b) { return b[0] - a[0]; });
    if (!items.length) list.appendChild(cc.make('li', 'cc-cmd-empty', cc.t('cmd.timeline_empty')));
    items.slice(0, P.K.timelineRows).forEach(function (it) {
      var li = cc.make('li');
      li.appendChild(cc.make('span', null, cc.fmtTime(it[0])));
      li.appendChild(cc.make('span', null, it[1]));
      list.appendChild(li);
    });
  };

  /* ------------------------------------------------------------- the task's loop */

  P.renderLoop = function () {
    var task = P.currentTask();
    var ev = P.sel ? cc.store.get('event', P.sel) : null;
    var closed = !ev || cc.cfg.closed.indexOf(ev.status) >= 0;
    var taskEl = $('CMD_TASK'), stages = $('CMD_STAGES'), who = $('CMD_ASSIGNEES');
    var redispatch = !task || task.stage === 'rejected';
    show($('CMD_DISPATCH'), !!P.sel && P.me.role === 'commander' && redispatch && !closed && !P.prop);
    var btn = $('CMD_DISPATCH');
    if (btn) btn.disabled = P.busyReq;
    if (!task) {
      cc.setText(taskEl, P.sel ? cc.t('cmd.no_task') : '');
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
    show($('CMD_VERIFY_BOX'), P.canAct() && task.stage === 'handled' && !verified);
    show($('CMD_EVAL_BOX'), P.canAct() && verified && !task.evaluation && task.stage !== 'closed');
  };

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
      var rec = P.liveRec(u);
      var li = cc.make('li');
      li.setAttribute('data-key', a.kind + ':' + a.id);
      li.setAttribute('data-stage', a.stage || '');
      li.setAttribute('data-status', (rec && rec.status) || '');
      var name = li.appendChild(cc.make('span', 'cc-cmd-name', (rec && rec.name) || a.id));
      name.appendChild(cc.make('small', null, P.kindLabel(u)));
      li.appendChild(cc.make('span', 'cc-cmd-num', rec ? cc.label(a.kind === 'worker' ? 'wkst' : 'rsst', rec.status) : ''));
      li.appendChild(cc.make('span', 'cc-row-status', cc.label('tkst', a.stage || task.stage)));
      ul.appendChild(li);
    });
  }

  /* ------------------------------------------------------------- verify, evaluate */

  P.mutate = function (path, body, noteEl) {
    if (!P.sel || P.busyReq) return;
    P.busyReq = true;
    setFormsDisabled(true);
    cc.api('POST', '/events/' + encodeURIComponent(P.sel) + path, body, { need: 'task' }).then(function (res) {
      P.busyReq = false;
      setFormsDisabled(false);
      P.keepTask(res.task, false);
      if (noteEl) noteEl.value = '';
      say(cc.t('cmd.saved'), 'ok');
      P.renderLoop();
      P.renderTimeline();
    }, function (err) {
      P.busyReq = false;
      setFormsDisabled(false);
      say(P.failure(err), 'error');
      if (!err.status) return; // no answer: nothing to redraw
      P.renderLoop();
      P.renderTimeline();
    });
  };

  function setFormsDisabled(on) {
    ['CMD_VERIFY_BOX', 'CMD_EVAL_BOX'].forEach(function (n) {
      var box = $(n);
      if (box) box.querySelectorAll('button').forEach(function (b) { b.disabled = on; });
    });
  }
})();
