"""The Web Audio player and rating panel: an inline ES module for Streamlit's components v2 (no build step).

One ``AudioContext`` at the stimulus rate holds every stimulus as a decoded buffer (fetched from
``/app/static/<id>.wav``). Switching stimuli keeps the playback position: the new source starts at the old one's
position with a 20 ms linear fade-in while the old one fades out. Playback loops over the selected region. A
stimulus can be rated only once it has been played, and the submit button stays disabled until every stimulus has
been played and rated (MUSHRA) or an answer chosen (AB/ABX); the server checks the same again. Sliders start
without a thumb, so no initial position suggests a score. On submit the module sends, with ``setTriggerValue``,
the ratings or answer and every play event (stimulus, start position, seconds of audio played, time since load).
"""

PLAYER_CSS = """
.lt { font-family: var(--st-font, sans-serif); color: var(--st-text-color, #222); }
.lt-transport { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; margin-bottom: .6rem; }
.lt button { padding: .45rem .9rem; border-radius: .4rem; border: 1px solid var(--st-border-color, #bbb);
  background: var(--st-secondary-background-color, #f4f4f4); color: inherit; cursor: pointer; font-size: 1rem; }
.lt button.active { background: var(--st-primary-color, #ff4b4b); color: #fff; }
.lt button:disabled { opacity: .45; cursor: not-allowed; }
.lt-bar { position: relative; height: 1.4rem; background: var(--st-secondary-background-color, #eee);
  border-radius: .3rem; cursor: pointer; flex: 1 1 18rem; min-width: 12rem; }
.lt-loop { position: absolute; top: 0; bottom: 0; background: rgba(100, 149, 237, .35); }
.lt-head { position: absolute; top: 0; bottom: 0; width: 2px; background: #333; }
.lt-loopctl { display: flex; gap: 1rem; align-items: center; font-size: .85rem; margin-bottom: .6rem; }
.lt-loopctl input { width: 12rem; }
.lt-grid { display: flex; gap: .4rem; align-items: flex-start; }
.lt-scale { display: flex; flex-direction: column; height: 16rem; margin-top: 1.5rem; font-size: .8rem;
  width: 5rem; }
.lt-scale span { flex: 1; display: flex; align-items: center; justify-content: flex-end; padding-right: .3rem;
  border-top: 1px dashed var(--st-border-color, #ccc); }
.lt-scale span:last-child { border-bottom: 1px dashed var(--st-border-color, #ccc); }
.lt-col { display: flex; flex-direction: column; align-items: center; gap: .3rem; width: 4.2rem; }
.lt-col.ref { width: 6.5rem; }
.lt-col input[type=range] { -webkit-appearance: none; appearance: none; writing-mode: vertical-lr; direction: rtl;
  height: 16rem; width: .6rem; margin: 0 .8rem; background: var(--st-secondary-background-color, #e6e6e6);
  border: 1px solid var(--st-border-color, #bbb); border-radius: .3rem; cursor: pointer; }
.lt-col input[type=range]::-webkit-slider-thumb { -webkit-appearance: none; appearance: none; width: 1.6rem;
  height: .9rem; border-radius: .25rem; background: var(--st-primary-color, #ff4b4b); }
.lt-col input[type=range]::-moz-range-thumb { width: 1.6rem; height: .9rem; border-radius: .25rem;
  background: var(--st-primary-color, #ff4b4b); }
.lt-col input[type=range].unset::-webkit-slider-thumb { opacity: 0; }
.lt-col input[type=range].unset::-moz-range-thumb { opacity: 0; }
.lt-col input[type=range]:disabled { opacity: .4; cursor: not-allowed; }
.lt-value { font-variant-numeric: tabular-nums; height: 1.2rem; }
.lt-answer { display: flex; gap: 1.2rem; margin: .8rem 0; font-size: 1rem; }
.lt-status { margin: .6rem 0; font-size: .9rem; min-height: 1.2rem; }
.lt-submit { margin-top: .4rem; }
"""

PLAYER_HTML = '<div class="lt"><div class="lt-status">Loading audio…</div></div>'

PLAYER_JS = r"""
const FADE_S = 0.02;
const MIN_PLAY_S = %(min_play_s)s;
const SCALE = ["Excellent", "Good", "Fair", "Poor", "Bad"];

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

async function loadBuffers(ctx, stimuli) {
  const out = {};
  await Promise.all(stimuli.map(async (s) => {
    const response = await fetch(s.url);
    if (!response.ok) throw new Error(`stimulus ${s.label}: HTTP ${response.status}`);
    out[s.id] = await ctx.decodeAudioData(await response.arrayBuffer());
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
    this.ctx = new AudioContext({ sampleRate: data.sample_rate });
    this.all = (data.reference ? [data.reference] : []).concat(data.stimuli);
    this.build();
    loadBuffers(this.ctx, this.all).then((buffers) => {
      this.buffers = buffers;
      this.duration = Math.min(...Object.values(buffers).map((b) => b.duration));
      this.loopStart = 0;
      this.loopEnd = this.duration;
      this.loopStartInput.max = this.loopEndInput.max = this.duration.toFixed(2);
      this.loopEndInput.value = this.duration.toFixed(2);
      this.status.textContent = "";
      this.root.dataset.ready = "1";
      this.refresh();
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
    this.buttons = {};
    const body = el("div");
    if (d.mode === "mushra") this.buildMushra(body);
    else this.buildChoice(body);
    this.submit = el("button", { class: "lt-submit", "data-role": "submit" },
                     d.training ? "Start the test" : "Submit and continue");
    this.submit.addEventListener("click", () => this.onSubmit());
    this.hint = el("div", { class: "lt-status" });
    this.root.append(this.status, transport, loopctl, body, this.hint, this.submit);
  }

  playButton(stim, label) {
    const b = el("button", { "data-role": "play", "data-label": label }, label);
    b.addEventListener("click", () => this.toggle(stim.id));
    this.buttons[stim.id] = b;
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
                 this.playButton(this.data.reference, "Reference"));
      grid.append(col);
    }
    this.sliders = {};
    this.data.stimuli.forEach((stim) => {
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
      };
      for (const type of ["input", "change", "pointerup", "keyup"]) slider.addEventListener(type, rate);
      this.sliders[stim.id] = slider;
      col.append(value, slider, this.playButton(stim, stim.label));
      grid.append(col);
    });
    body.append(grid);
  }

  buildChoice(body) {
    const row = el("div", { class: "lt-transport" });
    for (const stim of this.data.stimuli) row.append(this.playButton(stim, stim.label));
    const answers = el("div", { class: "lt-answer" });
    const options = this.data.mode === "abx"
      ? [["A", "A is X"], ["B", "B is X"]]
      : [["A", "I prefer A"], ["B", "I prefer B"]]
          .concat(this.data.allow_no_preference ? [["none", "No preference"]] : []);
    for (const [value, text] of options) {
      const label = el("label");
      const radio = el("input", { type: "radio", name: "lt-answer", value, "data-role": "answer" });
      radio.addEventListener("change", () => { this.answer = value; this.refresh(); });
      label.append(radio, document.createTextNode(" " + text));
      answers.append(label);
    }
    body.append(row, answers);
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
    if (this.data.training) return [];
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
    const missing = this.missing();
    this.submit.disabled = missing.length > 0;
    this.hint.textContent = missing.length ? `Before you continue: ${missing.join("; ")}.` : "";
  }

  onSubmit() {
    this.fadeOut();
    if (this.missing().length) { this.refresh(); return; }
    this.submit.disabled = true;
    this.send("submit", { trial: this.data.trial_key, ratings: this.ratings, answer: this.answer,
                          events: this.events });
  }

  dispose() {
    this.timers.forEach(clearInterval);
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
