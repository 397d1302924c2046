/* Executive cockpit, /cockpit (docs/COCKPIT.md): fills the panels from GET /api/stats.

   The figures are cached on the server and recomputed only when the data changed, so the
   page asks every `pollMs` and redraws only when `generated` moved. Clicking an area (map,
   table) drills down (`?scope=CODE`, history kept so Back goes up); the breadcrumb goes up.
   Feed text (area names) only through textContent. */
(function () {
  'use strict';
  var cc = window.ccwall;
  var C = (cc.cockpit = {});
  var L = window.L;

  var ID = null, K = null;
  var scope = null; // the code shown; null = the user's own scope (or the city)
  var last = null; // the figures drawn
  var timer = null, failures = 0;
  var map = null, areaLayer = null, geoCache = {}; // level → GeoJSON (a few MB at most)
  var maps = [];

  if (L && L.Map && L.Map.addInitHook) {
    L.Map.addInitHook(function () { maps.push(this); if (maps.length > 4) maps.shift(); });
  }

  function fill(name) { return document.querySelector('[data-ck="' + name + '"]'); }
  function clear(el) { while (el && el.firstChild) el.removeChild(el.firstChild); return el; }
  function pct(x) { return x === null || x === undefined ? '—' : (x * 100).toFixed(1) + '%'; }
  function dur(s) { return s === null || s === undefined ? '—' : cc.fmtDuration(s * 1000); }
  function num(n) { return n === null || n === undefined ? '—' : cc.fmtInt(n); }

  function figure(label, value, sub, cls) {
    var box = cc.make('div', 'cc-ck-fig' + (cls ? ' ' + cls : ''));
    box.appendChild(cc.make('div', 'cc-ck-fig-value', value));
    box.appendChild(cc.make('div', 'cc-ck-fig-label', label));
    if (sub) box.appendChild(cc.make('div', 'cc-ck-fig-sub', sub));
    return box;
  }

  function change(p) {
    if (!p || p.change === null || p.change === undefined) return '';
    var c = p.change * 100;
    return (c > 0 ? '▲' : c < 0 ? '▼' : '＝') + Math.abs(c).toFixed(0) + '%';
  }

  function drawPeriods(f) {
    var el = clear(fill('periods'));
    ['today', 'week', 'month'].forEach(function (k) {
      var p = f.periods[k] || {};
      var box = figure(cc.t('cockpit.' + k), num(p.count),
        cc.t('cockpit.vs_prev', { prev: num(p.prev) }) + ' ' + change(p));
      box.setAttribute('data-fig', 'period-' + k);
      el.appendChild(box);
    });
  }

  function drawNow(f) {
    var el = clear(fill('now'));
    [['open', 'cc-ck-amber'], ['overdue', 'cc-ck-red'], ['in_progress', ''],
      ['closed_today', 'cc-ck-green']].forEach(function (pair) {
      var box = figure(cc.t('cockpit.' + pair[0]), num(f.now[pair[0]]), '', pair[1]);
      box.setAttribute('data-fig', 'now-' + pair[0]);
      el.appendChild(box);
    });
  }

  function drawWindow(f) {
    var w = f.window, el = clear(fill('window'));
    var items = [['closure_rate', pct(w.closure_rate)], ['avg_dispatch', dur(w.avg_dispatch_s)],
      ['avg_arrive', dur(w.avg_arrive_s)], ['avg_close', dur(w.avg_close_s)],
      ['yellow', num(w.yellow)], ['red', num(w.red)]];
    items.forEach(function (it) {
      var box = figure(cc.t('cockpit.' + it[0]), it[1], '', it[0] === 'red' ? 'cc-ck-red' :
        it[0] === 'yellow' ? 'cc-ck-amber' : '');
      box.setAttribute('data-fig', 'window-' + it[0]);
      el.appendChild(box);
    });
  }

  function bars(name, counts, prefix) {
    var el = clear(fill(name));
    var keys = Object.keys(counts || {}).filter(function (k) { return counts[k] > 0; });
    keys.sort(function (a, b) { return counts[b] - counts[a]; });
    var max = keys.length ? counts[keys[0]] : 1;
    if (!keys.length) el.appendChild(cc.make('div', 'cc-cmd-empty', cc.t('cockpit.none')));
    keys.slice(0, 7).forEach(function (k) {
      var row = cc.make('div', 'cc-ck-bar');
      row.setAttribute('data-key', k);
      row.appendChild(cc.make('span', 'cc-ck-bar-label', cc.label(prefix, k)));
      var track = row.appendChild(cc.make('span', 'cc-ck-bar-track'));
      var fillEl = track.appendChild(cc.make('span', 'cc-ck-bar-fill'));
      fillEl.style.width = (100 * counts[k] / max).toFixed(1) + '%';
      row.appendChild(cc.make('span', 'cc-ck-bar-value', num(counts[k])));
      el.appendChild(row);
    });
  }

  function drawTrend(f) {
    var el = clear(fill('trend'));
    var tr = f.trend || { days: [], total: [], closed: [] };
    var max = Math.max.apply(null, [1].concat(tr.total));
    var chart = el.appendChild(cc.make('div', 'cc-ck-trend'));
    tr.days.forEach(function (day, i) {
      var col = chart.appendChild(cc.make('div', 'cc-ck-trend-day'));
      col.title = day + ' · ' + tr.total[i] + ' / ' + tr.closed[i];
      var a = col.appendChild(cc.make('span', 'cc-ck-trend-total'));
      a.style.height = (100 * tr.total[i] / max).toFixed(1) + '%';
      var b = col.appendChild(cc.make('span', 'cc-ck-trend-closed'));
      b.style.height = (100 * tr.closed[i] / max).toFixed(1) + '%';
    });
    var legend = el.appendChild(cc.make('div', 'cc-ck-legend'));
    legend.appendChild(cc.make('span', 'cc-ck-key-total', cc.t('cockpit.trend_total')));
    legend.appendChild(cc.make('span', 'cc-ck-key-closed', cc.t('cockpit.trend_closed')));
    if (tr.days.length) legend.appendChild(cc.make('span', '', tr.days[0] + ' — ' + tr.days[tr.days.length - 1]));
  }

  function drawChildren(f) {
    var el = clear(fill('children'));
    var rows = (f.children || []).slice().sort(function (a, b) {
      return (b.overdue - a.overdue) || (b.total - a.total);
    });
    if (!rows.length) { el.appendChild(cc.make('div', 'cc-cmd-empty', cc.t('cockpit.none'))); return; }
    var table = el.appendChild(cc.make('table', 'cc-ck-table'));
    var head = table.appendChild(cc.make('tr'));
    ['cockpit.col_name', 'cockpit.col_total', 'cockpit.col_open', 'cockpit.col_overdue',
      'cockpit.col_rate'].forEach(function (key) { head.appendChild(cc.make('th', '', cc.t(key))); });
    rows.slice(0, 12).forEach(function (u) {
      var tr = table.appendChild(cc.make('tr', 'cc-ck-area'));
      tr.setAttribute('data-code', u.code);
      tr.appendChild(cc.make('td', 'cc-ck-area-name', u.name));
      tr.appendChild(cc.make('td', '', num(u.total)));
      tr.appendChild(cc.make('td', '', num(u.open)));
      tr.appendChild(cc.make('td', u.overdue ? 'cc-ck-red' : '', num(u.overdue)));
      tr.appendChild(cc.make('td', '', pct(u.closure_rate)));
      tr.addEventListener('click', function () { C.go(u.code); });
    });
  }

  function drawWorkers(f) {
    var el = clear(fill('workers'));
    var w = f.workers || {}, p = f.patrol || {};
    var a = figure(cc.t('cockpit.workers'), pct(w.online_rate), num(w.online) + ' / ' + num(w.total));
    a.setAttribute('data-fig', 'workers-online');
    var b = figure(cc.t('cockpit.patrol'), pct(p.coverage), num(p.visited) + ' / ' + num(p.grids));
    b.setAttribute('data-fig', 'patrol');
    el.appendChild(a);
    el.appendChild(b);
  }

  function drawCrumbs(f) {
    var nav = clear(cc.el(ID.CK_CRUMBS));
    var own = cc.cfg.cockpit.scopeOf;
    var chain = (f.scope.parents || []).concat([{ code: f.scope.code, name: f.scope.name }]);
    var top = cc.cfg.cockpit.city;
    if (top && top.code && chain[0].code !== top.code) chain.unshift(top);
    chain.forEach(function (u, i) {
      var mine = !own || i >= chain.length - 1 || chainHas(chain, own, i);
      var item = cc.make(i < chain.length - 1 && mine ? 'a' : 'span', 'cc-ck-crumb', u.name);
      item.setAttribute('data-code', u.code);
      if (i < chain.length - 1 && mine) {
        item.href = '#';
        item.addEventListener('click', function (e) { e.preventDefault(); C.go(u.code); });
      }
      nav.appendChild(item);
    });
  }

  // a scoped user may go up only as far as their own scope
  function chainHas(chain, own, i) {
    for (var j = 0; j <= i; j++) if (chain[j].code === own) return true;
    return false;
  }

  /* ------------------------------------------------------------- the density map */

  function attachMap() {
    if (map) return map;
    for (var i = maps.length - 1; i >= 0; i--) {
      var c = maps[i].getContainer && maps[i].getContainer();
      if (c && c.id === ID.CK_MAP && c.isConnected) { map = maps[i]; break; }
    }
    return map;
  }

  function shade(density, max) {
    var x = max > 0 ? Math.min(1, density / max) : 0;
    var stops = [[14, 42, 82], [30, 136, 229], [253, 216, 53], [229, 57, 53]];
    var seg = Math.min(stops.length - 2, Math.floor(x * (stops.length - 1)));
    var t = x * (stops.length - 1) - seg, a = stops[seg], b = stops[seg + 1];
    return 'rgb(' + [0, 1, 2].map(function (k) { return Math.round(a[k] + (b[k] - a[k]) * t); }).join(',') + ')';
  }

  function drawMap(f) {
    if (!L || !attachMap()) return;
    var level = f.scope.child_level;
    if (!level) return;
    var byCode = {};
    var max = 0;
    (f.children || []).forEach(function (u) { byCode[u.code] = u; max = Math.max(max, u.density_km2 || 0); });
    var draw = function (geo) {
      if (areaLayer) { map.removeLayer(areaLayer); areaLayer = null; }
      var feats = (geo.features || []).filter(function (ft) {
        var p = ft.properties || {};
        return byCode[p.code || p.id];
      });
      if (!feats.length) return;
      areaLayer = L.geoJSON({ type: 'FeatureCollection', features: feats }, {
        style: function (ft) {
          var u = byCode[(ft.properties || {}).code || (ft.properties || {}).id];
          return { color: '#5fe6ff', weight: 1.2, fillOpacity: 0.75,
            fillColor: shade(u.density_km2 || 0, max) };
        },
        onEachFeature: function (ft, layer) {
          var u = byCode[(ft.properties || {}).code || (ft.properties || {}).id];
          layer.on('click', function () { C.go(u.code); });
          var tip = cc.make('span', '', u.name + ' · ' + (u.density_km2 || 0).toFixed(2));
          layer.bindTooltip(tip, { sticky: true });
        },
      }).addTo(map);
      map.fitBounds(areaLayer.getBounds(), { padding: [8, 8] });
    };
    if (geoCache[level]) return draw(geoCache[level]);
    fetch(cc.cfg.geo[level], { credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) throw new Error('geo ' + r.status);
      return r.json();
    }).then(function (geo) {
      geoCache[level] = geo;
      if (last === f) draw(geo);
    }).catch(function (e) { console.warn('cockpit: no boundary for', level, e); });
  }

  /* ------------------------------------------------------------- fetching */

  function message(key, level) {
    var el = cc.el(ID.CK_MSG);
    cc.setText(el, key ? cc.t(key.key, key.vars) : '');
    el.setAttribute('data-level', level || 'info');
  }

  function draw(f) {
    last = f;
    drawCrumbs(f);
    drawPeriods(f);
    drawNow(f);
    drawWindow(f);
    bars('category', f.by_category, 'cat');
    bars('source', f.by_source, 'src');
    drawTrend(f);
    drawChildren(f);
    drawWorkers(f);
    drawMap(f);
    document.getElementById(ID.CK_ROOT).setAttribute('data-scope', f.scope.code);
    message({ key: 'cockpit.updated', vars: { time: cc.fmtTime(f.generated) } }, 'info');
  }

  function load() {
    clearTimeout(timer);
    var url = cc.cfg.api + '/stats' + (scope ? '?scope=' + encodeURIComponent(scope) : '');
    var asked = scope;
    fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
      .then(function (res) {
        if (asked !== scope) return;
        if (!res.ok) throw new Error(res.body && res.body.error);
        failures = 0;
        if (!last || res.body.generated !== last.generated || res.body.scope.code !== last.scope.code) draw(res.body);
      })
      .catch(function (e) {
        failures += 1;
        console.warn('cockpit: figures not loaded', e && e.message);
        message({ key: 'cockpit.failed' }, 'warn');
      })
      .then(function () {
        // back off while failing: 5 s, 10 s, … up to a minute
        timer = setTimeout(load, Math.min(60000, K.pollMs * Math.pow(2, Math.min(failures, 4))));
      });
  }

  C.go = function (code) {
    if (!code || (last && code === last.scope.code)) return;
    scope = code;
    var q = new URLSearchParams(location.search);
    q.set('scope', code);
    history.pushState({ scope: code }, '', location.pathname + '?' + q.toString());
    load();
  };

  C.figures = function () { return last; };

  C.init = function () {
    ID = cc.cfg.ids;
    K = cc.cfg.cockpit;
    scope = new URLSearchParams(location.search).get('scope') || null;
    // a wall's screen size can change (kiosk start-up, a second monitor): keep the areas fitted
    window.addEventListener('resize', function () {
      if (!map || !areaLayer) return;
      map.invalidateSize();
      map.fitBounds(areaLayer.getBounds(), { padding: [8, 8] });
    });
    window.addEventListener('popstate', function () {
      scope = new URLSearchParams(location.search).get('scope') || null;
      load();
    });
    load();
  };

  cc.pages = cc.pages || {};
  cc.pages.cockpit = { init: C.init };
})();
