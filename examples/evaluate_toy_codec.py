"""Evaluate the toy plugin codec (examples/toy-codec) against Opus and the BS.1534-3 anchors on the demo corpus.

    python examples/evaluate_toy_codec.py [--items 4] [--seconds 3] [--workers 2] [--output runs/toy-vs-opus]

It uses nothing but evalkit's public API and a plugin that evalkit does not know about: when the toy codec's
package is installed (``pip install examples/toy-codec``) its entry point provides the ``toy-mulaw`` family;
otherwise the script names the plugin file in the config's ``plugins:``. It prints the mean of each metric per
variant (short labels), the BD-rate of the toy codec against Opus on the mel distance, and where the run folder
is (``evalkit report RUN_DIR`` makes the HTML report of it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import evalkit

HERE = Path(__file__).resolve().parent
PLUGIN_FILE = HERE / "toy-codec" / "toy_codec.py"
DEMO = HERE.parent / "data" / "demo"


def build_config(items: int, seconds: float, workers: int, output: str) -> dict:
    """The run config: toy codec at 16/24/32 kbps, Opus at 12-32 kbps, the 3.5 and 7 kHz anchors."""
    from evalkit.codecs import FAMILIES

    installed = "toy-mulaw" in FAMILIES  # reads the installed packages' evalkit.codecs entry points
    return {
        "dataset": {"folder": str(DEMO), "glob": "*.flac", "max_items": items, "segment_seconds": seconds},
        "plugins": [] if installed else [str(PLUGIN_FILE)],
        "codecs": [{"family": "toy-mulaw", "params": {"bits": [2, 3, 4]}},
                   {"family": "opus", "params": {"bitrate_kbps": [12, 16, 24, 32]}},
                   {"spec": "lowpass?cutoff_hz=3500"}, {"spec": "lowpass?cutoff_hz=7000"}],
        "metrics": ["si_sdr", "mel_distance"],
        "channel_policy": "mono",  # every codec codes the downmix: bitrates stay the nominal ones
        "output": output,
        "workers": workers,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=4, help="demo items to use (default 4)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of each item (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--output", default="runs/toy-vs-opus", help="run folder (default runs/toy-vs-opus)")
    args = parser.parse_args(argv)

    run = evalkit.run(build_config(args.items, args.seconds, args.workers, args.output), progress=True)
    summary = run.summary
    table = summary.pivot_table(index="label", columns="metric", values="mean")
    table.insert(0, "kbps", summary.groupby("label")["bitrate_kbps"].mean())
    print(table.sort_values(["kbps", "mel_distance"], na_position="last").round(3).to_string())

    from evalkit.analysis.compare import compare, format_comparison

    print()
    print(format_comparison(compare(run.rate_quality, "mel_distance", anchor="opus")))
    print(f"\nrun folder: {run.run_dir} (evalkit report {run.run_dir})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
