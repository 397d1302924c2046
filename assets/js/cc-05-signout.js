/* cc-05-signout.js: the header's sign-out button (layouts/wall.py, `_user_box`).

   A script POST to /api/logout, then the sign-in page. The button is no HTML form on purpose:
   the server refuses any state-changing request that is neither JSON nor marked with
   X-Requested-With (callbacks/access/security.py), which is what keeps other sites' forms out.
   Found by its class, not through cfg.ids: the refusal pages never boot, and sign out too. */
(function () {
  'use strict';
  var cc = (window.ccwall = window.ccwall || {});

  function failed(btn) {
    btn.disabled = false;
    btn.title = btn.getAttribute('data-failed') || '';
    btn.setAttribute('data-state', 'error');
  }

  document.addEventListener('click', function (ev) {
    var btn = ev.target && ev.target.closest ? ev.target.closest('.cc-sign-out') : null;
    if (!btn || btn.disabled) return;
    ev.preventDefault();
    btn.disabled = true;
    var signIn = function () { location.replace(btn.getAttribute('data-login') || '/login'); };
    // no body: cc.api's X-Requested-With is what the server lets through (no cfg before boot:
    // cc.api falls back to /api)
    cc.api('POST', '/logout').then(signIn, function (err) {
      // 401: the session had already ended; the sign-in page is next either way
      if (err.status === 401) signIn();
      else failed(btn);
    });
  });
})();
