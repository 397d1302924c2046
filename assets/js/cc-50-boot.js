/* cc-50-boot.js: boot from the config store, Dash clientside functions, test hook.

   window.ccwall is also the test/benchmark hook: state counts, lastSeq, connected,
   appliedAt (event id → timeOrigin-based ms when its delta was painted), applyFrame(). */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var booted = false;

  function severityStyles(cfg) {
    // CSS variables for the map rings, from the one colour table in models.py
    var css = Object.keys(cfg.severity).map(function (level) {
      return '.cc-sv-' + level + '{--sev:' + cfg.severity[level].colour + '}';
    }).join('\n') + '\n.cc-sv-0{--sev:#ffffff}';
    var style = document.createElement('style');
    style.textContent = css;
    document.head.appendChild(style);
  }

  /* Pages other than the wall register here (`cc.pages.video = {init}`, cc-70): they get
     the header, the store and the socket, and start their own parts. */
  cc.pages = cc.pages || {};

  cc.boot = function (cfg) {
    if (booted || !cfg) return booted;
    booted = true;
    cc.cfg = cfg;
    cc.page = cfg.page || 'wall';
    cc.strings = cfg.strings || {};
    cc.scale = parseFloat(getComputedStyle(document.documentElement).fontSize) / 16 || 1;
    document.documentElement.lang = cfg.lang;
    severityStyles(cfg);
    if (cc.page !== 'wall') {
      cc.panels.init(); // the header: clock, connection, data age
      if (cc.pages[cc.page]) cc.pages[cc.page].init();
      cc.store.startPruning();
      cc.socket.start();
      return true;
    }
    cc.mapview.init();
    if (cc.camsel) cc.camsel.init();
    if (!cc.mapview.attach()) {
      // the map may still be mounting; the init hook attaches it when it appears
      setTimeout(function () {
        if (!cc.mapview.map()) console.error('ccwall: no Leaflet map captured; map layers stay empty');
      }, 5000);
    }
    cc.panels.init();
    if (cc.command) cc.command.init();
    cc.store.startPruning();
    cc.socket.start();
    return true;
  };

  /* Select an event (marker or row click): through the Dash store, so other callbacks can
     follow; the store's clientside callback shows the card. */
  cc.select = function (id, pan) {
    id = id || null;
    cc.mapview.select(id, pan);
    if (!cc.setProps(cc.cfg.ids.SELECTED, { data: id })) cc.panels.showDetail(id);
  };

  cc.applyFrame = function (frame) { cc.store.applyFrame(frame); };

  Object.defineProperties(cc, {
    state: {
      get: function () {
        return { events: cc.store.size('event'), workers: cc.store.size('worker'),
          resources: cc.store.size('resource'), cameras: cc.store.size('camera') };
      },
    },
    lastSeq: { get: function () { return cc.store.lastSeq(); } },
    connected: { get: function () { return cc.socket.connected(); } },
    appliedAt: { get: function () { return cc.store.appliedAt; } },
    recentFrames: { get: function () { return cc.store.recent.slice(); } },
  });

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    ccwall: {
      boot: function (cfg) { return cc.boot(cfg); },
      layers: function (value) {
        var on = new Set(value || []);
        (cc.cfg ? cc.cfg.layers : []).forEach(function (k) { cc.mapview.setLayer(k, on.has(k)); });
        return 'cc-toggles';
      },
      detail: function (id) {
        if (!cc.cfg) return true;
        cc.mapview.select(id || null, false);
        cc.panels.showDetail(id || null);
        // a replayed event is the past: no live panel for it, and the video wall stays put
        var past = cc.store.replaying();
        if (cc.command) cc.command.select(past ? null : id || null);
        if (id && cc.videowall && !past) cc.videowall.opened(id); // the video wall follows (cc-70)
        return !id;
      },
      closeDetail: function () { return null; },
    },
  });
})();
