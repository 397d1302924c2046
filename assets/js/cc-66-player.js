/* cc-66-player.js: the video player, `cc.video.play(el, camera, opts)` (docs/VIDEO.md).

   One player per tile, at most one live connection per player.

     mjpeg   an <img> on the multipart URL. Chromium fires 'load' for the first part only and
             nothing when the stream ends or stalls, so a shared watchdog samples a few
             pixels of the picture (32×18 on a canvas) and reconnects when they stop
             changing. Reading pixels needs CORS (the demo server and most platform gateways
             send it): the first try is crossOrigin=anonymous; a camera that refuses it is
             retried without, and then only errors and a slow periodic reconnect guard it.
     image   a snapshot every ~1.5 s with a cache-busting query; the next one starts only
             after the last one finished; two <img> swap so the picture never blanks.
     mp4 / webm   <video muted autoplay loop playsinline>; the watchdog checks currentTime.
     hls     hls.js from /vendor/hls.min.js (served by the app, never a CDN), loaded once on
             first use; a fatal error destroys it and retries. Safari's own HLS otherwise.

   States: loading → playing; offline (the feed says online:false: nothing is opened);
   nosignal (failed or stalled; retried 2 s doubling to 30 s with ±30 % jitter);
   unsupported. Every callback of an old connection is ignored through a generation
   number; one timer per player; one shared watchdog interval that runs only while a
   player is live. Nothing grows with uptime. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var V = (cc.video = cc.video || {});

  var K = (V.K = {
    backoffMin: 2000,
    backoffMax: 30000,
    jitter: 0.3,
    loadTimeoutMs: 10000, // no first picture by then: no signal
    tickMs: 2000, // the shared watchdog
    stallMs: 12000, // the picture has not changed for this long: reconnect
    imageEveryMs: 1500,
    opaqueRefreshMs: 300000, // a camera without CORS: reconnect now and then, blind
    opaqueKeep: 256,
    hlsUrl: '/vendor/hls.min.js',
  });

  var TYPES = { hls: 1, mp4: 1, webm: 1, mjpeg: 1, image: 1 };
  var live = new Set(); // players with a connection or a pending retry
  var opaque = new Map(); // stream url → 1: played only without CORS (bounded)
  var ticker = null;
  var probe = null; // the watchdog's small canvas, shared

  /* ------------------------------------------------------------- helpers */

  function streamType(cam) {
    var t = cam && cam.stream_type;
    if (t && TYPES[t]) return t;
    if (t === 'none') return 'none';
    var url = String((cam && cam.stream_url) || '').split(/[?#]/)[0].toLowerCase();
    if (/\.m3u8$/.test(url)) return 'hls';
    if (/\.mp4$/.test(url)) return 'mp4';
    if (/\.webm$/.test(url)) return 'webm';
    if (/\.(mjpg|mjpeg)$/.test(url)) return 'mjpeg';
    if (/\.(jpg|jpeg|png)$/.test(url)) return 'image';
    return 'none';
  }

  function goodUrl(u) { return typeof u === 'string' && /^https?:\/\//i.test(u); }

  function withBust(url) {
    return url + (url.indexOf('?') >= 0 ? '&' : '?') + '_cc=' + Date.now().toString(36);
  }

  function rememberOpaque(url) {
    opaque.delete(url);
    opaque.set(url, 1);
    while (opaque.size > K.opaqueKeep) opaque.delete(opaque.keys().next().value);
  }

  function sample(img) {
    // a few pixels are enough to see a clock tick or a car move; throws on a tainted canvas
    if (!probe) {
      var c = document.createElement('canvas');
      c.width = 32;
      c.height = 18;
      probe = c.getContext('2d', { willReadFrequently: true });
    }
    probe.drawImage(img, 0, 0, 32, 18);
    var d = probe.getImageData(0, 0, 32, 18).data;
    var h = 0;
    for (var i = 0; i < d.length; i += 4) h = (h * 31 + d[i] + d[i + 1] * 7 + d[i + 2] * 13) | 0;
    return h;
  }

  /* hls.js, loaded once; a failed load is forgotten so a later try fetches it again. */
  var hlsPromise = null;
  function loadHls() {
    if (window.Hls) return Promise.resolve(window.Hls);
    if (hlsPromise) return hlsPromise;
    hlsPromise = new Promise(function (resolve, reject) {
      var s = document.createElement('script');
      // under the app's own path prefix, like the API (cfg.api is '<prefix>/api')
      s.src = ((cc.cfg && cc.cfg.api) || '/api').replace(/\/api$/, '') + K.hlsUrl;
      s.async = true;
      s.onload = function () { window.Hls ? resolve(window.Hls) : reject(new Error('no Hls')); };
      s.onerror = function () { hlsPromise = null; s.remove(); reject(new Error('hls.js')); };
      document.head.appendChild(s);
    });
    return hlsPromise;
  }

  /* ------------------------------------------------------------- the watchdog */

  function tick() {
    var now = Date.now();
    live.forEach(function (p) {
      try { p.watch(now); } catch (e) { console.warn('ccwall: video watchdog', e); }
    });
    if (!live.size) { clearInterval(ticker); ticker = null; }
  }

  function track(p, on) {
    if (on) live.add(p); else live.delete(p);
    if (live.size && !ticker) ticker = setInterval(tick, K.tickMs);
    if (!live.size && ticker) { clearInterval(ticker); ticker = null; }
  }

  /* ------------------------------------------------------------- one player */

  function Player(el, camera, opts) {
    this.el = el;
    this.opts = opts || {};
    this.camera = camera || {};
    this.state = null;
    this.gen = 0;
    this.timer = null;
    this.fails = 0;
    this.media = null; // the element holding the connection
    this.spare = null; // image mode: the other <img>
    this.hls = null;
    this.cors = true;
    this.lastSig = null;
    this.lastChange = 0;
    this.stalls = 0; // frozen pictures seen since the last moving one
    this.startedAt = 0;
    this.dead = false;
    el.classList.add('cc-vplayer');
    this.box = el.appendChild(cc.make('div', 'cc-vp-media'));
    this.cap = el.appendChild(cc.make('div', 'cc-vp-cap'));
    this.nameEl = this.cap.appendChild(cc.feedSpan('cc-vp-name')); // the camera's own name
    this.el.setAttribute('data-feed-title', '');
    this.stateEl = this.cap.appendChild(cc.make('span', 'cc-vp-state'));
    if (this.opts.label === false) this.cap.hidden = true;
    this.paintName();
    this.start();
  }

  var PP = Player.prototype;

  PP.paintName = function () {
    var cam = this.camera;
    cc.setText(this.nameEl, cam.name || cam.id || '');
    cc.setAttr(this.el, 'data-camera', cam.id === undefined ? '' : String(cam.id));
    this.el.title = cam.name ? cam.name + ' · ' + cam.id : String(cam.id || '');
  };

  PP.setState = function (s) {
    this.state = s;
    cc.setAttr(this.el, 'data-state', s);
    cc.setText(this.stateEl, s === 'playing' ? '' : cc.t('video.state.' + s));
    if (typeof this.opts.onState === 'function') this.opts.onState(s, this);
  };

  PP.arm = function (ms, fn) {
    clearTimeout(this.timer);
    var self = this, gen = this.gen;
    this.timer = setTimeout(function () {
      self.timer = null;
      if (gen === self.gen && !self.dead) fn.call(self);
    }, ms);
  };

  /* Close whatever is open: the connection really ends (src cleared, hls destroyed). */
  PP.close = function () {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.hls) {
      try { this.hls.destroy(); } catch (e) { /* already gone */ }
      this.hls = null;
    }
    [this.media, this.spare].forEach(function (m) {
      if (!m) return;
      m.onload = m.onerror = null;
      if (m.tagName === 'VIDEO') {
        m.onplaying = m.onerror = null;
        m.pause();
        m.removeAttribute('src');
        m.load(); // drops the media resource and its connection
      } else {
        m.src = '';
      }
      m.remove();
    });
    this.media = this.spare = null;
  };

  PP.start = function () {
    this.gen++;
    this.close();
    if (this.dead) return;
    var cam = this.camera, type = streamType(cam);
    cc.setAttr(this.el, 'data-type', type);
    if (cam.online === false) {
      this.setState('offline');
      track(this, true); // no connection; the watchdog sees the feed say it is back
      return;
    }
    if (type === 'none' || !goodUrl(cam.stream_url)) {
      this.setState('unsupported');
      track(this, false);
      return;
    }
    this.setState('loading');
    track(this, true);
    this.startedAt = Date.now();
    this.lastChange = this.startedAt;
    this.lastSig = null;
    if (type === 'mjpeg') this.openMjpeg();
    else if (type === 'image') this.openImage();
    else this.openVideo(type);
  };

  /* A failure: show no signal, and try again after the backoff. */
  PP.fail = function () {
    if (this.dead) return;
    this.gen++;
    this.close();
    this.fails++;
    this.setState('nosignal');
    this.retry();
  };

  PP.retry = function () {
    var n = Math.min(this.fails, 5);
    var base = Math.min(K.backoffMax, K.backoffMin * Math.pow(2, Math.max(0, n - 1)));
    var ms = Math.round(base * (1 - K.jitter + Math.random() * 2 * K.jitter));
    this.arm(ms, this.start);
  };

  PP.playing = function () {
    if (this.state !== 'playing') this.setState('playing');
    if (!this.stalls) this.fails = 0; // a frozen camera that still answers keeps backing off
    this.lastChange = Date.now();
  };

  /* ---- mjpeg */

  PP.openMjpeg = function (blind) {
    var self = this, gen = this.gen, url = this.camera.stream_url;
    var cors = (this.cors = !blind && !opaque.has(url));
    var img = (this.media = cc.make('img', 'cc-vp-img'));
    var shown = false;
    img.alt = '';
    img.decoding = 'async';
    if (cors) img.crossOrigin = 'anonymous';
    img.onload = function () {
      if (gen !== self.gen) return;
      shown = true;
      clearTimeout(self.timer);
      if (!cors) rememberOpaque(url);
      self.playing();
    };
    img.onerror = function () {
      if (gen !== self.gen) return;
      if (cors && !shown) {
        // refused with CORS, or not there at all: one more try without it (remembered
        // only if that one plays)
        self.gen++;
        self.close();
        self.openMjpeg(true);
        return;
      }
      self.fail();
    };
    img.src = url;
    this.box.appendChild(img);
    this.arm(K.loadTimeoutMs, this.fail);
  };

  /* ---- image: refreshed snapshots */

  PP.openImage = function () {
    this.media = this.box.appendChild(cc.make('img', 'cc-vp-img'));
    this.media.alt = '';
    this.spare = this.box.appendChild(cc.make('img', 'cc-vp-img'));
    this.spare.alt = '';
    this.spare.hidden = true;
    this.snap();
  };

  PP.snap = function () {
    var self = this, gen = this.gen, img = this.spare;
    img.onload = function () {
      if (gen !== self.gen) return;
      img.onload = img.onerror = null;
      // swap: the fresh picture shows, the old one becomes the next loader
      img.hidden = false;
      self.media.hidden = true;
      self.spare = self.media;
      self.media = img;
      self.playing();
      self.arm(K.imageEveryMs, self.snap);
    };
    img.onerror = function () {
      if (gen !== self.gen) return;
      self.fail();
    };
    img.src = withBust(this.camera.stream_url);
    this.arm(K.loadTimeoutMs, this.fail);
  };

  /* ---- mp4, webm, hls */

  PP.openVideo = function (type) {
    var self = this, gen = this.gen;
    var v = (this.media = cc.make('video', 'cc-vp-video'));
    v.muted = this.opts.muted !== false;
    v.defaultMuted = v.muted;
    v.autoplay = true;
    v.loop = type !== 'hls';
    v.playsInline = true;
    v.setAttribute('playsinline', '');
    v.preload = 'auto';
    v.disablePictureInPicture = true;
    v.onplaying = function () { if (gen === self.gen) { clearTimeout(self.timer); self.playing(); } };
    v.onerror = function () { if (gen === self.gen) self.fail(); };
    this.box.appendChild(v);
    this.arm(K.loadTimeoutMs, this.fail);
    if (type !== 'hls') {
      v.src = this.camera.stream_url;
      this.play(v);
      return;
    }
    loadHls().then(function (Hls) {
      if (gen !== self.gen || self.dead) return;
      if (Hls.isSupported()) {
        var hls = (self.hls = new Hls({
          // stay near the live edge; keep little behind it (memory stays flat)
          liveSyncDurationCount: 3,
          liveMaxLatencyDurationCount: 8,
          maxBufferLength: 12,
          maxMaxBufferLength: 20,
          backBufferLength: 6,
          capLevelToPlayerSize: true,
          enableWorker: true,
        }));
        hls.on(Hls.Events.ERROR, function (ev, data) {
          if (gen === self.gen && data && data.fatal) self.fail();
        });
        hls.attachMedia(v);
        hls.loadSource(self.camera.stream_url);
        self.play(v);
      } else if (v.canPlayType('application/vnd.apple.mpegurl')) {
        v.src = self.camera.stream_url;
        self.play(v);
      } else {
        self.close();
        self.setState('unsupported');
        track(self, false);
      }
    }, function () {
      if (gen === self.gen) self.fail();
    });
  };

  PP.play = function (v) {
    var p = v.play();
    // a rejected play() (no data yet, or the element was closed) is settled by the events;
    // a browser that will not start sound on its own gets the picture muted instead
    if (p && p.catch) {
      p.catch(function (e) {
        if (e && e.name === 'NotAllowedError' && !v.muted && v.isConnected) {
          v.muted = true;
          v.play().catch(function () {});
        }
      });
    }
  };

  /* ---- the watchdog's look at one player (every K.tickMs) */

  PP.watch = function (now) {
    // the feed's newer word on this camera (online flag, url) wins over the record we got
    var rec = cc.store && this.camera.id !== undefined && cc.store.get('camera', String(this.camera.id));
    if (rec && rec !== this.camera && changed(this.camera, rec)) {
      this.camera = Object.assign({}, this.camera, rec);
      this.paintName();
      this.fails = this.stalls = 0;
      this.start();
      return;
    }
    if (this.state !== 'playing' || !this.media) return;
    var type = this.el.getAttribute('data-type');
    if (type === 'mjpeg') {
      if (this.cors) {
        var sig;
        try { sig = sample(this.media); } catch (e) { this.cors = false; return; }
        if (sig !== this.lastSig) {
          if (this.lastSig !== null) this.stalls = 0; // a new picture: the stream is alive
          this.lastSig = sig;
          this.lastChange = now;
        } else if (now - this.lastChange > K.stallMs) {
          // frozen: open it again once, quietly (a very still scene may only look frozen);
          // still frozen after that, or again and again: no signal, and the backoff
          if (this.stalls++ === 0) this.reconnect();
          else this.fail();
        }
      } else if (now - this.startedAt > K.opaqueRefreshMs) {
        this.reconnect();
      }
    } else if (type === 'image') {
      if (now - this.lastChange > K.stallMs) this.fail();
    } else {
      var v = this.media, t = v.currentTime;
      if (t !== this.lastSig) { this.lastSig = t; this.lastChange = now; }
      else if (now - this.lastChange > K.stallMs) this.fail();
      // fallen behind the live edge (a busy machine, a hidden tab): jump back to it
      if (this.hls && isFinite(this.hls.liveSyncPosition) &&
          this.hls.liveSyncPosition - t > 30) v.currentTime = this.hls.liveSyncPosition;
    }
  };

  /* Open the same stream again at once, keeping the state (no "connecting" flash); the load
     timeout says no signal if it does not come back. */
  PP.reconnect = function () {
    this.gen++;
    this.close();
    this.startedAt = this.lastChange = Date.now();
    this.lastSig = null;
    this.openMjpeg();
  };

  function changed(a, b) {
    return a.stream_url !== b.stream_url || streamType(a) !== streamType(b) ||
      (a.online === false) !== (b.online === false);
  }

  /* ------------------------------------------------------------- the handle */

  function handle(p) {
    return {
      get state() { return p.state; },
      get camera() { return p.camera; },
      el: p.el,
      update: function (camera) {
        if (p.dead || !camera) return;
        var old = p.camera;
        p.camera = camera;
        p.paintName();
        if (changed(old, camera)) {
          p.fails = p.stalls = 0;
          p.start();
        }
      },
      destroy: function () {
        if (p.dead) return;
        p.dead = true;
        p.gen++;
        p.close();
        track(p, false);
        p.box.remove();
        p.cap.remove();
        p.el.classList.remove('cc-vplayer');
        ['data-state', 'data-type', 'data-camera'].forEach(function (a) { p.el.removeAttribute(a); });
      },
    };
  }

  V.play = function (el, camera, opts) {
    return handle(new Player(el, camera, opts));
  };

  V.streamType = streamType;
  /* Test and benchmark probes. */
  V.liveCount = function () { return live.size; };
  V.opaqueCount = function () { return opaque.size; };
})();
