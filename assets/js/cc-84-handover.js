/* cc-84-handover.js: the shift handover page, /duty/handover (docs/DUTY.md).

   Shows the report in hand: the one open for acceptance, else this shift's, else a button
   to draft it (生成交接单). The author edits the remarks and summary and signs (签字交班);
   another duty officer accepts (签字接班). Past reports are listed with a print link. The
   server decides every rule (who may sign, accept, edit); the page only hides what would
   be refused. Every text goes in through textContent. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var H = (cc.handover = {});
  var $ = cc.$;

  var ID = null, K = null, me = null;
  var list = [], shift = null, current = null, chosen = null;
  var timer = null, busy = false, dirty = false;
  var drawnWithDraft = null; // whether the actions were drawn with the draft button

  function clear(el) { while (el && el.firstChild) el.removeChild(el.firstChild); return el; }

  function message(text, level) {
    var el = $('HO_MSG');
    cc.setText(el, text || '');
    if (el) el.setAttribute('data-level', level || 'info');
  }

  function when(ms) {
    if (typeof ms !== 'number') return '—';
    var p = cc.timeParts(ms);
    return p.month + '-' + p.day + ' ' + p.hour + ':' + p.minute;
  }

  function printUrl(id) { return K.print.replace('{id}', encodeURIComponent(id)); }

  function shiftName(duty) {
    return (duty && duty.shift_names && duty.shift_names[cc.cfg.lang]) || (duty && duty.shift_name) || '';
  }

  /* A shift's line into `el`: the people's names are feed text (cc.setFeedText). */
  function crew(el, duty) {
    if (!duty) { cc.setText(el, '—'); return el; }
    var feed = {};
    var names = cc.namesTemplate((duty.officers || []).map(function (o) { return o.name; }), feed);
    if (duty.leader) feed.lead = duty.leader.name;
    cc.setFeedText(el, duty.date + ' ' + shiftName(duty) + ' · ' + names +
      (duty.leader ? ' · ' + cc.t('roster.leader') + ' {lead}' : ''), feed);
    return el;
  }

  /* ------------------------------------------------------------- the report */

  function row(parts, cls) {
    var li = cc.make('li', 'cc-ho-item' + (cls ? ' ' + cls : ''));
    parts.forEach(function (p) {
      var span = li.appendChild(cc.make('span', p[0], p[1]));
      if (/\bis-feed\b/.test(p[0])) span.setAttribute('data-feed', '');
    });
    return li;
  }

  function itemRow(name, it) {
    var stamp = name === 'closed' ? it.closed : it.reported;
    var parts = [['cc-ho-c-time', when(stamp)], ['cc-ho-c-id', it.id],
      ['cc-ho-c-title' + (it.title ? ' is-feed' : ''), it.title || cc.label('type', it.type)],
      ['cc-ho-c-level cc-sv-' + (it.severity || 0), it.severity ? cc.label('sev', it.severity) : ''],
      ['cc-ho-c-status', cc.label('evst', it.status)]];
    if (typeof it.open_s === 'number' && name !== 'opened' && name !== 'closed') {
      parts.push(['cc-ho-c-age', cc.fmtDuration(it.open_s * 1000)]);
    }
    var li = row(parts, it.overdue ? 'is-overdue' : '');
    li.setAttribute('data-id', it.id);
    return li;
  }

  function alarmRow(a) {
    var li = row([['cc-ho-c-time', when(a.ts)], ['cc-ho-c-kind', cc.label('alert.kind', a.kind)],
      ['cc-ho-c-title', '']], 'cc-ho-k-' + a.kind);
    cc.setAlertText(li.querySelector('.cc-ho-c-title'), a);
    li.setAttribute('data-id', a.id);
    return li;
  }

  function noteRow(n) {
    var li = row([['cc-ho-c-time', when(n.ts)], ['cc-ho-c-by is-feed', n.by || ''],
      ['cc-ho-c-title is-feed', n.text || '']]);
    li.setAttribute('data-id', n.alert_id);
    return li;
  }

  function drawReport(rep) {
    var box = clear($('HO_REPORT'));
    var meta = clear($('HO_META'));
    var root = $('HANDOVER_ROOT');
    if (!rep) {
      root.removeAttribute('data-report');
      root.removeAttribute('data-state');
      meta.appendChild(cc.make('div', 'cc-ho-none', cc.t('handover.no_current')));
      if (shift) {
        var line = meta.appendChild(cc.make('div', 'cc-ho-line', cc.t('handover.outgoing') + ': '));
        line.appendChild(crew(cc.make('span'), shift));
      }
      return;
    }
    root.setAttribute('data-report', rep.id);
    root.setAttribute('data-state', rep.state);
    var lines = [
      [cc.t('handover.window'), when(rep.from) + ' — ' + when(rep.to)],
      [cc.t('handover.outgoing'), crew(cc.make('span', 'cc-ho-val'), rep.shift)],
      [cc.t('handover.incoming'), crew(cc.make('span', 'cc-ho-val'), rep.incoming)],
    ];
    var head = meta.appendChild(cc.make('div', 'cc-ho-head'));
    var chip = head.appendChild(cc.make('span', 'cc-ho-state', cc.t('handover.state.' + rep.state)));
    chip.setAttribute('data-state', rep.state);
    head.appendChild(cc.make('span', 'cc-ho-id', rep.id));
    head.appendChild(cc.make('span', 'cc-ho-gen', cc.t('handover.generated', { time: when(rep.generated) })));
    if (rep.intact === false) {
      head.appendChild(cc.make('span', 'cc-ho-tampered',
        cc.t(rep.unverifiable ? 'handover.unverifiable' : 'handover.tampered')));
    }
    var pr = head.appendChild(cc.make('a', 'cc-vw-btn cc-ho-print', cc.t('handover.print')));
    pr.href = printUrl(rep.id);
    pr.target = '_blank';
    pr.rel = 'noopener';
    lines.forEach(function (l) {
      var d = meta.appendChild(cc.make('div', 'cc-ho-line'));
      d.appendChild(cc.make('span', 'cc-ho-key', l[0]));
      d.appendChild(typeof l[1] === 'string' ? cc.make('span', 'cc-ho-val', l[1]) : l[1]);
    });
    K.sections.forEach(function (name) {
      var sec = (rep.sections || {})[name] || { items: [], total: 0, more: 0 };
      var part = box.appendChild(cc.make('section', 'cc-ho-sec cc-ho-s-' + name));
      part.setAttribute('data-section', name);
      var h = part.appendChild(cc.make('h3', 'cc-ho-sec-head'));
      h.appendChild(cc.make('span', '', cc.t('handover.sec.' + name)));
      h.appendChild(cc.make('span', 'cc-ho-count', String(sec.total)));
      var ol = part.appendChild(cc.make('ol', 'cc-ho-items'));
      if (!sec.items.length) ol.appendChild(cc.make('li', 'cc-ho-empty', cc.t('handover.none')));
      sec.items.forEach(function (it) {
        ol.appendChild(name === 'alarms' ? alarmRow(it) : name === 'notes' ? noteRow(it) : itemRow(name, it));
      });
      if (sec.more) ol.appendChild(cc.make('li', 'cc-ho-more', cc.t('handover.more', { n: sec.more })));
    });
  }

  /* ------------------------------------------------------------- the actions */

  function button(label, cls, fn) {
    var b = cc.make('button', 'cc-vw-btn cc-ho-btn ' + cls, label);
    b.type = 'button';
    b.addEventListener('click', function () { if (!busy) fn(b); });
    return b;
  }

  function field(label, name, value, editable) {
    var wrap = cc.make('label', 'cc-ho-field cc-ho-f-' + name);
    wrap.appendChild(cc.make('span', 'cc-ho-key', label));
    var area = wrap.appendChild(cc.make('textarea', 'cc-ho-text'));
    area.name = name;
    area.value = value || '';
    area.maxLength = 4000;
    area.readOnly = !editable;
    area.addEventListener('input', function () { dirty = true; });
    return wrap;
  }

  function signature(label, s, cls) {
    var d = cc.make('div', 'cc-ho-sig ' + cls);
    d.appendChild(cc.make('span', 'cc-ho-key', label));
    d.appendChild(cc.make('span', 'cc-ho-val', s ? s.name + ' (' + s.by + ') ' + when(s.ts) : cc.t('handover.unsigned')));
    return d;
  }

  function shiftHasReport() {
    return !!shift && list.some(function (h) { return h.from === shift.from && h.to === shift.to; });
  }

  function drawActions(rep) {
    var box = clear($('HO_ACTIONS'));
    drawnWithDraft = !shiftHasReport();
    if (drawnWithDraft) {
      box.appendChild(button(cc.t('handover.draft_btn'), 'cc-ho-draft is-primary', draftNow));
    }
    if (!rep) return;
    var editable = rep.state === 'draft' && rep.author === me;
    box.appendChild(field(cc.t('handover.summary'), 'summary', rep.summary, editable));
    box.appendChild(field(cc.t('handover.remarks'), 'remarks', rep.remarks, editable));
    var row = box.appendChild(cc.make('div', 'cc-ho-buttons'));
    if (editable) {
      row.appendChild(button(cc.t('handover.save'), 'cc-ho-save', function () { save(false); }));
      row.appendChild(button(cc.t('handover.refresh'), 'cc-ho-refresh', function () { save(true); }));
      row.appendChild(button(cc.t('handover.sign_btn'), 'cc-ho-sign is-primary', sign));
    }
    if (rep.state === 'signed' && rep.author !== me) {
      row.appendChild(button(cc.t('handover.accept_btn'), 'cc-ho-accept is-primary', accept));
    }
    if (rep.state === 'signed' && rep.author === me) {
      box.appendChild(cc.make('div', 'cc-ho-hint', cc.t('handover.own')));
    }
    box.appendChild(signature(cc.t('handover.signed_by'), rep.signed, 'cc-ho-sig-out'));
    box.appendChild(signature(cc.t('handover.accepted_by'), rep.accepted, 'cc-ho-sig-in'));
  }

  function texts() {
    var out = {};
    document.querySelectorAll('#' + ID.HO_ACTIONS + ' textarea').forEach(function (a) { out[a.name] = a.value; });
    return out;
  }

  /* A request that changes the report (a cc.api promise): the report it answers is shown. */
  function act(promise, okText) {
    busy = true;
    return promise.then(function (res) {
      busy = false;
      dirty = false;
      message(okText || '', 'info');
      current = res.handover;
      chosen = current.id;
      draw();
      return refresh();
    }, function (err) {
      busy = false;
      // refused: the server's words for why; no answer: the browser's
      var why = err.status ? err.error || err.status : err.message;
      message(cc.t('handover.failed', { error: why }), 'warn');
      return null;
    });
  }

  function draftNow() { return act(cc.api('POST', '/handover', {}), ''); }

  function save(again) {
    var body = texts();
    if (again) body.refresh = true;
    return act(cc.api('PUT', '/handover/' + encodeURIComponent(current.id), body), cc.t('handover.saved'));
  }

  function sign() {
    // the remarks as typed are saved first: a signature covers what the officer saw
    var id = encodeURIComponent(current.id);
    busy = true;
    return cc.api('PUT', '/handover/' + id, texts()).then(function () {
      busy = false;
      // no body: cc.api's X-Requested-With is what the server lets through
      return act(cc.api('POST', '/handover/' + id + '/sign'), cc.t('handover.state.signed'));
    }, function (err) {
      busy = false;
      return act(Promise.reject(err));
    });
  }

  function accept() {
    return act(cc.api('POST', '/handover/' + encodeURIComponent(current.id) + '/accept', {}),
      cc.t('handover.state.accepted'));
  }

  /* ------------------------------------------------------------- the list */

  function drawHistory() {
    var ol = clear($('HO_HISTORY'));
    if (!list.length) ol.appendChild(cc.make('li', 'cc-ho-empty', cc.t('handover.none')));
    list.forEach(function (h) {
      var li = ol.appendChild(cc.make('li', 'cc-ho-hist' + (current && h.id === current.id ? ' is-on' : '')));
      li.setAttribute('data-id', h.id);
      li.setAttribute('data-state', h.state);
      var pick = li.appendChild(cc.make('a', 'cc-ho-hist-pick', when(h.from) + ' ' + shiftName(h.shift)));
      pick.href = '#';
      pick.addEventListener('click', function (e) { e.preventDefault(); if (!dirty) open(h.id); });
      li.appendChild(cc.feedSpan('cc-ho-hist-who', h.author_name || h.author));
      li.appendChild(cc.make('span', 'cc-ho-state', cc.t('handover.state.' + h.state))).setAttribute('data-state', h.state);
      var pr = li.appendChild(cc.make('a', 'cc-ho-hist-print', cc.t('handover.print')));
      pr.href = printUrl(h.id);
      pr.target = '_blank';
      pr.rel = 'noopener';
    });
  }

  /* The report in hand: the one picked, else one awaiting acceptance, else this shift's. */
  function pick() {
    if (chosen && list.some(function (h) { return h.id === chosen; })) return chosen;
    var waiting = list.filter(function (h) { return h.state === 'signed'; })[0];
    if (waiting) return waiting.id;
    var mine = shift && list.filter(function (h) { return h.from === shift.from && h.to === shift.to; })[0];
    return mine ? mine.id : null;
  }

  function open(id) {
    chosen = id;
    return cc.api('GET', '/handover/' + encodeURIComponent(id)).then(function (res) {
      current = res.handover;
      draw();
    }, function (err) {
      if (!err.status) throw err; // no answer: the caller says so
      message(cc.t('handover.failed', { error: err.error || err.status }), 'warn');
    });
  }

  function draw() {
    drawReport(current);
    drawActions(current);
    drawHistory();
  }

  function refresh() {
    clearTimeout(timer);
    return cc.api('GET', '/handover?limit=' + K.history + '&lang=' + encodeURIComponent(cc.cfg.lang))
      .then(function (res) {
        list = res.handovers || [];
        shift = res.shift;
        var id = pick();
        var same = current && id === current.id && list.some(function (h) {
          return h.id === id && h.updated === current.updated;
        });
        if (!id) { current = null; draw(); return null; }
        if (same || dirty) { // never redraw under the typist
          if (!dirty && drawnWithDraft === shiftHasReport()) drawActions(current);
          drawHistory();
          return null;
        }
        return open(id);
      })
      .catch(function (e) {
        // refused: the server's error (none: nothing said); no answer: what failed
        var why = e && e.status ? e.error || '' : e && e.message;
        console.warn('handover: not loaded', why);
        message(cc.t('handover.failed', { error: why }), 'warn');
      })
      .then(function () { timer = setTimeout(refresh, K.pollMs); });
  }

  H.refresh = refresh;
  H.current = function () { return current; };

  H.init = function () {
    ID = cc.cfg.ids;
    K = cc.cfg.handover;
    me = cc.cfg.session && cc.cfg.session.user;
    chosen = new URLSearchParams(location.search).get('id') || null;
    message(cc.t('handover.loading'), 'info');
    refresh().then(function () {
      var el = $('HO_MSG');
      if (el && el.textContent === cc.t('handover.loading')) message('', 'info');
    });
  };

  cc.pages = cc.pages || {};
  cc.pages.handover = { init: H.init };
})();
