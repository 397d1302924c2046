// One language per page in the browser (assets/js/cc-00-core.js; README, "Languages"): a
// unit's name in the page's language, product text with the feed's words marked, and an
// alert's text in the page's language. Feature codes js090-js095.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { load } = require('./load');

/* The few DOM calls the helpers make, on plain objects: elements keep their children and
   attributes; textContent reads them all and, set, replaces them with one text node. */
function node(tag, text) {
  const el = {
    tag, children: [], attrs: {}, text,
    appendChild(c) { this.children.push(c); return c; },
    setAttribute(k, v) { this.attrs[k] = String(v); },
    getAttribute(k) { return k in this.attrs ? this.attrs[k] : null; },
    removeAttribute(k) { delete this.attrs[k]; },
    get firstElementChild() { return this.children.find((c) => c.tag !== '#text') || null; },
    get textContent() { return this.tag === '#text' ? this.text : this.children.map((c) => c.textContent).join(''); },
    set textContent(v) { this.children = v === '' ? [] : [node('#text', String(v))]; },
  };
  return el;
}

function page(lang) {
  globalThis.document = {
    createElement: (tag) => node(tag),
    createTextNode: (text) => node('#text', text),
  };
  const { cc } = load(['cc-00-core.js']);
  cc.cfg = { lang };
  cc.strings = lang === 'en'
    ? { 'sep.list': ', ', 'sep.colon': ': ' } : { 'sep.list': '、', 'sep.colon': '：' };
  return cc;
}

/* [text, feed?] per child: what a reader sees and which part is marked as the feed's. */
function pieces(el) {
  return el.children.map((c) => [c.textContent, c.tag !== '#text' && c.getAttribute('data-feed') === '']);
}

test('js090 a unit is named in the page\'s language, its own name where it has no English one', () => {
  const unit = { code: '370283009', name: '明村镇', name_en: 'Mingcun Town' };
  assert.equal(page('en').unitName(unit), 'Mingcun Town');
  assert.equal(page('zh-CN').unitName(unit), '明村镇');
  assert.equal(page('en').unitName({ code: 'X1', name: '某社区' }), '某社区');
  assert.equal(page('en').unitName({ code: 'X1' }), 'X1');
  assert.equal(page('en').unitName(null), '');
});

test('js091 feed values go in as marked text between the product\'s words, markup as text', () => {
  const cc = page('en');
  const el = node('div');
  cc.setFeedText(el, '[{title}] Red card: {stage} overdue {missing}',
    { title: '<b>燃气泄漏</b>', stage: '{title}' });
  assert.deepEqual(pieces(el), [['[', false], ['<b>燃气泄漏</b>', true], ['] Red card: ', false],
    ['{title}', true], [' overdue ', false], ['{missing}', false]]);
  assert.equal(el.textContent, '[<b>燃气泄漏</b>] Red card: {title} overdue {missing}');
  // the same again changes nothing; plain text afterwards replaces the pieces
  const before = el.children;
  cc.setFeedText(el, '[{title}] Red card: {stage} overdue {missing}',
    { title: '<b>燃气泄漏</b>', stage: '{title}' });
  assert.equal(el.children, before);
  cc.setText(el, 'plain');
  assert.deepEqual(pieces(el), [['plain', false]]);
  cc.setFeedText(el, '{t}', { t: '标题' });
  assert.deepEqual(pieces(el), [['标题', true]]);
});

test('js092 people\'s names join with the page\'s separator, each marked', () => {
  for (const [lang, sep] of [['en', ', '], ['zh-CN', '、']]) {
    const cc = page(lang);
    const feed = {};
    const el = node('span');
    cc.setFeedText(el, 'Day ' + cc.namesTemplate(['王强', '李娜'], feed), feed);
    assert.deepEqual(pieces(el), [['Day ', false], ['王强', true], [sep, false], ['李娜', true]]);
  }
});

test('js093 an alert shows its text in the page\'s language with the feed\'s words marked', () => {
  const alert = { message: 'I级事件：化工厂爆炸', feed: { title: '化工厂爆炸' },
    texts: { 'zh-CN': 'I级事件：{title}', en: 'Level I event: {title}' } };
  const el = node('div');
  assert.equal(page('en').setAlertText(el, alert), 'Level I event: 化工厂爆炸');
  assert.deepEqual(pieces(el), [['Level I event: ', false], ['化工厂爆炸', true]]);
  assert.equal(page('zh-CN').setAlertText(el, alert), 'I级事件：化工厂爆炸');
});

test('js094 an alert from before alerts carried every language shows its message, marked as data', () => {
  const el = node('div');
  assert.equal(page('en').setAlertText(el, { message: '李强发出SOS求助' }), '李强发出SOS求助');
  // the center's language, not necessarily the page's: the data it is, never the page's claim
  assert.deepEqual(pieces(el), [['李强发出SOS求助', true]]);
  assert.deepEqual(page('en').alertTemplate({ event_id: 'E1' }), ['{message}', { message: 'E1' }]);
  assert.equal(page('en').setAlertText(null, { message: 'x' }), 'x');
});

test('js095 the rotation\'s urgent line: the alert\'s template inside the product\'s words', () => {
  const cc = page('en');
  const held = cc.alertTemplate({ message: 'I级事件：化工厂', feed: { title: '化工厂' },
    texts: { en: 'Level I event: {title}' } });
  const el = node('div');
  cc.setFeedText(el, 'Urgent · ' + held[0], held[1]);
  assert.deepEqual(pieces(el), [['Urgent · Level I event: ', false], ['化工厂', true]]);
});
