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

  // measureBlob measures a photo file (a Blob or File) and resolves to {sharpness, grid,
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

  // GRID is the side of the coarse luminance grid that framing compares: 16 x 16 cells, each
  // the mean luminance of its part of the 512 px image. Coarse on purpose: the lesion healing,
  // the light changing or the phone moving a few millimetres leave it much the same; a photo of
  // another part of the body, from much nearer or farther, or turned, changes it.
  var GRID = 16;
  // FRAMING_BELOW: a photo whose grid correlates with the last photo's of the same view below
  // this is "framed differently". Pearson's correlation of the two grids (each cell against the
  // same cell, after the slope of the light is taken from each) is 1 for the same framing in
  // any light (it is blind to brightness and contrast) and near 0 or below for unrelated
  // pictures; the tests' shifted, re-lit and healing copies score above 0.9.
  var FRAMING_BELOW = 0.3;

  function grid(y, w, h) {
    var cells = new Float64Array(GRID * GRID), counts = new Float64Array(GRID * GRID);
    for (var row = 0; row < h; row++) {
      var gy = Math.min(GRID - 1, Math.floor(row * GRID / h));
      for (var x = 0; x < w; x++) {
        var c = gy * GRID + Math.min(GRID - 1, Math.floor(x * GRID / w));
        cells[c] += y[row * w + x]; counts[c]++;
      }
    }
    for (var i = 0; i < cells.length; i++) { cells[i] = counts[i] ? cells[i] / counts[i] : 0; }
    return cells;
  }

  // flatten takes away from a grid the plane that fits it best (least squares), which is how
  // the light falls across the photo (brighter by the window, darker away from it): what is
  // left is the shapes, the lesion and the edges of the body, which is what framing is about.
  function flatten(g) {
    var out = new Float64Array(g.length), mean = 0, sx = 0, sy = 0, sxx = 0;
    var c = (GRID - 1) / 2;
    for (var i = 0; i < g.length; i++) {
      var dx = i % GRID - c, dy = Math.floor(i / GRID) - c;
      mean += g[i]; sx += dx * g[i]; sy += dy * g[i]; sxx += dx * dx;
    }
    mean /= g.length; sx /= sxx; sy /= sxx; // on a square grid, the sums of dx*dx and dy*dy are equal
    for (i = 0; i < g.length; i++) {
      out[i] = g[i] - mean - sx * (i % GRID - c) - sy * (Math.floor(i / GRID) - c);
    }
    return out;
  }

  // framing is the correlation of two grids once the light's slope is taken from each, or 1
  // (no advice) when either is flat.
  function framing(a, b) {
    a = flatten(a); b = flatten(b);
    var n = a.length, ma = 0, mb = 0;
    for (var i = 0; i < n; i++) { ma += a[i]; mb += b[i]; }
    ma /= n; mb /= n;
    var sab = 0, saa = 0, sbb = 0;
    for (i = 0; i < n; i++) {
      var da = a[i] - ma, db = b[i] - mb;
      sab += da * db; saa += da * da; sbb += db * db;
    }
    if (saa < 1e-6 || sbb < 1e-6) { return 1; }
    return sab / Math.sqrt(saa * sbb);
  }

  // compare adds the framing score of q against an earlier measure (of the last photo of the
  // same view) and the "framing" flag when it is below FRAMING_BELOW.
  function compare(q, earlier) {
    if (!earlier || !earlier.grid || !q.grid) { return q; }
    q.framing = framing(q.grid, earlier.grid);
    if (q.framing < FRAMING_BELOW) { q.flags.push("framing"); }
    return q;
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
      grid: grid(y, w, h),
      flags: []
    };
    if (q.sharpness < T.blurryBelow) { q.flags.push("blurry"); }
    if (q.mean_luminance < T.darkMeanBelow || q.clipped_shadows > T.darkShadowsOver) { q.flags.push("dark"); }
    if (q.clipped_highlights > T.overexposedHighsOver || q.mean_luminance > T.overexposedMeanAbove) { q.flags.push("overexposed"); }
    return q;
  }

  global.DermfollowQuality = { measureBlob: measureBlob, compare: compare, thresholds: T, side: SIDE, framingBelow: FRAMING_BELOW };
})(window);
