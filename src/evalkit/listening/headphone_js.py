"""The headphone check's page: an inline ES module for Streamlit's components v2 (Huggins-pitch screening).

First a calibration noise to set a comfortable volume, then six trials: each plays once, three noise bursts with
their numbers lit in turn, and the participant says which burst held a faint tone (1, 2 or 3). Answers are sent
together at the end with ``setTriggerValue("result", {responses: {stimulus id: burst}})``; the server scores them
(the correct bursts are never sent to the browser). Each trial's file is fetched when the previous one is shown.
"""

HEADPHONE_CSS = """
.hc { font-family: var(--st-font, sans-serif); color: var(--st-text-color, #222); max-width: 40rem; }
.hc button { padding: .45rem .9rem; border-radius: .4rem; border: 1px solid var(--st-border-color, #bbb);
  background: var(--st-secondary-background-color, #f4f4f4); color: inherit; cursor: pointer; font-size: 1rem; }
.hc button:disabled { opacity: .45; cursor: not-allowed; }
.hc-row { display: flex; gap: .6rem; align-items: center; flex-wrap: wrap; margin: .7rem 0; }
.hc-burst { width: 3rem; height: 3rem; border-radius: 50%; display: flex; align-items: center;
  justify-content: center; border: 2px solid var(--st-border-color, #bbb); font-size: 1.2rem; }
.hc-burst.lit { background: var(--st-primary-color, #ff4b4b); color: #fff; }
.hc-status { min-height: 1.2rem; font-size: .9rem; margin: .5rem 0; }
"""

HEADPHONE_HTML = '<div class="hc"><div class="hc-status">Loading…</div></div>'

HEADPHONE_JS = r"""
const BURST_S = %(burst_s)s, GAP_S = %(gap_s)s;

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

class Check {
  constructor(root, data, send) {
    this.root = root;
    this.data = data;
    this.send = send;
    this.ctx = new AudioContext({ sampleRate: %(rate)s });
    this.pending = {};
    this.responses = {};
    this.index = -1;
    this.calibrationPage();
  }

  load(url) {
    if (!this.pending[url]) {
      this.pending[url] = fetch(url).then((r) => {
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        return r.arrayBuffer();
      }).then((b) => this.ctx.decodeAudioData(b));
    }
    return this.pending[url];
  }

  async play(url, onEnd) {
    if (this.ctx.state !== "running") await this.ctx.resume();
    const buffer = await this.load(url);
    const source = this.ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(this.ctx.destination);
    source.onended = onEnd;
    source.start();
    return source;
  }

  calibrationPage() {
    this.root.replaceChildren();
    const status = el("div", { class: "hc-status" });
    const play = el("button", { "data-role": "calibrate" }, "▶ Play the calibration noise");
    play.addEventListener("click", async () => {
      play.disabled = true;
      try { await this.play(this.data.calibration, () => { play.disabled = false; }); }
      catch (err) { status.textContent = `Could not load audio: ${err.message}`; play.disabled = false; }
    });
    const start = el("button", { "data-role": "start-check" }, "Start the check");
    start.addEventListener("click", () => this.next());
    this.root.append(
      el("p", {}, "Put on your headphones. Play the noise and set a comfortable volume; keep it for the rest of " +
                  "the test."),
      el("div", { class: "hc-row" }), status);
    this.root.querySelector(".hc-row").append(play, start);
    this.load(this.data.calibration).catch(() => {});
    this.load(this.data.trials[0].url).catch(() => {});
  }

  next() {
    this.index += 1;
    if (this.index >= this.data.trials.length) {
      this.root.replaceChildren(el("div", { class: "hc-status" }, "Saving…"));
      this.send("result", { responses: this.responses });
      return;
    }
    const trial = this.data.trials[this.index];
    if (this.index + 1 < this.data.trials.length) this.load(this.data.trials[this.index + 1].url).catch(() => {});
    this.root.replaceChildren();
    this.root.dataset.trial = String(this.index);
    const bursts = [1, 2, 3].map((k) => el("div", { class: "hc-burst" }, String(k)));
    const row = el("div", { class: "hc-row" });
    row.append(...bursts);
    const status = el("div", { class: "hc-status" });
    const play = el("button", { "data-role": "play-check" }, "▶ Play");
    const answers = el("div", { class: "hc-row" });
    const choose = [1, 2, 3].map((k) => {
      const b = el("button", { "data-role": "answer-check", "data-value": String(k) }, `Sound ${k}`);
      b.disabled = true;
      b.addEventListener("click", () => { this.responses[trial.id] = k; this.next(); });
      return b;
    });
    answers.append(...choose);
    play.addEventListener("click", async () => {
      play.disabled = true;
      const t0 = this.ctx.currentTime;
      const light = setInterval(() => {
        const t = this.ctx.currentTime - t0;
        bursts.forEach((b, k) => {
          const start = k * (BURST_S + GAP_S);
          b.classList.toggle("lit", t >= start && t < start + BURST_S);
        });
      }, 30);
      try {
        await this.play(trial.url, () => {
          clearInterval(light);
          bursts.forEach((b) => b.classList.remove("lit"));
          choose.forEach((b) => { b.disabled = false; });
          status.textContent = "Which sound held a faint tone?";
        });
      } catch (err) { clearInterval(light); status.textContent = `Could not load audio: ${err.message}`; }
    });
    this.root.append(el("p", {}, `Sound check ${this.index + 1} of ${this.data.trials.length}: three noises ` +
                                 "play once. One of them holds a faint tone. Which one?"),
                     row, el("div", { class: "hc-row" }), status, answers);
    this.root.querySelectorAll(".hc-row")[1].append(play);
  }
}

export default function ({ parentElement, data, setTriggerValue }) {
  const root = parentElement.querySelector(".hc") || parentElement;
  if (!root.__check) root.__check = new Check(root, data, setTriggerValue);
  return () => setTimeout(() => {
    if (root.__check && !root.isConnected) { root.__check.ctx.close(); root.__check = null; }
  }, 0);
}
"""
