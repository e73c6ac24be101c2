"""Listening tests, split by concern:

- :mod:`~evalkit.listening.model`: the records of a test and its definition file (``test.json``);
  :mod:`~evalkit.listening.questionnaire`: the finish page's questions and answers.
- :mod:`~evalkit.listening.prepare`: ``listen prepare``: stimuli cut from a run, loudness-matched and assigned to
  listeners, and the headphone check's signals.
- :mod:`~evalkit.listening.storage`: every participant, trial, rating and answer in ``listening.sqlite``.
- :mod:`~evalkit.listening.web`: ``listen serve``: the Streamlit app, the participant's session, the browser's
  player (real ``.mjs``/``.css`` files). An outer shell like the CLI: it may use the report's tables and figures.
- :mod:`~evalkit.listening.analysis`: ``listen analyze`` and ``listen plan``: which assessors count, the statistics
  per design (on :mod:`evalkit.stats`) and the JSON and text reports.
"""
