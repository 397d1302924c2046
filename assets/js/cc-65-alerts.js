/* cc-65-alerts.js: the alert strip (docs/COMMAND-LOOP.md): open alerts from the
   snapshot and `alert` frames, capped, ranked (SOS first), the top rows on screen as cards
   reused across redraws, ack for the commander and the duty officer. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var C = cc.command, P = C.parts;
  var $ = cc.$, show = P.show;

  var ALERT_RANK = { sos: 0, sla_red: 1, critical_event: 2, geofence_exit: 3, sla_yellow: 4 };

  var alerts = new Map(); // alert id → open Alert
  var alertEls = new Map(); // alert id → card on screen (≤ alertRows)

  P.keepAlert = function (a) {
    if (!a || !a.id) return;
    if (a.acked_by) { alerts.delete(a.id); return; }
    var fresh = !alerts.has(a.id);
    alerts.set(a.id, a);
    if (fresh) a._new = true;
    if (alerts.size > P.K.alertsMax) {
      var oldest = null;
      alerts.forEach(function (x) { if (!oldest || x.ts < oldest.ts) oldest = x; });
      alerts.delete(oldest.id);
    }
  };

  /* The snapshot's alerts replace ours; none of them is new. */
  P.alertSnapshot = function (list) {
    alerts.clear();
    list.forEach(P.keepAlert);
    alerts.forEach(function (a) { a._new = false; });
    cc.schedule('alerts', P.renderAlerts);
  };

  function alertOrder(a, b) {
    var ra = ALERT_RANK[a.kind] === undefined ? 9 : ALERT_RANK[a.kind];
    var rb = ALERT_RANK[b.kind] === undefined ? 9 : ALERT_RANK[b.kind];
    return ra - rb || (Number(a.severity) || 4) - (Number(b.severity) || 4) || (Number(b.ts) || 0) - (Number(a.ts) || 0);
  }

  P.renderAlerts = function () {
    var list = $('ALERTS');
    if (!list) return;
    var all = Array.from(alerts.values()).sort(alertOrder);
    var top = all.slice(0, P.K.alertRows);
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
  };

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
    li.title = cc.setAlertText(li._msg, a);
    var ev = a.event_id ? cc.store.get('event', a.event_id) : null;
    var what = ev ? (ev.title || cc.label('type', ev.type)) : (a.subject_id || '');
    // the tooltip repeats the alert's text, feed words and all
    li.setAttribute('data-feed-title', '');
    // handed over by the duty desk: it waits for a commander (cc-82-duty.js)
    li.setAttribute('data-handed', a.handed_to_role ? '1' : '0');
    cc.setFeedText(li._sub, cc.t('alert.handed', { by: '{by}' }) + ' · ', {});
    cc.setFeedText(li._sub, (a.handed_to_role ? cc.t('alert.handed', { by: '{by}' }) + ' · ' : '') +
      cc.fmtTime(Number(a.ts)) + ' · {what}', { by: a.handed_by || '', what: what });
    show(li._ack, P.canAct());
    a._new = false;
  }

  P.ack = function (id, btn) {
    if (!id || !P.canAct()) return;
    if (btn) btn.disabled = true;
    cc.api('POST', '/alerts/' + encodeURIComponent(id) + '/ack', { note: '' }).then(function (res) {
      if (btn) btn.disabled = false;
      P.keepAlert(res.alert || { id: id, acked_by: P.me.user || '?' });
      cc.schedule('alerts', P.renderAlerts);
    }, function (err) {
      if (btn) btn.disabled = false;
      P.say(P.failure(err), 'error');
    });
  };

  Object.defineProperty(C, 'alertCount', { get: function () { return alerts.size; } });
})();
