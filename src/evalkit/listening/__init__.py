"""Listening tests: prepare stimuli from a run (``design``), store every trial (``storage``), serve them in a
Streamlit app (``app``) with a Web Audio player (``player``); statistics live in :mod:`evalkit.analysis`."""
