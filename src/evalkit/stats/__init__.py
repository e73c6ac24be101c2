"""Statistics over evaluation results: pure functions returning typed records, no I/O, importing nothing from
evalkit (only numpy, scipy, statsmodels and pandas; ``tests/stats/test_purity.py`` holds it to that)."""
