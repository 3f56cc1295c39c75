// The quality of a photo, measured on the phone before it is sent: the same measures, on the
// same 512 px downscale, as the server's thumbnailer (imagestore/quality.go), so that the
// family and the clinic see one judgement. Pure: no page, no network. Thresholds below are the
// server's (web's TestQualityThresholdsMatch checks they are the same numbers).
(function (global) {
  "use strict";

  var SIDE = 512;
  var T = {
    blurryBelow: 15,
    darkMeanBelow: 0.2,
    darkShadowsOver: 0.5,
    overexposedHighsOver: 0.15,
    overexposedMeanAbove: 0.9,
    clippedHighAtOrAbove: 250,
    clippedShadowAtOrBelow: 5
  };

  // measureBlob measures a photo file (a Blob or File) and resolves to {sharpness,
  // mean_luminance, clipped_highlights, clipped_shadows, flags, ms}. The browser decodes and
  // scales it in one step (createImageBitmap with a size: for a 12 MP photo about a third of
  // the work of decoding it whole), its longer side to SIDE.
  async function measureBlob(blob) {
    var t0 = performance.now();
    var bmp = await scaled(blob, { resizeWidth: SIDE });
    if (bmp.height > bmp.width) { // portrait: the longer side is the height
      bmp.close();
      bmp = await scaled(blob, { resizeHeight: SIDE });
    }
    var q = measureBitmap(bmp);
    bmp.close();
    q.ms = performance.now() - t0;
    return q;
  }

  function scaled(blob, size) {
    size.resizeQuality = "high";
    return createImageBitmap(blob, size).catch(function () {
      return createImageBitmap(blob); // a browser without resizing: measureBitmap scales it
    });
  }

  function measureBitmap(bmp) {
    var w = bmp.width, h = bmp.height;
    if (Math.max(w, h) !== SIDE) {
      if (w >= h) { h = Math.max(1, Math.round(h * SIDE / w)); w = SIDE; }
      else { w = Math.max(1, Math.round(w * SIDE / h)); h = SIDE; }
    }
    var canvas = document.createElement("canvas");
    canvas.width = w; canvas.height = h;
    var ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(bmp, 0, 0, w, h);
    return measurePixels(ctx.getImageData(0, 0, w, h).data, w, h);
  }

  function measurePixels(px, w, h) {
    var n = w * h, y = new Float32Array(n), sum = 0, highs = 0, shadows = 0;
    for (var i = 0, j = 0; i < n; i++, j += 4) {
      var v = 0.299 * px[j] + 0.587 * px[j + 1] + 0.114 * px[j + 2];
      y[i] = v; sum += v;
      if (v >= T.clippedHighAtOrAbove) { highs++; }
      if (v <= T.clippedShadowAtOrBelow) { shadows++; }
    }
    var ls = 0, lss = 0, count = 0;
    for (var row = 1; row < h - 1; row++) {
      for (var x = 1, k = row * w + 1; x < w - 1; x++, k++) {
        var l = y[k - 1] + y[k + 1] + y[k - w] + y[k + w] - 4 * y[k];
        ls += l; lss += l * l; count++;
      }
    }
    var q = {
      sharpness: count ? lss / count - (ls / count) * (ls / count) : 0,
      mean_luminance: sum / n / 255,
      clipped_highlights: highs / n,
      clipped_shadows: shadows / n,
      flags: []
    };
    if (q.sharpness < T.blurryBelow) { q.flags.push("blurry"); }
    if (q.mean_luminance < T.darkMeanBelow || q.clipped_shadows > T.darkShadowsOver) { q.flags.push("dark"); }
    if (q.clipped_highlights > T.overexposedHighsOver || q.mean_luminance > T.overexposedMeanAbove) { q.flags.push("overexposed"); }
    return q;
  }

  global.DermfollowQuality = { measureBlob: measureBlob, thresholds: T, side: SIDE };
})(window);
