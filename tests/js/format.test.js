// How the wall writes times, ages, durations and numbers (assets/js/cc-00-core.js, and the
// formats the cockpit, the event panel, the camera tools and the track replay keep to
// themselves). Feature codes js001-js019.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { load } = require('./load');

// The English table's templates for the keys these formats use (dashboard/i18n).
const STRINGS = {
  'age.now': 'just now', 'age.seconds': '{n} s ago', 'age.minutes': '{n} min ago',
  'age.hours': '{n} h ago', 'age.days': '{n} d ago',
  'dur.seconds': '{n} s', 'dur.minutes': '{n} min', 'dur.hours': '{h} h {m} min',
  'dur.days': '{d} d {h} h',
  'cmd.dist_m': '{n} m', 'cmd.dist_km': '{n} km', 'cmd.eta_s': '~{n} s', 'cmd.eta_min': '~{n} min',
  'ck.change_none': '—', 'kind.worker': 'Grid worker', 'type.fire': 'Fire',
};

function wall(tz) {
  const { cc } = load(['cc-00-core.js', 'cc-13-camsel.js', 'cc-60-command.js',
    'cc-80-cockpit.js', 'cc-86-tracks.js']);
  cc.cfg = tz ? { tz } : null;
  cc.strings = STRINGS;
  return cc;
}

const S = 1000, MIN = 60 * S, H = 60 * MIN, DAY = 24 * H;
// 2026-01-05 01:02:03.456 UTC: 09:02:03 on a Monday in the centre's zone (UTC+8)
const AT = Date.UTC(2026, 0, 5, 1, 2, 3, 456);

test('js001 times are wall-clock time in the centre\'s zone, whatever the browser\'s', () => {
  const cc = wall('Asia/Shanghai');
  assert.equal(cc.fmtTime(AT), '09:02:03');
  assert.equal(cc.fmtDateTime(AT), '2026-01-05 09:02:03');
  const p = cc.timeParts(AT);
  assert.equal(p.wd, 1); // Monday, for the header's weekday
  assert.deepEqual([p.year, p.month, p.day, p.hour, p.minute, p.second],
    ['2026', '01', '05', '09', '02', '03']);
  // midnight is 00, never 24
  assert.equal(cc.fmtTime(Date.UTC(2026, 0, 4, 16, 0, 0)), '00:00:00');
  assert.equal(wall('UTC').fmtTime(AT), '01:02:03');
  // no zone configured yet: the default centre's
  assert.equal(wall(null).fmtTime(AT), '09:02:03');
});

test('js002 a time that is not a number shows nothing', () => {
  const cc = wall('Asia/Shanghai');
  assert.equal(cc.fmtTime(NaN), '');
  assert.equal(cc.fmtDateTime(undefined), '');
});

test('js003 age shows "just now" under 3 s, then seconds, minutes, hours, days', () => {
  const cc = wall('Asia/Shanghai');
  assert.equal(cc.fmtAgo(-5 * S), 'just now'); // a clock a little ahead is not the future
  assert.equal(cc.fmtAgo(2999), 'just now');
  assert.equal(cc.fmtAgo(3 * S), '3 s ago');
  assert.equal(cc.fmtAgo(MIN - 1), '59 s ago');
  assert.equal(cc.fmtAgo(MIN), '1 min ago');
  assert.equal(cc.fmtAgo(H - 1), '59 min ago');
  assert.equal(cc.fmtAgo(H), '1 h ago');
  assert.equal(cc.fmtAgo(DAY - 1), '23 h ago');
  assert.equal(cc.fmtAgo(3 * DAY + H), '3 d ago');
});

test('js004 durations count down to the second under a minute, then two units', () => {
  const cc = wall('Asia/Shanghai');
  assert.equal(cc.fmtDuration(-S), '0 s');
  assert.equal(cc.fmtDuration(59.9 * S), '59 s');
  assert.equal(cc.fmtDuration(MIN), '1 min');
  assert.equal(cc.fmtDuration(H - 1), '59 min');
  assert.equal(cc.fmtDuration(H), '1 h 0 min');
  assert.equal(cc.fmtDuration(H + MIN + S), '1 h 1 min');
  assert.equal(cc.fmtDuration(DAY + H + MIN), '1 d 1 h');
});

test('js005 counts are whole numbers with thousands separators, a dash when unknown', () => {
  const cc = wall('Asia/Shanghai');
  assert.equal(cc.fmtInt(0), '0');
  assert.equal(cc.fmtInt(1234567), '1,234,567');
  assert.equal(cc.fmtInt(1234.5), '1,235');
  for (const none of [undefined, null, NaN, Infinity]) assert.equal(cc.fmtInt(none), '–');
});

test('js006 strings fill their {names}; an unknown key or name shows as itself', () => {
  const cc = wall('Asia/Shanghai');
  assert.equal(cc.t('age.seconds', { n: 7 }), '7 s ago');
  assert.equal(cc.t('no.such.key'), 'no.such.key');
  assert.equal(cc.t('dur.hours', { h: 2 }), '2 h {m} min');
  assert.equal(cc.label('type', 'fire'), 'Fire');
  assert.equal(cc.label('type', 'meteor'), 'meteor'); // an unknown type is shown, not hidden
  assert.equal(cc.label('type', ''), '');
  assert.equal(cc.label('type', null), '');
});

test('js007 the cockpit writes rates to a tenth of a percent and changes with an arrow', () => {
  const f = wall('Asia/Shanghai').cockpit.fmt;
  assert.equal(f.pct(0.1234), '12.3%');
  assert.equal(f.pct(1), '100.0%');
  assert.equal(f.pct(null), '–');
  assert.deepEqual(f.change(0.05), { text: '▲ 5.0%', dir: 'up' });
  assert.deepEqual(f.change(-0.123), { text: '▼ 12.3%', dir: 'down' });
  assert.deepEqual(f.change(0.0001), { text: '0.0%', dir: 'flat' });
  assert.deepEqual(f.change(null), { text: '—', dir: 'none' });
  assert.equal(f.dur(90), '1 min');
  assert.equal(f.dur(undefined), '–');
  assert.equal(f.density(12.6), '13');
  assert.equal(f.density(3.14), '3.1');
  assert.equal(f.density(0.123), '0.12');
  assert.equal(f.density(NaN), '–');
});

test('js008 the event panel gives distances in m under 1 km and ETAs in s under 90 s', () => {
  const P = wall('Asia/Shanghai').command.parts;
  assert.equal(P.fmtDist(999.4), '999 m');
  assert.equal(P.fmtDist(1500), '1.5 km');
  assert.equal(P.fmtDist(12345), '12 km');
  assert.equal(P.fmtDist(NaN), '–');
  assert.equal(P.fmtEta(89.4), '~89 s');
  assert.equal(P.fmtEta(90), '~2 min');
  assert.equal(P.fmtEta(null), '–');
  assert.equal(P.fmtEta(NaN), '–');
});

test('js009 the camera tools show a circle\'s radius in m, then km to 10 m', () => {
  const sel = wall('Asia/Shanghai').camsel;
  assert.equal(sel.fmtMetres(0), '0 m');
  assert.equal(sel.fmtMetres(999.4), '999 m');
  assert.equal(sel.fmtMetres(1000), '1.00 km');
  assert.equal(sel.fmtMetres(1234), '1.23 km');
});

test('js010 the track replay reads and writes the centre\'s local time, not the browser\'s', () => {
  const time = wall('Asia/Shanghai').tracks.time;
  const nine = Date.UTC(2026, 0, 5, 1, 2); // 09:02 in the centre
  assert.equal(time.localToMs('2026-01-05T09:02'), nine);
  assert.equal(time.msToLocal(nine), '2026-01-05T09:02');
  assert.ok(Number.isNaN(time.localToMs('')));
  assert.ok(Number.isNaN(time.localToMs('yesterday')));
  // "today" starts at the centre's midnight: 16:00 UTC the day before
  assert.equal(time.todayStart(AT), Date.UTC(2026, 0, 4, 16, 0, 0));
});
