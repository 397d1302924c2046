/* cc-90-rotate.js: the page rotation's player (/rotate?p=… and /rotate/<name>,
   docs/ROTATION.md).

   Each page is shown in a frame of its own: a whole document, loaded fresh, that takes its
   websocket, timers and map with it when the frame is removed (its socket closes itself on
   pagehide, cc-40). This page only holds the frames, the corner indicator and one socket
   for `alert` frames, so what lives for weeks on a kiosk is small and fixed: one timer, one
   message listener, at most two frames (the one shown and the next, loading beneath it
   until it says it has drawn, cc-55), a capped map of urgent alerts.

   An urgent event — an unacknowledged `critical_event` alert of level I/II raised for the
   event itself, the alert the wall's event panel opens for and every desk acknowledges —
   interrupts: the wall focused on it (`/?event=ID`) is shown and held until that alert is
   acknowledged by anyone, then the rotation resumes at the page it left, for a full
   interval. A pause (the button) ends by itself after pauseMaxS. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var R = (cc.rotate = {});
  var $ = cc.$;

  var TICK_MS = 250;
  var URGENT_MAX = 200;

  var K = null; // cc.cfg.rotate
  var slides = [];
  var index = 0;
  var state = 'loading'; // loading | running | paused | held | error
  var dueAt = 0; // performance.now() when the shown slide's time is up
  var left = 0; // ms the slide had left when paused
  var pausedUntil = 0;
  var shown = null, next = null; // frames: {el, url, slide, timer}
  var urgent = new Map(); // alert id → open urgent alert
  var heldOn = null; // the alert the held wall shows
  var resumeAt = 0; // the slide to go back to after a hold
  var swaps = 0;

  function now() { return performance.now(); }

  /* ------------------------------------------------------------- the plan */

  function planPath() {
    if (K.name) return '/rotations/' + encodeURIComponent(K.name);
    return '/rotation?p=' + encodeURIComponent(K.spec || '') + (K.s ? '&s=' + encodeURIComponent(K.s) : '');
  }

  function failure(err) {
    if (!err || !err.status) return cc.t('rot.err.network');
    var key = 'rot.err.' + (err.code || '');
    return Object.prototype.hasOwnProperty.call(cc.strings, key) ? cc.t(key) : (err.error || String(err.status));
  }

  /* Read the slides (again, at each new cycle of a saved rotation: a commander may have
     changed it). A failure later keeps the slides it had: an unattended wall keeps going. */
  function readPlan(then) {
    cc.api('GET', planPath(), undefined, { strict: true }).then(function (res) {
      if (Array.isArray(res.slides) && res.slides.length) slides = res.slides;
      if (index >= slides.length) index = 0;
      showMsg(null);
      then();
    }, function (err) {
      if (!slides.length) {
        state = 'error';
        showMsg(cc.t('rot.err_read', { msg: failure(err) }));
        render();
        return;
      }
      then();
    });
  }

  function showMsg(text) {
    var el = $('ROT_MSG');
    if (!el) return;
    el.hidden = !text;
    cc.setText(el, text || '');
  }

  /* ------------------------------------------------------------- frames */

  function withLang(path) {
    return path + (path.indexOf('?') >= 0 ? '&' : '?') + 'lang=' + encodeURIComponent(cc.cfg.lang);
  }

  /* Load `url` beneath the page shown; it takes over once it says it is ready (or after
     readyTimeoutMs). The same page again is not reloaded. */
  function load(url, slide) {
    if (shown && shown.url === url && !next) {
      begin(slide);
      return;
    }
    if (next) drop(next);
    var el = document.createElement('iframe');
    el.className = 'cc-rot-frame is-next';
    el.setAttribute('title', slide ? label(slide) : cc.t('rot.page.wall'));
    el.src = url;
    var frame = { el: el, url: url, slide: slide, timer: 0 };
    frame.timer = setTimeout(function () { reveal(frame); }, K.readyTimeoutMs);
    next = frame;
    $('ROT_STAGE').appendChild(el);
    render();
  }

  function reveal(frame) {
    if (next !== frame) return;
    clearTimeout(frame.timer);
    next = null;
    frame.el.classList.remove('is-next');
    if (shown) drop(shown);
    shown = frame;
    swaps++;
    begin(frame.slide);
  }

  /* Remove a frame: its document is discarded, and with it the page's socket (the browser
     drops it at once: tests/rotation rot101 counts the relay's sockets), timers and map. */
  function drop(frame) {
    clearTimeout(frame.timer);
    frame.el.remove();
  }

  function begin(slide) {
    var ms = (slide ? slide.seconds : 30) * 1000;
    if (state === 'held') { render(); return; }
    if (state === 'paused') { left = ms; render(); return; } // paused while it loaded
    state = 'running';
    dueAt = now() + ms;
    render();
  }

  function onMessage(e) {
    if (e.origin !== location.origin || !next || e.source !== next.el.contentWindow) return;
    if (e.data && e.data.type === 'cc-ready') reveal(next);
  }

  /* ------------------------------------------------------------- moving on */

  function showSlide(i) {
    index = i;
    var slide = slides[index];
    if (slide) load(withLang(slide.path), slide);
  }

  function advance() {
    var i = (index + 1) % slides.length;
    dueAt = Infinity; // until the next page is shown
    if (i === 0 && K.name) readPlan(function () { if (state === 'running') showSlide(0); });
    else showSlide(i);
  }

  function tick() {
    var t = now();
    if (state === 'paused' && t >= pausedUntil) resume();
    if (state === 'running' && !next && slides.length > 1 && t >= dueAt) advance();
    render();
  }

  function pause() {
    if (state !== 'running') return;
    left = Math.max(0, dueAt - now());
    state = 'paused';
    pausedUntil = now() + K.pauseMaxS * 1000;
    render();
  }

  function resume() {
    if (state !== 'paused') return;
    state = 'running';
    dueAt = now() + left;
    render();
  }

  /* ------------------------------------------------------------- urgent events */

  function isUrgent(a) {
    return !!(a && a.kind === 'critical_event' && !a.acked_by && a.event_id &&
      a.subject_id === a.event_id && cc.cfg.urgent.indexOf(Number(a.severity)) >= 0);
  }

  function keep(a) {
    if (!a || !a.id) return;
    if (!isUrgent(a)) { urgent.delete(a.id); return; }
    urgent.set(a.id, a);
    if (urgent.size > URGENT_MAX) urgent.delete(urgent.keys().next().value);
  }

  /* The gravest, then newest, open urgent alert. */
  function gravest() {
    var best = null;
    urgent.forEach(function (a) {
      if (!best || Number(a.severity) < Number(best.severity) ||
        (Number(a.severity) === Number(best.severity) && Number(a.ts) > Number(best.ts))) best = a;
    });
    return best;
  }

  function reconsider() {
    var pick = gravest();
    if (pick && (state !== 'held' || pick.id !== heldOn)) {
      if (state !== 'held') resumeAt = index;
      state = 'held';
      heldOn = pick.id;
      load(withLang('/?event=' + encodeURIComponent(pick.event_id)), null);
    } else if (!pick && state === 'held') {
      heldOn = null;
      state = 'running';
      if (slides.length) showSlide(resumeAt < slides.length ? resumeAt : 0);
      else readPlan(function () { showSlide(0); });
    }
    render();
  }

  function onStore(kind, op, rec) {
    if (kind === 'snapshot') {
      urgent.clear();
      (rec.alerts || []).forEach(keep);
      reconsider();
    } else if (kind === 'alert') {
      keep(rec);
      reconsider();
    }
  }

  /* ------------------------------------------------------------- the indicator */

  function label(slide) {
    return cc.t('rot.page.' + slide.page) + (slide.name ? ' · ' + slide.name : '');
  }

  function mmss(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    var m = Math.floor(s / 60);
    s %= 60;
    return m + ':' + (s < 10 ? '0' : '') + s;
  }

  function render() {
    var root = $('ROT_ROOT');
    cc.setAttr(root, 'data-state', state);
    cc.setAttr(root, 'data-index', String(index));
    var slide = slides[index];
    var what = '', when = '', held = null;
    if (state === 'held') {
      var a = urgent.get(heldOn);
      // the alert's text in the page's language, its feed words marked (cc.alertTemplate)
      held = a ? cc.alertTemplate(a) : ['', {}];
      what = cc.t('rot.held_what', { msg: held[0] });
      when = cc.t('rot.held');
    } else if (slide) {
      what = cc.t('rot.what', { i: index + 1, n: slides.length, page: label(slide) });
      if (state === 'paused') when = cc.t('rot.paused', { m: mmss(pausedUntil - now()) });
      else if (slides.length > 1) when = cc.t('rot.next', { s: Math.max(0, Math.ceil((dueAt - now()) / 1000)) || 0 });
    } else if (state === 'loading') {
      what = cc.t('rot.loading');
    }
    if (held) cc.setFeedText($('ROT_WHAT'), what, held[1]); else cc.setText($('ROT_WHAT'), what);
    cc.setText($('ROT_NEXT'), when);
    var btn = $('ROT_PAUSE');
    if (btn) {
      cc.setText(btn, cc.t(state === 'paused' ? 'rot.resume' : 'rot.pause'));
      var off = state !== 'running' && state !== 'paused';
      if (btn.disabled !== off) btn.disabled = off;
    }
  }

  /* ------------------------------------------------------------- start */

  function init() {
    K = cc.cfg.rotate || {};
    if (K.mode !== 'play') {
      if (cc.rotations) cc.rotations.init();
      return;
    }
    window.addEventListener('message', onMessage);
    cc.store.listen(onStore);
    var btn = $('ROT_PAUSE');
    if (btn) btn.addEventListener('click', function () { if (state === 'paused') resume(); else pause(); });
    setInterval(tick, TICK_MS);
    readPlan(function () { if (state !== 'held') showSlide(0); });
  }

  /* For tests and the bench: where the rotation is. */
  R.state = function () {
    if (!K) return {};
    return { state: state, index: index, n: slides.length, page: slides[index] ? slides[index].page : null,
      url: shown ? shown.url : null, loading: next ? next.url : null, heldOn: heldOn, swaps: swaps,
      frames: ($('ROT_STAGE') || { children: [] }).children.length, urgent: urgent.size };
  };

  cc.pages = cc.pages || {};
  cc.pages.rotate = { init: init };
})();
