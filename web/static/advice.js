// Advice before a photo is sent: the photo is measured on the phone (quality.js) and, when it
// looks blurred, too dark, burnt out or framed differently from the last photo of the same
// view, the family is told so kindly and chooses: send it anyway, or take it again. Never a
// block: a measure that fails, or a browser without what it needs, sends the photo as it is.
(function (global) {
  'use strict';

  var PREVIOUS_WAIT_MS = 1500; // the last photo's thumbnail is fetched meanwhile; not waited on longer
  var previous = {}; // thumbnail URL -> Promise of its measure (or null)

  // check measures file and resolves to 'send' or 'again' (never rejects). form is the photo's
  // upload form: its [data-guide] names the last photo of the same view; t holds the page's
  // strings (the #i18n element's dataset).
  function check(form, file, t) {
    var Q = global.DermfollowQuality;
    if (!Q || !global.createImageBitmap) {
      return Promise.resolve('send');
    }
    var guide = form.querySelector('[data-guide]');
    var last = guide ? within(lastMeasure(guide.dataset.guide), PREVIOUS_WAIT_MS) : Promise.resolve(null);
    return Q.measureBlob(file).then(function (q) {
      return last.then(function (earlier) { return Q.compare(q, earlier); });
    }).then(function (q) {
      form.dataset.quality = q.flags.join(' ') || 'good';
      return q.flags.length ? ask(form, q.flags, t) : 'send';
    }).catch(function () { return 'send'; });
  }

  function lastMeasure(url) {
    if (!previous[url]) {
      previous[url] = fetch(url, { credentials: 'same-origin' }).then(function (r) {
        return r.ok ? r.blob() : null;
      }).then(function (blob) {
        return blob ? global.DermfollowQuality.measureBlob(blob) : null;
      }).catch(function () { return null; });
    }
    return previous[url];
  }

  function within(promise, ms) {
    return Promise.race([promise, new Promise(function (resolve) { setTimeout(function () { resolve(null); }, ms); })]);
  }

  var ADVICE = { blurry: 'adviceBlurry', dark: 'adviceDark', overexposed: 'adviceOverexposed', framing: 'adviceFraming' };

  // ask shows the advice in the form and resolves to the family's choice.
  function ask(form, flags, t) {
    return new Promise(function (resolve) {
      var box = document.createElement('div');
      box.className = 'advice';
      box.setAttribute('role', 'alert');
      flags.forEach(function (f) {
        if (!ADVICE[f] || !t[ADVICE[f]]) { return; }
        var p = document.createElement('p');
        p.textContent = t[ADVICE[f]];
        p.dataset.flag = f;
        box.appendChild(p);
      });
      var row = document.createElement('div');
      row.className = 'advice-actions';
      var again = button('btn btn-primary advice-again', t.takeAgain, 'again');
      var send = button('btn btn-secondary advice-send', t.sendAnyway, 'send');
      row.appendChild(again);
      row.appendChild(send);
      box.appendChild(row);
      form.appendChild(box);
      again.focus();

      function button(className, label, choice) {
        var b = document.createElement('button');
        b.type = 'button';
        b.className = className;
        b.textContent = label;
        b.addEventListener('click', function () {
          box.remove();
          resolve(choice);
        });
        return b;
      }
    });
  }

  global.DermfollowAdvice = { check: check };
})(window);
