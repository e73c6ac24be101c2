"""The Web Audio player and rating panel: an inline ES module for Streamlit's components v2 (no build step).

One ``AudioContext`` at the stimulus rate holds every stimulus as a decoded buffer (fetched from
``app/static/<id>.flac``). Switching stimuli keeps the playback position: the new source starts at the old one's
position with a 20 ms linear fade-in while the old one fades out. Playback loops over the selected region. A
stimulus can be rated only once it has been played, and the submit button stays disabled until every stimulus has
been played and rated (MUSHRA) or an answer chosen (AB/ABX); the server checks the same again. Sliders start
without a thumb, so no initial position suggests a score. On submit the module sends, with ``setTriggerValue``,
the ratings or answer and every play event (stimulus, start position, seconds of audio played, time since load).

Also: a draft of the trial (ratings, answer, play events, loop, position) is sent 0.6 s after each change and
restored from ``data.draft`` after a refresh; "Pause" sends the draft and asks for the pause page; keys 1-9 and 0
(A/B/X, R for the reference) select a signal and space plays or stops it; once this trial's audio is decoded, the
next trial's files (``data.prefetch``) are fetched and decoded into a page-wide cache, so the next trial is
playable without a request.
"""

PLAYER_HTML = '<div class="lt"><div class="lt-status">Loading audio…</div></div>'

PLAYER_JS = r"""
const FADE_S = 0.02;
const MIN_PLAY_S = %(min_play_s)s;
const DRAFT_DELAY_MS = 600;
const SCALE = ["Excellent", "Good", "Fair", "Poor", "Bad"];
// Decoded audio fetched ahead of its trial, shared by every player of this page: url -> Promise<AudioBuffer>.
const CACHE = (window.__evalkitAudio = window.__evalkitAudio || new Map());

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

async function fetchDecoded(ctx, url, label) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`stimulus ${label}: HTTP ${response.status}`);
  return ctx.decodeAudioData(await response.arrayBuffer());
}

function prefetch(spec) {
  if (!spec || !spec.urls || !spec.urls.length) return;
  const offline = new OfflineAudioContext(1, 1, spec.sample_rate);
  for (const url of spec.urls) {
    if (CACHE.has(url)) continue;
    const pending = fetchDecoded(offline, url, "next");
    pending.catch(() => CACHE.delete(url));
    CACHE.set(url, pending);
  }
}

async function loadBuffers(ctx, stimuli) {
  const out = {};
  await Promise.all(stimuli.map(async (s) => {
    const cached = CACHE.get(s.url);
    CACHE.delete(s.url);
    out[s.id] = cached ? await cached.catch(() => fetchDecoded(ctx, s.url, s.label))
                       : await fetchDecoded(ctx, s.url, s.label);
  }));
  return out;
}

class Player {
  constructor(root, data, setTriggerValue) {
    this.root = root;
    this.data = data;
    this.send = setTriggerValue;
    this.t0 = performance.now();
    this.events = [];
    this.played = {};
    this.ratings = {};
    this.answer = null;
    this.current = null;  // {id, source, gain, ctxStart, offset}
    this.selected = null;
    this.draftTimer = null;
    this.ctx = new AudioContext({ sampleRate: data.sample_rate });
    this.all = (data.reference ? [data.reference] : []).concat(data.stimuli);
    this.build();
    this.restore(data.draft);
    this.onKey = (e) => this.key(e);
    window.addEventListener("keydown", this.onKey, true);
    loadBuffers(this.ctx, this.all).then((buffers) => {
      this.buffers = buffers;
      this.duration = Math.min(...Object.values(buffers).map((b) => b.duration));
      const d = this.data.draft || {};
      this.loopStart = Math.min(d.loop_start_s ?? 0, this.duration);
      this.loopEnd = Math.min(d.loop_end_s ?? this.duration, this.duration);
      if (this.loopEnd - this.loopStart < 0.5) { this.loopStart = 0; this.loopEnd = this.duration; }
      this.lastPosition = Math.min(d.position_s ?? this.loopStart, this.loopEnd - 0.01);
      this.loopStartInput.max = this.loopEndInput.max = this.duration.toFixed(2);
      this.loopStartInput.value = this.loopStart.toFixed(2);
      this.loopEndInput.value = this.loopEnd.toFixed(2);
      this.status.textContent = "";
      this.root.dataset.ready = "1";
      this.refresh();
      prefetch(this.data.prefetch);
    }).catch((err) => { this.status.textContent = `Could not load audio: ${err.message}`; });
    this.timers = [setInterval(() => this.drawHead(), 50), setInterval(() => this.refresh(), 250)];
  }

  build() {
    const d = this.data;
    this.root.replaceChildren();
    this.status = el("div", { class: "lt-status" }, "Loading audio…");
    const transport = el("div", { class: "lt-transport" });
    this.stopButton = el("button", { "data-role": "stop" }, "■ Stop");
    this.stopButton.addEventListener("click", () => this.stop());
    this.bar = el("div", { class: "lt-bar" });
    this.loopDiv = el("div", { class: "lt-loop" });
    this.head = el("div", { class: "lt-head" });
    this.bar.append(this.loopDiv, this.head);
    this.bar.addEventListener("click", (e) => {
      const rect = this.bar.getBoundingClientRect();
      this.seek(((e.clientX - rect.left) / rect.width) * this.duration);
    });
    transport.append(this.stopButton, this.bar);
    const loopctl = el("div", { class: "lt-loopctl" });
    this.loopStartInput = el("input", { type: "range", min: "0", step: "0.05", value: "0", "data-role": "loop-start" });
    this.loopEndInput = el("input", { type: "range", min: "0", step: "0.05", value: "0", "data-role": "loop-end" });
    this.loopLabel = el("span");
    for (const input of [this.loopStartInput, this.loopEndInput]) {
      input.addEventListener("input", () => this.setLoop(+this.loopStartInput.value, +this.loopEndInput.value));
    }
    loopctl.append(el("span", {}, "Loop from"), this.loopStartInput, el("span", {}, "to"), this.loopEndInput,
                   this.loopLabel);
    this.keyMap = {};
    this.buttons = {};
    const body = el("div");
    if (d.mode === "mushra") this.buildMushra(body);
    else this.buildChoice(body);
    const keys = el("div", { class: "lt-keys" }, d.mode === "mushra"
      ? "Keys: 1–9 and 0 pick a signal, R the reference; space plays or stops."
      : "Keys: A, B" + (d.mode === "abx" ? ", X" : "") + " (or 1, 2" + (d.mode === "abx" ? ", 3" : "")
        + ") pick a signal; space plays or stops.");
    this.submit = el("button", { class: "lt-submit", "data-role": "submit" },
                     d.training ? "Start the test" : "Submit and continue");
    this.submit.addEventListener("click", () => this.onSubmit());
    const footer = el("div", { class: "lt-footer" });
    footer.append(this.submit);
    if (!d.training) {
      const pause = el("button", { "data-role": "pause" }, "Pause");
      pause.addEventListener("click", () => this.onPause());
      footer.append(pause);
    }
    this.hint = el("div", { class: "lt-status" });
    this.root.append(this.status, transport, loopctl, keys, body, this.hint, footer);
  }

  playButton(stim, label, keys) {
    const b = el("button", { "data-role": "play", "data-label": label, title: `key ${keys[0].toUpperCase()}` },
                 label);
    b.addEventListener("click", () => { b.blur(); this.toggle(stim.id); });
    this.buttons[stim.id] = b;
    for (const k of keys) this.keyMap[k] = stim.id;
    return b;
  }

  buildMushra(body) {
    const grid = el("div", { class: "lt-grid" });
    const scale = el("div", { class: "lt-scale" });
    for (const word of SCALE) scale.append(el("span", {}, word));
    grid.append(scale);
    if (this.data.reference) {
      const col = el("div", { class: "lt-col ref" });
      col.append(el("div", { class: "lt-value" }), el("div", { style: "height:16rem" }),
                 this.playButton(this.data.reference, "Reference", ["r"]));
      grid.append(col);
    }
    this.sliders = {};
    this.values = {};
    this.data.stimuli.forEach((stim, k) => {
      const col = el("div", { class: "lt-col" });
      const value = el("div", { class: "lt-value" }, "–");
      const slider = el("input", { type: "range", min: "0", max: "100", step: "1", value: "50",
                                   class: "unset", "data-role": "rating", "data-label": stim.label });
      slider.disabled = !this.data.training;
      const rate = () => {  // pointerup too: a click at the hidden initial value fires no input event
        if (slider.disabled) return;
        slider.classList.remove("unset");
        this.ratings[stim.id] = +slider.value;
        value.textContent = slider.value;
        this.refresh();
        if (!this.data.training) this.scheduleDraft();
      };
      for (const type of ["input", "change", "pointerup", "keyup"]) slider.addEventListener(type, rate);
      this.sliders[stim.id] = slider;
      this.values[stim.id] = value;
      col.append(value, slider, this.playButton(stim, stim.label, k < 10 ? [String((k + 1) %% 10)] : ["-"]));
      grid.append(col);
    });
    this.grid = grid;
    this.scrollHint = el("div", { class: "lt-scrollhint" }, "Scroll sideways for all signals →");
    body.append(grid, this.scrollHint);
  }

  buildChoice(body) {
    const row = el("div", { class: "lt-transport" });
    this.data.stimuli.forEach((stim, k) => {
      row.append(this.playButton(stim, stim.label, [stim.label.toLowerCase(), String(k + 1)]));
    });
    const answers = el("div", { class: "lt-answer" });
    const options = this.data.mode === "abx"
      ? [["A", "A is X"], ["B", "B is X"]]
      : [["A", "I prefer A"], ["B", "I prefer B"]]
          .concat(this.data.allow_no_preference ? [["none", "No preference"]] : []);
    this.radios = {};
    for (const [value, text] of options) {
      const label = el("label");
      const radio = el("input", { type: "radio", name: "lt-answer", value, "data-role": "answer" });
      radio.addEventListener("change", () => {
        this.answer = value;
        this.refresh();
        if (!this.data.training) this.scheduleDraft();
      });
      this.radios[value] = radio;
      label.append(radio, document.createTextNode(" " + text));
      answers.append(label);
    }
    body.append(row, answers);
  }

  restore(draft) {
    if (!draft || draft.trial !== this.data.trial_key) return;
    this.events = (draft.events || []).slice();
    for (const e of this.events) this.played[e.stimulus_id] = (this.played[e.stimulus_id] || 0) + e.duration_s;
    for (const [id, score] of Object.entries(draft.ratings || {})) {
      if (!this.sliders || !(id in this.sliders)) continue;
      this.ratings[id] = score;
      this.sliders[id].value = String(score);
      this.sliders[id].classList.remove("unset");
      this.values[id].textContent = String(score);
    }
    if (draft.answer && this.radios && this.radios[draft.answer]) {
      this.answer = draft.answer;
      this.radios[draft.answer].checked = true;
    }
  }

  key(e) {
    if (!this.root.isConnected || e.ctrlKey || e.metaKey || e.altKey) return;
    const target = e.composedPath()[0];
    if (target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type === "text"))) return;
    if (e.key === " ") {
      e.preventDefault();
      e.stopImmediatePropagation();
      this.toggle(this.selected || this.all[this.data.reference ? 1 : 0].id);
      return;
    }
    const id = this.keyMap[e.key.toLowerCase()];
    if (!id) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    if (!this.current || this.current.id !== id) this.toggle(id);
  }

  position() {
    if (!this.current) return this.lastPosition || this.loopStart || 0;
    const c = this.current;
    const len = this.loopEnd - this.loopStart;
    const raw = c.offset + (this.ctx.currentTime - c.ctxStart);
    if (raw < this.loopEnd) return raw;
    return this.loopStart + ((raw - this.loopStart) %% len);
  }

  startSource(id, offset) {
    const source = this.ctx.createBufferSource();
    source.buffer = this.buffers[id];
    source.loop = true;
    source.loopStart = this.loopStart;
    source.loopEnd = this.loopEnd;
    const gain = this.ctx.createGain();
    const now = this.ctx.currentTime;
    gain.gain.setValueAtTime(0, now);
    gain.gain.linearRampToValueAtTime(1, now + FADE_S);
    source.connect(gain).connect(this.ctx.destination);
    source.start(now, offset);
    this.current = { id, source, gain, ctxStart: now, offset };
    this.selected = id;
  }

  fadeOut() {
    if (!this.current) return;
    const c = this.current;
    const now = this.ctx.currentTime;
    const played = now - c.ctxStart;
    this.events.push({ stimulus_id: c.id, start_s: +c.offset.toFixed(3), duration_s: +played.toFixed(3),
                       at_ms: +(performance.now() - this.t0).toFixed(1) });
    this.played[c.id] = (this.played[c.id] || 0) + played;
    this.lastPosition = this.position();
    c.gain.gain.cancelScheduledValues(now);
    c.gain.gain.setValueAtTime(c.gain.gain.value, now);
    c.gain.gain.linearRampToValueAtTime(0, now + FADE_S);
    c.source.stop(now + FADE_S + 0.005);
    this.current = null;
    if (!this.data.training) this.scheduleDraft();
  }

  async toggle(id) {
    if (!this.buffers) return;
    if (this.ctx.state !== "running") await this.ctx.resume();
    if (this.current && this.current.id === id) { this.fadeOut(); this.refresh(); return; }
    let offset = this.current ? this.position() : (this.lastPosition ?? this.loopStart);
    this.fadeOut();
    if (offset < this.loopStart || offset >= this.loopEnd) offset = this.loopStart;
    this.startSource(id, offset);
    this.refresh();
  }

  stop() {
    this.fadeOut();
    this.lastPosition = this.loopStart;
    this.refresh();
  }

  seek(t) {
    const id = this.current && this.current.id;
    this.fadeOut();
    this.lastPosition = Math.max(this.loopStart, Math.min(t, this.loopEnd - 0.01));
    if (id) this.startSource(id, this.lastPosition);
    this.refresh();
  }

  setLoop(a, b) {
    if (b - a < 0.5) return;
    this.loopStart = a;
    this.loopEnd = b;
    if (this.current) this.seek(Math.max(a, Math.min(this.position(), b - 0.01)));
    this.refresh();
    if (!this.data.training) this.scheduleDraft();
  }

  drawHead() {
    if (!this.duration) return;
    const p = this.position();
    this.head.style.left = `${(100 * p) / this.duration}%%`;
    this.loopDiv.style.left = `${(100 * this.loopStart) / this.duration}%%`;
    this.loopDiv.style.width = `${(100 * (this.loopEnd - this.loopStart)) / this.duration}%%`;
    this.loopLabel.textContent = `${this.loopStart.toFixed(2)}–${this.loopEnd.toFixed(2)} s, now ${p.toFixed(2)} s`;
  }

  playedEnough(id) {
    const live = this.current && this.current.id === id ? this.ctx.currentTime - this.current.ctxStart : 0;
    return (this.played[id] || 0) + live >= MIN_PLAY_S;
  }

  missing() {
    const rated = this.data.stimuli;
    const unplayed = rated.filter((s) => !this.playedEnough(s.id)).map((s) => s.label);
    if (this.data.training) return this.data.require_play && unplayed.length ? [`play ${unplayed.join(", ")}`] : [];
    if (unplayed.length) return [`play ${unplayed.join(", ")}`];
    if (this.data.mode === "mushra" && rated.some((s) => !(s.id in this.ratings))) {
      return ["rate " + rated.filter((s) => !(s.id in this.ratings)).map((s) => s.label).join(", ")];
    }
    if (this.data.mode !== "mushra" && this.answer === null) return ["choose an answer"];
    return [];
  }

  refresh() {
    for (const [id, b] of Object.entries(this.buttons)) {
      b.classList.toggle("active", !!this.current && this.current.id === id);
    }
    if (this.sliders && !this.data.training) {
      for (const [id, s] of Object.entries(this.sliders)) s.disabled = !this.playedEnough(id);
    }
    if (this.grid) this.scrollHint.hidden = this.grid.scrollWidth <= this.grid.clientWidth + 1;
    const missing = this.missing();
    this.submit.disabled = missing.length > 0 || this.sent;
    this.hint.textContent = missing.length ? `Before you continue: ${missing.join("; ")}.` : "";
  }

  draft() {
    const events = this.events.slice();
    if (this.current) {  // the segment playing now counts as played so far
      events.push({ stimulus_id: this.current.id, start_s: +this.current.offset.toFixed(3),
                    duration_s: +(this.ctx.currentTime - this.current.ctxStart).toFixed(3),
                    at_ms: +(performance.now() - this.t0).toFixed(1) });
    }
    return { trial: this.data.trial_key, ratings: this.ratings, answer: this.answer, events,
             position_s: +this.position().toFixed(3), loop_start_s: this.loopStart, loop_end_s: this.loopEnd };
  }

  scheduleDraft() {
    if (this.sent) return;
    clearTimeout(this.draftTimer);
    this.draftTimer = setTimeout(() => { if (!this.sent) this.send("draft", this.draft()); }, DRAFT_DELAY_MS);
  }

  onPause() {
    this.fadeOut();
    clearTimeout(this.draftTimer);
    this.sent = true;
    this.send("pause", this.draft());
  }

  onSubmit() {
    this.fadeOut();
    clearTimeout(this.draftTimer);
    if (this.missing().length) { this.refresh(); return; }
    this.sent = true;
    this.submit.disabled = true;
    this.send("submit", { trial: this.data.trial_key, ratings: this.ratings, answer: this.answer,
                          events: this.events });
  }

  dispose() {
    this.timers.forEach(clearInterval);
    clearTimeout(this.draftTimer);
    window.removeEventListener("keydown", this.onKey, true);
    try { if (this.current) this.current.source.stop(); } catch (e) { /* already stopped */ }
    this.ctx.close();
  }
}

export default function ({ parentElement, data, setTriggerValue }) {
  const root = parentElement.querySelector(".lt") || parentElement;
  if (!root.__player || root.__player.data.trial_key !== data.trial_key) {
    if (root.__player) root.__player.dispose();
    root.__player = new Player(root, data, setTriggerValue);
  }
  // Called on unmount (and possibly before a re-render that keeps the element): stop the audio only once the
  // player's element has left the page, so a rerun of the same trial keeps position, ratings and events.
  return () => setTimeout(() => {
    if (root.__player && !root.isConnected) { root.__player.dispose(); root.__player = null; }
  }, 0);
}
"""
