/* cc-00-core.js: the ccwall namespace and what every file shares (strings, formats, cc.$, cc.api).

   Also datums and per-frame DOM batching. Loaded after dash_leaflet.js (Dash puts component
   bundles before assets), before React renders the layout. Everything hangs off
   window.ccwall; `boot(cfg)` (cc-50) starts it. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});

  cc.cfg = null;
  cc.strings = {};
  cc.scale = 1; // root font-size / 16: map symbols grow with the type on a 4K wall

  /* ------------------------------------------------------------- strings */

  /* `{name}` is filled from vars; `{n|one|other}` is `one` when n is 1, else `other`, with
     `#` standing for n (dashboard/i18n.py, the same rule). An unknown name stays as it is. */
  cc.t = function (key, vars) {
    var s = Object.prototype.hasOwnProperty.call(cc.strings, key) ? cc.strings[key] : key;
    if (vars) {
      s = s.replace(/\{(\w+)(?:\|([^{}|]*)\|([^{}|]*))?\}/g, function (m, k, one, other) {
        if (!Object.prototype.hasOwnProperty.call(vars, k)) return m;
        var v = String(vars[k]);
        if (one === undefined) return v;
        return (Number(v.replace(/,/g, '').trim()) === 1 ? one : other).replace(/#/g, v);
      });
    }
    return s;
  };

  /* A code's label, or the code itself when the table has none (unknown types are shown). */
  cc.label = function (prefix, code) {
    if (code === undefined || code === null || code === '') return '';
    var key = prefix + '.' + code;
    return Object.prototype.hasOwnProperty.call(cc.strings, key) ? cc.strings[key] : String(code);
  };

  /* A city unit's name ({code, name, name_en} from the server) in the page's language: the
     English one on an English page when the city's data has one (docs: "One language per
     page"). */
  cc.unitName = function (u) {
    if (!u) return '';
    if (cc.cfg && cc.cfg.lang === 'en' && u.name_en) return String(u.name_en);
    return String(u.name || u.code || '');
  };

  /* List and label punctuation of the page's language (、 ； ： in Chinese). */
  cc.join = function (items) { return items.join(cc.t('sep.list')); };

  /* Product text with feed text inside: `template` (its {name} placeholders left unfilled)
     into `el`, each placeholder that `feed` has as a <span data-feed> holding that value as
     text, so the page's language never claims the feed's words and markup stays text. */
  cc.setFeedText = function (el, template, feed) {
    if (!el) return;
    var key = template + '\u0000' + JSON.stringify(feed || {});
    if (el._ccFeedKey === key) return;
    el._ccFeedKey = key;
    el.textContent = '';
    String(template).split(/(\{\w+\})/).forEach(function (part) {
      var m = /^\{(\w+)\}$/.exec(part);
      if (m && feed && Object.prototype.hasOwnProperty.call(feed, m[1])) {
        var span = el.appendChild(document.createElement('span'));
        span.setAttribute('data-feed', '');
        span.textContent = String(feed[m[1]]);
      } else if (part) {
        el.appendChild(document.createTextNode(part));
      }
    });
  };

  /* An alert's text in the page's language as [template, feed] for cc.setFeedText: its
     `texts` (each language's template, made by dashboard/command/alerts.py alert_texts)
     with its `feed` values; an alert raised before alerts had them (and whose message the
     watch could not read back, dashboard/command/alert_upgrade.py) is its stored `message`,
     marked as the data it is: it speaks the center's language, not necessarily the page's. */
  cc.alertTemplate = function (a) {
    var tpl = a && a.texts && cc.cfg && a.texts[cc.cfg.lang];
    if (typeof tpl === 'string') return [tpl, a.feed || {}];
    return ['{message}', { message: (a && (a.message || a.event_id)) || '' }];
  };

  /* An alert's text (cc.alertTemplate) into `el`; returns the plain text. */
  cc.setAlertText = function (el, a) {
    var tf = cc.alertTemplate(a);
    cc.setFeedText(el, tf[0], tf[1]);
    return el ? el.textContent : cc.fillFeed(tf[0], tf[1]);
  };

  /* A template for cc.setFeedText filled as plain text (a tooltip). */
  cc.fillFeed = function (template, feed) {
    return String(template).replace(/\{(\w+)\}/g, function (m, k) {
      return feed && Object.prototype.hasOwnProperty.call(feed, k) ? String(feed[k]) : m;
    });
  };

  /* People's names (feed text) as a template for cc.setFeedText: "{p0}、{p1}" and
     {p0: …, p1: …}, joined with the page's list separator. `feed` gets the names. */
  cc.namesTemplate = function (names, feed, prefix) {
    return names.map(function (n, i) {
      feed[(prefix || 'p') + i] = n;
      return '{' + (prefix || 'p') + i + '}';
    }).join(cc.t('sep.list'));
  };

  /* A feed value as its own <span data-feed> (names of people, cameras, units; titles). */
  cc.feedSpan = function (className, text) { return cc.feed(cc.make('span', className, text)); };

  /* `el` marked as showing feed text only; returns it. */
  cc.feed = function (el) {
    el.setAttribute('data-feed', '');
    return el;
  };

  /* ------------------------------------------------------------- DOM helpers */

  var byId = new Map();
  cc.el = function (id) {
    var el = byId.get(id);
    if (!el || !el.isConnected) {
      el = document.getElementById(id);
      if (el) byId.set(id, el);
    }
    return el;
  };

  /* The element the page's layout gave the id named `name` in layouts/ids.py (cfg.ids), e.g.
     cc.$('CMD_MSG'); null when this page has none. Every file looks its elements up here. */
  cc.$ = function (name) { return cc.el(cc.cfg.ids[name]); };

  /* Feed text only ever goes in through textContent; skip writes that change nothing. */
  cc.setText = function (el, text) {
    if (!el) return;
    text = text === undefined || text === null ? '' : String(text);
    el._ccFeedKey = null; // plain text now (cc.setFeedText)
    if (el.textContent !== text || el.firstElementChild) el.textContent = text;
  };

  cc.setAttr = function (el, name, value) {
    if (el && el.getAttribute(name) !== value) el.setAttribute(name, value);
  };

  cc.make = function (tag, className, text) {
    var el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined && text !== null) el.textContent = String(text);
    return el;
  };

  /* ------------------------------------------------------------- frame batching */

  // Keyed jobs: scheduling the same key twice in one frame runs it once.
  var jobs = new Map();
  var scheduled = false;
  var paintHooks = [];

  function flush() {
    scheduled = false;
    var list = Array.from(jobs.values());
    jobs.clear();
    for (var i = 0; i < list.length; i++) {
      try { list[i](); } catch (e) { console.warn('ccwall: frame job failed', e); }
    }
    for (var j = 0; j < paintHooks.length; j++) paintHooks[j]();
  }

  cc.schedule = function (key, fn) {
    jobs.set(key, fn);
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(flush);
    }
  };

  /* Runs at the end of every frame that did DOM work (after all jobs). */
  cc.onFrame = function (fn) { paintHooks.push(fn); };

  /* ------------------------------------------------------------- time */

  cc.clockOffset = 0; // server clock − browser clock, from the last stats frame
  cc.serverNow = function () { return Date.now() + cc.clockOffset; };

  var fmtCache = new Map();
  function formatter(kind) {
    var f = fmtCache.get(kind);
    if (f) return f;
    var tz = (cc.cfg && cc.cfg.tz) || 'Asia/Shanghai';
    var opts = { timeZone: tz, hourCycle: 'h23' };
    if (kind === 'parts') {
      Object.assign(opts, { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit',
        minute: '2-digit', second: '2-digit', weekday: 'short' });
    }
    f = new Intl.DateTimeFormat('en-US', opts);
    fmtCache.set(kind, f);
    return f;
  }

  var WEEKDAYS = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

  /* Wall-clock parts in the centre's time zone, whatever the browser's zone is. Kept per
     second (frozen: shared): the list, the clock and a replay ask for the same seconds
     many times a second, and formatToParts is the dear part. */
  var partsCache = new Map();
  cc.timeParts = function (ms) {
    var second = Math.floor(ms / 1000);
    var out = partsCache.get(second);
    if (out) return out;
    out = {};
    var parts = formatter('parts').formatToParts(new Date(ms));
    for (var i = 0; i < parts.length; i++) out[parts[i].type] = parts[i].value;
    out.wd = WEEKDAYS[out.weekday];
    if (partsCache.size >= 512) partsCache.clear();
    partsCache.set(second, Object.freeze(out));
    return out;
  };

  cc.fmtTime = function (ms) {
    if (!isFinite(ms)) return '';
    var p = cc.timeParts(ms);
    return p.hour + ':' + p.minute + ':' + p.second;
  };

  cc.fmtDateTime = function (ms) {
    if (!isFinite(ms)) return '';
    var p = cc.timeParts(ms);
    return p.year + '-' + p.month + '-' + p.day + ' ' + p.hour + ':' + p.minute + ':' + p.second;
  };

  cc.fmtAgo = function (ageMs) {
    var s = Math.max(0, Math.floor(ageMs / 1000));
    if (s < 3) return cc.t('age.now');
    if (s < 60) return cc.t('age.seconds', { n: s });
    if (s < 3600) return cc.t('age.minutes', { n: Math.floor(s / 60) });
    if (s < 86400) return cc.t('age.hours', { n: Math.floor(s / 3600) });
    return cc.t('age.days', { n: Math.floor(s / 86400) });
  };

  cc.fmtDuration = function (ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return cc.t('dur.seconds', { n: s });
    if (s < 3600) return cc.t('dur.minutes', { n: Math.floor(s / 60) });
    if (s < 86400) return cc.t('dur.hours', { h: Math.floor(s / 3600), m: Math.floor(s % 3600 / 60) });
    return cc.t('dur.days', { d: Math.floor(s / 86400), h: Math.floor(s % 86400 / 3600) });
  };

  var intFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  cc.fmtInt = function (n) {
    if (n === undefined || n === null || !isFinite(n)) return '–';
    return intFormat.format(Math.round(n)); // toLocaleString builds a formatter each call
  };

  /* ------------------------------------------------------------- datums */

  // Feed positions are WGS-84. Intranet tiles may be GCJ-02 or BD-09: shift points to match.
  // EE is dashboard/geo.py's 0.00669342162296594323 as the double it rounds to (same value)
  var PI = Math.PI, A = 6378245.0, EE = 0.006693421622965943, XPI = PI * 3000.0 / 180.0;
  function tLat(x, y) {
    var r = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    r += (20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2 / 3;
    r += (20 * Math.sin(y * PI) + 40 * Math.sin(y / 3 * PI)) * 2 / 3;
    r += (160 * Math.sin(y / 12 * PI) + 320 * Math.sin(y * PI / 30)) * 2 / 3;
    return r;
  }
  function tLon(x, y) {
    var r = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    r += (20 * Math.sin(6 * x * PI) + 20 * Math.sin(2 * x * PI)) * 2 / 3;
    r += (20 * Math.sin(x * PI) + 40 * Math.sin(x / 3 * PI)) * 2 / 3;
    r += (150 * Math.sin(x / 12 * PI) + 300 * Math.sin(x / 30 * PI)) * 2 / 3;
    return r;
  }
  function wgsToGcj(lon, lat) {
    if (lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271) return [lon, lat];
    var dLat = tLat(lon - 105, lat - 35), dLon = tLon(lon - 105, lat - 35);
    var rad = lat / 180 * PI, magic = 1 - EE * Math.sin(rad) * Math.sin(rad), sq = Math.sqrt(magic);
    dLat = (dLat * 180) / ((A * (1 - EE)) / (magic * sq) * PI);
    dLon = (dLon * 180) / (A / sq * Math.cos(rad) * PI);
    return [lon + dLon, lat + dLat];
  }
  function gcjToBd(lon, lat) {
    var z = Math.sqrt(lon * lon + lat * lat) + 0.00002 * Math.sin(lat * XPI);
    var th = Math.atan2(lat, lon) + 0.000003 * Math.cos(lon * XPI);
    return [z * Math.cos(th) + 0.0065, z * Math.sin(th) + 0.006];
  }

  /* [lat, lng] for Leaflet from a WGS-84 lon/lat, in the tile layer's datum. */
  cc.latLng = function (lon, lat) {
    var crs = cc.cfg && cc.cfg.tileCrs;
    if (crs === 'gcj02') { var g = wgsToGcj(lon, lat); return [g[1], g[0]]; }
    if (crs === 'bd09') { var w = wgsToGcj(lon, lat), b = gcjToBd(w[0], w[1]); return [b[1], b[0]]; }
    return [lat, lon];
  };

  cc.hasPos = function (rec) {
    return rec && typeof rec.lon === 'number' && typeof rec.lat === 'number' &&
      isFinite(rec.lon) && isFinite(rec.lat);
  };

  /* ------------------------------------------------------------- HTTP */

  function failure(status, body, message) {
    var err = new Error(message);
    err.status = status;
    err.code = body.code;
    err.error = body.error;
    err.body = body;
    return err;
  }

  /* The one way the browser code asks the server: cc.api(method, path, body, opts) → a Promise
     of the answer's JSON.

     `path` is under cfg.api ('/events/E1' → '<prefix>/api/events/E1'). Cookies go along (same
     origin). Every API request says Accept: application/json and X-Requested-With:
     XMLHttpRequest: callbacks/access/security.py refuses a state-changing request that is
     neither JSON nor marked so (other sites' forms can be neither), so a POST without a body
     still passes. A `body` is sent as JSON, with its Content-Type.

     Resolves with the parsed body of a 2xx answer: an object, {} when it is empty or not JSON.
     Rejects with an Error whose `status` is the HTTP status, `code` and `error` the server's
     {"error": message, "code": code, …} and `body` the whole parsed answer ({} when none);
     `status` 0 when no answer came (the network; `name` 'AbortError' when opts.signal
     aborted it), with the browser's own message.

     opts.signal  an AbortSignal for the request
     opts.url     `path` is a whole address, not one under cfg.api (the boundary GeoJSON):
                  fetched as it is, without the API's headers
     opts.strict  a 2xx answer that is not a JSON object fails too (callers that cannot go on
                  without the document)
     opts.need    a 2xx answer without this field fails too, like a refusal ('task': a
                  mutation's answer carries the task it changed) */
  cc.api = function (method, path, body, opts) {
    opts = opts || {};
    var init = { method: method, credentials: 'same-origin' };
    if (!opts.url) {
      init.headers = { Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest' };
      if (body !== undefined) {
        init.headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
      }
    }
    if (opts.signal) init.signal = opts.signal;
    var url = opts.url ? path : ((cc.cfg && cc.cfg.api) || '/api') + path;
    return fetch(url, init).then(function (r) {
      return r.json().then(function (j) { return j; }, function () { return undefined; })
        .then(function (j) {
          var data = j && typeof j === 'object' ? j : {};
          if (!r.ok) throw failure(r.status, data, data.error || 'HTTP ' + r.status);
          if (opts.strict && data !== j) throw failure(r.status, data, 'HTTP ' + r.status + ': not JSON');
          if (opts.need && !data[opts.need]) {
            throw failure(r.status, data, 'HTTP ' + r.status + ': no ' + opts.need);
          }
          return data;
        });
    }, function (e) {
      var err = failure(0, {}, (e && e.message) || 'network');
      err.name = (e && e.name) || 'Error';
      err.cause = e;
      throw err;
    });
  };

  /* ------------------------------------------------------------- Dash bridge */

  cc.setProps = function (id, props) {
    var dc = window.dash_clientside;
    if (dc && typeof dc.set_props === 'function') {
      dc.set_props(id, props);
      return true;
    }
    return false;
  };
})();
