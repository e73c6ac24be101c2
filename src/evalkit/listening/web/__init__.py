"""``evalkit listen serve``: the server process (:mod:`.serve`, :mod:`.streamlit_boot`), the Streamlit pages
(:mod:`.app`, :mod:`.admin_view`), a participant's session (:mod:`.session`), per-participant trial bundles
(:mod:`.bundle`) and the browser's modules and styles (``*.mjs``, ``*.css``, loaded by :mod:`.assets`).

An outer shell like the CLI: nothing else in :mod:`evalkit.listening` imports it."""
