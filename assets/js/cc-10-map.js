/* cc-10-map.js: the wall's Leaflet map, the boundary basemap, one layer per entity.

   Getting the map from dash-leaflet 1.1.3: its bundle sets window.L (the very Leaflet it
   builds maps with) and Dash loads component bundles before assets, so an init hook added
   here runs inside the Map constructor of every map React creates later. We keep the ones
   whose container has our id; a remounted map is re-attached the same way. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var L = window.L;
  var M = (cc.mapview = {});

  var seen = []; // maps created so far (bounded; normally one)
  var map = null;

  if (L && L.Map && L.Map.addInitHook) {
    L.Map.addInitHook(function () {
      seen.push(this);
      if (seen.length > 4) seen.shift();
      if (cc.cfg) M.attach();
    });
  }

  M.map = function () { return map; };

  /* ------------------------------------------------------------- panes and renderers */

  var PANES = {
    ccTownFill: 205, 'ccB-microgrid': 301, 'ccB-grid': 302, 'ccB-community': 303,
    'ccB-town': 304, 'ccB-boundary': 305, ccLinks: 440, ccUnits: 450, ccLabels: 460, ccPulse: 610,
    ccEvents: 620,
  };
  var renderers = {};
  var groups = {}; // name → L.LayerGroup we own, re-added to a remounted map

  function group(name) {
    if (!groups[name]) groups[name] = L.layerGroup();
    return groups[name];
  }

  function renderer(name, pane, kind) {
    if (!renderers[name]) {
      var opts = { pane: pane, padding: 0.3 };
      renderers[name] = kind === 'svg' ? L.svg(opts) : L.canvas(opts);
    }
    return renderers[name];
  }

  function ensurePanes(m) {
    Object.keys(PANES).forEach(function (name) {
      var pane = m.getPane(name) || m.createPane(name);
      pane.style.zIndex = String(PANES[name]);
      if (name === 'ccLabels' || name === 'ccPulse' || name === 'ccLinks') pane.style.pointerEvents = 'none';
    });
  }

  var layerOn = { worker: true, resource: true, camera: true };
  var visible = {}; // group name → should be on the map now

  function show(name, on) {
    visible[name] = on;
    if (!map) return;
    var g = group(name);
    if (on && !map.hasLayer(g)) map.addLayer(g);
    if (!on && map.hasLayer(g)) map.removeLayer(g);
  }

  /* Take the captured map with our container id; idempotent, survives a remount. */
  M.attach = function () {
    var id = cc.cfg.ids.MAP;
    var found = null;
    for (var i = seen.length - 1; i >= 0; i--) {
      var c = seen[i].getContainer && seen[i].getContainer();
      if (c && c.id === id && c.isConnected) { found = seen[i]; break; }
    }
    if (!found || found === map) return !!map;
    var old = map;
    if (old) Object.keys(groups).forEach(function (n) { old.removeLayer(groups[n]); });
    map = found;
    ensurePanes(map);
    // Renderers belong to one map: start fresh ones on a new map.
    if (old) { renderers = {}; M.rebuild(); }
    Object.keys(visible).forEach(function (n) { show(n, visible[n]); });
    map.on('zoomend', onZoom);
    if (cc.cameras) cc.cameras.attach(map);
    if (cc.tracks) cc.tracks.attach(map); // the track replay tool (cc-86)
    if (cc.replay) cc.replay.attach(map); // the situation replay (cc-88)
    map.on('dragstart zoomstart', function () { if (!fitting) userMoved = Date.now(); });
    if (!old) {
      window.addEventListener('resize', onResize);
      setInterval(idleReturn, 15000);
    }
    onZoom();
    loadBoundaries();
    return true;
  };

  /* ------------------------------------------------------------- boundaries */

  var geo = {}; // level → {state: 'loading'|'ready'|'failed', data}
  var names = { town: new Map(), community: new Map(), grid: new Map() };
  var cityBounds = null;
  var fitting = false;
  var userMoved = 0;

  var TOWN_FILLS = ['#0b2a52', '#0e3564', '#0a2447', '#11406f', '#0c2f5b', '#0f3a69'];

  function lineStyle(level) {
    var s = cc.scale;
    switch (level) {
      case 'boundary': return { color: '#5fe6ff', weight: 2.6 * s, opacity: 1, fill: false };
      case 'town': return { color: '#3aa6ea', weight: 1.4 * s, opacity: 0.85, fill: false };
      case 'community': return { color: '#2f7fbf', weight: 0.9 * s, opacity: 0.65, fill: false,
        dashArray: [4 * s, 3 * s] };
      case 'grid': return { color: '#2a6aa0', weight: 0.7 * s, opacity: 0.55, fill: false };
      default: return { color: '#235a88', weight: 0.5 * s, opacity: 0.45, fill: false };
    }
  }

  function props(f) { return (f && f.properties) || {}; }
  function featureId(p) { return p.id || p.code || p.gid || null; }
  function featureName(p) {
    if (cc.cfg.lang === 'en') return p.name_en || p.name || '';
    return p.name || p.name_zh || p.name_en || '';
  }

  function coordsToLatLng(c) {
    var ll = cc.latLng(c[0], c[1]);
    return L.latLng(ll[0], ll[1]);
  }

  /* A label point: the feature's own if it has one, else the area centroid of its biggest ring. */
  function labelPoint(f) {
    var p = props(f);
    if (Array.isArray(p.label) && p.label.length === 2) return p.label;
    if (isFinite(p.label_lon) && isFinite(p.label_lat)) return [p.label_lon, p.label_lat];
    var g = f.geometry;
    if (!g) return null;
    var polys = g.type === 'Polygon' ? [g.coordinates] : g.type === 'MultiPolygon' ? g.coordinates : [];
    var best = null, bestA = 0;
    polys.forEach(function (poly) {
      var ring = poly[0], a = 0, cx = 0, cy = 0;
      for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
        var k = ring[j][0] * ring[i][1] - ring[i][0] * ring[j][1];
        a += k; cx += (ring[j][0] + ring[i][0]) * k; cy += (ring[j][1] + ring[i][1]) * k;
      }
      if (Math.abs(a) > bestA) { bestA = Math.abs(a); best = [cx / (3 * a), cy / (3 * a)]; }
    });
    return best;
  }

  function labelMarker(f, level) {
    var pt = labelPoint(f);
    var text = featureName(props(f));
    if (!pt || !text) return null;
    var span = cc.make('span', null, text); // textContent: names are data, never markup
    var ll = cc.latLng(pt[0], pt[1]);
    return L.marker(ll, {
      pane: 'ccLabels', interactive: false, keyboard: false,
      icon: L.divIcon({ className: 'cc-label cc-label-' + level, html: span, iconSize: [0, 0] }),
    });
  }

  function buildLevel(level) {
    var entry = geo[level];
    if (!entry || entry.state !== 'ready') return;
    var data = entry.data;
    var lines = group('bnd-' + level);
    lines.clearLayers();
    var rend = renderer('bnd-' + level, 'ccB-' + level);
    var style = lineStyle(level);
    if (level === 'boundary') {
      // a soft glow under the outline
      var glow = Object.assign({}, style, { weight: 9 * cc.scale, opacity: 0.18 });
      lines.addLayer(L.geoJSON(data, { renderer: rend, interactive: false, style: glow,
        coordsToLatLng: coordsToLatLng }));
    }
    var layer = L.geoJSON(data, { renderer: rend, interactive: false, style: style,
      coordsToLatLng: coordsToLatLng });
    lines.addLayer(layer);

    var feats = (data && data.features) || [];
    if (level === 'town') {
      var fills = group('bnd-townfill');
      fills.clearLayers();
      var frend = renderer('bnd-townfill', 'ccTownFill');
      feats.forEach(function (f, i) {
        fills.addLayer(L.geoJSON(f, { renderer: frend, interactive: false, coordsToLatLng: coordsToLatLng,
          style: { stroke: false, fill: true, fillColor: TOWN_FILLS[i % TOWN_FILLS.length], fillOpacity: 0.55 } }));
      });
      show('bnd-townfill', true);
    }
    if (level === 'town' || level === 'community' || level === 'grid') {
      feats.forEach(function (f) {
        var p = props(f), id = featureId(p);
        if (id) names[level].set(String(id), featureName(p));
      });
    }
    if (cc.cfg.labelMinZoom[level] !== undefined) {
      var labels = group('lbl-' + level);
      labels.clearLayers();
      feats.forEach(function (f) {
        var m = labelMarker(f, level);
        if (m) labels.addLayer(m);
      });
    }
    if (level === 'boundary' || (level === 'town' && !cityBounds)) {
      var b = layer.getBounds();
      if (b.isValid()) { cityBounds = b; fitCity(true); }
    }
    onZoom();
    if (cc.panels) cc.panels.namesChanged();
  }

  function loadLevel(level) {
    if (geo[level] || !cc.cfg.geo[level]) return;
    geo[level] = { state: 'loading' };
    cc.api('GET', cc.cfg.geo[level], undefined, { url: true, strict: true })
      .then(function (data) {
        geo[level] = { state: 'ready', data: data };
        try { buildLevel(level); } catch (e) { console.error('ccwall: drawing ' + level + ' failed', e); }
      }, function (e) {
        geo[level] = { state: 'failed' };
        console.warn('ccwall: boundary ' + level + ' unavailable', e);
        // try again later: the geography may still be being generated
        setTimeout(function () { if (geo[level] && geo[level].state === 'failed') delete geo[level]; }, 60000);
      });
  }

  function loadBoundaries() {
    loadLevel('boundary');
    loadLevel('town');
    // names for the event list come from the community layer, so load it up front
    loadLevel('community');
  }

  function fitCity(initial) {
    if (!map || !cityBounds) return;
    fitting = true;
    var pad = Math.round(16 * cc.scale);
    map.fitBounds(cityBounds, { padding: [pad, pad], animate: !initial });
    if (initial) {
      map.setMaxBounds(cityBounds.pad(0.6));
      map.setMinZoom(Math.max(0, map.getBoundsZoom(cityBounds.pad(0.6)) - 0.5));
    }
    fitting = false;
  }

  /* A wall left zoomed into a street after an incident drifts back to the whole city. */
  function idleReturn() {
    var idle = (cc.cfg.idleReturnS || 0) * 1000;
    if (!idle || !userMoved || selectedId || Date.now() - userMoved < idle) return;
    if (cc.tracks && cc.tracks.busy()) return; // a track being replayed is being looked at
    userMoved = 0;
    fitCity(false);
  }

  function onResize() {
    var s = parseFloat(getComputedStyle(document.documentElement).fontSize) / 16 || 1;
    if (Math.abs(s - cc.scale) > 0.01) {
      cc.scale = s;
      M.rebuild();
    }
    if (!userMoved && map) setTimeout(function () { map.invalidateSize(); fitCity(false); }, 50);
  }

  function onZoom() {
    if (!map) return;
    var z = map.getZoom();
    var levels = ['boundary', 'town', 'community', 'grid', 'microgrid'];
    levels.forEach(function (level) {
      var want = z >= cc.cfg.geoMinZoom[level];
      if (want) loadLevel(level);
      show('bnd-' + level, want && geo[level] && geo[level].state === 'ready');
    });
    Object.keys(cc.cfg.labelMinZoom).forEach(function (level) {
      show('lbl-' + level, z >= cc.cfg.labelMinZoom[level]);
    });
    showUnits();
    var b = bucketOf(z);
    if (b !== bucket) {
      bucket = b;
      restyleUnits();
    }
  }

  // Unit symbols grow with the zoom in three steps: fine texture at city scale, clear
  // symbols in a street. Restyling all of them happens only when the step changes.
  var bucket = 0;
  var BUCKET_SIZE = [0.65, 1, 1.35];
  function bucketOf(z) { return z < 11 ? 0 : z < 13.5 ? 1 : 2; }

  function restyleUnits() {
    ['worker', 'resource'].forEach(function (kind) {
      markers[kind].forEach(function (m) {
        var rec = cc.store.get(kind, m._ccId);
        if (!rec) return;
        var st = unitStyle(kind, rec);
        m.setStyle(st);
        m.setRadius(st.radius);
        m._ccStyle = st;
      });
    });
  }

  /* Area names for an event: town · community, from the boundary layers. */
  M.placeOf = function (rec) {
    var town = rec.town_id ? names.town.get(String(rec.town_id)) : '';
    var comm = rec.community_id ? names.community.get(String(rec.community_id)) : '';
    return [town, comm].filter(Boolean).join(' · ');
  };
  M.gridName = function (id) { return id ? names.grid.get(String(id)) || '' : ''; };

  /* ------------------------------------------------------------- entity layers */

  var markers = { event: new Map(), worker: new Map(), resource: new Map(), camera: new Map() };
  var pulses = new Map(); // event id → ring marker for urgent levels

  function sevColour(sev) {
    var s = cc.cfg.severity[String(sev)];
    return s ? s.colour : '#90a4ae';
  }
  M.sevColour = sevColour;

  function isUrgent(rec) { return cc.cfg.urgent.indexOf(Number(rec.severity)) >= 0; }
  function isClosed(rec) { return cc.cfg.closed.indexOf(rec.status) >= 0; }

  function unitStyle(kind, rec) {
    var s = cc.scale * BUCKET_SIZE[bucket], col = cc.cfg.colours;
    if (kind === 'worker') {
      var sos = rec.status === 'sos';
      return { radius: (sos ? 6.5 : 3.4) * s, stroke: sos, color: '#ffffff', weight: 1.5 * s,
        fillColor: col.worker[rec.status] || col.worker.on_duty, fillOpacity: rec.status === 'off_duty' ? 0.5 : 0.92 };
    }
    if (kind === 'resource') {
      return { radius: 5 * s, stroke: true, color: '#f3e9ff', weight: 1.2 * s, opacity: 0.9,
        fillColor: col.resource[rec.status] || col.resource.available, fillOpacity: 0.95 };
    }
    var online = rec.online !== false;
    return { radius: 2.4 * s, stroke: false, fillColor: online ? col.camera.online : col.camera.offline,
      fillOpacity: online ? 0.6 : 0.45 };
  }

  function eventStyle(rec) {
    var s = cc.scale, sev = Number(rec.severity) || 4;
    return { radius: [0, 11, 10, 8.5, 7.5][sev] * s, color: '#ffffff', weight: 2 * s, opacity: 0.95,
      fillColor: sevColour(sev), fillOpacity: 0.95 };
  }

  function sameStyle(a, b) {
    return a.fillColor === b.fillColor && a.radius === b.radius && a.stroke === b.stroke &&
      a.fillOpacity === b.fillOpacity;
  }

  function tagPath(marker, id, sev) {
    // data-* on the SVG path: stable hooks for tests and styling
    var p = marker._path;
    if (!p) return;
    p.setAttribute('data-id', id);
    p.setAttribute('data-severity', String(sev));
  }

  function ringMarker(ll, cls, size, sev) {
    var d = Math.round(size * cc.scale);
    return L.marker(ll, { pane: 'ccPulse', interactive: false, keyboard: false,
      icon: L.divIcon({ className: cls + ' cc-sv-' + sev, iconSize: [d, d] }) });
  }

  /* Place, restyle or remove one event's marker; never touches the others. */
  M.syncEvent = function (rec, arrived) {
    var id = rec.id;
    var m = markers.event.get(id);
    var onMap = cc.hasPos(rec) && !isClosed(rec);
    if (!onMap) { M.removeEvent(id); return; }
    var ll = cc.latLng(rec.lon, rec.lat);
    var st = eventStyle(rec);
    if (!m) {
      m = L.circleMarker(ll, Object.assign({ renderer: renderer('events', 'ccEvents', 'svg'),
        className: 'cc-ev', bubblingMouseEvents: false }, st));
      m._ccId = id;
      m._ccSev = rec.severity;
      m.on('add', function () { tagPath(m, m._ccId, m._ccSev); });
      m.on('click', function () { cc.select(id, false); });
      markers.event.set(id, m);
      group('events').addLayer(m);
    } else {
      // a status change keeps the marker where it is: the SVG layer is not redrawn for it
      var at = m.getLatLng();
      if (at.lat !== ll[0] || at.lng !== ll[1]) m.setLatLng(ll);
      if (m._ccSev !== rec.severity) {
        m.setStyle(st);
        m.setRadius(st.radius);
        m._ccSev = rec.severity;
        tagPath(m, id, rec.severity);
      }
    }
    var p = pulses.get(id);
    if (isUrgent(rec)) {
      if (!p) {
        p = ringMarker(ll, 'cc-pulse', 76, rec.severity);
        pulses.set(id, p);
        group('pulses').addLayer(p);
      } else {
        p.setLatLng(ll);
      }
    } else if (p) {
      group('pulses').removeLayer(p);
      pulses.delete(id);
    }
    // a fast replay (cc-88) brings events in by the dozen: rings would only flicker
    if (arrived && !(cc.replay && cc.replay.fast())) arrive(ll, rec.severity);
    if (selectedId === id) placeSelRing(ll);
  };

  M.removeEvent = function (id) {
    var m = markers.event.get(id);
    if (m) { group('events').removeLayer(m); markers.event.delete(id); }
    if (id === selectedId && selRing) { group('pulses').removeLayer(selRing); selRing = null; }
    var p = pulses.get(id);
    if (p) { group('pulses').removeLayer(p); pulses.delete(id); }
  };

  // One-shot rings on arrival, capped so a burst cannot pile up DOM nodes.
  var arrivals = [];
  function arrive(ll, sev) {
    if (arrivals.length >= 12) group('pulses').removeLayer(arrivals.shift());
    var r = ringMarker(ll, 'cc-arrive', 90, sev);
    arrivals.push(r);
    group('pulses').addLayer(r);
    setTimeout(function () {
      var i = arrivals.indexOf(r);
      if (i >= 0) { arrivals.splice(i, 1); group('pulses').removeLayer(r); }
    }, 3100);
  }

  M.syncUnit = function (kind, rec) {
    // cameras: one canvas over typed arrays (cc-12), not a marker each
    if (kind === 'camera') { cc.cameras.sync(rec); return; }
    var id = rec.id;
    var m = markers[kind].get(id);
    if (!cc.hasPos(rec)) { M.removeUnit(kind, id); return; }
    var ll = cc.latLng(rec.lon, rec.lat);
    var st = unitStyle(kind, rec);
    if (!m) {
      m = L.circleMarker(ll, Object.assign({ renderer: renderer('units', 'ccUnits'),
        bubblingMouseEvents: false }, st));
      m._ccKind = kind;
      m._ccId = id;
      m._ccStyle = st;
      // a layerGroup passes no events on: without this the unit popup (M.init) never opened
      m.addEventParent(group(kind));
      markers[kind].set(id, m);
      group(kind).addLayer(m);
    } else {
      var cur = m.getLatLng();
      if (cur.lat !== ll[0] || cur.lng !== ll[1]) m.setLatLng(ll);
      if (!sameStyle(m._ccStyle, st)) { m.setStyle(st); m.setRadius(st.radius); m._ccStyle = st; }
    }
    if (kind === 'worker' && (rec.status === 'sos' || sosRings.has(id))) syncSos(rec, ll);
  };

  // A worker in distress pulses like a level-I event, whatever layer toggles say.
  var sosRings = new Map();
  function syncSos(rec, ll) {
    var ring = sosRings.get(rec.id);
    if (rec.status === 'sos' && ll) {
      if (!ring) {
        ring = ringMarker(ll, 'cc-pulse', 70, 1);
        sosRings.set(rec.id, ring);
        group('pulses').addLayer(ring);
      } else {
        ring.setLatLng(ll);
      }
    } else if (ring) {
      group('pulses').removeLayer(ring);
      sosRings.delete(rec.id);
    }
  }

  M.removeUnit = function (kind, id) {
    if (kind === 'camera') { cc.cameras.remove(id); return; }
    var m = markers[kind].get(id);
    if (m) { group(kind).removeLayer(m); markers[kind].delete(id); }
    if (kind === 'worker') syncSos({ id: id }, null);
  };

  M.count = function (kind) { return kind === 'camera' ? cc.cameras.count() : markers[kind].size; };
  /* Where an entity's marker is drawn ([lat, lng], null: none): for tests (the replay's). */
  M.markerAt = function (kind, id) {
    var m = markers[kind] && markers[kind].get(String(id));
    if (!m) return null;
    var ll = m.getLatLng();
    return [ll.lat, ll.lng];
  };

  /* Re-create every symbol (after a scale change or a map remount); rare. */
  M.rebuild = function () {
    Object.keys(geo).forEach(buildLevel);
    ['worker', 'resource'].forEach(function (kind) {
      markers[kind].forEach(function (m) { group(kind).removeLayer(m); });
      markers[kind].clear();
      cc.store.each(kind, function (rec) { M.syncUnit(kind, rec); });
    });
    markers.event.forEach(function (m, id) { M.removeEvent(id); });
    cc.store.each('event', function (rec) { M.syncEvent(rec, false); });
    cc.cameras.redraw();
  };

  function showUnits() {
    var z = map ? map.getZoom() : 0;
    ['worker', 'resource', 'camera'].forEach(function (k) {
      show(k, layerOn[k] && z >= (cc.cfg.layerMinZoom[k] || 0));
    });
  }

  M.setLayer = function (kind, on) {
    layerOn[kind] = on;
    showUnits();
  };

  /* The store's changes (cc-20): each event and unit onto its layer, and off it. */
  function onStore(kind, op, rec, live, arrived) {
    if (kind === 'event') {
      if (op === 'remove') M.removeEvent(rec.id);
      else M.syncEvent(rec, arrived && !isClosed(rec));
    } else if (kind === 'worker' || kind === 'resource' || kind === 'camera') {
      if (op === 'remove') M.removeUnit(kind, rec.id);
      else M.syncUnit(kind, rec);
    }
  }

  M.init = function () {
    showUnits();
    show('pulses', true);
    show('events', true);
    // units are clickable: one shared popup, built with textContent (cameras: cc-12)
    ['worker', 'resource'].forEach(function (k) {
      group(k).on('click', function (e) { unitPopup(e.layer); });
    });
    group('camera').addLayer(cc.cameras.layer());
    cc.store.listen(onStore); // the first listener on the wall (boot starts the map first)
  };

  /* ------------------------------------------------------------- selection and popups */

  var selectedId = null;
  var selRing = null;

  function placeSelRing(ll) {
    if (!selRing) {
      selRing = ringMarker(ll, 'cc-selring', 34, 0);
      group('pulses').addLayer(selRing);
    } else {
      selRing.setLatLng(ll);
    }
  }

  M.select = function (id, pan) {
    selectedId = id;
    var m = id ? markers.event.get(id) : null;
    if (!m) {
      if (selRing) { group('pulses').removeLayer(selRing); selRing = null; }
      return;
    }
    placeSelRing(m.getLatLng());
    if (pan && map) {
      userMoved = Date.now();
      var z = Math.max(map.getZoom(), 13);
      // centre the event in the part of the map the detail card leaves free (card on the right)
      var shift = (cc.cfg.detailWidthRem || 0) * 8 * cc.scale;
      var target = map.unproject(map.project(m.getLatLng(), z).add([shift, 0]), z);
      map.flyTo(target, z, { duration: 0.8 });
    }
  };

  M.fitCity = function () { userMoved = 0; fitCity(false); };

  /* The event panel's overlay (cc-60): a ring around the selected event reaching its
     farthest listed unit, and thin lines to the units. One group, cleared and refilled. */
  M.overlay = function () { show('cmd', true); return group('cmd'); };
  M.linkRenderer = function () { return renderer('links', 'ccLinks', 'svg'); };

  var popup = null;
  function unitPopup(m) {
    if (!map || !m) return;
    var rec = cc.store.get(m._ccKind, m._ccId);
    if (!rec) return;
    var box = cc.make('div');
    var title = rec.name || rec.id;
    box.appendChild(cc.feed(cc.make('div', 'cc-pop-title', title))); // a unit's own name
    var sub = [cc.label('kind', m._ccKind)];
    if (m._ccKind === 'worker') sub.push(cc.label('wkst', rec.status));
    if (m._ccKind === 'resource') { sub.push(cc.label('rsk', rec.kind)); sub.push(cc.label('rsst', rec.status)); }
    if (m._ccKind === 'camera') sub.push(rec.online === false ? cc.t('conn.offline') : '');
    box.appendChild(cc.make('div', 'cc-pop-sub', sub.filter(Boolean).join(' · ')));
    var extra = rec.unit || rec.phone || rec.grid_id;
    if (extra) box.appendChild(cc.feed(cc.make('div', 'cc-pop-sub', extra)));
    if (rec.ts) box.appendChild(cc.make('div', 'cc-pop-sub', cc.fmtDateTime(rec.ts)));
    if (cc.tracks) cc.tracks.decoratePopup(box, m._ccKind, rec); // 轨迹回放 (cc-86)
    popup = popup || L.popup({ closeButton: true, autoPan: false, offset: [0, -4] });
    popup.setLatLng(m.getLatLng()).setContent(box).openOn(map);
  }
})();
