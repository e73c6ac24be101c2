// The listening-test player and rating panel: an ES module for Streamlit's components v2 (no build step); app.py
// joins audio.mjs in front of it, which provides el, loadBundle, prefetchBundle and signalBuffer.
//
// The trial's signals arrive as one bundle (data.bundle), split into one AudioBuffer per signal, all played through
// one AudioContext at the stimulus rate. Switching signals keeps the playback position: the new source starts at
// the old one's position with a 20 ms linear fade-in while the old one fades out. The waveform shows the first
// signal of the bundle (the open reference in MUSHRA, A in AB/ABX), whichever signal plays: a waveform per signal
// would let the eye find the hidden reference. Dragging on it selects a loop region, a click moves the playhead,
// and "loop start/end at playhead" set one end; the loop holds for every signal of the trial. A signal can be rated
// only once it has been played, and submit stays disabled until every signal has been played and rated (MUSHRA)
// or an answer chosen (AB/ABX); the server checks the same again. Sliders start without a thumb, so no initial
// position suggests a score. On submit the module sends, with setTriggerValue, the ratings or answer and every
// play event (signal id, start position, seconds of audio played, milliseconds since the trial was shown).
//
// Also: a draft of the trial (ratings, answer, play events, loop, position) is sent 0.6 s after each change and
// restored from data.draft after a refresh; "Pause" sends the draft and asks for the pause page; keys 1-9, 0, - and
// = pick MUSHRA signals 1-12 (R the reference; A/B/X or 1/2/3 in AB/ABX) and space plays or stops; once this
// trial's audio is ready, the next trial's bundle (data.prefetch) is fetched and parsed into a page-wide cache.
// The transport (reference or A/B/X buttons, stop, waveform) sticks to the top of the window while the page
// scrolls, so on a narrow screen every control is reachable with the reference at hand.
//
// ACR, DCR and BS.1116 trials (data.scale set) are graded on the scale the server sends: ACR and DCR with one
// radio button per category (5 to 1, labelled), BS.1116 with one horizontal 1.0-5.0 slider per signal (A, B) in
// steps of 0.1, its grades listed above. In DCR and BS.1116 the reference must be played too (data.play_reference)
// before a signal can be graded.

const FADE_S = 0.02;
const DRAFT_DELAY_MS = 600;
const MIN_LOOP_S = 0.5;
const DRAG_PX = 4;
const SCALE = ["Excellent", "Good", "Fair", "Poor", "Bad"];
export const SIGNAL_KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "-", "="];

/** MUSHRA's key hint: which key plays which signal, for ``n`` rated signals. */
export function mushraKeyHelp(n) {
  const parts = [`1–${Math.min(n, 9)} play signals 1–${Math.min(n, 9)}`];
  SIGNAL_KEYS.slice(9, n).forEach((key, k) => parts.push(`${key} plays ${k + 10}`));
  return `Keys: ${parts.join(", ")}, R the reference; space plays or stops.`;
}

/** The key hint of an ACR, DCR or BS.1116 trial. */
export function gradedKeyHelp(data) {
  const keys = data.stimuli.map((s, k) => `${s.label[0].toUpperCase()} (or ${k + 1}) plays ${s.label}`);
  return `Keys: ${keys.join(", ")}${data.reference ? ", R the reference" : ""}; space plays or stops.`;
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
    this.current = null; // {id, source, gain, ctxStart, offset}
    this.selected = null;
    this.draftTimer = null;
    this.drag = null;
    this.duration = 0;
    this.ctx = new AudioContext({ sampleRate: data.sample_rate });
    this.all = (data.reference ? [data.reference] : []).concat(data.stimuli);
    this.build();
    this.restore(data.draft);
    this.onKey = (e) => this.key(e);
    window.addEventListener("keydown", this.onKey, true);
    const progress = (f) => { this.status.textContent = `Loading audio… ${Math.round(100 * f)} %`; };
    loadBundle(data.bundle, progress).then((parsed) => this.ready(parsed))
      .catch((err) => { this.status.textContent = `Could not load audio: ${err.message}`; });
    this.timers = [setInterval(() => this.drawHead(), 50), setInterval(() => this.refresh(), 250)];
  }

  // The transport sticks below Streamlit's header (transparent, so the transport covers what scrolls under it).
  stick() {
    const header = document.querySelector("[data-testid=stHeader]");
    const top = header ? header.getBoundingClientRect().bottom : 0;
    this.top.style.top = `${top}px`;
    this.top.style.setProperty("--lt-cover", `${top}px`);
    this.top.classList.toggle("stuck", this.top.getBoundingClientRect().top <= top + 0.5);
  }

  ready(parsed) {
    const per = this.data.channels;
    if (parsed.channels.length !== per * this.all.length) {
      throw new Error(`the bundle holds ${parsed.channels.length} channels, the trial needs ${per * this.all.length}`);
    }
    this.buffers = {};
    this.all.forEach((s, k) => { this.buffers[s.id] = signalBuffer(this.ctx, parsed, k, per); });
    this.wave = parsed.channels.slice(0, per);
    this.duration = parsed.frames / parsed.sampleRate;
    const d = this.data.draft || {};
    this.loopStart = Math.min(d.loop_start_s ?? 0, this.duration);
    this.loopEnd = Math.min(d.loop_end_s ?? this.duration, this.duration);
    if (this.loopEnd - this.loopStart < MIN_LOOP_S) { this.loopStart = 0; this.loopEnd = this.duration; }
    this.lastPosition = Math.min(d.position_s ?? this.loopStart, this.loopEnd - 0.01);
    this.status.textContent = "";
    this.drawWave();
    this.resizer = new ResizeObserver(() => this.drawWave());
    this.resizer.observe(this.canvas);
    this.root.dataset.ready = "1";
    this.refresh();
    prefetchBundle(this.data.prefetch);
  }

  build() {
    const d = this.data;
    this.root.replaceChildren();
    this.keyMap = {};
    this.buttons = {};
    const top = el("div", { class: "lt-top" });
    this.top = top;
    const row = el("div", { class: "lt-transport" });
    if (d.reference) row.append(this.playButton(d.reference, "Reference", ["r"], "ref"));
    if (d.mode !== "mushra") {
      d.stimuli.forEach((stim, k) => row.append(this.playButton(stim, stim.label,
                                                                [stim.label[0].toLowerCase(), String(k + 1)])));
    }
    this.stopButton = el("button", { "data-role": "stop" }, "■ Stop");
    this.stopButton.addEventListener("click", () => { this.stopButton.blur(); this.stop(); });
    this.clock = el("span", { class: "lt-clock", "data-role": "clock" });
    row.append(this.stopButton, this.clock);
    top.append(row, this.buildWave());
    const loopctl = el("div", { class: "lt-loopctl" });
    const loopButton = (role, text, action) => {
      const b = el("button", { "data-role": role }, text);
      b.addEventListener("click", () => { b.blur(); action(); });
      return b;
    };
    this.loopLabel = el("span", { "data-role": "loop-label" });
    this.loopNote = el("span", { class: "lt-note", "data-role": "loop-note" });
    loopctl.append(loopButton("loop-start", "Loop start at playhead", () => this.loopStartHere()),
                   loopButton("loop-end", "Loop end at playhead", () => this.loopEndHere()),
                   loopButton("loop-clear", "Clear loop", () => this.setLoop(0, this.duration)), this.loopLabel,
                   this.loopNote);
    const body = el("div", { class: "lt-body" });
    if (d.mode === "mushra") this.buildMushra(body);
    else if (d.scale && d.scale.continuous) this.buildSliders(body);
    else if (d.scale) this.buildCategories(body);
    else this.buildChoice(body);
    const keys = el("div", { class: "lt-keys" }, d.mode === "mushra" ? mushraKeyHelp(d.stimuli.length)
      : d.scale ? gradedKeyHelp(d)
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
    this.status = el("div", { class: "lt-status" }, "Loading audio…");
    this.hint = el("div", { class: "lt-status lt-hint" });
    this.root.append(top, this.status, loopctl, keys, body, this.hint, footer);
  }

  buildWave() {
    this.bar = el("div", { class: "lt-bar", "data-role": "waveform" });
    this.canvas = el("canvas", { class: "lt-wave" });
    this.loopDiv = el("div", { class: "lt-loop" });
    this.selection = el("div", { class: "lt-selection" });
    this.selection.hidden = true;
    this.head = el("div", { class: "lt-head" });
    this.bar.append(this.canvas, this.loopDiv, this.selection, this.head);
    this.bar.addEventListener("pointerdown", (e) => {
      if (!this.duration || e.button !== 0) return;
      this.bar.setPointerCapture(e.pointerId);
      this.drag = { x0: e.clientX, t0: this.timeAt(e.clientX), moved: false };
    });
    this.bar.addEventListener("pointermove", (e) => {
      if (!this.drag) return;
      if (Math.abs(e.clientX - this.drag.x0) > DRAG_PX) this.drag.moved = true;
      if (this.drag.moved) this.showSelection(this.drag.t0, this.timeAt(e.clientX));
    });
    this.bar.addEventListener("pointerup", (e) => {
      const drag = this.drag;
      this.drag = null;
      this.selection.hidden = true;
      if (!drag) return;
      const t = this.timeAt(e.clientX);
      if (drag.moved) this.setLoop(Math.min(drag.t0, t), Math.max(drag.t0, t));
      else this.seek(t);
    });
    this.bar.addEventListener("pointercancel", () => { this.drag = null; this.selection.hidden = true; });
    return this.bar;
  }

  timeAt(clientX) {
    const rect = this.bar.getBoundingClientRect();
    return Math.max(0, Math.min(1, (clientX - rect.left) / rect.width)) * this.duration;
  }

  showSelection(a, b) {
    const lo = Math.min(a, b);
    const hi = Math.max(a, b);
    this.selection.hidden = false;
    this.selection.style.left = `${(100 * lo) / this.duration}%`;
    this.selection.style.width = `${(100 * (hi - lo)) / this.duration}%`;
  }

  drawWave() {
    if (!this.wave) return;
    const scale = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(this.canvas.clientWidth * scale));
    const height = Math.max(1, Math.round(this.canvas.clientHeight * scale));
    this.canvas.width = width;
    this.canvas.height = height;
    const g = this.canvas.getContext("2d");
    g.clearRect(0, 0, width, height);
    g.fillStyle = getComputedStyle(this.canvas).color;
    const frames = this.wave[0].length;
    let peak = 1e-6;
    for (const channel of this.wave) for (const v of channel) peak = Math.max(peak, Math.abs(v));
    const mid = height / 2;
    const gain = (0.95 * mid) / peak; // drawn to the full height: only the shape matters here
    for (let x = 0; x < width; x++) {
      const from = Math.floor((x * frames) / width);
      const to = Math.max(from + 1, Math.floor(((x + 1) * frames) / width));
      let lo = 0;
      let hi = 0;
      for (const channel of this.wave) {
        for (let i = from; i < to; i++) {
          const v = channel[i];
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
      }
      g.fillRect(x, mid - hi * gain, 1, Math.max(1, (hi - lo) * gain));
    }
  }

  playButton(stim, label, keys, extraClass = "") {
    const b = el("button", { "data-role": "play", "data-label": label, title: `key ${keys[0].toUpperCase()}`,
                             class: `lt-play ${extraClass}`.trim() });
    b.append(document.createTextNode(label));
    if (keys[0] !== label.toLowerCase()) b.append(el("kbd", {}, keys[0].toUpperCase()));
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
    this.sliders = {};
    this.values = {};
    this.data.stimuli.forEach((stim, k) => {
      const col = el("div", { class: "lt-col" });
      const value = el("div", { class: "lt-value" }, "–");
      const slider = el("input", { type: "range", min: "0", max: "100", step: "1", value: "50",
                                   class: "unset", "data-role": "rating", "data-label": stim.label });
      slider.disabled = !this.data.training;
      const rate = () => { // pointerup too: a click at the hidden initial value fires no input event
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
      col.append(value, slider, this.playButton(stim, stim.label, [SIGNAL_KEYS[k] ?? ""]));
      grid.append(col);
    });
    this.grid = grid;
    this.scrollHint = el("div", { class: "lt-scrollhint" }, "Scroll sideways for all signals →");
    body.append(grid, this.scrollHint);
  }

  // ACR / DCR: one radio button per category of the scale, best first; a grade is stored as its number.
  buildCategories(body) {
    const stim = this.data.stimuli[0];
    const group = el("div", { class: "lt-grades", role: "radiogroup" });
    this.gradeRadios = { [stim.id]: {} };
    for (const [value, text] of this.data.scale.grades) {
      const label = el("label", { class: "lt-grade" });
      const radio = el("input", { type: "radio", name: "lt-grade", value: String(value), "data-role": "rating",
                                  "data-label": stim.label });
      radio.disabled = !this.data.training;
      radio.addEventListener("change", () => {
        this.ratings[stim.id] = value;
        this.refresh();
        if (!this.data.training) this.scheduleDraft();
      });
      this.gradeRadios[stim.id][value] = radio;
      label.append(radio, el("span", { class: "lt-grade-value" }, String(value)), el("span", {}, text));
      group.append(label);
    }
    body.append(group);
  }

  // BS.1116: a 1.0-5.0 slider per signal in steps of 0.1, no thumb until graded; the grades listed once above.
  buildSliders(body) {
    const scale = this.data.scale;
    const legend = el("div", { class: "lt-legend" });
    for (const [value, text] of scale.grades) legend.append(el("span", {}, `${value.toFixed(1)} ${text}`));
    body.append(legend);
    this.sliders = {};
    this.values = {};
    for (const stim of this.data.stimuli) {
      const row = el("div", { class: "lt-srow" });
      const value = el("div", { class: "lt-value" }, "–");
      const slider = el("input", { type: "range", min: String(scale.min), max: String(scale.max),
                                   step: String(scale.step), value: String((scale.min + scale.max) / 2),
                                   class: "unset", "data-role": "rating", "data-label": stim.label });
      slider.disabled = !this.data.training;
      const rate = () => {
        if (slider.disabled) return;
        slider.classList.remove("unset");
        this.ratings[stim.id] = Math.round(10 * +slider.value) / 10;
        value.textContent = this.ratings[stim.id].toFixed(1);
        this.refresh();
        if (!this.data.training) this.scheduleDraft();
      };
      for (const type of ["input", "change", "pointerup", "keyup"]) slider.addEventListener(type, rate);
      const ticks = el("div", { class: "lt-ticks" });
      for (let v = scale.min; v <= scale.max; v++) ticks.append(el("span", {}, v.toFixed(1)));
      const track = el("div", { class: "lt-track" });
      track.append(slider, ticks);
      this.sliders[stim.id] = slider;
      this.values[stim.id] = value;
      row.append(el("span", { class: "lt-srow-label" }, stim.label), track, value);
      body.append(row);
    }
  }

  buildChoice(body) {
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
    body.append(answers);
  }

  restore(draft) {
    if (!draft || draft.trial !== this.data.trial_key) return;
    this.events = (draft.events || []).slice();
    for (const e of this.events) this.played[e.stimulus_id] = (this.played[e.stimulus_id] || 0) + e.duration_s;
    for (const [id, score] of Object.entries(draft.ratings || {})) {
      if (this.gradeRadios && this.gradeRadios[id] && this.gradeRadios[id][score]) {
        this.ratings[id] = score;
        this.gradeRadios[id][score].checked = true;
        continue;
      }
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
    return this.loopStart + ((raw - this.loopStart) % len);
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
    if (!this.duration) return false;
    a = Math.max(0, Math.min(a, this.duration));
    b = Math.max(0, Math.min(b, this.duration));
    if (b - a < MIN_LOOP_S) {
      this.loopNote.textContent = `A loop is at least ${MIN_LOOP_S} s long.`;
      return false;
    }
    this.loopNote.textContent = "";
    const position = this.position();
    this.loopStart = a;
    this.loopEnd = b;
    if (this.current) this.seek(Math.max(a, Math.min(position, b - 0.01)));
    else this.lastPosition = Math.max(a, Math.min(this.lastPosition ?? a, b - 0.01));
    this.refresh();
    if (!this.data.training) this.scheduleDraft();
    return true;
  }

  loopStartHere() {
    const t = this.position();
    this.setLoop(t, this.loopEnd - t >= MIN_LOOP_S ? this.loopEnd : this.duration);
  }

  loopEndHere() {
    const t = this.position();
    this.setLoop(t - this.loopStart >= MIN_LOOP_S ? this.loopStart : 0, t);
  }

  drawHead() {
    this.stick();
    if (!this.duration) return;
    const p = this.position();
    this.head.style.left = `${(100 * p) / this.duration}%`;
    const whole = this.loopStart === 0 && this.loopEnd === this.duration;
    this.loopDiv.hidden = whole;
    this.loopDiv.style.left = `${(100 * this.loopStart) / this.duration}%`;
    this.loopDiv.style.width = `${(100 * (this.loopEnd - this.loopStart)) / this.duration}%`;
    this.clock.textContent = `${p.toFixed(2)} / ${this.duration.toFixed(2)} s`;
    this.loopLabel.textContent = whole ? "Loop: whole excerpt (drag on the waveform to choose a region)"
      : `Loop: ${this.loopStart.toFixed(2)}–${this.loopEnd.toFixed(2)} s`;
  }

  playedEnough(id) {
    const live = this.current && this.current.id === id ? this.ctx.currentTime - this.current.ctxStart : 0;
    return (this.played[id] || 0) + live >= this.data.min_play_s;
  }

  // A signal can be graded once it (and, in DCR and BS.1116, the reference) has been played.
  canRate(id) {
    return this.playedEnough(id) && (!this.data.play_reference || this.playedEnough(this.data.reference.id));
  }

  missing() {
    const rated = this.data.stimuli;
    const heard = this.data.play_reference ? [this.data.reference].concat(rated) : rated;
    const unplayed = heard.filter((s) => !this.playedEnough(s.id)).map((s) => s.label);
    if (this.data.training) return this.data.require_play && unplayed.length ? [`play ${unplayed.join(", ")}`] : [];
    if (unplayed.length) return [`play ${unplayed.join(", ")}`];
    const graded = this.data.mode === "mushra" || !!this.data.scale;
    if (graded && rated.some((s) => !(s.id in this.ratings))) {
      return ["rate " + rated.filter((s) => !(s.id in this.ratings)).map((s) => s.label).join(", ")];
    }
    if (!graded && this.answer === null) return ["choose an answer"];
    return [];
  }

  refresh() {
    for (const [id, b] of Object.entries(this.buttons)) {
      b.classList.toggle("active", !!this.current && this.current.id === id);
    }
    if (this.sliders && !this.data.training) {
      for (const [id, s] of Object.entries(this.sliders)) s.disabled = !this.canRate(id);
    }
    if (this.gradeRadios && !this.data.training) {
      for (const [id, radios] of Object.entries(this.gradeRadios)) {
        for (const r of Object.values(radios)) r.disabled = !this.canRate(id);
      }
    }
    if (this.grid) this.scrollHint.hidden = this.grid.scrollWidth <= this.grid.clientWidth + 1;
    const missing = this.missing();
    this.submit.disabled = missing.length > 0 || this.sent;
    this.hint.textContent = missing.length ? `Before you continue: ${missing.join("; ")}.` : "";
  }

  draft() {
    const events = this.events.slice();
    if (this.current) { // the segment playing now counts as played so far
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
    if (this.resizer) this.resizer.disconnect();
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
