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

  setUpLiveCamera();

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
        enqueue(mine.form, blob);
      }, 'image/jpeg', 0.92);
    }
  }
}());
