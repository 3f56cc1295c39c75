// The conversation's form on the family's page ("Message the clinic"). Photos picked in it go
// through the page's upload queue (parent.js, window.DermfollowQueue) as concern photos, each
// sent as soon as it is picked; the text follows once every photo has arrived or been refused,
// as JSON to POST /p/messages with the photos' ids and a message_id that makes a retry return
// the message it posted. The text, the message_id and the photos already sent are kept in the
// tab (sessionStorage) until the message is sent, so a reload or a failure loses nothing; a send
// that fails for the network or the server is tried again, with a growing pause. Once it is
// sent, the page is loaded again and shows it in the thread. Without this script the form posts
// as it is.
(function () {
  'use strict';
  var form = document.getElementById('talk-form');
  var msgs = document.getElementById('i18n');
  var queue = window.DermfollowQueue;
  if (!form || !msgs || !queue || !window.fetch || !window.JSON) {
    return;
  }
  var t = msgs.dataset;
  var MAX = 2000;
  var body = form.elements.body;
  var count = document.getElementById('talk-count');
  var error = document.getElementById('talk-error');
  var button = document.getElementById('talk-send');
  var status = document.createElement('p');
  status.className = 'talk-status';
  status.id = 'talk-status';
  status.setAttribute('role', 'status');
  status.hidden = true;
  form.querySelector('.buttons').after(status);
  var draftKey = 'dermfollow-talk:' + t.owner;
  var sending = false; // the family pressed Send and the message is not posted yet
  var tries = 0;
  var timer = null;

  // A photo of the thread whose preview was still being made shows once it is.
  Array.prototype.forEach.call(document.querySelectorAll('#thread .photo-pending[data-photo]'), function (p) {
    queue.thumbnail(p.dataset.photo, form.dataset.alt || '', function (img) {
      var fig = document.createElement('figure');
      fig.appendChild(img);
      p.replaceWith(fig);
    });
  });
  // The page's own messages, in the family's language, rather than the browser's bubble.
  form.noValidate = true;
  restoreDraft();
  updateCount();
  body.addEventListener('input', function () {
    updateCount();
    if (!error.hidden && length(body.value) > 0) {
      clearError();
    }
    saveDraft();
  });
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    if (sending) {
      return;
    }
    var n = length(body.value.trim());
    if (n === 0) {
      showError(t.talkEmpty);
      return;
    }
    if (n > MAX) {
      showError(t.talkLong);
      return;
    }
    clearError();
    sending = true;
    tries = 0;
    button.disabled = true;
    saveDraft();
    next();
  });
  queue.onChange(function () {
    saveDraft();
    if (sending && !timer) {
      next();
    }
  });
  window.addEventListener('online', function () {
    if (sending && timer) {
      clearTimeout(timer);
      timer = null;
      next();
    }
  });

  // length counts characters as the server does (code points, not UTF-16 units).
  function length(s) {
    return Array.from ? Array.from(s).length : s.length;
  }

  function updateCount() {
    var n = length(body.value);
    count.textContent = t.talkCounter.replace('%s', String(n));
    count.classList.toggle('over', n > MAX);
  }

  function showError(text) {
    error.textContent = text;
    error.hidden = false;
    error.dataset.field = 'body';
    body.setAttribute('aria-invalid', 'true');
    body.setAttribute('aria-describedby', 'talk-hint talk-error');
    body.focus();
  }

  function clearError() {
    error.hidden = true;
    error.textContent = '';
    error.dataset.field = '';
    body.removeAttribute('aria-invalid');
    body.setAttribute('aria-describedby', 'talk-hint');
  }

  function say(text) {
    status.textContent = text;
    status.hidden = !text;
  }

  // photos are the message's photos: those picked now and those sent on an earlier visit of
  // this tab (restoreDraft shows them in the queue again).
  function photos() {
    return queue.items(form);
  }

  function pending() {
    return photos().some(function (p) { return p.state !== 'sent' && p.state !== 'error'; });
  }

  // next posts the message once its photos are all in (or refused).
  function next() {
    if (pending()) {
      say(t.talkWaiting);
      return;
    }
    say(t.talkSending);
    var ids = [];
    var refused = 0;
    photos().forEach(function (p) {
      if (p.state === 'sent' && p.photoID && ids.indexOf(p.photoID) < 0) {
        ids.push(p.photoID);
      } else if (p.state === 'error') {
        refused++;
      }
    });
    fetch('/p/messages', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'Accept': 'application/json', 'X-CSRF-Token': t.csrf, 'Accept-Language': t.lang },
      body: JSON.stringify({ body: body.value, message_id: form.elements.message_id.value, photo_ids: ids })
    }).then(function (r) {
      if (r.status === 200 || r.status === 201) {
        done(refused ? 'msg-photo' : 'msg-sent');
        return null;
      }
      return r.json().catch(function () { return null; }).then(function (b) { answered(r.status, b); });
    }, function () { later(); });
  }

  // done forgets the draft and loads the page again, which shows the message in the thread.
  function done(code) {
    sending = false;
    try {
      window.sessionStorage.removeItem(draftKey);
    } catch (e) { /* nothing kept */ }
    window.history.replaceState(null, '', '/p/?m=' + code + '#talk');
    window.location.reload();
  }

  function answered(code, b) {
    if (code === 0 || code >= 500) {
      later();
      return;
    }
    sending = false;
    button.disabled = false;
    say('');
    var msg = (b && b.error && b.error.message) || '';
    if (code === 422 && msg.indexOf('body:') === 0) {
      showError(length(body.value.trim()) === 0 ? t.talkEmpty : (length(body.value.trim()) > MAX ? t.talkLong : t.talkText));
    } else if (code === 429) {
      showError(t.talkMany);
    } else if (code === 409) {
      showError(t.ended);
    } else if (code === 401) {
      showError(t.session);
    } else if (code === 403) {
      showError(t.forbidden);
    } else {
      showError(t.generic);
    }
  }

  // later tries again after 1, 2, 4 ... and at most 30 seconds, for as long as the page is open.
  function later() {
    say(t.talkFailed);
    var pause = Math.min(30000, 1000 * Math.pow(2, tries));
    tries++;
    timer = setTimeout(function () {
      timer = null;
      next();
    }, pause);
  }

  function saveDraft() {
    var ids = photos().filter(function (p) { return p.state === 'sent' && p.photoID; }).map(function (p) { return p.photoID; });
    try {
      window.sessionStorage.setItem(draftKey, JSON.stringify({ body: body.value, messageID: form.elements.message_id.value, photos: ids }));
    } catch (e) { /* the text stays in the form while the page is open */ }
  }

  function restoreDraft() {
    var d = null;
    try {
      d = JSON.parse(window.sessionStorage.getItem(draftKey) || 'null');
    } catch (e) {
      d = null;
    }
    if (!d) {
      return;
    }
    if (!body.value && d.body) {
      body.value = d.body;
    }
    if (d.messageID) {
      form.elements.message_id.value = d.messageID;
    }
    (d.photos || []).forEach(function (id) {
      if (typeof id === 'string' && /^[0-9a-f-]{36}$/.test(id)) {
        queue.showSent(form, id);
      }
    });
  }
}());
