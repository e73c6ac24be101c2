"""The browser side of the listening test: ES modules and styles for Streamlit's components v2, as files.

``audio.mjs`` (fetching and splitting trial bundles) is shared: :func:`component_js` puts it in front of a page
module (``player.mjs``, ``headphone.mjs``), because a components-v2 module is one inline script and cannot import a
sibling file.
"""

from __future__ import annotations

from importlib.resources import files

SHARED = "audio.mjs"
HTML = {"player": '<div class="lt"><div class="lt-status">Loading audio…</div></div>',
        "headphone": '<div class="hc"><div class="hc-status">Loading…</div></div>'}


def asset(name: str) -> str:
    """The text of one file of this folder."""
    return (files(__package__) / name).read_text(encoding="utf-8")


def component_js(page: str) -> str:
    """The module a component runs: the shared audio code, then ``<page>.mjs``."""
    return asset(SHARED) + "\n" + asset(f"{page}.mjs")


def component(page: str) -> dict[str, str]:
    """``html``, ``css`` and ``js`` of the component ``page`` ("player" or "headphone")."""
    return {"html": HTML[page], "css": asset(f"{page}.css"), "js": component_js(page)}
