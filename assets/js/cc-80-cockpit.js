/* cc-80-cockpit.js: the executive cockpit page, /cockpit (docs/COCKPIT.md).

   Every figure of one scope from GET /api/stats?scope=, a density map of its child units
   (plain Leaflet on the boundary GeoJSON the wall uses), drill-down by clicking a child
   (map, bars or ranking) with `?scope=CODE` kept in the address, a breadcrumb back up to the
   user's own scope.

   Refresh: the endpoint is cached on the server and cheap, so it is read every `pollMs`
   and the page repaints only when `version`/`generated` changed; every write goes through
   setText/setAttr (no-ops when unchanged) and rows are kept by code, so nothing flickers.
   Unit names come from the server's figures and go in through textContent only. */
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
  var geo = new Map(); // level → Promise of its GeoJSON (5 levels at most)
  var map = null, outline = null, shades = null, labels = null;
  var mapKey = ''; // the scope whose shapes are drawn
  var shapes = new Map(); // child code → its L.GeoJSON layer
  var childRows = new Map(); // child code → its bar row

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

  function scopeFromUrl() {
    var q = new URLSearchParams(location.search).get('scope');
    return q && /^[0-9]{1,20}$/.test(q) ? q : null;
  }

  function urlFor(code) {
    var q = new URLSearchParams(location.search);
    if (code) q.set('scope', code); else q.delete('scope');
    var s = q.toString();
    return location.pathname + (s ? '?' + s : '');
  }

  /* The header's language link keeps the scope (a leader switching language stays put). */
  function fixLangLink() {
    var a = $('LANG_LINK');
    if (!a) return;
    var q = new URLSearchParams((a.getAttribute('href') || '').replace(/^[^?]*\?/, ''));
    if (scope) q.set('scope', scope); else q.delete('scope');
    cc.setAttr(a, 'href', '?' + q.toString());
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
    return cc.api('GET', '/stats' + (scope ? '?scope=' + encodeURIComponent(scope) : ''))
      .then(function (f) {
        inflight = false;
        if (mine !== gen) return;
        var key = (f.scope && f.scope.code) + '|' + f.version + '|' + f.generated;
        if (key === shownKey) return; // nothing moved: no repaint at all
        shownKey = key;
        fig = f;
        cc.schedule('cockpit', render);
      }, function (err) {
        inflight = false;
        if (mine !== gen) return;
        if (err.status === 403) say(cc.t('ck.err_scope'));
        else if (err.status === 400) say(cc.t('ck.err_unknown'));
        else say(cc.t('ck.err_network'));
        if ((err.status === 403 || err.status === 400) && scope) {
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
    fixedBars($('CK_CATS'), f.by_category || {});
    fixedBars($('CK_SRCS'), f.by_source || {});
    renderTrend(f.trend || {});
    renderMap(f);
    cc.setText($('CK_UPDATED'), cc.t('ck.updated', { time: cc.fmtTime(Number(f.generated)) }));
  }

  function gauge(key, rate, of) {
    setCk(key + '.rate', pct(rate));
    setCk(key + '.of', of);
    var box = document.querySelector('[data-gauge="' + key + '"] .cc-ck-gauge-fill');
    var scale = rate === null || rate === undefined || !isFinite(rate) ? '0' : Math.min(1, rate).toFixed(4);
    if (box && box._ccScale !== scale) { box.style.transform = 'scaleX(' + scale + ')'; box._ccScale = scale; }
  }

  function fill(el, scale) {
    scale = scale.toFixed(4);
    if (el && el._ccScale !== scale) { el.style.transform = 'scaleX(' + scale + ')'; el._ccScale = scale; }
  }

  function fixedBars(box, counts) {
    if (!box) return;
    var rows = box.querySelectorAll('.cc-ck-bar-row'), max = 0;
    rows.forEach(function (r) { max = Math.max(max, num(counts[r.getAttribute('data-code')])); });
    rows.forEach(function (r) {
      var v = num(counts[r.getAttribute('data-code')]);
      fill(r.querySelector('.cc-ck-bar-fill'), max ? v / max : 0);
      cc.setText(r.querySelector('.cc-ck-bar-value'), cc.fmtInt(v));
    });
  }

  /* The breadcrumb: from the user's own scope (or the city) down to this one. */
  function renderCrumbs(sc) {
    var nav = $('CK_CRUMBS');
    var root = sc.level !== 'city' && K.city && K.city.code ? [K.city] : [];
    var chain = root.concat(sc.parents || []).filter(function (p) {
      return !K.own || p.code.indexOf(K.own) === 0;
    }).concat([{ code: sc.code, name: sc.name, level: sc.level }]);
    var key = chain.map(function (p) { return p.code; }).join('>');
    if (nav._ccKey === key) return;
    nav._ccKey = key;
    nav.textContent = '';
    chain.forEach(function (p, i) {
      if (i) nav.appendChild(cc.make('span', 'cc-ck-crumb-sep', '›'));
      var last = i === chain.length - 1;
      var el = cc.make(last ? 'span' : 'a', 'cc-ck-crumb' + (last ? ' is-here' : ''), p.name || p.code);
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
    label.appendChild(cc.make('span', 'cc-ck-scope-name', sc.name || sc.code));
  }

  function panelTitle(box, text) {
    var panel = box && box.closest('.cc-panel');
    cc.setText(panel && panel.querySelector('.cc-panel-title'), text);
  }

  /* The child units, most events first: one row each, kept by code. */
  function renderChildren(f) {
    var box = $('CK_CHILDREN');
    var level = f.scope.child_level;
    panelTitle(box, level ? cc.t('ck.children.' + level) : cc.t('ck.children_none'));
    var kids = (f.children || []).slice().sort(function (a, b) {
      return num(b.total) - num(a.total) || (a.code < b.code ? -1 : 1);
    });
    var max = 0;
    kids.forEach(function (k) { max = Math.max(max, num(k.total)); });
    var keep = new Set();
    kids.forEach(function (k, i) {
      keep.add(k.code);
      var row = childRows.get(k.code);
      if (!row) {
        row = cc.make('div', 'cc-ck-bar-row cc-ck-child');
        row.setAttribute('data-code', k.code);
        row.setAttribute('role', 'button');
        row.appendChild(cc.make('span', 'cc-ck-bar-label'));
        var track = cc.make('span', 'cc-ck-bar-track');
        track.appendChild(cc.make('span', 'cc-ck-bar-fill'));
        row.appendChild(track);
        row.appendChild(cc.make('span', 'cc-ck-bar-value'));
        row.appendChild(cc.make('span', 'cc-ck-bar-sub'));
        childRows.set(k.code, row);
      }
      cc.setText(row.children[0], k.name || k.code);
      fill(row.querySelector('.cc-ck-bar-fill'), max ? num(k.total) / max : 0);
      cc.setText(row.children[2], cc.fmtInt(num(k.total)));
      cc.setText(row.children[3], pct(k.closure_rate));
      cc.setAttr(row, 'data-overdue', num(k.overdue) ? '1' : '0');
      if (box.children[i] !== row) box.insertBefore(row, box.children[i] || null);
    });
    childRows.forEach(function (row, code) {
      if (!keep.has(code)) { row.remove(); childRows.delete(code); }
    });
    cc.setText($('CK_CHILD_TITLE'), kids.length ? String(kids.length) : '');
    // long lists (communities of a town) get smaller rows so they still fit
    cc.setAttr(box, 'data-density', kids.length > 24 ? 'tight' : kids.length > 14 ? 'dense' : 'normal');
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
      li.appendChild(cc.make('span', 'cc-ck-rank-name', u.name || u.code));
      li.appendChild(cc.make('span', 'cc-ck-rank-value', value(u)));
      ol.appendChild(li);
    });
  }

  /* 30 columns, reported and closed side by side, a date under every fifth. */
  function renderTrend(tr) {
    var box = $('CK_TREND');
    var days = tr.days || [], total = tr.total || [], closed = tr.closed || [];
    var max = 0;
    for (var i = 0; i < days.length; i++) max = Math.max(max, num(total[i]), num(closed[i]));
    if (box.children.length !== days.length) {
      box.textContent = '';
      days.forEach(function () {
        var col = cc.make('div', 'cc-ck-tcol');
        var bars = cc.make('div', 'cc-ck-tbars');
        bars.appendChild(cc.make('span', 'cc-ck-tbar cc-ck-tbar-total'));
        bars.appendChild(cc.make('span', 'cc-ck-tbar cc-ck-tbar-closed'));
        col.appendChild(cc.make('span', 'cc-ck-tval'));
        col.appendChild(bars);
        col.appendChild(cc.make('span', 'cc-ck-tday'));
        box.appendChild(col);
      });
    }
    // figures on today's column and the busiest day's only: thirty labels on narrow columns
    // run into each other
    var peak = -1, last = days.length - 1;
    for (var k = 0; k < days.length; k++) if (peak < 0 || num(total[k]) > num(total[peak])) peak = k;
    days.forEach(function (d, j) {
      var col = box.children[j];
      col.setAttribute('data-day', d);
      var bs = col.querySelectorAll('.cc-ck-tbar');
      height(bs[0], max ? num(total[j]) / max : 0);
      height(bs[1], max ? num(closed[j]) / max : 0);
      var labelled = (j === last || (j === peak && last - peak >= 2)) && num(total[j]);
      cc.setText(col.children[0], labelled ? String(num(total[j])) : '');
      cc.setText(col.children[2], (days.length - 1 - j) % 5 === 0 ? d.slice(5) : '');
    });
  }

  function height(el, x) {
    var s = x.toFixed(4);
    if (el._ccScale !== s) { el.style.transform = 'scaleY(' + s + ')'; el._ccScale = s; }
  }

  /* ------------------------------------------------------------- the map */

  function geoOf(level) {
    if (!geo.has(level)) {
      geo.set(level, cc.api('GET', cc.cfg.geo[level], undefined, { url: true, strict: true })
        .catch(function () { return null; }));
    }
    return geo.get(level);
  }

  function ensureMap() {
    if (map || !window.L) return map;
    var L = window.L;
    map = L.map($('CK_MAP'), { attributionControl: false, zoomControl: false, zoomSnap: 0.1,
      scrollWheelZoom: false, doubleClickZoom: false, boxZoom: false, keyboard: false,
      dragging: false, touchZoom: false, preferCanvas: false });
    map.setView([36.78, 119.95], 9);
    outline = L.layerGroup().addTo(map);
    shades = L.layerGroup().addTo(map);
    labels = L.layerGroup().addTo(map);
    window.addEventListener('resize', function () { map.invalidateSize(); fit(); });
    return map;
  }

  var bounds = null;
  function fit() {
    if (map && bounds && bounds.isValid()) map.fitBounds(bounds, { padding: [16 * cc.scale, 16 * cc.scale], animate: false });
  }

  // dark blue (none) → cyan → amber → red, by density relative to the densest child
  var RAMP = [[0, [22, 58, 110]], [0.35, [26, 150, 220]], [0.7, [255, 179, 0]], [1, [255, 61, 61]]];
  function colour(x) {
    x = Math.max(0, Math.min(1, x));
    for (var i = 1; i < RAMP.length; i++) {
      if (x <= RAMP[i][0]) {
        var a = RAMP[i - 1], b = RAMP[i], t = (x - a[0]) / (b[0] - a[0]);
        var c = a[1].map(function (v, k) { return Math.round(v + (b[1][k] - v) * t); });
        return 'rgb(' + c.join(',') + ')';
      }
    }
    return 'rgb(255,61,61)';
  }

  function densityOf(f) {
    var out = new Map();
    (f.children || []).forEach(function (k) { out.set(k.code, num(k.density_km2)); });
    return out;
  }

  function renderMap(f) {
    if (!ensureMap()) return;
    var sc = f.scope;
    var key = sc.code;
    if (key !== mapKey) {
      mapKey = key;
      drawShapes(f);
    } else {
      restyle(f);
    }
  }

  function drawShapes(f) {
    var L = window.L, sc = f.scope, mine = mapKey;
    var childLevel = K.childLevel[sc.level];
    var wants = [geoOf(K.outline[sc.level])];
    if (childLevel) wants.push(geoOf(childLevel));
    Promise.all(wants).then(function (docs) {
      if (mine !== mapKey) return;
      outline.clearLayers(); shades.clearLayers(); labels.clearLayers(); shapes.clear();
      var own = (docs[0] && docs[0].features || []).filter(function (ft) {
        return ft.properties && ft.properties.code === sc.code;
      });
      var line = L.geoJSON({ type: 'FeatureCollection', features: own }, { interactive: false,
        style: { color: '#38d8ff', weight: 3, fill: !childLevel, fillColor: '#1b8cff', fillOpacity: 0.25 } });
      outline.addLayer(line);
      bounds = line.getBounds();
      var kids = childLevel && docs[1] ? docs[1].features.filter(function (ft) {
        return ft.properties && ft.properties.parent === sc.code;
      }) : [];
      kids.forEach(function (ft) {
        var code = ft.properties.code;
        var layer = L.geoJSON(ft, { style: { color: '#7fd6ff', weight: 1.2, fillOpacity: 0.72 } });
        layer.on('click', function () { C.go(code); });
        shades.addLayer(layer);
        layer.eachLayer(function (l) { if (l._path) l._path.setAttribute('data-code', code); });
        shapes.set(code, layer);
      });
      if (kids.length) {
        var b = L.latLngBounds([]);
        shapes.forEach(function (l) { b.extend(l.getBounds()); });
        if (!bounds.isValid()) bounds = b;
      }
      map.invalidateSize();
      fit();
      restyle(fig);
    });
  }

  function restyle(f) {
    if (!f || f.scope.code !== mapKey) return;
    var L = window.L;
    var dens = densityOf(f), max = 0;
    dens.forEach(function (v) { max = Math.max(max, v); });
    var names = new Map();
    (f.children || []).forEach(function (k) { names.set(k.code, k); });
    var labelled = shapes.size <= K.mapLabelsMax;
    var text = [];
    shapes.forEach(function (layer, code) {
      var v = dens.get(code) || 0;
      var c = colour(max ? v / max : 0);
      if (layer._ccFill !== c) { layer.setStyle({ fillColor: c }); layer._ccFill = c; }
      var k = names.get(code);
      if (labelled && k) text.push([layer, (k.name || code) + (v ? ' ' + fmtDensity(v) : '')]);
    });
    var key = text.map(function (x) { return x[1]; }).join('|');
    if (labels._ccKey !== key) {
      labels._ccKey = key;
      labels.clearLayers();
      text.forEach(function (x) {
        var centre = x[0].getBounds().getCenter();
        labels.addLayer(L.tooltip({ permanent: true, direction: 'center', className: 'cc-ck-map-label',
          interactive: false }).setLatLng(centre).setContent(escapeText(x[1])));
      });
    }
    var legend = $('CK_MAP_LEGEND');
    cc.setText(legend.querySelector('.cc-ck-legend-hi'), fmtDensity(max));
  }

  // Leaflet tooltips take HTML: names from the server are escaped first (never markup)
  function escapeText(s) {
    var d = document.createElement('div');
    d.textContent = s;
    return d.innerHTML;
  }

  /* ------------------------------------------------------------- start */

  function onClick(e) {
    var t = e.target.closest && e.target.closest('.cc-ck-child, .cc-ck-rank-row, a.cc-ck-crumb, a.cc-ck-up');
    if (!t) return;
    var code = t.getAttribute('data-code');
    if (!code) return;
    e.preventDefault();
    C.go(code);
  }

  C.init = function () {
    K = cc.cfg.cockpit;
    scope = home(scopeFromUrl());
    fixLangLink();
    $('CK_ROOT').addEventListener('click', onClick);
    window.addEventListener('popstate', function () {
      var s = home(scopeFromUrl());
      if (s !== scope) { scope = s; gen++; fixLangLink(); load(); }
    });
    history.replaceState({ scope: scope }, '', urlFor(scope));
    load().then(poll, poll);
  };

  /* test hook: the figures painted now */
  Object.defineProperty(C, 'figures', { get: function () { return fig; } });
  Object.defineProperty(C, 'mapShapes', { get: function () { return shapes.size; } });

  cc.pages = cc.pages || {};
  cc.pages.cockpit = { init: C.init };
})();
