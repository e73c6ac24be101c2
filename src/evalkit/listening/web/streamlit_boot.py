"""The Streamlit process of ``evalkit listen serve``: ``python -m evalkit.listening.web.streamlit_boot APP [options]``.

Before handing over to ``streamlit run``, it removes what Streamlit (1.67) would tell every browser about the
server's files: the app's absolute path in the session message (``main_script_path``) and, on request, the
git repository holding it (name, branch, untracked and uncommitted file names). It also bounds the web server's
graceful shutdown: uvicorn would otherwise wait on SIGTERM until every download in flight (a trial bundle to a
slow participant takes many seconds) has finished. The app itself runs unchanged.
"""

from __future__ import annotations

import sys

SHUTDOWN_S = 0.5  # after SIGTERM, open HTTP responses get this long before they are cancelled


def bound_shutdown() -> None:
    """Give uvicorn a graceful-shutdown timeout of ``SHUTDOWN_S`` (Streamlit sets none)."""
    from streamlit.web.server.starlette import starlette_server

    kwargs = getattr(starlette_server, "_get_uvicorn_config_kwargs", None)
    if kwargs is None or getattr(kwargs, "_evalkit_bounded", False):
        return

    def bounded() -> dict:
        return {**kwargs(), "timeout_graceful_shutdown": SHUTDOWN_S}

    bounded._evalkit_bounded = True
    starlette_server._get_uvicorn_config_kwargs = bounded


def hide_server_paths() -> None:
    """Patch Streamlit's session so that no filesystem path or git information is sent to a browser."""
    from streamlit.runtime.app_session import AppSession

    if getattr(AppSession, "_evalkit_paths_hidden", False):
        return
    new_session_message = AppSession._create_new_session_message

    def without_path(self, *args, **kwargs):
        msg = new_session_message(self, *args, **kwargs)
        msg.new_session.main_script_path = ""
        return msg

    AppSession._create_new_session_message = without_path
    AppSession._handle_git_information_request = lambda self: None
    AppSession._evalkit_paths_hidden = True


def main(argv: list[str]) -> None:
    hide_server_paths()
    bound_shutdown()
    from streamlit.web.cli import main as streamlit_main

    sys.argv = ["streamlit", "run", *argv]
    streamlit_main(prog_name="streamlit")


if __name__ == "__main__":
    main(sys.argv[1:])
