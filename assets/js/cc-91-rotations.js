/* cc-91-rotations.js: the rotation chooser (/rotate, docs/ROTATION.md): the saved
   rotations to start (and, for a commander, delete), and a form for a new one — start it
   at once, or save it under a name for kiosks to open as /rotate/<name>.

   The server checks everything (spec, role, scope); a refusal is shown in words from its
   code. Inputs are plain DOM elements made here, as on the other pages. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});
  var C = (cc.rotations = {});
  var $ = cc.$;
  var K = null;
  var inputs = {};

  function lang() { return cc.cfg.lang === 'en' ? '?lang=en' : ''; }

  function say(text, level) {
    var el = $('ROT_FORM_MSG');
    cc.setText(el, text);
    cc.setAttr(el, 'data-level', level || 'info');
  }

  function failure(err) {
    if (!err || !err.status) return cc.t('rot.err.network');
    var code = err.status === 403 && err.code === 'forbidden' ? 'forbidden' : err.code;
    var key = 'rot.err.' + (code || '');
    var text = Object.prototype.hasOwnProperty.call(cc.strings, key) ? cc.t(key) : (err.error || String(err.status));
    var entry = err.body && err.body.entry;
    return entry ? text + ' (' + entry + ')' : text;
  }

  function field(name, label, value, maxLength, size) {
    var box = cc.make('label', 'cc-rot-field');
    box.appendChild(cc.make('span', 'cc-rot-label', label));
    var el = cc.make('input', 'cc-rot-input cc-rot-input-' + name);
    el.type = 'text';
    el.value = value;
    el.maxLength = maxLength;
    el.autocomplete = 'off';
    el.spellcheck = false;
    if (size) el.size = size;
    el.setAttribute('data-rot', name);
    box.appendChild(el);
    inputs[name] = el;
    return box;
  }

  function button(cmd, text, cls) {
    var b = cc.make('button', 'cc-vw-btn cc-rot-btn' + (cls ? ' ' + cls : ''), text);
    b.type = 'button';
    b.setAttribute('data-rot', cmd);
    return b;
  }

  function buildForm() {
    var form = $('ROT_FORM');
    if (!form || form.firstChild) return;
    form.appendChild(field('spec', cc.t('rot.spec'), K.example, 1000));
    var row = cc.make('div', 'cc-rot-row');
    row.appendChild(field('s', cc.t('rot.interval'), String(K.defaultS), 4, 5));
    row.appendChild(button('start', cc.t('rot.start'), 'is-primary'));
    form.appendChild(row);
    if (K.canSave) {
      var save = cc.make('div', 'cc-rot-row');
      save.appendChild(field('name', cc.t('rot.name'), '', K.nameMax, 16));
      save.appendChild(button('save', cc.t('rot.save')));
      form.appendChild(save);
    }
  }

  function query() {
    var s = inputs.s.value.trim();
    return '?p=' + encodeURIComponent(inputs.spec.value.trim()) + (s ? '&s=' + encodeURIComponent(s) : '');
  }

  function start() {
    // the server resolves it first, so a mistake is said here rather than on a blank wall
    cc.api('GET', '/rotation' + query(), undefined, { strict: true }).then(function () {
      location.assign('/rotate' + query() + (cc.cfg.lang === 'en' ? '&lang=en' : ''));
    }, function (err) { say(failure(err), 'error'); });
  }

  function save() {
    var name = inputs.name.value.trim();
    var body = { spec: inputs.spec.value.trim() };
    if (inputs.s.value.trim()) body.s = inputs.s.value.trim();
    cc.api('PUT', '/rotations/' + encodeURIComponent(name), body).then(function (res) {
      say(cc.t('rot.saved_ok', { name: res.name || name }), 'ok');
      inputs.name.value = '';
      reload();
    }, function (err) { say(failure(err), 'error'); });
  }

  function remove(name) {
    cc.api('DELETE', '/rotations/' + encodeURIComponent(name)).then(function () {
      say(cc.t('rot.deleted_ok', { name: name }), 'ok');
      reload();
    }, function (err) { say(failure(err), 'error'); });
  }

  function row(r) {
    var li = cc.make('li', 'cc-rot-item');
    li.setAttribute('data-name', r.name);
    var text = li.appendChild(cc.make('div', 'cc-rot-item-text'));
    text.appendChild(cc.make('span', 'cc-rot-item-name', r.name));
    text.appendChild(cc.make('span', 'cc-rot-item-spec', r.spec));
    text.appendChild(cc.make('span', 'cc-rot-item-by', cc.t('rot.by', { by: r.by || '' })));
    var go = cc.make('a', 'cc-vw-btn cc-rot-btn is-primary', cc.t('rot.start'));
    go.href = '/rotate/' + encodeURIComponent(r.name) + lang();
    li.appendChild(go);
    if (K.canSave) {
      var del = li.appendChild(button('delete', cc.t('rot.delete')));
      del.setAttribute('data-name', r.name);
    }
    return li;
  }

  function reload() {
    cc.api('GET', '/rotations', undefined, { strict: true }).then(function (res) {
      var list = $('ROT_LIST');
      if (!list) return;
      while (list.firstChild) list.removeChild(list.firstChild);
      var all = res.rotations || [];
      if (!all.length) list.appendChild(cc.make('li', 'cc-rot-empty', cc.t('rot.none')));
      all.forEach(function (r) { list.appendChild(row(r)); });
    }, function (err) { say(failure(err), 'error'); });
  }

  function onClick(e) {
    var btn = e.target.closest && e.target.closest('button[data-rot]');
    if (!btn) return;
    var cmd = btn.getAttribute('data-rot');
    if (cmd === 'start') start();
    else if (cmd === 'save') save();
    else if (cmd === 'delete') remove(btn.getAttribute('data-name'));
  }

  C.init = function () {
    K = cc.cfg.rotate;
    buildForm();
    var root = $('ROT_ROOT');
    if (root) root.addEventListener('click', onClick);
    if (inputs.spec) {
      inputs.spec.addEventListener('keydown', function (e) { if (e.key === 'Enter') start(); });
    }
    reload();
  };
})();
