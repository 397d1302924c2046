/* cc-40-socket.js: the websocket to the relay (docs/PROTOCOL.md, relay → browser).

   Reconnects forever with exponential backoff and jitter (0.5 s doubling to a 30 s cap;
   the count resets once a connection has stayed up 10 s) and resumes with
   ?since=<highest seq seen>, so a blip replays what was missed instead of a snapshot.
   A silent socket (no frame for 5 s; stats come every second) is treated as dead.
   Close code 4401 means "no session": the wall goes to /login instead of retrying (the
   whole window, when the page is in the rotation's frame, cc-90). A page left (pagehide)
   closes its socket: Chromium keeps a left page in its back/forward cache, socket open, for
   minutes, and a duty officer clicking through pages would pile up relay sockets towards
   the per-session limit. Shown again from that cache (pageshow, persisted), it resumes. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var W = (cc.socket = {});

  var BASE_MS = 500, CAP_MS = 30000, STABLE_MS = 10000, SILENT_MS = 5000, OFFLINE_AFTER = 5;
  var SIGNED_OUT = 4401;

  var ws = null;
  var attempt = 0; // failed tries since the last stable connection
  var retryTimer = null, stableTimer = null, watchdog = null;
  var lastFrame = 0;
  var connected = false;
  var stopped = false;

  W.connected = function () { return connected; };
  W.attempt = function () { return attempt; };

  function url() {
    var w = cc.cfg.ws;
    var base = w.url;
    if (!base) {
      var proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
      var host = location.hostname.indexOf(':') >= 0 ? '[' + location.hostname + ']' : location.hostname;
      base = proto + '//' + host + ':' + w.port + w.path;
    }
    var q = [];
    var seq = cc.store.lastSeq();
    if (seq > 0) q.push('since=' + seq);
    // a page that follows only some kinds gets only those (feeds/relay.py)
    if (Array.isArray(w.kinds)) q.push('kinds=' + encodeURIComponent(w.kinds.join(',')));
    if (q.length) base += (base.indexOf('?') >= 0 ? '&' : '?') + q.join('&');
    return base;
  }

  function setState(state) { cc.panels.connection(state, attempt); }

  function open() {
    retryTimer = null;
    if (stopped) return;
    var sock;
    try {
      sock = new WebSocket(url());
    } catch (e) {
      console.warn('ccwall: bad websocket URL', e);
      return retry();
    }
    ws = sock;
    sock.onopen = function () {
      if (ws !== sock) return;
      connected = true;
      lastFrame = Date.now();
      setState('connected');
      clearTimeout(stableTimer);
      stableTimer = setTimeout(function () { if (ws === sock && connected) attempt = 0; }, STABLE_MS);
    };
    sock.onmessage = function (msg) {
      if (ws !== sock) return;
      lastFrame = Date.now();
      var frame;
      try { frame = JSON.parse(msg.data); } catch (e) {
        console.warn('ccwall: frame is not JSON', e);
        return;
      }
      try { cc.store.applyFrame(frame); } catch (e) {
        console.warn('ccwall: frame not applied', frame && frame.type, e);
      }
    };
    sock.onclose = function (ev) {
      if (ws !== sock) return;
      ws = null;
      connected = false;
      clearTimeout(stableTimer);
      if (ev && ev.code === SIGNED_OUT) return signedOut();
      retry();
    };
    sock.onerror = function () { /* onclose follows and schedules the retry */ };
  }

  function signedOut() {
    stopped = true;
    setState('offline');
    // a page in the rotation's frame (cc-90) signs the whole window in, then back to it
    var top = window;
    try { if (window.top !== window && window.top.location.origin === location.origin) top = window.top; } catch (e) { /* another origin */ }
    var next = top.location.pathname + top.location.search;
    var lang = cc.cfg.lang === 'en' ? '&lang=en' : '';
    top.location.assign('/login?next=' + encodeURIComponent(next) + lang);
  }

  function retry() {
    if (stopped || retryTimer) return;
    attempt += 1;
    var exp = Math.min(CAP_MS, BASE_MS * Math.pow(2, attempt - 1));
    var delay = exp / 2 + Math.random() * exp / 2; // "equal jitter": spread a wall of clients
    setState(attempt > OFFLINE_AFTER || navigator.onLine === false ? 'offline' : 'reconnecting');
    retryTimer = setTimeout(open, delay);
  }

  function checkSilence() {
    if (connected && ws && Date.now() - lastFrame > SILENT_MS) {
      console.warn('ccwall: no frame for ' + SILENT_MS + ' ms, reconnecting');
      var sock = ws;
      ws = null;
      connected = false;
      try { sock.close(); } catch (e) { /* already closing */ }
      retry();
    }
  }

  W.start = function () {
    if (watchdog) return;
    stopped = false;
    setState('connecting');
    open();
    watchdog = setInterval(checkSilence, 1000);
    window.addEventListener('online', function () {
      // the network is back: skip the rest of the backoff
      if (!connected && retryTimer) { clearTimeout(retryTimer); retryTimer = null; open(); }
    });
    window.addEventListener('offline', function () { if (!connected) setState('offline'); });
    window.addEventListener('pagehide', function () {
      if (stopped) return;
      stopped = true; // no retry while away
      if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
      var sock = ws;
      ws = null;
      connected = false;
      if (sock) { try { sock.close(1000, 'page left'); } catch (e) { /* already closing */ } }
    });
    window.addEventListener('pageshow', function (ev) {
      if (!ev.persisted || !stopped || retryTimer || ws) return;
      stopped = false; // back from the cache: resume with ?since= (what was missed)
      attempt = 0;
      setState('connecting');
      open();
    });
  };

  /* Back from a replay (cc-88): a new connection without ?since=, so the relay sends the
     whole state as it is now (the store forgot its sequence: cc-20 endReplay). */
  W.resync = function () {
    if (stopped) return;
    var sock = ws;
    ws = null;
    connected = false;
    if (sock) { try { sock.close(); } catch (e) { /* already closing */ } }
    if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
    open();
  };

  /* For tests and benchmarks: drop the connection as if the network blinked. */
  W.drop = function () { if (ws) ws.close(); };
})();
