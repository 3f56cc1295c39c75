// The family's page. Each picked photo is sent with the tus protocol (resumable uploads, see
// web/resumable.go; tus-js-client in /static/tus.min.js): an upload that is cut resumes from the
// last byte the server has. Until the server has it, the photo itself is kept in IndexedDB with
// its upload's address, so that a reload, a closed tab or a tap on the link again shows it and
// sends the rest without picking it again. Offline, a photo waits for the connection; after a
// failure it is tried again with a growing pause, for as long as the page is open, with a button
// to try at once. A send that stops moving for STALL_MS is resumed; a slow one that moves is
// never cut. Each photo is an li[data-state]: queued, waiting, sending, retrying, sent or failed.
// Without this script the forms still post (and redirect back).
//
// The conversation's form (form[data-kind=concern], talk.js) takes photos outside the schedule
// through this same queue: they are uploads of kind concern, with no step and no view, and
// talk.js reads their state and photo ids through window.DermfollowQueue.
(function () {
  'use strict';
  document.documentElement.classList.add('js');
  var msgs = document.getElementById('i18n');
  if (!msgs || !window.FormData || !window.XMLHttpRequest || !window.Promise) {
    return;
  }
  var t = msgs.dataset;
  var tusOK = !!(window.tus && window.tus.isSupported);
  var FAILED_AFTER = 6; // tries before the "try again" button shows; tries go on after it
  var MAX_PAUSE_MS = 30000; // the longest pause between tries
  var STALL_MS = 30000; // a send with no progress for this long is resumed
  // A request the server has not answered at all for this long is tried again: after a link
  // died without a word, the browser may first reuse its idle connections, dead too, and each
  // would otherwise cost a whole STALL_MS.
  var REPLY_MS = 10000;
  var FIRST_CHUNK = 256 * 1024; // the server checks a photo's first bytes before the rest
  var CHUNK_SECONDS = 10; // later pieces take about this long, so progress is acknowledged often
  var THUMB_TRIES = 40;
  var queue = [];
  var busy = false;
  var current = null;
  var items = {}; // by upload id
  var listeners = []; // DermfollowQueue.onChange

  Array.prototype.forEach.call(document.querySelectorAll('.js-only'), function (el) { el.hidden = false; });
  Array.prototype.forEach.call(document.querySelectorAll('.nojs-only'), function (el) { el.hidden = true; });

  window.DermfollowQueue = {
    // items lists the photos picked in form: their state and, once sent, the photo's id.
    items: function (form) {
      return Object.keys(items).map(function (id) { return items[id]; }).filter(function (item) {
        return item.form === form;
      }).map(function (item) { return { state: item.state, photoID: item.photoID || '' }; });
    },
    // thumbnail gives done a photo's thumbnail as an <img> once it is made.
    thumbnail: function (id, alt, done) { fetchThumbnail(id, alt, done); },
    // onChange calls fn after any photo changes state.
    onChange: function (fn) { listeners.push(fn); },
    // showSent shows in form a photo sent on an earlier visit, by its id.
    showSent: function (form, id) {
      var item = newItem(form, { uploadID: 'sent-' + id, blob: { size: 0 }, offset: 0 });
      item.li.removeChild(item.bar);
      item.photoID = id;
      setState(item, 'sent', t.sent);
      loadThumbnail(item, id, 0);
    }
  };

  Array.prototype.forEach.call(document.querySelectorAll('form.upload, form[data-kind=concern]'), function (form) {
    var concern = form.dataset.kind === 'concern';
    Array.prototype.forEach.call(form.querySelectorAll('input[type=file]'), function (input) {
      input.required = false;
      if (concern) {
        input.multiple = true; // one message may carry several photos
      }
      input.addEventListener('change', function () {
        Array.prototype.forEach.call(input.files, function (file) {
          pick(form, file, function () { input.click(); });
        });
        input.value = '';
      });
    });
    if (!concern) {
      form.addEventListener('submit', function (ev) { ev.preventDefault(); }); // talk.js sends the other
    }
  });

  setUpLiveCamera();

  // The photos kept until the server has them: IndexedDB, one record per photo, for this link
  // only (t.owner). Where IndexedDB cannot be opened (private browsing), saved stays false and
  // the page says the photo needs it to stay open.
  var store = openStore();
  store.then(function (db) {
    if (db) {
      return keptPhotos(db).then(function (recs) { recs.forEach(restore); });
    }
  }).catch(function () {});

  window.addEventListener('online', function () {
    Object.keys(items).forEach(function (id) {
      var item = items[id];
      if (item.state === 'waiting' || item.state === 'retrying' || item.state === 'failed') {
        retryNow(item);
      }
    });
  });
  setInterval(watchStall, 2500);

  function openStore() {
    return new Promise(function (resolve) {
      var req;
      try {
        req = window.indexedDB && window.indexedDB.open('dermfollow-uploads', 1);
      } catch (e) {
        req = null;
      }
      if (!req) {
        resolve(null);
        return;
      }
      req.onupgradeneeded = function () { req.result.createObjectStore('photos', { keyPath: 'uploadID' }); };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { resolve(null); };
      req.onblocked = function () { resolve(null); };
    });
  }

  function keptPhotos(db) {
    return new Promise(function (resolve) {
      var req = db.transaction('photos', 'readonly').objectStore('photos').getAll();
      req.onsuccess = function () {
        resolve(req.result.filter(function (r) { return r.owner === t.owner; })
          .sort(function (a, b) { return a.created - b.created; }));
      };
      req.onerror = function () { resolve([]); };
    });
  }

  function record(item) {
    return {
      uploadID: item.uploadID, owner: t.owner, kind: item.kind, timepoint: item.timepoint, view: item.view, blob: item.file,
      url: item.url, offset: item.offset, created: item.created
    };
  }

  // keep saves the item's record (the photo, its upload's address and offset); it resolves to
  // whether the photo is safe in IndexedDB.
  function keep(item) {
    return store.then(function (db) {
      if (!db) {
        return false;
      }
      return new Promise(function (resolve) {
        try {
          var tx = db.transaction('photos', 'readwrite');
          tx.objectStore('photos').put(record(item));
          tx.oncomplete = function () { resolve(true); };
          tx.onerror = tx.onabort = function () { resolve(false); };
        } catch (e) {
          resolve(false);
        }
      });
    });
  }

  function forget(item) {
    store.then(function (db) {
      if (db) {
        try {
          db.transaction('photos', 'readwrite').objectStore('photos').delete(item.uploadID);
        } catch (e) { /* nothing kept */ }
      }
    });
  }

  // newUploadID names one photo for all its tries.
  function newUploadID() {
    if (window.crypto && crypto.randomUUID) {
      return crypto.randomUUID();
    }
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join('');
  }

  // pick is what a photo taken or chosen goes through: the advice (advice.js), then the queue;
  // retake takes it again when the family chooses to.
  function pick(form, file, retake) {
    if (!window.DermfollowAdvice) {
      enqueue(form, file);
      return;
    }
    window.DermfollowAdvice.check(form, file, t).then(function (choice) {
      if (choice === 'again') {
        retake();
      } else {
        enqueue(form, file);
      }
    });
  }

  function enqueue(form, file) {
    var concern = form.dataset.kind === 'concern';
    var item = newItem(form, {
      uploadID: newUploadID(), kind: concern ? 'concern' : '',
      timepoint: concern ? '' : form.elements.timepoint.value, view: concern ? '' : form.elements.view.value,
      blob: file, url: null, offset: 0, created: Date.now()
    });
    keep(item).then(function (saved) { noteSaved(item, saved); });
    queue.push(item);
    pump();
  }

  // restore shows a photo kept from an earlier visit and sends the rest of it.
  function restore(rec) {
    if (items[rec.uploadID] || !rec.blob) {
      return;
    }
    var form = null;
    if (rec.kind === 'concern') {
      form = document.querySelector('form[data-kind=concern]');
    } else {
      Array.prototype.forEach.call(document.querySelectorAll('form.upload'), function (f) {
        if (!form && f.elements.timepoint.value === rec.timepoint && f.elements.view.value === rec.view) {
          form = f;
        }
      });
      form = form || document.querySelector('form.upload');
    }
    if (!form) {
      return; // nothing on the page to show it in; it stays kept for a page that has
    }
    var item = newItem(form, rec);
    noteSaved(item, true);
    queue.push(item);
    pump();
  }

  function newItem(form, rec) {
    var li = document.createElement('li');
    var bar = document.createElement('progress');
    bar.max = 100;
    bar.value = rec.blob.size ? Math.floor(rec.offset * 100 / rec.blob.size) : 0;
    bar.setAttribute('aria-label', t.progress);
    var text = document.createElement('p');
    var note = document.createElement('p');
    note.className = 'keep-note';
    note.hidden = true;
    li.appendChild(bar);
    li.appendChild(text);
    li.appendChild(note);
    form.querySelector('.queue').appendChild(li);
    var item = {
      form: form, file: rec.blob, uploadID: rec.uploadID, kind: rec.kind || '', timepoint: rec.timepoint, view: rec.view, url: rec.url,
      offset: rec.offset || 0, created: rec.created, tries: 0, li: li, bar: bar, text: text, note: note,
      upload: null, timer: null, lastMove: 0, state: ''
    };
    items[item.uploadID] = item;
    setState(item, 'queued', t.queued);
    return item;
  }

  function noteSaved(item, saved) {
    if (!saved && item.state !== 'sent') {
      item.note.textContent = t.keepOpen;
      item.note.hidden = false;
    }
  }

  function setState(item, state, message) {
    item.state = state;
    item.li.dataset.state = state;
    item.li.className = state === 'error' || state === 'failed' ? 'error' : (state === 'sent' ? 'ok' : '');
    item.text.textContent = message;
    item.text.setAttribute('role', state === 'error' || state === 'failed' ? 'alert' : 'status');
    var again = item.li.querySelector('button.again');
    if (state === 'failed' && !again) {
      again = document.createElement('button');
      again.type = 'button';
      again.className = 'btn btn-secondary again';
      again.textContent = t.retry;
      again.addEventListener('click', function () { retryNow(item); });
      item.li.appendChild(again);
    } else if (state !== 'failed' && again) {
      item.li.removeChild(again);
    }
    listeners.forEach(function (fn) { fn(); });
  }

  // One upload at a time: a phone's connection is better used for one photo than shared.
  function pump() {
    if (busy) {
      return;
    }
    var item = queue.shift();
    if (!item) {
      return;
    }
    busy = true;
    current = item;
    send(item);
  }

  function next(item) {
    if (current === item) {
      current = null;
      busy = false;
    }
    pump();
  }

  function send(item) {
    if (!tusOK) {
      refused(item, 0, null, t.generic);
      return;
    }
    if (navigator.onLine === false) {
      setState(item, 'waiting', t.waiting);
      next(item); // the next photo waits the same; 'online' sends them
      return;
    }
    item.tries++;
    if (item.state !== 'failed') {
      setState(item, item.tries > 1 ? 'retrying' : 'sending', item.tries > 1 ? t.retrying : t.sending);
    }
    item.lastMove = Date.now();
    item.answered = false;
    item.sendStart = { at: Date.now(), offset: item.offset };
    var upload = new tus.Upload(item.file, {
      endpoint: '/p/uploads',
      uploadUrl: item.url,
      metadata: item.kind === 'concern' ? { kind: 'concern', upload_id: item.uploadID } :
        { timepoint: item.timepoint, view: item.view, upload_id: item.uploadID },
      headers: { 'X-CSRF-Token': t.csrf, 'Accept-Language': t.lang },
      chunkSize: item.chunk || FIRST_CHUNK,
      retryDelays: null, // the page retries, without end (retryLater)
      storeFingerprintForResuming: false, // the page keeps its own records
      removeFingerprintOnSuccess: false,
      onAfterResponse: function (req, res) {
        item.answered = true;
        item.lastMove = Date.now();
        checkResponse(req, res);
      },
      onUploadUrlAvailable: function () {
        if (item.url !== upload.url) {
          item.url = upload.url;
          keep(item);
        }
      },
      onProgress: function () {
        item.answered = true;
        item.lastMove = Date.now();
        if (item.state !== 'sending') {
          setState(item, 'sending', progressText(item));
        }
      },
      onChunkComplete: function (chunk, accepted, total) {
        item.lastMove = Date.now();
        item.offset = accepted;
        item.tries = 0;
        item.chunk = chunkFor(item);
        upload.options.chunkSize = item.chunk;
        item.bar.value = Math.floor(accepted * 100 / total);
        setState(item, 'sending', progressText(item));
        keep(item);
      },
      onSuccess: function (payload) {
        var res = payload && payload.lastResponse;
        succeeded(item, res && res.getHeader('Dermfollow-Photo-Id'));
      },
      onError: function (err) { failed(item, err); }
    });
    item.upload = upload;
    upload.start();
  }

  // chunkFor sizes the next piece to take about CHUNK_SECONDS at the rate seen so far: on a
  // fast link the rest of the photo goes in one request.
  function chunkFor(item) {
    var secs = (Date.now() - item.sendStart.at) / 1000;
    var rate = (item.offset - item.sendStart.offset) / Math.max(secs, 0.05);
    return Math.max(FIRST_CHUNK, Math.round(rate * CHUNK_SECONDS));
  }

  // progressText says how much the server has, and, once it can be told, the time left.
  function progressText(item) {
    var size = item.file.size;
    var text = t.sending + ' ' + t.progressOf.replace('%s', mb(item.offset)).replace('%s', mb(size));
    var secs = (Date.now() - item.sendStart.at) / 1000;
    var got = item.offset - item.sendStart.offset;
    if (got > 0 && secs > 2 && item.offset < size) {
      var left = (size - item.offset) / (got / secs);
      text += ' · ' + (left < 60 ? t.leftSoon : t.leftMinutes.replace('%s', String(Math.ceil(left / 60))));
    }
    return text;
  }

  function mb(n) {
    return (n / 1048576).toFixed(1);
  }

  // checkResponse stops tus-js-client where it would go wrong for this server: a creation whose
  // photo is stored already is done; a HEAD that fails for now (503) or refuses the photo must
  // not start the upload over (tus-js-client would create a new one).
  function checkResponse(req, res) {
    var method = req.getMethod();
    var status = res.getStatus();
    var photo = res.getHeader('Dermfollow-Photo-Id');
    if (method === 'POST' && status === 201 && photo) {
      throw { photoID: photo };
    }
    if (method === 'HEAD' && (status < 200 || status > 299) && status !== 404) {
      throw { status: status, code: res.getHeader('Dermfollow-Refusal') || '' };
    }
  }

  function failed(item, err) {
    var cause = (err && err.causingError) || {};
    if (cause.photoID) {
      succeeded(item, cause.photoID);
      return;
    }
    var res = err && err.originalResponse;
    var status = res ? res.getStatus() : (cause.status || 0);
    var body = null;
    if (res) {
      try {
        body = JSON.parse(res.getBody());
      } catch (e) {
        body = null;
      }
    }
    if (status === 404) {
      // The upload is gone (it expired, or was made by an earlier session): start a new one,
      // which the server stores once, whatever the earlier one did.
      item.url = null;
      item.offset = 0;
      item.bar.value = 0;
      keep(item);
      if (item.tries < 2) {
        send(item);
        return;
      }
    }
    if (status === 0 || status >= 500 || status === 409 || status === 423 || status === 429 || status === 404) {
      retryLater(item);
      return;
    }
    refused(item, status, body, cause.code ? t.refused : null);
  }

  // retryLater tries again after 1, 1, 2, 2, 4, 4, 8, 8, 16, 16 and then every 30 seconds, for
  // as long as the page is open (a short drop costs about a second more than itself); from the
  // sixth try the "try again" button shows too.
  function retryLater(item) {
    item.upload = null;
    if (navigator.onLine === false) {
      setState(item, 'waiting', t.waiting);
      next(item);
      return;
    }
    var pause = Math.min(MAX_PAUSE_MS, 1000 * Math.pow(2, Math.floor(Math.max(0, item.tries - 1) / 2)));
    if (item.tries >= FAILED_AFTER) {
      setState(item, 'failed', t.failed);
    } else {
      setState(item, 'retrying', t.retrying);
    }
    item.timer = setTimeout(function () {
      item.timer = null;
      send(item);
    }, pause);
  }

  function retryNow(item) {
    if (item.timer) {
      clearTimeout(item.timer);
      item.timer = null;
    }
    if (current === item && item.upload) {
      return; // sending already
    }
    if (current && current !== item) {
      if (queue.indexOf(item) < 0) {
        queue.push(item);
      }
      return;
    }
    busy = true;
    current = item;
    send(item);
  }

  // watchStall resumes a send that has not moved for STALL_MS (a connection that died without
  // a word): the server keeps what arrived, and the next request asks it where to go on.
  function watchStall() {
    var item = current;
    if (!item || !item.upload || item.state === 'sent') {
      return;
    }
    if (Date.now() - item.lastMove > (item.answered ? STALL_MS : REPLY_MS)) {
      var upload = item.upload;
      item.upload = null;
      upload.abort().then(function () { retryLater(item); });
    }
  }

  function refused(item, status, body, fallback) {
    var err = (body && body.error) || {};
    var message;
    if (err.code === 'heic' || err.code === 'unsupported_format' || err.code === 'bad_image') {
      message = err.message || t.generic; // the server's own words, in the page's language
    } else if (status === 413 || err.code === 'too_large') {
      message = t.tooLarge;
    } else if (fallback) {
      message = fallback;
    } else if (status === 401) {
      message = t.session;
    } else if (status === 403) {
      message = t.forbidden;
    } else if (status === 400 || status === 422) {
      message = t.invalid;
    } else {
      message = t.generic;
    }
    item.upload = null;
    if (status !== 401 && status !== 403) {
      forget(item); // the server will not take it; a session that ended keeps it for the next
    }
    if (item.bar.parentNode) {
      item.li.removeChild(item.bar);
    }
    setState(item, 'error', message);
    next(item);
  }

  function succeeded(item, id) {
    item.upload = null;
    item.photoID = id || '';
    item.offset = item.file.size;
    item.bar.value = 100;
    item.note.hidden = true;
    setState(item, 'sent', t.sent + ' ' + t.preparing);
    forget(item);
    var card = item.form.closest('.card');
    if (card) {
      card.classList.add('done');
    }
    if (id) {
      loadThumbnail(item, id, 0);
    } else {
      setState(item, 'sent', t.sent);
    }
    next(item);
  }

  // The thumbnail is made in the background a moment after the upload: 503 means not yet.
  function loadThumbnail(item, id, n) {
    fetchThumbnail(id, item.form.dataset.alt || '', function (img) {
      item.li.appendChild(img);
      setState(item, 'sent', t.sent);
    }, function () { setState(item, 'sent', t.sent); }, n);
  }

  // fetchThumbnail gives done the photo's thumbnail as an <img> once it is made (tried
  // THUMB_TRIES times, from the n-th), or calls gaveUp.
  function fetchThumbnail(id, alt, done, gaveUp, n) {
    n = n || 0;
    var retry = function () {
      if (n + 1 < THUMB_TRIES) {
        setTimeout(function () { fetchThumbnail(id, alt, done, gaveUp, n + 1); }, n < 10 ? 500 : 2000);
      } else if (gaveUp) {
        gaveUp();
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
        img.alt = alt;
        img.src = URL.createObjectURL(blob);
        done(img);
      });
    }).catch(retry);
  }

  // The live camera: where the browser gives getUserMedia (a secure context), each card
  // offers a full-screen preview of the rear camera with last time's photo of the view over
  // it, semi-transparent, to match the framing. The shutter's JPEG joins the upload queue like
  // a picked file. Where the camera is missing or refused, the file inputs stay as they are.
  function setUpLiveCamera() {
    var md = navigator.mediaDevices;
    if (!window.isSecureContext || !md || !md.getUserMedia || !HTMLCanvasElement.prototype.toBlob) {
      return;
    }
    var buttons = document.querySelectorAll('form.upload button.live');
    if (buttons.length === 0) {
      return;
    }
    var view = null; // the capture view, made on first use
    var session = null; // {form, opener, stream}

    Array.prototype.forEach.call(buttons, function (button) {
      button.hidden = false;
      button.addEventListener('click', function () { open(button); });
    });

    function el(tag, className, text) {
      var e = document.createElement(tag);
      if (className) {
        e.className = className;
      }
      if (text) {
        e.textContent = text;
      }
      return e;
    }

    function build() {
      var v = { root: el('div', 'capture') };
      v.root.id = 'capture';
      v.root.hidden = true;
      v.root.setAttribute('role', 'dialog');
      v.root.setAttribute('aria-modal', 'true');
      v.root.setAttribute('aria-labelledby', 'capture-h');
      var head = el('div', 'capture-head');
      v.title = el('h2');
      v.title.id = 'capture-h';
      v.cancel = el('button', 'btn btn-secondary capture-cancel', t.cancel);
      v.cancel.type = 'button';
      head.appendChild(v.title);
      head.appendChild(v.cancel);
      var stage = el('div', 'capture-stage');
      v.video = el('video');
      v.video.muted = true;
      v.video.autoplay = true;
      v.video.setAttribute('playsinline', '');
      v.video.setAttribute('aria-hidden', 'true');
      v.guide = el('img', 'capture-guide');
      v.guide.hidden = true;
      stage.appendChild(v.video);
      stage.appendChild(v.guide);
      v.status = el('p', 'capture-status');
      v.status.setAttribute('role', 'status');
      var controls = el('div', 'capture-controls');
      v.hint = el('p', 'capture-hint', t.captureHint);
      v.sliderRow = el('div', 'capture-opacity');
      var label = el('label', '', t.guideOpacity);
      label.htmlFor = 'capture-opacity';
      v.slider = el('input');
      v.slider.type = 'range';
      v.slider.id = 'capture-opacity';
      v.slider.min = '0';
      v.slider.max = '100';
      v.slider.step = '5';
      v.slider.value = '40';
      v.sliderRow.appendChild(label);
      v.sliderRow.appendChild(v.slider);
      v.shutter = el('button', 'btn btn-primary capture-shutter', t.shutter);
      v.shutter.type = 'button';
      controls.appendChild(v.hint);
      controls.appendChild(v.sliderRow);
      controls.appendChild(v.shutter);
      v.root.appendChild(head);
      v.root.appendChild(stage);
      v.root.appendChild(v.status);
      v.root.appendChild(controls);
      document.body.appendChild(v.root);

      v.slider.addEventListener('input', function () { v.guide.style.opacity = String(v.slider.value / 100); });
      v.guide.addEventListener('error', function () {
        v.guide.hidden = true;
        v.hint.hidden = true;
        v.sliderRow.hidden = true;
      });
      v.video.addEventListener('loadedmetadata', function () {
        v.status.textContent = '';
        v.shutter.disabled = false;
      });
      v.cancel.addEventListener('click', close);
      v.shutter.addEventListener('click', shoot);
      v.root.addEventListener('keydown', function (ev) {
        if (ev.key === 'Escape') {
          ev.preventDefault();
          close();
        } else if (ev.key === 'Tab') {
          trapFocus(ev);
        }
      });
      window.addEventListener('pagehide', function () { close(); });
      return v;
    }

    // trapFocus keeps Tab within the capture view while it is open.
    function trapFocus(ev) {
      var items = Array.prototype.filter.call(view.root.querySelectorAll('button, input'), function (e) {
        return !e.disabled && e.offsetParent !== null;
      });
      if (items.length === 0) {
        return;
      }
      var first = items[0];
      var last = items[items.length - 1];
      if (ev.shiftKey && document.activeElement === first) {
        ev.preventDefault();
        last.focus();
      } else if (!ev.shiftKey && document.activeElement === last) {
        ev.preventDefault();
        first.focus();
      }
    }

    // setInert hides the page behind the capture view from assistive technology and focus.
    function setInert(on) {
      Array.prototype.forEach.call(document.body.children, function (child) {
        if (child !== view.root && child.tagName !== 'SCRIPT') {
          child.inert = on;
        }
      });
    }

    function open(button) {
      if (session) {
        return;
      }
      if (!view) {
        view = build();
      }
      var form = button.closest('form');
      session = { form: form, opener: button, stream: null };
      view.title.textContent = t.captureTitle + ': ' + (button.dataset.label || '');
      var guide = button.dataset.guide;
      view.guide.hidden = !guide;
      view.hint.hidden = !guide;
      view.sliderRow.hidden = !guide;
      if (guide) {
        view.guide.alt = button.dataset.guideAlt || '';
        view.guide.style.opacity = String(view.slider.value / 100);
        view.guide.src = guide;
      } else {
        view.guide.removeAttribute('src');
      }
      view.shutter.disabled = true;
      view.status.textContent = t.cameraStarting;
      view.root.hidden = false;
      document.documentElement.classList.add('capturing');
      setInert(true);
      view.cancel.focus();
      var mine = session;
      navigator.mediaDevices.getUserMedia({
        audio: false,
        video: { facingMode: { ideal: 'environment' }, width: { ideal: 1920 }, height: { ideal: 1080 } }
      }).then(function (stream) {
        if (session !== mine) { // cancelled while the browser asked
          stopTracks(stream);
          return;
        }
        session.stream = stream;
        view.video.srcObject = stream;
        var played = view.video.play();
        if (played && played.catch) {
          played.catch(function () {});
        }
        view.shutter.focus();
      }, function () {
        if (session !== mine) {
          return;
        }
        close();
        refusedCamera(form);
      });
    }

    // refusedCamera puts the page back as it was without a live camera, and says so.
    function refusedCamera(form) {
      Array.prototype.forEach.call(buttons, function (b) { b.hidden = true; });
      var note = el('p', 'camera-note', t.cameraFailed);
      note.setAttribute('role', 'alert');
      form.querySelector('.queue').before(note);
      var take = form.querySelector('input.camera');
      if (take) {
        take.focus();
      }
    }

    function stopTracks(stream) {
      stream.getTracks().forEach(function (track) { track.stop(); });
    }

    function close() {
      if (!session) {
        return;
      }
      var s = session;
      session = null;
      if (s.stream) {
        stopTracks(s.stream);
      }
      view.video.pause();
      view.video.srcObject = null;
      view.root.hidden = true;
      document.documentElement.classList.remove('capturing');
      setInert(false);
      if (!s.opener.hidden) {
        s.opener.focus();
      }
    }

    // shoot draws the current frame at the camera's full size and queues it as a JPEG.
    function shoot() {
      var video = view.video;
      if (!session || !video.videoWidth) {
        return;
      }
      var mine = session;
      var canvas = document.createElement('canvas');
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
      view.shutter.disabled = true;
      canvas.toBlob(function (blob) {
        if (session !== mine) { // closed while the JPEG was being made: the parent cancelled
          return;
        }
        if (!blob) {
          view.status.textContent = t.generic;
          view.shutter.disabled = false;
          return;
        }
        close();
        enqueue(mine.form, blob); // the live view showed the photo before the shutter: no advice
      }, 'image/jpeg', 0.92);
    }
  }
}());
