/* cc-62-urgent.js: urgent events opening the panel (docs/COMMAND-LOOP.md).

   A level I/II event arriving live opens the panel (with a flash) unless the commander
   touched the panel for another event within `command.lockS` seconds, has a form open, or
   the last auto-opened event has not had its lockS on screen; then it waits as a blinking
   chip in the panel head and takes over once the panel has been left alone that long. More
   than `floodN` urgent arrivals within `settleMs` only count on the chip. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var C = cc.command, P = C.parts;
  var $ = cc.$, now = P.now, show = P.show;

  var pending = []; // urgent event ids waiting for the panel
  var lastTouch = -1e9; // performance.now() of the commander's last touch of the panel
  var burst = [], burstN = 0, burstTimer = null;
  var deferred = false; // pending events that may take the panel once it is left alone
  var holdUntil = 0;
  var flashes = 0;

  P.touched = function () { lastTouch = now(); };

  function panelBusy() {
    if (!P.sel) return false;
    if (P.prop || P.busyReq) return true;
    var a = document.activeElement;
    var panel = $('DETAIL');
    if (a && panel && panel.contains(a) && a.tagName === 'INPUT' && a.value) return true;
    // the commander's own use, or the last urgent event's own time on screen
    return now() - lastTouch < P.K.lockS * 1000 || now() < holdUntil;
  }

  /* Urgent arrivals settle for a moment first: one or two open the panel, a flood (a drill
     import, a replay after an outage) only counts on the chip, never flips the panel. */
  P.urgent = function (rec) {
    burstN++;
    if (burst.indexOf(rec.id) < 0 && burst.length < P.K.pendingMax * 4) burst.push(rec.id);
    if (!burstTimer) burstTimer = setTimeout(settle, P.K.settleMs);
  };

  function settle() {
    burstTimer = null;
    var ids = burst, n = burstN;
    burst = [];
    burstN = 0;
    ids.forEach(function (id) {
      if (P.opened.has(id)) return; // the commander already has it, or had it
      pending = pending.filter(function (p) { return p !== id; });
      pending.push(id);
    });
    if (!pending.length) { renderPending(); return; }
    while (pending.length > P.K.pendingMax) pending.shift();
    if (n <= P.K.floodN && !panelBusy() && now() >= P.graceUntil) {
      var id = nextPending();
      if (id) { openUrgent(id); return; }
    } else if (n <= P.K.floodN) {
      deferred = true;
    }
    renderPending();
    flash();
  }

  function openUrgent(id) {
    pending = pending.filter(function (p) { return p !== id; });
    if (!pending.length) deferred = false;
    renderPending();
    holdUntil = now() + P.K.lockS * 1000;
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

  /* The chip's click: the next waiting event, now. */
  P.openNextPending = function () {
    var id = nextPending();
    if (id) openUrgent(id); else renderPending();
  };

  P.drainPending = function () {
    if (!deferred || !pending.length || panelBusy() || now() < P.graceUntil) return;
    var id = nextPending();
    if (id) openUrgent(id);
    else { deferred = false; renderPending(); }
  };

  /* The panel now shows `id` (or nothing): it no longer waits. */
  P.unpend = function (id) {
    pending = pending.filter(function (p) { return p !== id; });
    renderPending();
  };

  function renderPending() {
    var chip = $('CMD_PENDING');
    show(chip, pending.length > 0);
    cc.setText(chip, pending.length ? cc.t('cmd.pending', { n: pending.length }) : '');
  }

  function flash() {
    flashes++;
    var panel = $('DETAIL');
    if (!panel) return;
    panel.classList.remove('is-flash');
    void panel.offsetWidth; // restart the animation
    panel.classList.add('is-flash');
  }

  Object.defineProperties(C, {
    pending: { get: function () { return pending.slice(); } },
    flashes: { get: function () { return flashes; } },
  });
})();
