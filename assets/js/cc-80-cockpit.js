/* cc-80-cockpit.js: the executive cockpit page, /cockpit (docs/COCKPIT.md).

   Every figure of one scope and time range from GET /api/stats?scope=&range=, drill-down by
   clicking a child (map, area bars or ranking) with `?scope=CODE` and the range kept in the
   address, a breadcrumb back up to the user's own scope, the range picker and the export
   links of what is shown.

   The charts are Plotly figures (dcc.Graph): this file hands the figures JSON to the
   `CK_DATA` store and callbacks/cockpit.py builds the figures (layouts/cockpit_charts.py);
   a click on the map or the area bars comes back through `cockpitClick`.

   Refresh: the endpoint is cached on the server and cheap, so it is read every `pollMs`
   and the page repaints (and the charts are redrawn) only when scope, range, `version` or
   `generated` changed; every write goes through setText/setAttr (no-ops when unchanged), so
   nothing flickers. Unit names come from the server's figures and go in through
   textContent only. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var K = null;
  var C = (cc.cockpit = {});

  var scope = null; // the code asked for (null: the session's own / the city)
  var fig = null; // the figures shown
  var shownKey = ''; // scope|version|generated of what is painted
  var gen = 0; // bumps per scope change: a slower answer for an old scope is dropped
  var timer = null;
  var inflight = false;
  var range = { name: null, from: null, to: null }; // null name: the default 30 days
  var chartKey = ''; // the figures handed to the charts (shownKey and the page scale)

  var $ = cc.$;
  function num(v) { return typeof v === 'number' && isFinite(v) ? v : 0; }

  /* ------------------------------------------------------------- formatting */

  function pct(x) {
    if (x === null || x === undefined || !isFinite(x)) return '–';
    return (Math.round(x * 1000) / 10).toFixed(1) + '%';
  }

  function change(x) {
    if (x === null || x === undefined || !isFinite(x)) return { text: cc.t('ck.change_none'), dir: 'none' };
    var p = Math.round(x * 1000) / 10;
    return { text: (p > 0 ? '▲ ' : p < 0 ? '▼ ' : '') + Math.abs(p).toFixed(1) + '%',
      dir: p > 0 ? 'up' : p < 0 ? 'down' : 'flat' };
  }

  function dur(s) {
    if (s === null || s === undefined || !isFinite(s)) return '–';
    return cc.fmtDuration(s * 1000);
  }

  function fmtDensity(x) {
    if (!isFinite(x)) return '–';
    return x >= 10 ? String(Math.round(x)) : x.toFixed(x >= 1 ? 1 : 2);
  }

  /* The figures' formats, for tests (tests/js/format.test.js). */
  C.fmt = { pct: pct, change: change, dur: dur, density: fmtDensity };

  /* ------------------------------------------------------------- the address */

  var DAY = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;

  function scopeFromUrl() {
    var q = new URLSearchParams(location.search).get('scope');
    return q && /^[0-9]{1,20}$/.test(q) ? q : null;
  }

  /* The range in the address: `range=today|7d|year` or `from`/`to` days; else the default. */
  function rangeFromUrl() {
    var q = new URLSearchParams(location.search);
    var name = q.get('range'), from = q.get('from'), to = q.get('to');
    if (from && DAY.test(from) && to && DAY.test(to) && from <= to) return { name: 'custom', from: from, to: to };
    if (name && K.ranges.indexOf(name) >= 0 && name !== '30d') return { name: name, from: null, to: null };
    return { name: null, from: null, to: null };
  }

  /* The range as query parameters (the API's and the address's own). */
  function rangeParams(q) {
    q.delete('range'); q.delete('from'); q.delete('to');
    if (range.name === 'custom') { q.set('from', range.from); q.set('to', range.to); }
    else if (range.name) q.set('range', range.name);
    return q;
  }

  function urlFor(code) {
    var q = rangeParams(new URLSearchParams(location.search));
    if (code) q.set('scope', code); else q.delete('scope');
    var s = q.toString();
    return location.pathname + (s ? '?' + s : '');
  }

  function apiQuery() {
    var q = rangeParams(new URLSearchParams());
    if (scope) q.set('scope', scope);
    var s = q.toString();
    return s ? '?' + s : '';
  }

  /* The header's language link keeps the scope (a leader switching language stays put). */
  function fixLangLink() {
    var a = $('LANG_LINK');
    if (a) {
      var q = rangeParams(new URLSearchParams((a.getAttribute('href') || '').replace(/^[^?]*\?/, '')));
      if (scope) q.set('scope', scope); else q.delete('scope');
      cc.setAttr(a, 'href', '?' + q.toString());
    }
    fixExport();
    showRange();
  }

  /* The export links: the events the figures count (this scope and range), in this language. */
  function fixExport() {
    document.querySelectorAll('#' + K.ids.CK_EXPORT + ' a[data-format]').forEach(function (a) {
      var q = rangeParams(new URLSearchParams());
      q.set('format', a.getAttribute('data-format'));
      if (scope) q.set('scope', scope);
      q.set('lang', cc.cfg.lang);
      cc.setAttr(a, 'href', K.export + '?' + q.toString());
    });
  }

  /* The picker's pressed button, the custom box's days, the range panel's title. */
  function showRange() {
    var on = range.name || '30d';
    document.querySelectorAll('#' + K.ids.CK_RANGE + ' [data-range]').forEach(function (b) {
      cc.setAttr(b, 'aria-pressed', b.getAttribute('data-range') === on ? 'true' : 'false');
    });
    if (range.name === 'custom') {
      dateInput('from').value = range.from;
      dateInput('to').value = range.to;
    }
    panelTitle($('CK_WINDOW'), range.name === 'custom'
      ? cc.t('ck.range.span', { from: range.from, to: range.to }) : cc.t('ck.range.' + on));
  }

  /* A local day (the center's time zone) as YYYY-MM-DD, '' when unknown. */
  function isoDay(ms) {
    if (typeof ms !== 'number' || !isFinite(ms)) return '';
    var parts = new Intl.DateTimeFormat('en-CA', { timeZone: cc.cfg.tz, year: 'numeric',
      month: '2-digit', day: '2-digit' }).format(new Date(ms));
    return parts;
  }

  /* The custom box's day inputs, made on first use in the layout's slots. */
  function dateInput(end) {
    var slot = document.querySelector('#' + K.ids.CK_CUSTOM + ' [data-date="' + end + '"]');
    var input = slot.querySelector('input');
    if (!input) {
      input = cc.make('input', 'cc-ck-date');
      input.type = 'date';
      input.name = end;
      slot.appendChild(input);
    }
    return input;
  }

  C.setRange = function (next) {
    if (next.name === range.name && next.from === range.from && next.to === range.to) return;
    range = next;
    gen++;
    history.pushState({ scope: scope }, '', urlFor(scope));
    $('CK_CUSTOM').hidden = true;
    fixLangLink();
    say('');
    load();
  };

  function onRange(btn) {
    var name = btn.getAttribute('data-range');
    if (btn.id === K.ids.CK_APPLY) {
      var from = dateInput('from').value, to = dateInput('to').value;
      if (!DAY.test(from) || !DAY.test(to) || from > to) { say(cc.t('ck.range.bad')); return; }
      C.setRange({ name: 'custom', from: from, to: to });
    } else if (name === 'custom') {
      var box = $('CK_CUSTOM');
      box.hidden = !box.hidden;
      if (!box.hidden && !dateInput('from').value) { // start from the range shown
        var w = (fig && fig.window) || {};
        dateInput('from').value = isoDay(w.from);
        dateInput('to').value = isoDay(w.to);
      }
    } else if (name) {
      C.setRange({ name: name === '30d' ? null : name, from: null, to: null });
    }
  }

  /* null for the default view (the user's own scope, or the city), so its address is plain. */
  function home(code) {
    if (!code || code === K.own || (K.city && code === K.city.code)) return null;
    return code;
  }

  C.go = function (code, push) {
    if (K.own && code && code.indexOf(K.own) !== 0) return; // never above one's own scope
    code = home(code);
    if (code === scope) return;
    scope = code || null;
    gen++;
    if (push !== false) history.pushState({ scope: scope }, '', urlFor(scope));
    fixLangLink();
    say('');
    load();
  };

  /* ------------------------------------------------------------- loading */

  function say(text) {
    var el = $('CK_MSG');
    cc.setText(el, text);
    cc.setAttr(el, 'data-on', text ? '1' : '0');
  }

  function load() {
    var mine = gen;
    inflight = true;
    return cc.api('GET', '/stats' + apiQuery())
      .then(function (f) {
        inflight = false;
        if (mine !== gen) return;
        var key = (f.scope && f.scope.code) + '|' + f.range + '|' + (f.window || {}).from + '|' +
          f.version + '|' + f.generated;
        if (key === shownKey) return; // nothing moved: no repaint at all
        shownKey = key;
        fig = f;
        cc.schedule('cockpit', render);
      }, function (err) {
        inflight = false;
        if (mine !== gen) return;
        var badRange = err.status === 400 && err.code === 'bad_range';
        if (err.status === 403) say(cc.t('ck.err_scope'));
        else if (badRange) say(cc.t('ck.range.bad'));
        else if (err.status === 400) say(cc.t('ck.err_unknown'));
        else say(cc.t('ck.err_network'));
        if (badRange && range.name) {
          range = { name: null, from: null, to: null }; // back to the default range
          history.replaceState({ scope: scope }, '', urlFor(scope));
          fixLangLink();
          gen++;
          load();
        } else if ((err.status === 403 || err.status === 400) && scope) {
          // back to what this user may see, so the screen never stays on a refused area
          scope = null;
          history.replaceState({ scope: null }, '', urlFor(null));
          fixLangLink();
          gen++;
          load();
        }
      });
  }

  function poll() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      if (!inflight && !document.hidden) load().then(poll, poll); else poll();
    }, K.pollMs);
  }

  /* ------------------------------------------------------------- painting */

  function setCk(key, text) {
    var el = document.querySelector('[data-ck="' + key + '"]');
    cc.setText(el, text);
    return el;
  }

  function render() {
    var f = fig;
    if (!f) return;
    var root = $('CK_ROOT');
    cc.setAttr(root, 'data-scope', f.scope.code);
    cc.setAttr(root, 'data-level', f.scope.level);
    cc.setAttr(root, 'data-version', String(f.version));
    renderCrumbs(f.scope);
    ['today', 'week', 'month'].forEach(function (p) {
      var per = (f.periods || {})[p] || {};
      setCk(p + '.count', cc.fmtInt(num(per.count)));
      var ch = change(per.change);
      var el = setCk(p + '.change', ch.text);
      cc.setAttr(el, 'data-dir', ch.dir);
      setCk(p + '.prev', cc.t('ck.prev', { n: cc.fmtInt(num(per.prev)) }));
    });
    var now = f.now || {};
    ['open', 'overdue', 'in_progress', 'closed_today'].forEach(function (k) {
      setCk('now.' + k, cc.fmtInt(num(now[k])));
    });
    var w = f.window || {};
    ['total', 'closed', 'overdue', 'yellow', 'red'].forEach(function (k) {
      setCk('window.' + k, cc.fmtInt(num(w[k])));
    });
    setCk('window.closure_rate', pct(w.closure_rate));
    ['avg_dispatch_s', 'avg_arrive_s', 'avg_close_s'].forEach(function (k) {
      setCk('window.' + k, dur(w[k]));
    });
    var wk = f.workers || {}, pa = f.patrol || {};
    gauge('workers', wk.online_rate, cc.t('ck.online_of', { online: cc.fmtInt(num(wk.online)),
      total: cc.fmtInt(num(wk.total)) }));
    gauge('patrol', pa.coverage, cc.t('ck.patrol_of', { visited: cc.fmtInt(num(pa.visited)),
      grids: cc.fmtInt(num(pa.grids)) }));
    renderChildren(f);
    renderRanks(f);
    drawCharts();
    cc.setText($('CK_UPDATED'), cc.t('ck.updated', { time: cc.fmtTime(Number(f.generated)) }));
  }

  /* Hand the figures to the charts (callbacks/cockpit.py builds the Plotly figures), only
     when they, or the page's scale, changed: Plotly redraws nothing otherwise. */
  function drawCharts() {
    if (!fig) return;
    var key = shownKey + '|' + cc.scale;
    if (key === chartKey) return;
    var slim = Object.assign({}, fig);
    delete slim.grid_density; // not charted: a city's grids would only weigh on the request
    if (cc.setProps(K.ids.CK_DATA, { data: { fig: slim, key: key, lang: cc.cfg.lang, scale: cc.scale } })) {
      chartKey = key;
    }
  }

  /* The key of the figures each chart shows now (layout.meta.key), for tests and the bench. */
  C.chartKeys = function () {
    var out = {};
    ['CK_MAP', 'CK_TREND', 'CK_CATS', 'CK_SRCS', 'CK_SEV', 'CK_CHILDREN'].forEach(function (k) {
      var gd = document.querySelector('#' + K.ids[k] + ' .js-plotly-plot');
      var meta = gd && gd.layout && gd.layout.meta;
      out[k] = meta && meta.key ? meta.key : null;
    });
    return out;
  };

  function gauge(key, rate, of) {
    setCk(key + '.rate', pct(rate));
    setCk(key + '.of', of);
    var box = document.querySelector('[data-gauge="' + key + '"] .cc-ck-gauge-fill');
    var scale = rate === null || rate === undefined || !isFinite(rate) ? '0' : Math.min(1, rate).toFixed(4);
    if (box && box._ccScale !== scale) { box.style.transform = 'scaleX(' + scale + ')'; box._ccScale = scale; }
  }

  /* The breadcrumb: from the user's own scope (or the city) down to this one. */
  function renderCrumbs(sc) {
    var nav = $('CK_CRUMBS');
    var root = sc.level !== 'city' && K.city && K.city.code ? [K.city] : [];
    var chain = root.concat(sc.parents || []).filter(function (p) {
      return !K.own || p.code.indexOf(K.own) === 0;
    }).concat([{ code: sc.code, name: sc.name, name_en: sc.name_en, level: sc.level }]);
    var key = chain.map(function (p) { return p.code; }).join('>');
    if (nav._ccKey === key) return;
    nav._ccKey = key;
    nav.textContent = '';
    chain.forEach(function (p, i) {
      if (i) nav.appendChild(cc.make('span', 'cc-ck-crumb-sep', '›'));
      var last = i === chain.length - 1;
      var el = cc.make(last ? 'span' : 'a', 'cc-ck-crumb' + (last ? ' is-here' : ''), cc.unitName(p));
      el.setAttribute('data-code', p.code);
      el.setAttribute('data-level', p.level || '');
      if (!last) el.setAttribute('href', urlFor(home(p.code)));
      nav.appendChild(el);
    });
    if (chain.length > 1) {
      var up = chain[chain.length - 2];
      var back = cc.make('a', 'cc-ck-up', cc.t('cockpit.back'));
      back.setAttribute('data-code', up.code);
      back.setAttribute('href', urlFor(home(up.code)));
      nav.appendChild(back);
    }
    var label = $('CK_SCOPE');
    label.textContent = '';
    label.appendChild(cc.make('span', 'cc-ck-scope-level', cc.t('ck.level.' + sc.level)));
    label.appendChild(cc.make('span', 'cc-ck-scope-name', cc.unitName(sc)));
  }

  function panelTitle(box, text) {
    var panel = box && box.closest('.cc-panel');
    cc.setText(panel && panel.querySelector('.cc-panel-title'), text);
  }

  /* The child units' panel: its title and count (the bars are a chart). */
  function renderChildren(f) {
    var level = f.scope.child_level;
    panelTitle($('CK_CHILDREN'), level ? cc.t('ck.children.' + level) : cc.t('ck.children_none'));
    var n = (f.children || []).length;
    cc.setText($('CK_CHILD_TITLE'), n ? String(n) : '');
  }

  function renderRanks(f) {
    var r = f.rankings || {};
    var level = r.town ? 'town' : r.community ? 'community' : null;
    var rate = $('CK_RANK_RATE'), over = $('CK_RANK_OVERDUE');
    panelTitle(rate, cc.t('ck.rank.' + (level || f.scope.child_level || 'town')));
    var rows = level ? r[level] : {};
    rankList(rate, rows.closure_rate || [], function (u) { return pct(u.closure_rate); });
    rankList(over, rows.overdue || [], function (u) { return cc.fmtInt(num(u.overdue)); });
  }

  function rankList(ol, units, value) {
    units = units.slice(0, K.rankRows);
    var key = units.map(function (u) { return u.code + ':' + value(u); }).join(',');
    if (ol._ccKey === key) return;
    ol._ccKey = key;
    ol.textContent = '';
    if (!units.length) { ol.appendChild(cc.make('li', 'cc-ck-rank-none', cc.t('ck.rank_none'))); return; }
    units.forEach(function (u, i) {
      var li = cc.make('li', 'cc-ck-rank-row');
      li.setAttribute('data-code', u.code);
      li.setAttribute('role', 'button');
      li.appendChild(cc.make('span', 'cc-ck-rank-n', String(i + 1)));
      li.appendChild(cc.make('span', 'cc-ck-rank-name', cc.unitName(u)));
      li.appendChild(cc.make('span', 'cc-ck-rank-value', value(u)));
      ol.appendChild(li);
    });
  }

  /* ------------------------------------------------------------- start */

  function onClick(e) {
    var btn = e.target.closest && e.target.closest('#' + K.ids.CK_RANGE + ' button');
    if (btn) { onRange(btn); return; }
    var t = e.target.closest && e.target.closest('.cc-ck-rank-row, a.cc-ck-crumb, a.cc-ck-up');
    if (!t) return;
    var code = t.getAttribute('data-code');
    if (!code) return;
    e.preventDefault();
    C.go(code);
  }

  C.init = function () {
    K = Object.assign({ ids: cc.cfg.ids }, cc.cfg.cockpit);
    scope = home(scopeFromUrl());
    range = rangeFromUrl();
    fixLangLink();
    $('CK_ROOT').addEventListener('click', onClick);
    window.addEventListener('popstate', function () {
      var s = home(scopeFromUrl()), r = rangeFromUrl();
      if (s !== scope || r.name !== range.name || r.from !== range.from || r.to !== range.to) {
        scope = s; range = r; gen++; fixLangLink(); load();
      }
    });
    // a window moved to another screen changes the page's scale: the charts' type follows
    window.addEventListener('resize', function () {
      cc.scale = parseFloat(getComputedStyle(document.documentElement).fontSize) / 16 || 1;
      cc.schedule('cockpit-charts', drawCharts);
    });
    history.replaceState({ scope: scope }, '', urlFor(scope));
    load().then(poll, poll);
  };

  /* test hook: the figures painted now */
  Object.defineProperty(C, 'figures', { get: function () { return fig; } });
  Object.defineProperty(C, 'chartKey', { get: function () { return chartKey; } });
  /* the key of the figures fetched last (scope|range|from|version|generated); the page and
     its charts show them once chartKey starts with it */
  Object.defineProperty(C, 'shownKey', { get: function () { return shownKey; } });
  Object.defineProperty(C, 'range', { get: function () { return Object.assign({}, range); } });

  /* A click on the map or the area bars (clientside callback of callbacks/cockpit.py): the
     unit's code is the map's location or the bar's first customdata. */
  function clicked(data) {
    var p = data && data.points && data.points[0];
    if (!p) return null;
    if (p.location) return String(p.location);
    var cd = p.customdata;
    return Array.isArray(cd) ? String(cd[0]) : null;
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside);
  window.dash_clientside.ccwall = Object.assign({}, window.dash_clientside.ccwall, {
    cockpitClick: function (mapClick, areaClick) {
      var ctx = window.dash_clientside.callback_context;
      var trig = ctx && ctx.triggered && ctx.triggered[0] ? ctx.triggered[0].prop_id : '';
      var code = clicked(trig.indexOf(K.ids.CK_MAP) === 0 ? mapClick : areaClick);
      if (code && /^[0-9]{1,20}$/.test(code)) C.go(code);
      return code;
    },
  });

  cc.pages = cc.pages || {};
  cc.pages.cockpit = { init: C.init };
})();
