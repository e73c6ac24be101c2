#!/usr/bin/env python3
"""Build evalkit's demo corpus (committed, data/demo/) and optional training corpus (not committed).

Sources (all openly licensed, all from Debian packages or PyPI):
  * Debian ``sonic-pi-samples``: CC0 music and ambience samples, FLAC 44.1 kHz (``loop_amen*`` left out);
  * Debian ``asterisk-core-sounds-en-g722``: recorded English prompts (Allison Smith), CC-BY-SA-3.0,
    raw G.722 at 16 kHz, decoded with the PyPI package ``g722``; their texts from ``asterisk-core-sounds-en``
    (``core-sounds-en.txt.gz``);
  * Debian ``festival`` + ``festvox-us-slt-hts``: synthetic speech (CMU SLT HTS voice) at 32 kHz;
  * PyPI ``music21``: public-domain Bach chorales, rendered by PyPI ``tinysoundfont`` through the MIT-licensed
    FluidR3 General MIDI SoundFont (Debian ``fluid-soundfont-gm``).

Every item is resampled to 44.1 kHz with soxr, loudness-normalised to -23 LUFS (ITU-R BS.1770) with its
peak kept under -1 dBFS, and written as 16-bit FLAC, with MANIFEST.csv describing it. Speech items whose words
are known (the Asterisk prompts' texts, the sentences given to Festival) get a ``text`` column: the words whose
middle lies inside the item's excerpt, by PocketSphinx forced alignment of the whole text to the whole recording.

Usage (as root on Debian; needs: apt-get install festival festvox-us-slt-hts;
pip install g722 music21 pocketsphinx && pip install --no-deps tinysoundfont):
    python scripts/build_demo_corpus.py                      # data/demo (≈ 8 MB, 12 items)
    python scripts/build_demo_corpus.py --train data/train   # also ≥ 30 min for QinCodec training
"""

from __future__ import annotations

import argparse
import csv
import gzip
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyloudnorm
import soundfile as sf
import soxr

RATE = 44_100
TARGET_LUFS = -23.0
PEAK_LIMIT = 10 ** (-1 / 20)
MAX_TRAIN_CHORALES = 40
DEMO_MAX_S = 10.0  # demo items are cut to this length
DEBS = ("sonic-pi-samples", "asterisk-core-sounds-en-g722", "asterisk-core-sounds-en", "fluid-soundfont-gm")
SONIC_PI = "usr/share/sonic-pi/samples"
ASTERISK = "usr/share/asterisk/sounds/en_US_f_Allison"
ASTERISK_TEXTS = "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
SOUNDFONT = "usr/share/sounds/sf2/FluidR3_GM.sf2"
ALIGN_RATE = 16_000
# Words of the demo texts missing from PocketSphinx's dictionary (ARPAbet, as cmudict spells them)
EXTRA_PRONUNCIATIONS = {"pbx": "P IY B IY EH K S", "waldo's": "W AA L D OW Z", "codecs": "K OW D EH K S"}

LICENCE_SONIC_PI = ("CC0-1.0", "Sonic Pi sample pack (Debian sonic-pi-samples)")
LICENCE_ASTERISK = ("CC-BY-SA-3.0",
                    "Allison Smith / Digium, Asterisk core sounds (Debian asterisk-core-sounds-en-g722)")
LICENCE_FESTIVAL = ("EST-2003 (voice) / synthetic output", "Festival + CMU SLT HTS voice (Debian festvox-us-slt-hts)")
LICENCE_BACH = ("Public domain score; MIT SoundFont",
                "J. S. Bach via music21 corpus, rendered with FluidR3_GM (Debian fluid-soundfont-gm)")

SENTENCES = (
    "Neural audio codecs compress speech and music into a handful of discrete tokens per frame. "
    "Listening tests tell us whether the missing bits can be heard.",
    "Please call Stella. Ask her to bring these things with her from the store: six spoons of fresh snow "
    "peas, five thick slabs of blue cheese, and maybe a snack for her brother Bob.",
)


@dataclass(frozen=True)
class Item:
    name: str
    category: str
    source: str
    licence: str
    attribution: str
    audio: np.ndarray  # [channels, samples] at RATE
    text: str = ""  # the words spoken in the item, when known


def extract_debs(cache: Path) -> Path:
    """``apt-get download`` + ``dpkg-deb -x`` the source packages into ``cache`` (no installation)."""
    root = cache / "root"
    if all((root / p).exists() for p in (SONIC_PI, ASTERISK, ASTERISK_TEXTS, SOUNDFONT)):
        return root
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *DEBS], cwd=cache, check=True)
    for deb in cache.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def to_rate(x: np.ndarray, rate: int) -> np.ndarray:
    x = np.atleast_2d(x.astype(np.float32))
    if rate == RATE:
        return x
    return np.asarray(soxr.resample(x.T, rate, RATE, quality="VHQ"), dtype=np.float32).reshape(-1, x.shape[0]).T


def normalise(x: np.ndarray) -> np.ndarray:
    loudness = pyloudnorm.Meter(RATE).integrated_loudness(x.T.astype(np.float64))
    y = x * np.float32(10 ** ((TARGET_LUFS - loudness) / 20))
    peak = np.abs(y).max()
    return y * np.float32(PEAK_LIMIT / peak) if peak > PEAK_LIMIT else y


def trim(x: np.ndarray, seconds: float, start_s: float = 0.0) -> np.ndarray:
    start = int(start_s * RATE)
    return x[:, start: start + int(seconds * RATE)]


def asterisk_texts(root: Path) -> dict[str, str]:
    """Prompt name -> its text, from ``core-sounds-en.txt.gz`` (lines ``name: text``; ``;`` starts a comment)."""
    texts = {}
    with gzip.open(root / ASTERISK_TEXTS, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            name, sep, text = line.partition(":")
            if sep and not line.startswith(";"):
                texts[name.strip()] = " ".join(text.split())
    return texts


def words_of(token: str) -> list[str]:
    """The words PocketSphinx's dictionary spells for one whitespace-separated token ("PBX." -> ["pbx"])."""
    return re.findall(r"[a-z']+", token.lower())


def spoken_text(audio: np.ndarray, rate: int, text: str, start_s: float, end_s: float) -> str:
    """The part of ``text`` spoken wholly inside ``[start_s, end_s]`` of the whole recording ``audio``.

    PocketSphinx force-aligns every word of ``text`` to the recording (10 ms frames); the tokens of ``text``
    (punctuation kept) whose words have their middle inside the excerpt are returned (a word cut at an edge
    belongs to the side that holds most of it).
    """
    from pocketsphinx import Decoder

    x = np.asarray(soxr.resample(audio.mean(axis=0), rate, ALIGN_RATE, quality="VHQ"), dtype=np.float32)
    decoder = Decoder(samprate=ALIGN_RATE, loglevel="FATAL")
    tokens = text.split()
    words = [w for t in tokens for w in words_of(t)]
    for word in set(words):
        if decoder.lookup_word(word) is None:
            decoder.add_word(word, EXTRA_PRONUNCIATIONS[word], True)
    decoder.set_align_text(" ".join(words))
    decoder.start_utt()
    decoder.process_raw(np.clip(np.round(x * 32768), -32768, 32767).astype("<i2").tobytes(), full_utt=True)
    decoder.end_utt()
    middles = [(seg.start_frame + seg.end_frame + 1) / 200 for seg in decoder.seg()  # 100 frames per second
               if re.sub(r"\(\d+\)$", "", seg.word) in words]  # "the(2)": the second pronunciation of "the"
    if len(middles) != len(words):
        sys.exit(f"build_demo_corpus: aligning {len(words)} words of {text[:40]!r}... gave {len(middles)}")
    kept, n = [], 0
    for token in tokens:
        mine = middles[n: n + len(words_of(token))]
        n += len(mine)
        if mine and all(start_s <= t < end_s for t in mine):
            kept.append(token)
    return " ".join(kept)


def sonic_pi(root: Path, name: str, seconds: float, category: str) -> Item:
    data, rate = sf.read(root / SONIC_PI / f"{name}.flac", dtype="float32", always_2d=True)
    return Item(f"{category}_{name}", category, f"sonic-pi-samples:{name}.flac", *LICENCE_SONIC_PI,
                trim(to_rate(data.T, rate), seconds))


def asterisk(root: Path, name: str, seconds: float | None, start_s: float = 0.0,
             texts: dict[str, str] | None = None) -> Item:
    """A prompt (``seconds`` from ``start_s``; None: all), with its spoken words when ``texts`` are given."""
    import G722

    pcm = np.asarray(G722.G722(16000, 64000).decode((root / ASTERISK / f"{name}.g722").read_bytes()))
    whole = pcm.astype(np.float32)[None] / 32768.0
    x = to_rate(whole, 16000)
    text = ""
    if seconds:
        x = trim(x, seconds, start_s)
        if texts is not None:
            text = spoken_text(whole, 16000, texts[name], start_s, start_s + seconds)
    return Item(f"speech_{name}", "speech", f"asterisk-core-sounds-en-g722:{name}.g722", *LICENCE_ASTERISK, x,
                text)


def festival(text: str, name: str) -> Item:
    if not shutil.which("text2wave"):
        sys.exit("build_demo_corpus: text2wave not found: apt-get install festival festvox-us-slt-hts")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "tts.wav"
        subprocess.run(["text2wave", "-eval", "(voice_cmu_us_slt_arctic_hts)", "-o", str(out)],
                       input=text.encode(), check=True)
        data, rate = sf.read(out, dtype="float32", always_2d=True)
    return Item(f"speech_{name}", "speech", f"festival text2wave: {text[:40]}...", *LICENCE_FESTIVAL,
                to_rate(data.T, rate), spoken_text(data.T, rate, text, 0.0, DEMO_MAX_S))


def bach(root: Path, work: str, seconds: float | None, programs: tuple[int, ...], bpm: float = 84.0,
         category: str = "music") -> Item:
    """Render the first ``seconds`` (None: all) of a music21 chorale, one GM program per part, stereo-panned."""
    import music21
    import tinysoundfont

    score = music21.corpus.parse(work)
    if seconds is None:
        seconds = float(score.highestTime) * 60.0 / bpm + 1.0
    synth = tinysoundfont.Synth(samplerate=RATE)
    sfid = synth.sfload(str(root / SOUNDFONT))
    spq = 60.0 / bpm  # seconds per quarter note
    events = []
    for chan, part in enumerate(score.parts[:4]):
        synth.program_select(chan, sfid, 0, programs[chan % len(programs)])
        synth.control_change(chan, 10, [30, 98, 50, 78][chan % 4])  # pan
        for note in part.flatten().notes:
            for pitch in getattr(note, "pitches", ()):
                t_on = float(note.offset) * spq
                t_off = t_on + float(note.quarterLength) * spq * 0.95
                events += [(t_on, 1, chan, pitch.midi), (t_off, 0, chan, pitch.midi)]
    events.sort()
    total = int(seconds * RATE)
    chunks, cursor = [], 0
    for t, on, chan, key in events:
        at = min(int(t * RATE), total)
        if at > cursor:
            chunks.append(np.frombuffer(synth.generate_simple(at - cursor), dtype=np.float32).copy())
            cursor = at
        if cursor >= total:
            break
        synth.noteon(chan, key, 90) if on else synth.noteoff(chan, key)
    if cursor < total:
        chunks.append(np.frombuffer(synth.generate_simple(total - cursor), dtype=np.float32).copy())
    stereo = np.concatenate(chunks).reshape(-1, 2).T
    name = work.split("corpus/")[-1]
    for extension in (".mxl", ".musicxml", ".xml", ".krn"):
        name = name.removesuffix(extension)
    label = name.replace("/", "_").replace(".", "_")
    return Item(f"{category}_{label}", category, f"music21 corpus:{name}", *LICENCE_BACH, stereo)


def demo_items(root: Path) -> list[Item]:
    texts = asterisk_texts(root)
    return [
        asterisk(root, "demo-congrats", 8.0, 0.5, texts),
        asterisk(root, "basic-pbx-ivr-main", 7.0, 0.3, texts),
        festival(SENTENCES[0], "slt_codecs"),
        festival(SENTENCES[1], "slt_stella"),
        sonic_pi(root, "guit_em9", 7.0, "music"),
        sonic_pi(root, "loop_tabla", 7.0, "music"),
        sonic_pi(root, "loop_garzul", 6.0, "music"),
        bach(root, "bach/bwv66.6", 8.0, (0, 0, 0, 0)),
        bach(root, "bach/bwv4.8", 8.0, (73, 71, 42, 70)),
        sonic_pi(root, "ambi_sauna", 7.0, "other"),
        sonic_pi(root, "vinyl_hiss", 6.0, "other"),
        sonic_pi(root, "loop_3d_printer", 6.0, "other"),
    ]


def write(items: list[Item], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for item in items:
        x = item.audio[:, : int(DEMO_MAX_S * RATE)] if item.category != "train" else item.audio
        x = normalise(x)
        path = out / f"{item.name}.flac"
        sf.write(path, x.T, RATE, subtype="PCM_16")
        rows.append({"file": path.name, "category": item.category, "seconds": f"{x.shape[1] / RATE:.3f}",
                     "source": item.source, "licence": item.licence, "attribution": item.attribution,
                     "text": item.text})
    with open(out / "MANIFEST.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def training_items(root: Path, demo: list[Item]) -> list[Item]:
    """Everything usable that is not in the demo corpus (≥ 30 min)."""
    used = {i.source for i in demo}
    items = []
    for path in sorted((root / ASTERISK).glob("*.g722")):
        item = asterisk(root, path.stem, None)
        if item.source not in used and item.audio.shape[1] > RATE:
            items.append(Item(item.name, "train", *[getattr(item, f) for f in ("source", "licence",
                              "attribution", "audio")]))
    for path in sorted((root / SONIC_PI).glob("*.flac")):
        if path.stem.startswith("loop_amen"):
            continue
        item = sonic_pi(root, path.stem, 30.0, "train")
        if item.source not in used and item.audio.shape[1] > RATE // 2 and np.any(item.audio):
            items.append(item)
    import music21

    for path in music21.corpus.getComposer("bach")[:MAX_TRAIN_CHORALES]:
        item = bach(root, str(path), None, (0, 48, 42, 70), category="train")
        if item.source not in used:
            items.append(item)
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/demo"))
    parser.add_argument("--train", type=Path, help="also build the training corpus into this folder")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "evalkit" / "corpus-debs")
    args = parser.parse_args()
    root = extract_debs(args.cache)
    demo = demo_items(root)
    write(demo, args.out)
    total = sum(p.stat().st_size for p in args.out.glob("*.flac")) / 1e6
    print(f"demo corpus: {len(demo)} items, {total:.1f} MB in {args.out}")
    if args.train:
        train = training_items(root, demo)
        write(train, args.train)
        minutes = sum(i.audio.shape[1] for i in train) / RATE / 60
        print(f"training corpus: {len(train)} items, {minutes:.1f} min in {args.train}")


if __name__ == "__main__":
    main()
