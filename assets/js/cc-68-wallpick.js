/* cc-68-wallpick.js: what each tile of the video wall shows (docs/VIDEO.md, "What the tiles
   show"). Pure: no DOM, no store, no clock — the page (cc-70) brings the records and the
   tour's step, so node tests run these exactly as the browser does.

   A tile a person filled (the server's `tiles`) is pinned and wins. The other tiles show,
   in order, the followed event's cameras as the event panel ranks them (covering first,
   then nearest), then a tour of online cameras by area. No camera is on two tiles. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var W = (cc.wallpick = {});

  function arrival(rec) { return Number(rec.first_ts || rec.ts) || 0; }

  /* The event the wall follows, or null.
     events: event records (any status); focus: {event_id, ts} — the event a commander
     opened on the wall and when (the server's wall); o: {urgent: [levels], closed: [statuses]}.
     The focused event while it is open, unless a level-I/II event arrived after the focus;
     otherwise the gravest open level-I/II event, the newest first among equals (the wall's
     urgent chip takes them in the same order). */
  W.followed = function (events, focus, o) {
    var urgent = o.urgent || [], closed = o.closed || [];
    var want = focus && focus.event_id ? focus.event_id : null;
    var focused = null, open = [];
    (events || []).forEach(function (rec) {
      if (!rec || closed.indexOf(rec.status) >= 0) return;
      if (rec.id === want) focused = rec.id;
      if (urgent.indexOf(Number(rec.severity)) >= 0) open.push(rec);
    });
    // a closed (or unknown) focused event no longer holds anything back
    var since = focused ? Number(focus.ts) || 0 : -Infinity;
    var best = null;
    open.forEach(function (rec) {
      if (arrival(rec) > since && (!best || graver(rec, best))) best = rec;
    });
    return best ? best.id : focused;
  };

  function graver(a, b) {
    var sa = Number(a.severity) || 4, sb = Number(b.severity) || 4;
    if (sa !== sb) return sa < sb;
    if (arrival(a) !== arrival(b)) return arrival(a) > arrival(b);
    return String(a.id) < String(b.id);
  }

  /* The areas a camera stands in: town and community codes, prefixes of its grid's code
     (dashboard/city.py: town 9 digits, community 12). '' when it names none. */
  W.areaOf = function (rec) {
    var g = typeof (rec && rec.grid_id) === 'string' ? rec.grid_id : '';
    return { town: g.length >= 9 ? g.slice(0, 9) : '', community: g.length >= 12 ? g.slice(0, 12) : '' };
  };

  /* Whether the tour may show a camera: the feed says it is online and it has a stream. */
  W.playable = function (rec, streamType) {
    if (!rec || rec.online === false) return false;
    var type = streamType ? streamType(rec) : rec.stream_type;
    return !!type && type !== 'none' && /^https?:\/\//i.test(String(rec.stream_url || ''));
  };

  /* The tour's plan from the camera records: the playable ones grouped by town, then
     community, each sorted by code, the cameras of a community by id.
     → {towns: [{code, communities: [{code, town, ids}]}], total, has: Set of ids}. */
  W.tourPlan = function (cameras, streamType) {
    var towns = new Map(), total = 0, has = new Set();
    (cameras || []).forEach(function (rec) {
      if (!W.playable(rec, streamType)) return;
      var a = W.areaOf(rec);
      var town = towns.get(a.town);
      if (!town) towns.set(a.town, (town = { code: a.town, byCode: new Map() }));
      var comm = town.byCode.get(a.community);
      if (!comm) town.byCode.set(a.community, (comm = { code: a.community, town: a.town, ids: [] }));
      if (has.has(String(rec.id))) return;
      has.add(String(rec.id));
      comm.ids.push(String(rec.id));
      total++;
    });
    var byCode = function (x, y) {
      // cameras that name no area go last
      if (!x.code !== !y.code) return x.code ? -1 : 1;
      return x.code < y.code ? -1 : x.code > y.code ? 1 : 0;
    };
    var list = Array.from(towns.values()).map(function (t) {
      var comms = Array.from(t.byCode.values()).sort(byCode);
      comms.forEach(function (c) { c.ids.sort(); });
      return { code: t.code, communities: comms };
    }).sort(byCode);
    return { towns: list, total: total, has: has };
  };

  /* Up to `count` distinct cameras of the tour at `step` (the wall clock ÷ the interval, so
     every screen shows the same), none of `skip` (a Set of ids already on screen).
     Step k visits town k mod T (round-robin over towns), in it the next community in turn,
     and in that community the next `count` cameras; a community with fewer fills the rest
     from the town's next communities, then the next towns' (the next step moves on to
     another town, so what was borrowed is not shown again at once).
     → [{id, town, community}]. */
  W.tour = function (plan, step, count, skip) {
    var out = [];
    var T = plan && plan.towns.length;
    if (!T || count <= 0) return out;
    var seen = new Set(), left = plan.total;
    // O(tiles), not O(cameras): this runs on every render
    if (skip) skip.forEach(function (id) { if (plan.has.has(id)) { seen.add(id); left--; } });
    step = Math.max(0, Math.floor(Number(step) || 0));
    // a town's communities in turn from this step's; then the next towns (T steps visit
    // every town, each through all its communities: enough to fill or to run out)
    for (var k = step; out.length < count && left > 0 && k < step + T; k++) {
      var town = plan.towns[k % T];
      var visit = Math.floor(k / T), nc = town.communities.length;
      for (var j = 0; j < nc && out.length < count && left > 0; j++) {
        var comm = town.communities[(visit + j) % nc];
        var ids = comm.ids, n = ids.length;
        var start = (Math.floor((visit + j) / nc) * count) % n;
        for (var i = 0; i < n && out.length < count; i++) {
          var id = ids[(start + i) % n];
          if (seen.has(id)) continue;
          seen.add(id);
          left--;
          out.push({ id: id, town: comm.town, community: comm.code });
        }
      }
    }
    return out;
  };

  /* The ranking with the cameras the feed calls offline moved behind the others (each part
     in the ranking's order): a tile shows a picture while one of the event's cameras can
     give one; an offline camera still gets a tile when tiles are left. */
  W.liveFirst = function (ranking, isOffline) {
    var on = [], off = [];
    (ranking || []).forEach(function (id) { (isOffline(id) ? off : on).push(id); });
    return on.concat(off);
  };

  /* What the `grid` tiles show: [{id, src: 'pin'|'follow'|'tour'|null, town?, community?}].
     o: {grid, pinned: [id|null] (the server's tiles), ranking: [ids] of the followed event
     (server order), plan (tourPlan or null: no tour), step}. */
  W.fill = function (o) {
    var n = o.grid, out = [], used = new Set(), free = [], i;
    var pinned = o.pinned || [];
    for (i = 0; i < n; i++) {
      var p = pinned[i];
      if (typeof p === 'string' && p && !used.has(p)) {
        out.push({ id: p, src: 'pin' });
        used.add(p);
      } else {
        out.push(null);
        free.push(i);
      }
    }
    var ranking = o.ranking || [], r = 0;
    free = free.filter(function (slot) {
      while (r < ranking.length && (!ranking[r] || used.has(ranking[r]))) r++;
      if (r >= ranking.length) return true;
      out[slot] = { id: ranking[r], src: 'follow' };
      used.add(ranking[r++]);
      return false;
    });
    var picks = o.plan ? W.tour(o.plan, o.step, free.length, used) : [];
    free.forEach(function (slot, j) {
      var pick = picks[j];
      out[slot] = pick ? { id: pick.id, src: 'tour', town: pick.town, community: pick.community }
        : { id: null, src: null };
    });
    return out;
  };
})();
