// The one way the browser code asks the server, cc.api (assets/js/cc-00-core.js): where it
// sends, the headers the server's CSRF rule needs (callbacks/access/security.py), what a
// refusal or a lost answer looks like to the caller. fetch is a fake that records what it is
// given. Feature codes js070-js089.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { load } = require('./load');

/* A fake fetch answering `status` with `text` (or failing like the network when status is 0). */
function server(status, text) {
  const sent = [];
  globalThis.fetch = (url, init) => {
    sent.push({ url, init });
    if (init.signal && init.signal.aborted) {
      return Promise.reject(new DOMException('The user aborted a request.', 'AbortError'));
    }
    if (status === 0) return Promise.reject(new TypeError('Failed to fetch'));
    return Promise.resolve({
      ok: status >= 200 && status < 300,
      status,
      json: () => Promise.resolve().then(() => JSON.parse(text)),
    });
  };
  return sent;
}

function wall(api = '/cc/api') {
  const { cc } = load(['cc-00-core.js']);
  cc.cfg = api === null ? null : { api };
  return cc;
}

const XHR = { Accept: 'application/json', 'X-Requested-With': 'XMLHttpRequest' };

test('js070 a GET goes under cfg.api with the cookies and the API\'s headers, no body', async () => {
  const sent = server(200, '{"user": "li", "role": "commander"}');
  const body = await wall().api('GET', '/me');
  assert.deepEqual(body, { user: 'li', role: 'commander' });
  assert.equal(sent[0].url, '/cc/api/me');
  assert.deepEqual(sent[0].init, { method: 'GET', credentials: 'same-origin', headers: XHR });
});

test('js071 a body goes as JSON with its Content-Type, still marked X-Requested-With', async () => {
  const sent = server(201, '{"task": {"id": "T1"}}');
  await wall().api('POST', '/events/E1/dispatch', { key: 'k-1', assignees: [] });
  assert.deepEqual(sent[0].init.headers, { ...XHR, 'Content-Type': 'application/json' });
  assert.equal(sent[0].init.body, '{"key":"k-1","assignees":[]}');
});

test('js072 a POST or DELETE without a body is marked X-Requested-With, with no Content-Type', async () => {
  const sent = server(200, '{}');
  const cc = wall();
  await cc.api('POST', '/handover/H1/sign');
  await cc.api('DELETE', '/duty/silence');
  for (const s of sent) {
    assert.deepEqual(s.init.headers, XHR);
    assert.equal('body' in s.init, false);
  }
});

test('js073 before boot (no cfg, the sign-out button of a refusal page) the API is /api', async () => {
  const sent = server(200, '{"ok": true}');
  await wall(null).api('POST', '/logout');
  assert.equal(sent[0].url, '/api/logout');
});

test('js074 a 2xx answer that is empty or not a JSON object resolves as {}', async () => {
  for (const text of ['', 'not json', 'null', '42', '"text"']) {
    server(200, text);
    assert.deepEqual(await wall().api('GET', '/x'), {}, text);
  }
  server(200, '[1, 2]');
  assert.deepEqual(await wall().api('GET', '/x'), [1, 2]);
});

test('js075 a refusal rejects with the status, the server\'s code and error, and its body', async () => {
  server(409, '{"error": "unit busy", "code": "unit_busy", "status": 409, "unit": "W7"}');
  const err = await wall().api('POST', '/events/E1/dispatch', {}).then(() => null, (e) => e);
  assert.ok(err instanceof Error);
  assert.equal(err.status, 409);
  assert.equal(err.code, 'unit_busy');
  assert.equal(err.error, 'unit busy');
  assert.equal(err.message, 'unit busy');
  assert.equal(err.body.unit, 'W7');
});

test('js076 a refusal without a JSON body still carries its status', async () => {
  server(502, '<html>Bad gateway</html>');
  const err = await wall().api('GET', '/stats').then(() => null, (e) => e);
  assert.equal(err.status, 502);
  assert.equal(err.code, undefined);
  assert.equal(err.error, undefined);
  assert.deepEqual(err.body, {});
  assert.equal(err.message, 'HTTP 502');
});

test('js077 no answer rejects with status 0 and the browser\'s own message', async () => {
  server(0);
  const err = await wall().api('GET', '/duty/queue').then(() => null, (e) => e);
  assert.equal(err.status, 0);
  assert.equal(err.message, 'Failed to fetch');
  assert.equal(err.name, 'TypeError');
  assert.deepEqual(err.body, {});
});

test('js078 an aborted request rejects as an AbortError', async () => {
  const sent = server(200, '{}');
  const ctl = new AbortController();
  ctl.abort();
  const err = await wall().api('GET', '/tracks/worker/W1', undefined, { signal: ctl.signal })
    .then(() => null, (e) => e);
  assert.equal(sent[0].init.signal, ctl.signal);
  assert.equal(err.name, 'AbortError');
  assert.equal(err.status, 0);
});

test('js079 opts.url fetches a whole address as it is, without the API\'s headers', async () => {
  const sent = server(200, '{"type": "FeatureCollection", "features": []}');
  const doc = await wall().api('GET', '/cc/geo/town.geojson', undefined, { url: true, strict: true });
  assert.equal(doc.type, 'FeatureCollection');
  assert.equal(sent[0].url, '/cc/geo/town.geojson');
  assert.deepEqual(sent[0].init, { method: 'GET', credentials: 'same-origin' });
});

test('js080 opts.strict: a 2xx answer that is not a JSON object fails', async () => {
  for (const text of ['', '<html>', 'null']) {
    server(200, text);
    const err = await wall().api('GET', '/roster', undefined, { strict: true }).then(() => null, (e) => e);
    assert.equal(err && err.status, 200, text);
  }
});

test('js081 opts.need: a 2xx answer without that field fails like a refusal', async () => {
  server(201, '{"duplicate": false}');
  const err = await wall().api('POST', '/events/E1/verify', {}, { need: 'task' }).then(() => null, (e) => e);
  assert.equal(err.status, 201);
  assert.equal(err.error, undefined);
  server(200, '{"task": {"id": "T1"}}');
  assert.deepEqual(await wall().api('POST', '/events/E1/verify', {}, { need: 'task' }), { task: { id: 'T1' } });
});
