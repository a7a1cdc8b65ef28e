// deeplab-keras web app: the folder's model.tflite in MediaPipe Tasks for Web (vendored under
// mediapipe/), on an image, a video or a camera. One ES module, no build step.
//
// Contract for automated checks (docs/web.md):
//   after ?image= is segmented, <img id="classmap"> holds a PNG data URL of the class map at the
//   image's size (8-bit class indices as grey) and body.dataset.state is "done";
//   during video or camera, body.dataset.frames counts segmented frames, body.dataset.fps the rate;
//   a problem shows one message in #error (body.dataset.error holds it too);
//   body.dataset.blocked counts requests refused because they would leave this page's server.
import {FilesetResolver, ImageSegmenter} from './mediapipe/vision_bundle.mjs';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const body = document.body;
const HERE = new URL('.', import.meta.url);
const MAX_BYTES = 64 * 2 ** 20;       // a larger file is refused before decoding
const MAX_PIXELS = 40e6;              // 40 megapixels: larger images are refused
const BACKGROUND_NAMES = ['background', 'unlabeled', 'unlabelled', 'void', 'other', 'none'];
const PERSON = /^(person|people|pedestrian|bicyclist|rider|human|motorcyclist)$/i;

// --- Nothing leaves this page's server: the runtime's usage metrics (a POST to Google every
// minute) and any other cross-origin fetch are refused here (and by the page's CSP).
let blocked = 0;
const nativeFetch = window.fetch.bind(window);
function noteBlocked() { blocked += 1; body.dataset.blocked = String(blocked); }
window.fetch = (input, init) => {
  const url = new URL(input instanceof Request ? input.url : String(input), location.href);
  if (!['data:', 'blob:'].includes(url.protocol) && url.origin !== location.origin) {
    noteBlocked();
    return Promise.reject(new TypeError(`${url.origin} is not this page's server: request refused`));
  }
  return nativeFetch(input, init);
};
document.addEventListener('securitypolicyviolation', noteBlocked);
body.dataset.blocked = '0';

const state = {
  effect: params.get('effect') || 'overlay',
  opacity: clamp01(parseFloat(params.get('opacity') ?? '0.5')),
  color: [0, 177, 64],
  bgImage: null,
  smooth: smoothingStrength(params),
  keep: new Set(),
};
const delegate = (params.get('delegate') || 'cpu').toLowerCase() === 'gpu' ? 'GPU' : 'CPU';
let meta = null;          // {labels, colors}
let background = new Set();
let fileset = null;
const segmenters = {};
let run = 0;              // bumped to stop the running video/camera loop
let stream = null;
// temporal smoothing, as deeplab_keras.video.TemporalSmoother: motion-aware exponential average
// of the per-class confidences, plus hysteresis on class switches
const MOTION_SCALE = 0.12;
const MARGIN = 0.25;
let evidence = null;
let shown = null;
let lastGray = null;

// ?smooth (or =on/true/1): the recommended strength 0.4; ?smooth=0.6: that strength (0 = off)
function smoothingStrength(p) {
  if (!p.has('smooth')) return 0;
  const x = parseFloat(p.get('smooth'));
  return Number.isFinite(x) && x < 1 ? Math.max(0, x) : 0.4;
}

function clamp01(x) { return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0; }

// MediaPipe's own errors span lines (status, source trace): keep the first one
function firstLine(text) { return String(text).split('\n').map((l) => l.trim()).filter(Boolean)[0] || String(text); }

function runtimeError(err) {
  // MediaPipe's status text, without its source-location trace, on one line
  const why = String(err.message || err).split('=== Source Location Trace')[0]
    .split('\n').map((l) => l.trim()).filter(Boolean).join(' ').slice(0, 400);
  return delegate === 'GPU'
    ? `the GPU delegate cannot run this model (MediaPipe: ${why}); open the page without ` +
      '?delegate=gpu (an int8 file needs the CPU delegate; export --quantize float16 for the GPU)'
    : `MediaPipe could not segment (${why})`;
}

function showError(message) {
  stop();
  message = firstLine(message);
  const el = $('error');
  el.textContent = message;
  el.hidden = false;
  body.dataset.error = message;
  body.dataset.state = 'error';
  $('status').textContent = '';
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
  delete body.dataset.error;
}

function status(text) { $('status').textContent = text; }

function stop() {
  run += 1;
  if (stream) { stream.getTracks().forEach((t) => t.stop()); stream = null; }
  for (const v of $('sources').querySelectorAll('video')) { v.pause(); v.remove(); }
}

async function segmenter(mode) {
  if (!segmenters[mode]) {
    const smoothing = mode === 'VIDEO' && state.smooth > 0;
    segmenters[mode] = ImageSegmenter.createFromOptions(fileset, {
      baseOptions: {modelAssetPath: new URL('model.tflite', HERE).href, delegate},
      runningMode: mode, outputCategoryMask: !smoothing, outputConfidenceMasks: smoothing,
    });
  }
  return segmenters[mode];
}

// (W*H) Uint8Array of class indices from a MediaPipe result (smoothed over time when its
// confidence masks are given, with the frame's RGBA pixels for motion); closes the result.
function classes(result, rgba) {
  try {
    if (result.categoryMask) return result.categoryMask.getAsUint8Array().slice();
    const masks = result.confidenceMasks.map((m) => m.getAsFloat32Array());
    const n = masks[0].length;
    const k = masks.length;
    let gray = null;
    if (rgba && rgba.length === 4 * n) {
      gray = new Float32Array(n);
      for (let i = 0, p = 0; i < n; i++, p += 4) gray[i] = (0.299 * rgba[p] + 0.587 * rgba[p + 1] + 0.114 * rgba[p + 2]) / 255;
    }
    if (!evidence || evidence.length !== n * k) {  // first frame, or the size changed
      evidence = new Float32Array(n * k);
      for (let c = 0; c < k; c++) evidence.set(masks[c], c * n);
      shown = null;
      lastGray = null;
    } else {
      const still = 1 - state.smooth;
      const moving = gray && lastGray && lastGray.length === n;
      for (let i = 0; i < n; i++) {
        const a = moving ? still + (1 - still) * Math.min(Math.abs(gray[i] - lastGray[i]) / MOTION_SCALE, 1) : still;
        for (let c = 0; c < k; c++) evidence[c * n + i] = evidence[c * n + i] * (1 - a) + masks[c][i] * a;
      }
    }
    lastGray = gray;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      let best = 0;
      let v = -Infinity;
      for (let c = 0; c < k; c++) {
        const e = evidence[c * n + i] + (shown && shown[i] === c ? MARGIN : 0);
        if (e > v) { v = e; best = c; }
      }
      out[i] = best;
    }
    shown = out;
    return out;
  } finally {
    if (typeof result.close === 'function') result.close();
  }
}

const scratch = document.createElement('canvas');

function render(source, w, h, mask) {
  const view = $('view');
  if (view.width !== w || view.height !== h) { view.width = w; view.height = h; }
  const ctx = view.getContext('2d', {willReadFrequently: true});
  scratch.width = w; scratch.height = h;
  const sctx = scratch.getContext('2d', {willReadFrequently: true});
  sctx.drawImage(source, 0, 0, w, h);
  const effect = state.effect;
  if (effect === 'blur') {
    ctx.filter = `blur(${Math.max(4, Math.round(Math.max(w, h) / 60))}px)`;
    ctx.drawImage(source, 0, 0, w, h);
    ctx.filter = 'none';
  } else if (effect === 'color') {
    ctx.fillStyle = `rgb(${state.color.join(',')})`;
    ctx.fillRect(0, 0, w, h);
  } else if (effect === 'image' && state.bgImage) {
    ctx.drawImage(state.bgImage, 0, 0, w, h);
  } else {
    ctx.drawImage(source, 0, 0, w, h);
  }
  if (effect === 'none') return;
  const sharp = sctx.getImageData(0, 0, w, h).data;
  const out = ctx.getImageData(0, 0, w, h);
  const px = out.data;
  if (effect === 'overlay') {
    const a = state.opacity;
    const colors = meta.colors;
    for (let i = 0, p = 0; i < mask.length; i++, p += 4) {
      const c = mask[i];
      if (background.has(c) || !colors[c]) continue;
      const col = colors[c];
      px[p] = (1 - a) * sharp[p] + a * col[0];
      px[p + 1] = (1 - a) * sharp[p + 1] + a * col[1];
      px[p + 2] = (1 - a) * sharp[p + 2] + a * col[2];
    }
  } else {
    for (let i = 0, p = 0; i < mask.length; i++, p += 4) {
      if (state.keep.has(mask[i])) { px[p] = sharp[p]; px[p + 1] = sharp[p + 1]; px[p + 2] = sharp[p + 2]; }
    }
  }
  ctx.putImageData(out, 0, 0);
}

function legend(mask) {
  const present = new Set(mask);
  const ul = $('legend');
  ul.textContent = '';
  meta.labels.forEach((name, i) => {
    if (!present.has(i)) return;
    const li = document.createElement('li');
    const sw = document.createElement('span');
    sw.className = 'swatch';
    sw.style.background = `rgb(${meta.colors[i].join(',')})`;
    li.append(sw, document.createTextNode(`${i} ${name}`));
    ul.append(li);
  });
}

function classmapDataURL(mask, w, h) {
  const c = document.createElement('canvas');
  c.width = w; c.height = h;
  const ctx = c.getContext('2d');
  const img = ctx.createImageData(w, h);
  for (let i = 0, p = 0; i < mask.length; i++, p += 4) {
    img.data[p] = img.data[p + 1] = img.data[p + 2] = mask[i];
    img.data[p + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return c.toDataURL('image/png');
}

// --- images ---------------------------------------------------------------------------------

async function loadImage(url, what) {
  let blob;
  if (url instanceof Blob) {
    blob = url;
  } else {
    const target = new URL(url, location.href);
    if (target.origin !== location.origin && !['data:', 'blob:'].includes(target.protocol)) {
      throw new Error(`${what} ${url} is not on this page's server (${location.origin}): the page ` +
                      'makes no request elsewhere; copy the image into this folder or drop it on the page');
    }
    let response;
    try {
      response = await nativeFetch(target.href);
    } catch (err) {
      throw new Error(`${what} ${url} could not be fetched (${err.message}); check the URL`);
    }
    if (!response.ok) {
      throw new Error(`${what} ${url}: the server answered ${response.status} ${response.statusText}; check the URL`);
    }
    const length = Number(response.headers.get('content-length') || 0);
    if (length > MAX_BYTES) {
      throw new Error(`${what} ${url} is ${(length / 2 ** 20).toFixed(0)} MB, over the page's ` +
                      `${MAX_BYTES / 2 ** 20} MB limit; use a smaller image`);
    }
    blob = await response.blob();
  }
  if (blob.size > MAX_BYTES) {
    throw new Error(`${what} is ${(blob.size / 2 ** 20).toFixed(0)} MB, over the page's ` +
                    `${MAX_BYTES / 2 ** 20} MB limit; use a smaller image`);
  }
  const objectURL = URL.createObjectURL(blob);
  const img = new Image();
  try {
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new Error(`${what} is not an image the browser can decode ` +
                                           '(PNG, JPEG, WebP, GIF, BMP); give an image file'));
      img.src = objectURL;
    });
    const pixels = img.naturalWidth * img.naturalHeight;
    if (pixels > MAX_PIXELS) {
      throw new Error(`${what} is ${img.naturalWidth}x${img.naturalHeight} pixels, over the page's ` +
                      `${MAX_PIXELS / 1e6} megapixel limit; resize it first`);
    }
    await img.decode();
  } catch (err) {
    URL.revokeObjectURL(objectURL);
    throw err;
  }
  return img;
}

async function segmentImage(source, what) {
  stop();
  clearError();
  body.dataset.state = 'busy';
  status(`loading ${what}...`);
  const img = await loadImage(source, what);
  const seg = await segmenter('IMAGE');
  const t0 = performance.now();
  let mask;
  try {
    mask = classes(seg.segment(img));
  } catch (err) {
    throw new Error(runtimeError(err));
  }
  const ms = performance.now() - t0;
  const w = img.naturalWidth;
  const h = img.naturalHeight;
  if (mask.length !== w * h) throw new Error(`the class map has ${mask.length} pixels, not ${w}x${h}`);
  render(img, w, h, mask);
  legend(mask);
  $('classmap').src = classmapDataURL(mask, w, h);
  $('fps').textContent = (1000 / ms).toFixed(1);
  status(`${what}: ${w}x${h}, segmented in ${ms.toFixed(0)} ms (${delegate})`);
  body.dataset.state = 'done';
}

// --- video and camera -------------------------------------------------------------------------

async function playLoop(video, what) {
  const token = ++run;
  const seg = await segmenter('VIDEO');
  evidence = shown = lastGray = null;
  const grab = state.smooth > 0 ? document.createElement('canvas') : null;
  let frames = 0;
  let lastTime = -1;
  const times = [];
  body.dataset.frames = '0';
  body.dataset.state = 'running';
  const step = () => {
    if (token !== run) return;
    if (video.readyState >= 2 && video.currentTime !== lastTime && video.videoWidth > 0) {
      lastTime = video.currentTime;
      const w = video.videoWidth;
      const h = video.videoHeight;
      const now = performance.now();
      let mask;
      try {
        let rgba = null;
        if (grab) {  // the frame's pixels, for the smoother's motion gate
          grab.width = w; grab.height = h;
          const g = grab.getContext('2d', {willReadFrequently: true});
          g.drawImage(video, 0, 0, w, h);
          rgba = g.getImageData(0, 0, w, h).data;
        }
        mask = classes(seg.segmentForVideo(video, now), rgba);
      } catch (err) {
        showError(runtimeError(err));
        return;
      }
      render(video, w, h, mask);
      frames += 1;
      times.push(performance.now());
      while (times.length > 2 && times[times.length - 1] - times[0] > 2000) times.shift();
      const fps = times.length > 1 ? (times.length - 1) * 1000 / (times[times.length - 1] - times[0]) : 0;
      body.dataset.frames = String(frames);
      body.dataset.fps = fps.toFixed(2);
      $('fps').textContent = fps.toFixed(1);
      if (frames % 15 === 1) legend(mask);
      status(`${what}: ${w}x${h}, ${frames} frames segmented (${delegate})`);
    }
    if ('requestVideoFrameCallback' in video) video.requestVideoFrameCallback(step);
    else requestAnimationFrame(step);
  };
  step();
}

function newVideo() {
  const video = document.createElement('video');
  video.muted = true;
  video.playsInline = true;
  video.loop = true;
  $('sources').append(video);
  return video;
}

async function playVideo(source, what) {
  stop();
  clearError();
  const video = newVideo();
  if (source instanceof Blob) {
    video.src = URL.createObjectURL(source);
  } else {
    const target = new URL(source, location.href);
    if (target.origin !== location.origin && target.protocol !== 'blob:') {
      throw new Error(`${what} ${source} is not on this page's server (${location.origin}); copy ` +
                      'the video into this folder or drop it on the page');
    }
    video.src = target.href;
  }
  await new Promise((resolve, reject) => {
    video.onloadeddata = resolve;
    video.onerror = () => reject(new Error(`${what} cannot be played (missing, or a format this ` +
                                           'browser does not decode: try WebM or MP4)'));
  });
  await video.play();
  await playLoop(video, what);
}

async function listCameras(selected) {
  const choice = $('camera-choice');
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput');
  choice.textContent = '';
  devices.forEach((d, i) => {
    const o = document.createElement('option');
    o.value = d.deviceId;
    o.textContent = d.label || `camera ${i + 1}`;
    if (d.deviceId === selected) o.selected = true;
    choice.append(o);
  });
}

async function startCamera(deviceId) {
  stop();
  clearError();
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error('this browser gives no camera here (it needs https or http://127.0.0.1); ' +
                    'open the page from 127.0.0.1 or an https server');
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia(
      {video: deviceId ? {deviceId: {exact: deviceId}} : true, audio: false});
  } catch (err) {
    if (err.name === 'NotAllowedError' || err.name === 'SecurityError') {
      throw new Error('camera access was denied: allow the camera for this page in the browser\'s ' +
                      'site settings and reload, or open an image or a video instead');
    }
    if (err.name === 'NotFoundError' || err.name === 'OverconstrainedError') {
      throw new Error('no camera found: connect one, or open an image or a video instead');
    }
    throw new Error(`the camera could not be started (${err.name}: ${err.message})`);
  }
  const video = newVideo();
  video.srcObject = stream;
  await video.play();
  await listCameras(stream.getVideoTracks()[0]?.getSettings().deviceId);
  await playLoop(video, 'camera');
}

// --- input from the user ------------------------------------------------------------------------

function openFile(file) {
  const go = file.type.startsWith('video/') ? playVideo(file, file.name) : segmentImage(file, file.name);
  go.catch((err) => showError(err.message));
}

function wireControls() {
  $('effect').value = state.effect;
  $('opacity').value = String(state.opacity);
  $('effect').onchange = () => { state.effect = $('effect').value; };
  $('opacity').oninput = () => { state.opacity = parseFloat($('opacity').value); };
  $('bg-color').oninput = () => {
    const v = $('bg-color').value;
    state.color = [1, 3, 5].map((i) => parseInt(v.slice(i, i + 2), 16));
  };
  $('bg-image').onchange = async () => {
    const f = $('bg-image').files[0];
    if (!f) return;
    try { state.bgImage = await loadImage(f, f.name); state.effect = 'image'; $('effect').value = 'image'; } catch (err) { showError(err.message); }
  };
  $('file').onchange = () => { if ($('file').files[0]) openFile($('file').files[0]); };
  $('source').onchange = () => {
    if ($('source').value === 'camera') startCamera().catch((err) => showError(err.message));
  };
  $('camera-choice').onchange = () => startCamera($('camera-choice').value).catch((err) => showError(err.message));
  const stage = $('stage');
  stage.ondragover = (e) => { e.preventDefault(); stage.classList.add('drop'); };
  stage.ondragleave = () => stage.classList.remove('drop');
  stage.ondrop = (e) => {
    e.preventDefault();
    stage.classList.remove('drop');
    const f = e.dataTransfer.files[0];
    if (f) openFile(f);
  };
  const keep = $('keep');
  meta.labels.forEach((name, i) => {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = state.keep.has(i);
    box.onchange = () => { if (box.checked) state.keep.add(i); else state.keep.delete(i); };
    label.append(box, document.createTextNode(name));
    keep.append(label);
  });
}

function keepFromParams() {
  const wanted = params.get('keep');
  const names = meta.labels.map((n) => n.toLowerCase());
  if (!wanted) return new Set(meta.labels.flatMap((n, i) => (PERSON.test(n) ? [i] : [])));
  const out = new Set();
  for (const item of wanted.split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = /^\d+$/.test(item) ? Number(item) : names.indexOf(item.toLowerCase());
    if (i < 0 || i >= names.length) throw new Error(`?keep=${item} is not a class of this model (${meta.labels.join(', ')})`);
    out.add(i);
  }
  return out;
}

async function main() {
  body.dataset.state = 'loading';
  $('delegate').textContent = `delegate: ${delegate === 'GPU' ? 'GPU (WebGL)' : 'CPU (wasm)'}`;
  try {
    meta = await (await nativeFetch(new URL('labels.json', HERE))).json();
    background = new Set(meta.labels.flatMap((n, i) => (
      BACKGROUND_NAMES.includes(n.trim().toLowerCase()) || meta.colors[i].every((v) => v === 0) ? [i] : [])));
    fileset = await FilesetResolver.forVisionTasks(new URL('mediapipe/wasm', HERE).href);
    await segmenter(params.has('video') || params.has('camera') ? 'VIDEO' : 'IMAGE');
  } catch (err) {
    showError(delegate === 'GPU'
      ? `the model did not load with the GPU delegate (${err.message}); open the page without ?delegate=gpu`
      : `the model did not load (${err.message})`);
    return;
  }
  try {
    state.keep = keepFromParams();
  } catch (err) {
    showError(err.message);
    return;
  } finally {
    wireControls();
  }
  status('ready: drop an image or a video, pick a file, or choose the camera');
  body.dataset.state = 'ready';
  try {
    if (params.has('image')) await segmentImage(params.get('image'), `?image=${params.get('image')}`);
    else if (params.has('video')) await playVideo(params.get('video'), `?video=${params.get('video')}`);
    else if (params.has('camera')) await startCamera(params.get('camera') || undefined);
  } catch (err) {
    showError(err.message);
  }
}

// for automated checks and the console: close the segmenters (MediaPipe flushes its metrics then;
// the request is refused above and counted in body.dataset.blocked)
window.deeplab = {
  close: async () => { stop(); for (const s of Object.values(segmenters)) (await s).close(); },
};

main();
