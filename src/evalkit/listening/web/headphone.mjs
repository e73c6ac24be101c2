// The headphone check's page: an ES module for Streamlit's components v2 (Huggins-pitch screening); app.py joins
// audio.mjs in front of it, which provides el, loadBundle and signalBuffer.
//
// The participant's own sequence arrives as one bundle (data.bundle): the calibration noise, then one sound per
// trial, all of one length. First the calibration noise to set a comfortable volume, then data.trials trials:
// each plays once, three noise bursts with their numbers lit in turn, and the participant says which burst held a
// faint tone (1, 2 or 3). The answers are sent together at the end with setTriggerValue("result", {responses:
// [burst chosen in trial 1, ...]}); the server scores them against the participant's sequence (the correct bursts
// are never sent to the browser).

class Check {
  constructor(root, data, send) {
    this.root = root;
    this.data = data;
    this.send = send;
    this.ctx = new AudioContext({ sampleRate: data.sample_rate });
    this.responses = [];
    this.index = -1;
    this.sounds = loadBundle(data.bundle).then((parsed) => {
      if (parsed.channels.length !== data.channels * (data.trials + 1)) throw new Error("unexpected bundle");
      return Array.from({ length: data.trials + 1 }, (_, k) => signalBuffer(this.ctx, parsed, k, data.channels));
    });
    this.calibrationPage();
  }

  async play(k, onEnd) {
    if (this.ctx.state !== "running") await this.ctx.resume();
    const source = this.ctx.createBufferSource();
    source.buffer = (await this.sounds)[k];
    source.connect(this.ctx.destination);
    source.onended = onEnd;
    source.start();
    return source;
  }

  calibrationPage() {
    this.root.replaceChildren();
    const status = el("div", { class: "hc-status" }, "Loading the sounds…");
    const play = el("button", { "data-role": "calibrate" }, "▶ Play the calibration noise");
    const start = el("button", { "data-role": "start-check" }, "Start the check");
    play.disabled = start.disabled = true;
    this.sounds.then(() => {
      status.textContent = "";
      play.disabled = start.disabled = false;
      this.root.dataset.ready = "1";
    }, (err) => { status.textContent = `Could not load audio: ${err.message}`; });
    play.addEventListener("click", async () => {
      play.disabled = true;
      await this.play(0, () => { play.disabled = false; });
    });
    start.addEventListener("click", () => this.next());
    const row = el("div", { class: "hc-row" });
    row.append(play, start);
    this.root.append(
      el("p", {}, "Put on your headphones. Play the noise and set a comfortable volume; keep it for the rest of " +
                  "the test."), row, status);
  }

  next() {
    this.index += 1;
    if (this.index >= this.data.trials) {
      this.root.replaceChildren(el("div", { class: "hc-status" }, "Saving…"));
      this.send("result", { responses: this.responses });
      return;
    }
    const index = this.index;
    this.root.replaceChildren();
    this.root.dataset.trial = String(index);
    const bursts = [1, 2, 3].map((k) => el("div", { class: "hc-burst" }, String(k)));
    const row = el("div", { class: "hc-row" });
    row.append(...bursts);
    const status = el("div", { class: "hc-status" });
    const play = el("button", { "data-role": "play-check" }, "▶ Play");
    const answers = el("div", { class: "hc-row" });
    const choose = [1, 2, 3].map((k) => {
      const b = el("button", { "data-role": "answer-check", "data-value": String(k) }, `Sound ${k}`);
      b.disabled = true;
      b.addEventListener("click", () => { this.responses[index] = k; this.next(); });
      return b;
    });
    answers.append(...choose);
    play.addEventListener("click", async () => {
      play.disabled = true;
      const t0 = this.ctx.currentTime;
      const light = setInterval(() => {
        const t = this.ctx.currentTime - t0;
        bursts.forEach((b, k) => {
          const start = k * (this.data.burst_s + this.data.gap_s);
          b.classList.toggle("lit", t >= start && t < start + this.data.burst_s);
        });
      }, 30);
      await this.play(index + 1, () => {
        clearInterval(light);
        bursts.forEach((b) => b.classList.remove("lit"));
        choose.forEach((b) => { b.disabled = false; });
        status.textContent = "Which sound held a faint tone?";
      });
    });
    const playRow = el("div", { class: "hc-row" });
    playRow.append(play);
    this.root.append(el("p", {}, `Sound check ${index + 1} of ${this.data.trials}: three noises play once. One ` +
                                 "of them holds a faint tone. Which one?"), row, playRow, status, answers);
  }
}

export default function ({ parentElement, data, setTriggerValue }) {
  const root = parentElement.querySelector(".hc") || parentElement;
  if (!root.__check) root.__check = new Check(root, data, setTriggerValue);
  return () => setTimeout(() => {
    if (root.__check && !root.isConnected) { root.__check.ctx.close(); root.__check = null; }
  }, 0);
}
