"""Listening tests: prepare stimuli from a run (``design``), store every trial (``storage``), serve them in a
Streamlit app (``app``) with a Web Audio player (``player``); the analysis is :mod:`evalkit.listening.analysis`
(on the pure statistics of :mod:`evalkit.stats`)."""
