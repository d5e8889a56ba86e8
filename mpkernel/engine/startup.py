"""The user's IPython configuration and start-up code, as ipykernel runs them (main thread).

ipykernel's `IPKernelApp` is an IPython application: it reads the profile's
``ipython_config.py`` and ``ipython_kernel_config.py`` (``$IPYTHONDIR/profile_<name>/``, plus
the system and environment config dirs), creates the shell with that config, then, before
the first request, loads the extensions and runs the start-up code through IPython's own
`InteractiveShellApp`: the profile's ``startup/*.py|*.ipy`` files, ``exec_lines``,
``exec_files`` (all hidden from ``%who``), then ``code_to_run``. `StartupApp` is the same
pair of IPython classes, so the files, the order and the error handling are IPython's: an
error is shown (a traceback on IOPub, held until the frontend subscribes) and logged, and
the kernel starts anyway. `StartupApp` does not parse the command line (the kernel's own is
not IPython's) nor install IPython's crash handler (the kernel has its own excepthook).
"""

from __future__ import annotations

import logging
from typing import Any

from IPython.core.application import BaseIPythonApplication
from IPython.core.shellapp import InteractiveShellApp
from traitlets import Bool, Unicode
from traitlets.config import Config

log = logging.getLogger(__name__)


class StartupApp(BaseIPythonApplication, InteractiveShellApp):
    """IPython's profile and config loading and its start-up code runner."""

    # ipykernel's name: its config file is `ipython_kernel_config.py` (after
    # `ipython_config.py`), so a profile written for ipykernel works unchanged.
    name = Unicode("ipython-kernel")
    # A failing `code_to_run` must not end the kernel (IPython exits unless interactive).
    interact = Bool(True)

    def init_crash_handler(self) -> None:
        """The kernel keeps its own `sys.excepthook`."""


def load() -> StartupApp:
    """The profile's configuration, read now (before the shell is created with it). A
    config file that fails is logged and skipped, as in ipykernel."""
    app = StartupApp()
    app.log = log
    app.initialize([])
    # ipykernel's own section (`c.IPKernelApp.exec_lines`) configures the same traits, and
    # it is the more specific one there.
    section = app.config.get("IPKernelApp", {})
    ours = {key: value for key, value in section.items() if app.has_trait(key)}
    if ours:
        app.update_config(Config({"StartupApp": ours}))
    return app


def run(app: StartupApp, shell: Any) -> None:
    """Load the extensions and run the start-up code in `shell`'s namespace, in IPython's
    order. Nothing here raises: each failure is shown and logged by IPython."""
    app.shell = shell
    try:
        app.init_gui_pylab()
    except Exception:
        log.exception("the configured GUI or matplotlib integration failed")
    app.init_extensions()
    app.init_code()
