// Passkeys on the sign-in's and the account's pages. A form.si-passkey (hidden until this
// script finds the browser able) names its ceremony in data-passkey (create or get) and its
// routes: on submit it posts the form to data-options for the server's options, hands them
// to navigator.credentials, and posts the form again to its action with the browser's
// answer as JSON in the field credential. The server answers {next} or {error: {message}}.
(function () {
  'use strict';
  function fromB64(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) { s += '='; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }
  function toB64(buf) {
    var a = new Uint8Array(buf), s = '';
    for (var i = 0; i < a.length; i++) { s += String.fromCharCode(a[i]); }
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function options(pk) {
    pk.challenge = fromB64(pk.challenge);
    if (pk.user) { pk.user.id = fromB64(pk.user.id); }
    ['excludeCredentials', 'allowCredentials'].forEach(function (k) {
      (pk[k] || []).forEach(function (c) { c.id = fromB64(c.id); });
    });
    return pk;
  }
  function answer(cred) {
    var r = cred.response, out = { id: cred.id, rawId: toB64(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults(), response: { clientDataJSON: toB64(r.clientDataJSON) } };
    if (r.attestationObject) {
      out.response.attestationObject = toB64(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = toB64(r.authenticatorData);
      out.response.signature = toB64(r.signature);
      if (r.userHandle) { out.response.userHandle = toB64(r.userHandle); }
    }
    return out;
  }
  function post(url, form, credential) {
    var body = new URLSearchParams(new FormData(form));
    if (credential) { body.set('credential', JSON.stringify(credential)); }
    return fetch(url, { method: 'POST', credentials: 'same-origin', body: body }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) { var e = new Error('refused'); e.shown = j.error && j.error.message; throw e; }
        return j;
      });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll('form.si-passkey'), function (form) {
    var error = form.querySelector('.si-passkey-error'), button = form.querySelector('button');
    function fail(msg) { error.textContent = msg; error.hidden = false; button.disabled = false; }
    if (!window.PublicKeyCredential || !navigator.credentials) { return; }
    form.hidden = false;
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      error.hidden = true;
      button.disabled = true;
      post(form.dataset.options, form).then(function (opts) {
        var pk = options(opts.publicKey);
        return form.dataset.passkey === 'create' ? navigator.credentials.create({ publicKey: pk }) : navigator.credentials.get({ publicKey: pk });
      }).then(function (cred) {
        return post(form.getAttribute('action'), form, answer(cred));
      }).then(function (res) {
        window.location.assign(res.next);
      }, function (e) { fail(e.shown || form.dataset.failed); });
    });
  });
}());
