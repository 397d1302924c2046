/* cc-55-focus.js: a page opened with a purpose, after its first snapshot.

   - The wall opened as `/?event=ID` selects that event (panel open, map on it) once the
     store has it: a link to one event, and what the rotation (cc-90) shows when an urgent
     event holds it.
   - A page inside the rotation's frame tells it when it has its first picture
     (postMessage {type: 'cc-ready', page} to the parent, same origin only), so the rotation
     swaps to a drawn page rather than a loading one. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});

  var FOCUS_WAIT_MS = 30000; // an event not in the snapshot may still arrive live
  var said = false;
  var want = null, wantUntil = 0;

  function param(name) {
    var m = new RegExp('[?&]' + name + '=([^&#]*)').exec(location.search);
    return m ? decodeURIComponent(m[1].replace(/\+/g, ' ')) : null;
  }

  function focus() {
    if (!want || performance.now() > wantUntil) { want = null; return; }
    if (!cc.store.get('event', want)) return;
    var id = want;
    want = null;
    cc.select(id, true);
  }

  function ready() {
    if (said) return;
    said = true;
    if (window.parent === window) return;
    try {
      window.parent.postMessage({ type: 'cc-ready', page: cc.page }, location.origin);
    } catch (e) { /* a parent of another origin gets nothing */ }
  }

  cc.store.listen(function (kind, op, rec) {
    if (kind === 'snapshot') {
      if (!said && cc.page === 'wall') {
        want = param('event');
        wantUntil = performance.now() + FOCUS_WAIT_MS;
      }
      // after the other listeners have scheduled their drawing (cc.schedule: next frame)
      setTimeout(function () { focus(); ready(); }, 150);
    } else if (want && kind === 'event' && rec && String(rec.id) === want) {
      setTimeout(focus, 0);
    }
  });
})();
