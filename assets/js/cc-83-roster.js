/* cc-83-roster.js: the duty roster's line in the header of every page (layouts/roster.py):
   "值班: 夜班 王晓明 · 带班 陈建国", from GET /api/roster, read again every minute (a shift
   changes at a time of day; a roster change shows within a minute). Text only. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var R = (cc.roster = {});
  var POLL_MS = 60000;
  var started = false, timer = null, last = null;

  /* The line as a template and its people's names (feed text: cc.setFeedText). */
  function line(now, feed) {
    var out = now.shift_name + ' ' +
      cc.namesTemplate((now.officers || []).map(function (p) { return p.name; }), feed);
    if (now.leader) {
      feed.lead = now.leader.name;
      out += ' · ' + cc.t('roster.leader') + ' {lead}';
    }
    return out;
  }

  function text(now) {
    var feed = {};
    return line(now, feed).replace(/\{(\w+)\}/g, function (m, k) { return feed[k]; });
  }

  function show(body) {
    last = body;
    var el = cc.$('ROSTER_TEXT');
    if (!el) return;
    var feed = {};
    cc.setFeedText(el, line(body.now, feed), feed);
    var box = cc.$('ROSTER');
    var nxt = body.next;
    var title = cc.t('roster.title') + ': ' + cc.fmtDateTime(body.now.from) + ' — ' +
      cc.fmtDateTime(body.now.to) + (nxt ? '\n' + cc.t('roster.next') + ': ' + text(nxt) : '');
    if (box && box.title !== title) box.title = title;
    if (box) box.setAttribute('data-feed-title', ''); // people's names
    if (box) box.setAttribute('data-shift', body.now.date + '/' + body.now.shift);
  }

  R.load = function () {
    clearTimeout(timer);
    return cc.api('GET', '/roster?lang=' + encodeURIComponent(cc.cfg.lang || ''), undefined, { strict: true })
      .then(show)
      .catch(function (e) { console.warn('roster: not loaded', e && e.message); })
      .then(function () {
        // again a minute on, or right at the shift's end if that comes first
        var wait = POLL_MS; // never faster than every 15 s, whatever the browser clock says
        if (last && last.now) wait = Math.max(15000, Math.min(POLL_MS, last.now.to - cc.serverNow() + 500));
        timer = setTimeout(R.load, wait);
      });
  };

  R.current = function () { return last; };

  /* Start once the page has booted (cc.cfg) and its header is on screen. */
  function start() {
    if (started) return;
    if (!cc.cfg || !cc.cfg.ids || !cc.$('ROSTER')) {
      setTimeout(start, 300);
      return;
    }
    started = true;
    R.load();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
