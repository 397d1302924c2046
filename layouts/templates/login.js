(function () {
  var cfg = JSON.parse(document.getElementById('cc-login-cfg').textContent);
  var form = document.getElementById('cc-login-form');
  var err = document.getElementById('cc-login-error');
  var btn = document.getElementById('cc-login-submit');
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    err.textContent = '';
    btn.disabled = true; btn.textContent = cfg.s.busy;
    fetch('/api/login', {method: 'POST', credentials: 'same-origin',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({username: form.username.value.trim(),
                            password: form.password.value})})
      .then(function (res) {
        if (res.ok) { location.replace(cfg.next); return; }
        err.textContent = res.status === 401 ? cfg.s.wrong
          : res.status === 429 ? cfg.s.throttled : cfg.s.failed;
        btn.disabled = false; btn.textContent = cfg.s.submit;
      }, function () {
        err.textContent = cfg.s.failed;
        btn.disabled = false; btn.textContent = cfg.s.submit;
      });
  });
})();
