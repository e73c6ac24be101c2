"""``evalkit listen prepare|serve|analyze|plan``: listening tests from a run's decoded audio."""

from __future__ import annotations

import argparse


def add_parsers(sub) -> None:
    """Register ``listen`` and its subcommands on an argparse subparsers object."""
    listen = sub.add_parser("listen", help="listening tests (MUSHRA, AB, ABX, ACR, DCR, BS.1116)").add_subparsers(
        dest="action", required=True)
    prepare = listen.add_parser("prepare", help="stimuli and a test definition from an evaluation run")
    prepare.add_argument("--run", required=True, help="run folder (holds results.sqlite and cache/decoded)")
    prepare.add_argument("--design", required=True, choices=["mushra", "ab", "abx", "acr", "dcr", "bs1116"],
                         help="mushra (BS.1534-3), ab, abx, acr / dcr (ITU-T P.800/P.808), bs1116 (ITU-R BS.1116-3)")
    prepare.add_argument("--items", type=int, help="number of items (default: all with every condition)")
    prepare.add_argument("--conditions", nargs="+", metavar="SPEC", help="codec specs of the run (default: all)")
    prepare.add_argument("--listeners", type=int, default=12, help="listener slots for the balanced design")
    prepare.add_argument("--seed", type=int, default=0, help="seed of item choice and orders (default 0)")
    prepare.add_argument("--repeats", type=int, default=1, help="ab/abx: presentations of each pair per listener")
    prepare.add_argument("--excerpt-seconds", type=float, default=10.0,
                         help="excerpt length in s (default 10; items up to 1.2 times this are kept whole)")
    prepare.add_argument("--loudness-lufs", type=float, default=-23.0,
                         help="loudness of every stimulus, LUFS (default -23; lowered for all if one would clip)")
    prepare.add_argument("--label", action="append", metavar="SPEC=NAME",
                         help="display label of a condition in outputs (repeatable; default: short labels)")
    prepare.add_argument("--instructions", metavar="FILE", help="Markdown instructions for the welcome page")
    prepare.add_argument("--consent", metavar="FILE", help="Markdown consent text (the participant must agree)")
    prepare.add_argument("--trial-instructions", metavar="FILE",
                         help='Markdown shown above every trial, or FILE.json: {"ITEM" or "*": Markdown}')
    prepare.add_argument("--require-training", action="store_true", help="no 'skip training' button")
    prepare.add_argument("--headphone-check", action="store_true",
                         help="Huggins-pitch headphone screening before training (results stored)")
    prepare.add_argument("--questionnaire", metavar="FILE.yaml",
                         help="your finish-page questions (id, text, type choice|text|number, choices, required), "
                              "asked after age range, expertise, headphones and comments")
    prepare.add_argument("--out", required=True, help="new test folder")
    prepare.set_defaults(func=prepare_command)

    serve = listen.add_parser("serve", help="run the test in a browser (Streamlit)")
    serve.add_argument("test_dir", help="folder made by `evalkit listen prepare`")
    serve.add_argument("--port", type=int, default=8501)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--admin-token", help="token of the admin page (default: $EVALKIT_ADMIN_TOKEN, else a random "
                                             "one, printed; the environment keeps it out of `ps`)")
    serve.add_argument("--base-url-path", default="", metavar="PATH",
                       help="serve under /PATH/ (behind a reverse proxy)")
    serve.add_argument("--completion-code", metavar="CODE", help="shown on the end page (e.g. for Prolific)")
    serve.add_argument("--no-prefetch", action="store_true",
                       help="do not fetch the next trial's audio during the current trial")
    serve.add_argument("--slot-idle-minutes", type=float, default=30.0, metavar="N",
                       help="an unfinished participant idle for N minutes gives its design slot back (default 30)")
    serve.set_defaults(func=serve_command)

    analyze = listen.add_parser("analyze", help="post-screening, means with 95%% CIs, mixed-model comparisons")
    analyze.add_argument("test_dir", nargs="?", help="test folder (its listening.sqlite)")
    analyze.add_argument("--ratings", help="long-format CSV: assessor,item,condition,score")
    analyze.add_argument("--test", choices=["mixed", "t", "wilcoxon", "permutation"], default="mixed",
                         help="MUSHRA comparison: mixed model on all ratings (default), paired t, Wilcoxon or "
                              "sign-flip permutation on assessor means")
    analyze.add_argument("--versus", metavar="CONDITION",
                         help="compare CONDITION (name, spec or label) with each other condition")
    analyze.add_argument("--min-played", type=float, metavar="P",
                         help="leave out trials in which a stimulus was heard for less than P %% of its length "
                              "(server-checked listening time; test folder only)")
    _panel_options(analyze)
    analyze.add_argument("--json", action="store_true", help="one JSON object")
    analyze.set_defaults(func=analyze_command)

    plan = listen.add_parser("plan", help="panel size: MUSHRA assessors needed to detect a difference from a pilot, "
                                          "or the power of an AB/ABX panel (simulated)")
    plan.add_argument("--design", choices=("mushra", "ab", "abx"), default="mushra",
                      help="mushra (default: from a pilot, --difference) or ab/abx (--answers, --preference)")
    plan.add_argument("--pilot", metavar="TEST_DIR", help="pilot test folder")
    plan.add_argument("--ratings", help="pilot ratings CSV: assessor,item,condition,score")
    plan.add_argument("--difference", type=float, metavar="D",
                      help="mushra: true difference to detect, in MUSHRA points")
    plan.add_argument("--answers", type=int, metavar="K",
                      help="ab/abx: decisive answers per listener for the pair")
    plan.add_argument("--preference", type=float, metavar="P",
                      help="ab: true share of answers preferring one side; abx: true share of correct answers")
    plan.add_argument("--listeners", type=int, metavar="N", help="ab/abx: also give the power of this panel")
    plan.add_argument("--power", type=float, default=0.8, help="target power (default 0.8)")
    plan.add_argument("--alpha", type=float, default=0.05, help="family-wise alpha (default 0.05)")
    plan.add_argument("--pairs", type=int, help="comparisons sharing alpha (default: the pilot analysis' pairs)")
    plan.add_argument("--items", type=int, help="items per assessor in the planned test (default: the pilot's)")
    plan.add_argument("--versus", metavar="CONDITION", help="plan CONDITION against each other condition")
    plan.add_argument("--sims", type=int, default=2000, help="simulated panels per panel size (default 2000)")
    plan.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    _panel_options(plan)
    plan.add_argument("--json", action="store_true", help="one JSON object")
    plan.set_defaults(func=plan_command)


def _panel_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--include-incomplete", action="store_true",
                        help="also analyse assessors who did not finish all their trials")
    parser.add_argument("--exclude-headphone-fail", action="store_true",
                        help="leave out assessors who did not pass the test's headphone check")
    parser.add_argument("--label", action="append", metavar="SPEC=NAME",
                        help="display label of a condition (name or spec); repeatable")


def _label_overrides(options: list[str] | None) -> dict[str, str]:
    from evalkit.labels import parse_label_options
    from evalkit.listening.errors import ListenError

    try:
        return parse_label_options(options or ())
    except ValueError as exc:
        raise ListenError(str(exc)) from None


def prepare_command(args: argparse.Namespace) -> int:
    from evalkit.listening.model import Design
    from evalkit.listening.prepare.design import PrepareOptions, prepare_test
    from evalkit.listening.prepare.texts import read_text_file, read_trial_instructions
    from evalkit.listening.questionnaire import load_questionnaire

    options = PrepareOptions(Design(args.design), items=args.items, conditions=tuple(args.conditions or ()),
                             listeners=args.listeners, seed=args.seed, excerpt_s=args.excerpt_seconds,
                             target_lufs=args.loudness_lufs, repeats=args.repeats,
                             labels=tuple(_label_overrides(args.label).items()),
                             instructions=read_text_file("--instructions", args.instructions),
                             consent=read_text_file("--consent", args.consent),
                             trial_instructions=read_trial_instructions(args.trial_instructions),
                             require_training=args.require_training, headphone_check=args.headphone_check,
                             questionnaire=load_questionnaire(args.questionnaire) if args.questionnaire else ())
    definition = prepare_test(args.run, args.out, options)
    n_trials = len(definition.slots[0])
    extra = " (+ hidden reference; anchors included)" if definition.design == "mushra" else ""
    print(f"{args.out}: {definition.design} test, {len(definition.items)} items, "
          f"{len(definition.conditions)} conditions{extra}, {len(definition.stimuli)} stimuli, "
          f"{len(definition.slots)} listener slots of {n_trials} trials; loudness {definition.target_lufs} LUFS"
          + ("; headphone check" if definition.headphone else "")
          + (f"; {len(definition.questionnaire)} own questions" if definition.questionnaire else ""))
    print("  conditions: " + "; ".join(f"{definition.labels.get(c, c)} = {c}" for c in definition.conditions))
    for note in definition.notes:
        print(f"  {note}")
    print(f"next: evalkit listen serve {args.out}")
    return 0


def serve_command(args: argparse.Namespace) -> int:
    from evalkit.listening.web.serve import serve

    return serve(args.test_dir, host=args.host, port=args.port, admin_token=args.admin_token,
                 base_url_path=args.base_url_path, completion_code=args.completion_code,
                 prefetch=not args.no_prefetch, slot_idle_minutes=args.slot_idle_minutes)


def _panel(args: argparse.Namespace, command: str):
    from evalkit.listening.analysis.panel import select_panel
    from evalkit.listening.errors import ListenError

    folder = args.test_dir if command == "analyze" else args.pilot
    if (folder is None) == (args.ratings is None):
        raise ListenError(f"listen {command}: give either {'TEST_DIR' if command == 'analyze' else '--pilot TEST_DIR'}"
                          f" or --ratings FILE.csv")
    return select_panel(folder, args.ratings, args.include_incomplete, args.exclude_headphone_fail,
                        _label_overrides(args.label), min_played_pct=getattr(args, "min_played", None))


def analyze_command(args: argparse.Namespace) -> int:
    import json

    from evalkit.listening.analysis.report import format_report, panel_report

    report = panel_report(_panel(args, "analyze"), test=args.test, versus=args.versus)
    print(json.dumps(report) if args.json else format_report(report))
    return 0


def plan_command(args: argparse.Namespace) -> int:
    import json

    if args.design != "mushra":
        return _plan_choices(args)
    if args.difference is None:
        from evalkit.listening.errors import ListenError

        raise ListenError("listen plan: --difference D is required for a MUSHRA plan")
    from evalkit.listening.analysis.report import plan_report
    from evalkit.listening.analysis.text import format_plan

    plan = plan_report(_panel(args, "plan"), args.difference, power=args.power, alpha=args.alpha,
                       pairs=args.pairs, items=args.items, versus=args.versus, sims=args.sims, seed=args.seed)
    print(json.dumps(plan) if args.json else format_plan(plan))
    return 0


def _plan_choices(args: argparse.Namespace) -> int:
    """``listen plan --design ab|abx``: listeners needed for ``--power``, and the power of ``--listeners``."""
    import json

    from evalkit.listening.analysis.text import format_choice_plan
    from evalkit.listening.errors import ListenError
    from evalkit.stats.choice_power import choice_power, listeners_needed

    if args.answers is None or args.preference is None:
        raise ListenError(f"listen plan --design {args.design}: give --answers K and --preference P")
    if args.answers < 1 or not 0 <= args.preference <= 1 or (args.listeners is not None and args.listeners < 2):
        raise ListenError(f"listen plan --design {args.design}: expected --answers >= 1, 0 <= --preference <= 1 and "
                    f"--listeners >= 2")
    abx = args.design == "abx"
    common = {"abx": abx, "alpha": args.alpha, "sims": args.sims, "seed": args.seed}
    plan = {"design": args.design, "answers": args.answers, "preference": args.preference, "alpha": args.alpha,
            "target_power": args.power, "sims": args.sims, "seed": args.seed,
            "test": "one-sample t over listeners' shares vs 0.5 (" + ("greater" if abx else "two-sided")
                    + "), exact sign-flip when all shares are equal",
            "listeners_needed": listeners_needed(args.answers, args.preference, target=args.power, **common)}
    if args.listeners is not None:
        plan["listeners"] = args.listeners
        plan["power"] = choice_power(args.listeners, args.answers, args.preference, **common)
    print(json.dumps(plan) if args.json else format_choice_plan(plan))
    return 0
