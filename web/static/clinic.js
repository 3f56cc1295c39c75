// The clinician's comparison page: two photos side by side with one zoom and pan for both
// (wheel, pinch, drag), an overlay mode with opacity and a swipe divider, display-only rotate
// and flip, and keyboard steps through the timeline. Full-resolution originals load only when
// zoomed in past 2x; the large thumbnail otherwise.
(function () {
  'use strict';
  var cmp = document.getElementById('compare');
  if (!cmp) { return; }
  var imgs = { a: document.getElementById('img-a'), b: document.getElementById('img-b') };
  var view = { scale: 1, x: 0, y: 0 };
  var extra = { a: { rot: 0, flip: false }, b: { rot: 0, flip: false } };
  var MIN = 1, MAX = 16, ORIGINAL_AT = 2;

  function apply() {
    ['a', 'b'].forEach(function (k) {
      var img = imgs[k], e = extra[k];
      img.style.transform = 'translate(' + view.x + 'px, ' + view.y + 'px) scale(' + view.scale + ') rotate(' + e.rot + 'deg)' +
        (e.flip ? ' scaleX(-1)' : '');
      var want = view.scale > ORIGINAL_AT ? img.dataset.original : img.dataset.large;
      if (img.getAttribute('src') !== want) { img.setAttribute('src', want); }
    });
  }

  // zoomAt scales by factor keeping the point (px, py), relative to the frame's centre, still.
  function zoomAt(factor, px, py) {
    var next = Math.min(MAX, Math.max(MIN, view.scale * factor));
    var r = next / view.scale;
    view.x = px - (px - view.x) * r;
    view.y = py - (py - view.y) * r;
    view.scale = next;
    if (next === MIN) { view.x = 0; view.y = 0; }
    apply();
  }

  function centreOffset(frame, clientX, clientY) {
    var rect = frame.getBoundingClientRect();
    return { x: clientX - (rect.left + rect.width / 2), y: clientY - (rect.top + rect.height / 2) };
  }

  var pointers = {}, pinchDist = 0;
  Array.prototype.forEach.call(document.querySelectorAll('.cmp-frame'), function (frame) {
    frame.addEventListener('wheel', function (ev) {
      ev.preventDefault();
      var p = centreOffset(frame, ev.clientX, ev.clientY);
      zoomAt(Math.exp(-ev.deltaY * 0.002), p.x, p.y);
    }, { passive: false });
    frame.addEventListener('pointerdown', function (ev) {
      try { frame.setPointerCapture(ev.pointerId); } catch (e) { /* not a live pointer: fine */ }
      pointers[ev.pointerId] = { x: ev.clientX, y: ev.clientY };
      pinchDist = 0;
    });
    frame.addEventListener('pointermove', function (ev) {
      var prev = pointers[ev.pointerId];
      if (!prev) { return; }
      var ids = Object.keys(pointers);
      if (ids.length === 1) {
        view.x += ev.clientX - prev.x;
        view.y += ev.clientY - prev.y;
        apply();
      } else if (ids.length === 2) {
        var other = pointers[ids[0] === String(ev.pointerId) ? ids[1] : ids[0]];
        var d = Math.hypot(ev.clientX - other.x, ev.clientY - other.y);
        if (pinchDist > 0) {
          var mid = centreOffset(frame, (ev.clientX + other.x) / 2, (ev.clientY + other.y) / 2);
          zoomAt(d / pinchDist, mid.x, mid.y);
        }
        pinchDist = d;
      }
      pointers[ev.pointerId] = { x: ev.clientX, y: ev.clientY };
    });
    var up = function (ev) { delete pointers[ev.pointerId]; pinchDist = 0; };
    frame.addEventListener('pointerup', up);
    frame.addEventListener('pointercancel', up);
  });

  var opacity = document.getElementById('opacity'), swipe = document.getElementById('swipe');
  var paneB = document.querySelector('#pane-b .cmp-frame');
  function overlayStyle() {
    if (cmp.classList.contains('overlay')) {
      paneB.style.opacity = String(opacity.value / 100);
      paneB.style.clipPath = 'inset(0 ' + (100 - swipe.value) + '% 0 0)';
    } else {
      paneB.style.opacity = '';
      paneB.style.clipPath = '';
    }
  }
  function toggleOverlay() {
    cmp.classList.toggle('overlay');
    document.getElementById('cmp-tools').classList.toggle('overlay', cmp.classList.contains('overlay'));
    var mode = document.getElementById('mode'); // its two labels, in the page's language
    mode.textContent = cmp.classList.contains('overlay') ? mode.dataset.side : mode.dataset.overlay;
    overlayStyle();
  }
  opacity.addEventListener('input', overlayStyle);
  swipe.addEventListener('input', overlayStyle);

  document.getElementById('cmp-tools').addEventListener('click', function (ev) {
    var btn = ev.target.closest('button');
    if (!btn) { return; }
    var act = btn.dataset.act, pane = btn.dataset.pane;
    if (act === 'mode') { toggleOverlay(); }
    if (act === 'rotate') { extra[pane].rot = (extra[pane].rot + 90) % 360; apply(); }
    if (act === 'flip') { extra[pane].flip = !extra[pane].flip; apply(); }
    if (act === 'reset') { view = { scale: 1, x: 0, y: 0 }; apply(); }
  });

  document.addEventListener('keydown', function (ev) {
    if (ev.target.closest('input, textarea, select')) { return; }
    if (ev.key === 'ArrowLeft' && cmp.dataset.prev) { location.href = cmp.dataset.prev; }
    if (ev.key === 'ArrowRight' && cmp.dataset.next) { location.href = cmp.dataset.next; }
    if (ev.key === 'o' || ev.key === 'O') { toggleOverlay(); }
    if (ev.key === '0') { view = { scale: 1, x: 0, y: 0 }; apply(); }
    if (ev.key === '+' || ev.key === '=') { zoomAt(1.25, 0, 0); }
    if (ev.key === '-') { zoomAt(0.8, 0, 0); }
  });
  apply();
}());
