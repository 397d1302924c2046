/* cc-13-camsel.js: picking cameras on the map (单选/点选, 圈选, 多边形) and sending them
   to the event panel or the video wall (docs/VIDEO.md).

   A tool bar on the map (ids.CAM_TOOLS): pick toggles single cameras until switched off; a
   circle is press-drag-release (the radius shows while drawing); a polygon takes clicks,
   closes on a double-click or a click on its first vertex, Esc cancels. Membership is exact
   on the WGS-84 positions: haversine distance ≤ radius, even-odd point in polygon
   (cc.cameras.inCircle / inPolygon). The selection (ids, nearest first) is highlighted on
   the camera canvas and listed on a small card with two actions; "to the video wall" is
   only offered to a signed-in commander or duty officer (a display kiosk never writes). */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var L = window.L;
  var S = (cc.camsel = {});

  var PANE = 'ccCamSel';
  var NAMES_SHOWN = 8; // names on the card; the count says the rest
  var WALL_MAX = 16; // tiles on the biggest video-wall grid
  var GRIDS = [1, 4, 9, 16];

  var map = null;
  var tool = null; // 'click' | 'circle' | 'polygon' | null
  var selection = []; // ids, in the order they were picked (shapes: nearest first)
  var shape = null; // the last drawn shape, WGS-84
  var quietUntil = 0; // a finished drawing's own click must not open a popup
  var els = null; // the tool bar's elements
  var draft = null; // the shape being drawn: {layers, start, pts, …}
  var renderer = null;

  /* ------------------------------------------------------------- datum */

  /* WGS-84 lon/lat of a map latlng: the inverse of cc.latLng, by fixed-point iteration
     (the GCJ-02/BD-09 shifts are smooth and < 1 km, three rounds reach < 1 mm). */
  function toWgs(ll) {
    var lo = ll.lng, la = ll.lat;
    var crs = cc.cfg && cc.cfg.tileCrs;
    if (!crs || crs === 'wgs84') return [lo, la];
    for (var i = 0; i < 4; i++) {
      var f = cc.latLng(lo, la);
      lo += ll.lng - f[1];
      la += ll.lat - f[0];
    }
    return [lo, la];
  }
  S.toWgs = toWgs;

  function round6(x) { return Math.round(x * 1e6) / 1e6; }

  /* ------------------------------------------------------------- the tool bar */

  function canWall() {
    var role = cc.command ? cc.command.role : null;
    return role === 'commander' || role === 'duty_officer';
  }

  function button(parent, text, data) {
    var b = cc.make('button', 'cc-cam-btn', text);
    b.type = 'button';
    Object.keys(data).forEach(function (k) { b.setAttribute('data-' + k, data[k]); });
    parent.appendChild(b);
    return b;
  }

  function build(container) {
    var root = cc.make('div', 'cc-cam-tools');
    root.id = cc.cfg.ids.CAM_TOOLS;
    var bar = cc.make('div', 'cc-cam-bar');
    bar.appendChild(cc.make('span', 'cc-cam-title', cc.t('camsel.title')));
    var tools = {
      click: button(bar, cc.t('camsel.click'), { tool: 'click' }),
      circle: button(bar, cc.t('camsel.circle'), { tool: 'circle' }),
      polygon: button(bar, cc.t('camsel.polygon'), { tool: 'polygon' }),
    };
    var clear = button(bar, cc.t('camsel.clear'), { act: 'clear' });
    root.appendChild(bar);
    var hint = cc.make('div', 'cc-cam-hint');
    hint.hidden = true;
    root.appendChild(hint);
    var card = cc.make('div', 'cc-cam-card');
    card.hidden = true;
    var count = cc.make('div', 'cc-cam-count');
    var names = cc.make('ol', 'cc-cam-names');
    var actions = cc.make('div', 'cc-cam-actions');
    var toPanel = button(actions, cc.t('camsel.to_panel'), { act: 'panel' });
    var toWall = button(actions, cc.t('camsel.to_wall'), { act: 'wall' });
    var msg = cc.make('div', 'cc-cam-msg');
    card.appendChild(count); card.appendChild(names); card.appendChild(actions); card.appendChild(msg);
    root.appendChild(card);
    // one delegated listener for the whole bar and card
    root.addEventListener('click', function (e) {
      var b = e.target.closest ? e.target.closest('button') : null;
      if (!b || !root.contains(b)) return;
      var t = b.getAttribute('data-tool'), act = b.getAttribute('data-act');
      if (t) setTool(tool === t ? null : t);
      else if (act === 'clear') { setTool(null); S.clear(); }
      else if (act === 'panel') S.toPanel();
      else if (act === 'wall') S.toWall();
    });
    if (L) { L.DomEvent.disableClickPropagation(root); L.DomEvent.disableScrollPropagation(root); }
    container.appendChild(root);
    return { root: root, tools: tools, clear: clear, hint: hint, card: card, count: count,
      names: names, toPanel: toPanel, toWall: toWall, msg: msg };
  }

  function say(text, level) {
    if (!els) return;
    cc.setText(els.msg, text);
    cc.setAttr(els.msg, 'data-level', level || 'info');
  }

  function renderCard() {
    if (!els) return;
    els.card.hidden = selection.length === 0;
    cc.setAttr(els.root, 'data-count', String(selection.length));
    cc.setText(els.count, cc.t('camsel.count', { n: selection.length }));
    while (els.names.firstChild) els.names.removeChild(els.names.firstChild);
    selection.slice(0, NAMES_SHOWN).forEach(function (id) {
      var rec = cc.store.get('camera', id);
      var li = cc.make('li', rec && rec.online === false ? 'is-offline' : '', (rec && rec.name) || id);
      li.setAttribute('data-feed', ''); // a camera's own name
      li.setAttribute('data-camera', id);
      els.names.appendChild(li);
    });
    if (selection.length > NAMES_SHOWN) {
      els.names.appendChild(cc.make('li', 'cc-cam-more',
        cc.t('camsel.more', { n: selection.length - NAMES_SHOWN })));
    }
    els.toWall.hidden = !canWall();
  }

  /* ------------------------------------------------------------- selection */

  function setSelection(list) {
    var max = (cc.cfg.cameraLayer && cc.cfg.cameraLayer.selectionMax) || 5000;
    selection = list.slice(0, max);
    cc.cameras.setSelected(selection);
    say('');
    renderCard();
  }

  S.selection = function () { return selection.slice(); };
  S.shape = function () { return shape ? JSON.parse(JSON.stringify(shape)) : null; };
  S.tool = function () { return tool; };
  /* True while a tool owns map clicks (cc-12 then opens no popup). */
  S.busy = function () { return tool !== null || performance.now() < quietUntil; };

  S.clear = function () {
    shape = null;
    clearDraft();
    setSelection([]);
  };

  S.toggle = function (id) {
    id = String(id);
    var i = selection.indexOf(id);
    var next = selection.slice();
    if (i >= 0) next.splice(i, 1); else next.push(id);
    setSelection(next);
  };

  S.selectCircle = function (lon, lat, radiusM) {
    shape = { type: 'circle', lon: round6(lon), lat: round6(lat), radius_m: Math.round(radiusM * 10) / 10 };
    setSelection(cc.cameras.inCircle(shape.lon, shape.lat, shape.radius_m));
  };

  S.selectPolygon = function (points) {
    var pts = points.map(function (p) { return [round6(p[0]), round6(p[1])]; });
    shape = { type: 'polygon', points: pts };
    setSelection(cc.cameras.inPolygon(pts));
  };

  function records(limit) {
    var out = [];
    for (var i = 0; i < selection.length && out.length < limit; i++) {
      var rec = cc.store.get('camera', selection[i]);
      if (rec) out.push(rec);
    }
    return out;
  }

  S.toPanel = function () {
    if (!selection.length) return;
    if (!cc.video || typeof cc.video.showInPanel !== 'function') {
      say(cc.t('camsel.no_player'), 'warn');
      return;
    }
    // the panel shows cameras for an open event: without one there is nowhere to put them
    var shown = cc.video.showInPanel(records(WALL_MAX));
    if (shown === false) say(cc.t('camsel.no_panel'), 'warn');
    else say(cc.t('camsel.sent_panel'), 'ok');
  };

  /* The smallest grid that holds the selection (first 16). */
  S.gridFor = function (count) {
    for (var i = 0; i < GRIDS.length; i++) if (count <= GRIDS[i]) return GRIDS[i];
    return GRIDS[GRIDS.length - 1];
  };

  S.toWall = function () {
    if (!selection.length || !canWall()) return null;
    var tiles = selection.slice(0, WALL_MAX);
    var body = { grid: S.gridFor(tiles.length), tiles: tiles };
    // resolves with the wall the server saved, or null when it was not
    return cc.api('PUT', '/video/wall', body).then(function (saved) {
      say(cc.t('camsel.sent_wall', { n: tiles.length }), 'ok');
      return saved;
    }, function (err) {
      say(cc.t('camsel.failed', { msg: err.status ? err.error || err.status : cc.t('cmd.err_network') }),
        'error');
      return null;
    });
  };

  /* ------------------------------------------------------------- tools */

  function hintFor(t) { return t ? cc.t('camsel.' + t + '_hint') : ''; }

  function setTool(t) {
    if (!map) return;
    clearDraft();
    tool = t;
    if (els) {
      Object.keys(els.tools).forEach(function (k) {
        els.tools[k].classList.toggle('is-on', k === t);
        els.tools[k].setAttribute('aria-pressed', k === t ? 'true' : 'false');
      });
      els.hint.hidden = !t;
      cc.setText(els.hint, hintFor(t));
      cc.setAttr(els.root, 'data-tool', t || '');
    }
    var c = map.getContainer();
    c.classList.toggle('cc-cam-drawing', t === 'circle' || t === 'polygon');
    c.classList.toggle('cc-cam-picking', t === 'click');
    // drawing a circle is a drag: the map must not pan meanwhile; a polygon's double click
    // closes it instead of zooming
    if (t === 'circle') map.dragging.disable(); else map.dragging.enable();
    if (t === 'polygon') map.doubleClickZoom.disable(); else map.doubleClickZoom.enable();
  }
  S.setTool = setTool;

  function overlay() {
    if (!map.getPane(PANE)) {
      var p = map.createPane(PANE);
      p.style.zIndex = '615';
      p.style.pointerEvents = 'none';
    }
    if (!renderer || renderer._map !== map) renderer = L.svg({ pane: PANE, padding: 0.3 });
    return renderer;
  }

  function style() {
    var s = cc.scale || 1;
    return { renderer: overlay(), pane: PANE, interactive: false, color: '#ffffff', weight: 2 * s,
      opacity: 0.95, dashArray: [6 * s, 4 * s], fillColor: '#7fb2e0', fillOpacity: 0.12 };
  }

  function label(ll, text) {
    var span = cc.make('span', 'cc-cam-radius', text);
    return L.marker(ll, { pane: PANE, interactive: false, keyboard: false,
      icon: L.divIcon({ className: 'cc-cam-radius-box', html: span, iconSize: [0, 0] }) });
  }

  function clearDraft() {
    if (draft && map) draft.layers.forEach(function (l) { map.removeLayer(l); });
    draft = null;
  }

  function fmtMetres(m) {
    return m < 1000 ? Math.round(m) + ' m' : (m / 1000).toFixed(2) + ' km';
  }
  S.fmtMetres = fmtMetres; // for tests (tests/js/format.test.js)

  /* -- circle: press, drag, release */

  function circleDown(e) {
    if (tool !== 'circle') return;
    clearDraft();
    var c = L.circle(e.latlng, Object.assign({ radius: 0 }, style()));
    var lab = label(e.latlng, cc.t('camsel.radius', { r: fmtMetres(0) }));
    c.addTo(map); lab.addTo(map);
    draft = { kind: 'circle', layers: [c, lab], circle: c, label: lab, start: toWgs(e.latlng), r: 0 };
  }

  function circleMove(e) {
    if (tool !== 'circle' || !draft || draft.kind !== 'circle') return;
    var p = toWgs(e.latlng);
    draft.r = cc.cameras.distance(draft.start[0], draft.start[1], p[0], p[1]);
    draft.circle.setRadius(draft.r);
    draft.label.setLatLng(e.latlng);
    var span = draft.label.getElement() && draft.label.getElement().querySelector('.cc-cam-radius');
    cc.setText(span, cc.t('camsel.radius', { r: fmtMetres(draft.r) }));
  }

  function circleUp(e) {
    if (tool !== 'circle' || !draft || draft.kind !== 'circle') return;
    if (e && e.latlng) circleMove(e);
    var d = draft;
    quietUntil = performance.now() + 400;
    if (d.r < 1) { clearDraft(); return; } // a click, not a drag
    // the drawn circle stays as the shape's outline until the next tool use
    draft = null;
    S.selectCircle(d.start[0], d.start[1], d.r);
    setTool(null);
    draft = { kind: 'done', layers: d.layers };
  }

  /* -- polygon: clicks, closed by a double click or a click on the first vertex */

  function polyClick(e) {
    var s = cc.scale || 1;
    if (!draft || draft.kind !== 'polygon') {
      clearDraft();
      var line = L.polyline([e.latlng], style());
      var band = L.polyline([e.latlng, e.latlng], Object.assign(style(), { opacity: 0.6 }));
      line.addTo(map); band.addTo(map);
      draft = { kind: 'polygon', layers: [line, band], line: line, band: band, lls: [e.latlng],
        first: e.containerPoint };
      return;
    }
    var lls = draft.lls;
    var last = map.latLngToContainerPoint(lls[lls.length - 1]);
    if (last.distanceTo(e.containerPoint) < 4 * s) return; // the second click of a double click
    if (lls.length >= 3 && map.latLngToContainerPoint(lls[0]).distanceTo(e.containerPoint) < 12 * s) {
      closePolygon();
      return;
    }
    lls.push(e.latlng);
    draft.line.setLatLngs(lls);
  }

  function polyMove(e) {
    if (tool !== 'polygon' || !draft || draft.kind !== 'polygon') return;
    draft.band.setLatLngs([draft.lls[draft.lls.length - 1], e.latlng, draft.lls[0]]);
  }

  function closePolygon() {
    if (!draft || draft.kind !== 'polygon' || draft.lls.length < 3) return;
    var d = draft;
    quietUntil = performance.now() + 400;
    map.removeLayer(d.band);
    var poly = L.polygon(d.lls, style());
    map.removeLayer(d.line);
    poly.addTo(map);
    draft = null;
    S.selectPolygon(d.lls.map(toWgs));
    setTool(null);
    draft = { kind: 'done', layers: [poly] };
  }

  /* -- map events */

  function onClick(e) {
    if (tool === 'polygon') { polyClick(e); return; }
    if (tool !== 'click') return;
    var hit = cc.cameras.hit(e.containerPoint);
    if (!hit) return;
    if (hit.id) S.toggle(hit.id);
    else map.setView(hit.cluster.latlng, Math.min(map.getMaxZoom(), map.getZoom() + 2));
  }

  function onDblClick() { if (tool === 'polygon') closePolygon(); }

  function onMouseMove(e) {
    if (tool === 'circle') circleMove(e);
    else if (tool === 'polygon') polyMove(e);
  }

  function onKey(e) {
    if (e.key !== 'Escape' || !tool) return;
    setTool(null);
  }

  S.attach = function (m) {
    if (!m || m === map) return;
    if (map) clearDraft();
    map = m;
    m.on('click', onClick);
    m.on('dblclick', onDblClick);
    m.on('mousedown', circleDown);
    m.on('mousemove', onMouseMove);
    m.on('mouseup', circleUp);
    var wrap = m.getContainer().parentNode;
    var old = cc.$('CAM_TOOLS');
    if (old) old.remove();
    els = wrap ? build(wrap) : null;
    renderCard();
  };

  S.init = function () {
    document.addEventListener('keydown', onKey);
    // a release outside the map still ends the circle
    document.addEventListener('mouseup', function () { if (draft && draft.kind === 'circle') circleUp(null); });
    // the role arrives with /api/me: offer "to the video wall" once it is known
    setTimeout(renderCard, 1500);
    setTimeout(renderCard, 5000);
  };
})();
