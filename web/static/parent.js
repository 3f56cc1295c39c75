// The family's page: uploads with a progress bar per photo, automatic retries with the same
// upload_id (the server stores a retried photo once), a clear message for each refusal, and
// the thumbnail as confirmation. Without this script the forms still post (and redirect back).
(function () {
  'use strict';
  document.documentElement.classList.add('js');
  var msgs = document.getElementById('i18n');
  if (!msgs || !window.FormData || !window.XMLHttpRequest) {
    return;
  }
  var t = msgs.dataset;
  var MAX_TRIES = 6; // the first try and five retries, over about half a minute
  var THUMB_TRIES = 40;
  var queue = [];
  var busy = false;

  Array.prototype.forEach.call(document.querySelectorAll('.js-only'), function (el) { el.hidden = false; });
  Array.prototype.forEach.call(document.querySelectorAll('.nojs-only'), function (el) { el.hidden = true; });

  Array.prototype.forEach.call(document.querySelectorAll('form.upload'), function (form) {
    Array.prototype.forEach.call(form.querySelectorAll('input[type=file]'), function (input) {
      input.required = false;
      input.addEventListener('change', function () {
        Array.prototype.forEach.call(input.files, function (file) { enqueue(form, file); });
        input.value = '';
      });
    });
    form.addEventListener('submit', function (ev) { ev.preventDefault(); });
  });

  // newUploadID names one photo for all its tries.
  function newUploadID() {
    if (window.crypto && crypto.randomUUID) {
      return crypto.randomUUID();
    }
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
  }

  function enqueue(form, file) {
    var li = document.createElement('li');
    var bar = document.createElement('progress');
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute('aria-label', t.progress);
    var text = document.createElement('p');
    li.appendChild(bar);
    li.appendChild(text);
    form.querySelector('.queue').appendChild(li);
    var item = { form: form, file: file, uploadID: newUploadID(), tries: 0, li: li, bar: bar, text: text };
    setState(item, 'queued', t.sending);
    queue.push(item);
    pump();
  }

  function setState(item, state, message) {
    item.li.dataset.state = state;
    item.li.className = state === 'error' || state === 'failed' ? 'error' : (state === 'sent' ? 'ok' : '');
    item.text.textContent = message;
    item.text.setAttribute('role', state === 'error' || state === 'failed' ? 'alert' : 'status');
  }

  // One upload at a time: a phone's connection is better used for one photo than shared.
  function pump() {
    if (busy || queue.length === 0) {
      return;
    }
    busy = true;
    send(queue.shift());
  }

  function next() {
    busy = false;
    pump();
  }

  function send(item) {
    item.tries++;
    setState(item, 'sending', item.tries > 1 ? t.retrying : t.sending);
    var fd = new FormData();
    // The order matters: the server answers a retry of a stored photo before reading the file.
    fd.append('timepoint', item.form.elements.timepoint.value);
    fd.append('view', item.form.elements.view.value);
    fd.append('upload_id', item.uploadID);
    fd.append('file', item.file, 'photo'); // the phone's file name is not sent
    var xhr = new XMLHttpRequest();
    xhr.open('POST', '/p/photos');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Accept-Language', t.lang);
    xhr.setRequestHeader('X-CSRF-Token', t.csrf);
    xhr.timeout = 180000;
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) {
        item.bar.value = Math.round(e.loaded * 100 / e.total);
      }
    };
    xhr.onload = function () {
      var body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch (e) {
        body = null;
      }
      if (xhr.status === 200 || xhr.status === 201) {
        succeeded(item, body);
        next();
      } else if (xhr.status >= 500 || xhr.status === 0) {
        retryLater(item);
      } else {
        refused(item, xhr.status, body);
        next();
      }
    };
    xhr.onerror = function () { retryLater(item); };
    xhr.ontimeout = function () { retryLater(item); };
    xhr.send(fd);
  }

  // retryLater tries again with the same upload_id after 1, 2, 4, 8, 16 seconds, then lets
  // the parent try again by hand; the photo stays in the page until it is sent.
  function retryLater(item) {
    item.bar.value = 0;
    if (item.tries >= MAX_TRIES) {
      setState(item, 'failed', t.failed);
      var again = document.createElement('button');
      again.type = 'button';
      again.className = 'btn btn-secondary';
      again.textContent = t.retry;
      again.addEventListener('click', function () {
        item.li.removeChild(again);
        item.tries = 0;
        setState(item, 'queued', t.sending);
        queue.push(item);
        pump();
      });
      item.li.appendChild(again);
      next();
      return;
    }
    setState(item, 'retrying', t.retrying);
    setTimeout(function () { send(item); }, Math.min(16000, 1000 * Math.pow(2, item.tries - 1)));
  }

  function refused(item, status, body) {
    var err = (body && body.error) || {};
    var message;
    if (err.code === 'heic' || err.code === 'unsupported_format' || err.code === 'bad_image') {
      message = err.message || t.generic; // the server's own words, in the page's language
    } else if (status === 413 || err.code === 'too_large') {
      message = t.tooLarge;
    } else if (status === 401 || status === 404) {
      message = t.session;
    } else if (status === 403) {
      message = t.forbidden;
    } else if (status === 409) {
      message = t.ended;
    } else if (status === 400 || status === 422) {
      message = t.invalid;
    } else {
      message = t.generic;
    }
    item.li.removeChild(item.bar);
    setState(item, 'error', message);
  }

  function succeeded(item, photo) {
    item.bar.value = 100;
    setState(item, 'sent', t.sent + ' ' + t.preparing);
    var card = item.form.closest('.card');
    if (card) {
      card.classList.add('done');
    }
    if (photo && photo.id) {
      loadThumbnail(item, photo.id, 0);
    }
  }

  // The thumbnail is made in the background a moment after the upload: 503 means not yet.
  function loadThumbnail(item, id, n) {
    var retry = function () {
      if (n + 1 < THUMB_TRIES) {
        setTimeout(function () { loadThumbnail(item, id, n + 1); }, n < 10 ? 500 : 2000);
      } else {
        setState(item, 'sent', t.sent);
      }
    };
    fetch('/p/photos/' + encodeURIComponent(id) + '/thumbnail', { credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) {
        retry();
        return null;
      }
      return r.blob().then(function (blob) {
        var img = document.createElement('img');
        img.className = 'thumb';
        img.alt = item.form.dataset.alt || '';
        img.src = URL.createObjectURL(blob);
        item.li.appendChild(img);
        setState(item, 'sent', t.sent);
      });
    }).catch(retry);
  }
}());
