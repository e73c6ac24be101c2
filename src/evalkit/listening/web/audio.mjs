// Bundles in the browser, shared by the player and the headphone check (evalkit/listening/web/__init__.py puts
// this module in front of each of them): one request per trial, split here into one set of channels per signal.
//
// A bundle (evalkit/listening/bundle.py) is a PCM WAV file, 16 or 24 bits, whose channels are the channels of every
// signal of the trial side by side in presentation order. It is built on the server while the previous page is
// shown; until it is written the server answers 404, so a fetch retries for a while.

const BUNDLE_RETRY_MS = 250;
const BUNDLE_RETRIES = 240; // 60 s

/** Channels of a WAV bundle as Float32Arrays in [-1, 1): {sampleRate, frames, channels: Float32Array[]}. */
export function parseBundle(buffer) {
  const view = new DataView(buffer);
  const tag = (at) => String.fromCharCode(...new Uint8Array(buffer, at, 4));
  if (buffer.byteLength < 12 || tag(0) !== "RIFF" || tag(8) !== "WAVE") throw new Error("not a WAV bundle");
  let pos = 12;
  let fmt = null;
  let data = null;
  while (pos + 8 <= buffer.byteLength) {
    const id = tag(pos);
    const size = view.getUint32(pos + 4, true);
    if (id === "fmt ") fmt = pos + 8;
    if (id === "data") {
      data = { start: pos + 8, size: Math.min(size, buffer.byteLength - pos - 8) };
      break;
    }
    pos += 8 + size + (size % 2);
  }
  if (fmt === null || data === null) throw new Error("bundle without fmt or data chunk");
  const channels = view.getUint16(fmt + 2, true);
  const sampleRate = view.getUint32(fmt + 4, true);
  const bits = view.getUint16(fmt + 14, true);
  if (bits !== 16 && bits !== 24) throw new Error(`bundle of ${bits}-bit samples`);
  const width = bits / 8;
  const frames = Math.floor(data.size / (channels * width));
  const out = Array.from({ length: channels }, () => new Float32Array(frames));
  const bytes = new Uint8Array(buffer, data.start, frames * channels * width);
  let i = 0;
  if (bits === 24) {
    for (let f = 0; f < frames; f++) {
      for (let c = 0; c < channels; c++, i += 3) {
        out[c][f] = (((bytes[i + 2] << 24) | (bytes[i + 1] << 16) | (bytes[i] << 8)) >> 8) / 8388608;
      }
    }
  } else {
    for (let f = 0; f < frames; f++) {
      for (let c = 0; c < channels; c++, i += 2) out[c][f] = (((bytes[i + 1] << 24) | (bytes[i] << 16)) >> 16) / 32768;
    }
  }
  return { sampleRate, frames, channels: out };
}

/** Signal k of a parsed bundle as an AudioBuffer of ``perSignal`` channels. */
export function signalBuffer(ctx, parsed, k, perSignal) {
  const buffer = ctx.createBuffer(perSignal, parsed.frames, parsed.sampleRate);
  for (let c = 0; c < perSignal; c++) buffer.copyToChannel(parsed.channels[k * perSignal + c], c);
  return buffer;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The bundle's bytes; ``onProgress(fraction)`` while they arrive. */
export async function fetchBundle(url, onProgress = null) {
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(url);
    if (response.status === 404 && attempt < BUNDLE_RETRIES) {
      await sleep(BUNDLE_RETRY_MS);
      continue;
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const total = Number(response.headers.get("content-length")) || 0;
    if (!onProgress || !response.body || !total) return response.arrayBuffer();
    const reader = response.body.getReader();
    let out = new Uint8Array(total);
    let got = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (got + value.length > out.length) {
        const bigger = new Uint8Array(2 * (got + value.length));
        bigger.set(out.subarray(0, got));
        out = bigger;
      }
      out.set(value, got);
      got += value.length;
      onProgress(Math.min(1, got / total));
    }
    return got === out.length ? out.buffer : out.slice(0, got).buffer;
  }
}

// Parsed bundles fetched ahead of their page, shared by every component of this page: url -> Promise.
function bundleCache() {
  if (!window.__evalkitAudio) window.__evalkitAudio = new Map();
  return window.__evalkitAudio;
}

/** Fetch and parse a bundle now, for a later loadBundle(url). */
export function prefetchBundle(url) {
  const cache = bundleCache();
  if (!url || cache.has(url)) return;
  const pending = fetchBundle(url).then(parseBundle);
  pending.catch(() => cache.delete(url));
  cache.set(url, pending);
}

/** A parsed bundle: the prefetched one if there is one (used once), else fetched now. */
export function loadBundle(url, onProgress = null) {
  const cache = bundleCache();
  const cached = cache.get(url);
  cache.delete(url);
  const fresh = () => fetchBundle(url, onProgress).then(parseBundle);
  return cached ? cached.catch(fresh) : fresh();
}

export function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}
