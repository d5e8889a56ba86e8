"""The execution engine: IPython's InteractiveShell adapted to the funnel.

Runs on the main thread only. User code executes here; everything it shows (results,
displays, errors, pager payloads) is turned into funnel items tagged with the request
being executed, so the io thread can publish them in order.
"""

from __future__ import annotations

import atexit
import builtins
import getpass
import logging
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

from IPython.core import page, payloadpage
from IPython.core.completer import provisionalcompleter, rectify_completions
from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.payload import PayloadManager
from IPython.utils.tokenutil import token_at_cursor

from mpkernel.engine.compat import without_kernel_frames
from mpkernel.engine.history_writes import DeferredHistoryWrites
from mpkernel.engine.magics import register_magics
from mpkernel.engine.request_context import RequestContext
from mpkernel.engine.startup import StartupApp
from mpkernel.engine.stream_history import StreamHistory
from mpkernel.funnel.capture import FdCapture, FunnelWriter
from mpkernel.funnel.items import InputRequest, Publish
from mpkernel.funnel.outbox import Outbox
from mpkernel.funnel.stdin import InputWaiter

log = logging.getLogger(__name__)


class _Outputs:
    """What the display hook, publisher and traceback hook share: outbox + context."""

    def __init__(self, outbox: Outbox, context: RequestContext, capture: FdCapture) -> None:
        self.outbox = outbox
        self.context = context
        self.capture = capture

    def publish(self, msg_type: str, content: Mapping[str, Any]) -> None:
        # fd-level text written before this output goes out before it.
        self.capture.collect(self.context.parent)
        self.outbox.put(Publish(msg_type, content, self.context.parent))


class FunnelDisplayHook(DisplayHook):
    """Sends `execute_result` through the funnel instead of printing `Out[n]`."""

    # The result being displayed, per thread: the main shell and a subshell may display
    # results at the same time.
    _content: threading.local = threading.local()

    def start_displayhook(self) -> None:
        self._content.value = {"execution_count": self.prompt_count, "data": {}, "metadata": {}}

    def write_output_prompt(self) -> None:
        pass

    def write_format_data(self, format_dict: Any, md_dict: Any = None) -> None:
        content = getattr(self._content, "value", None)
        if content is not None:
            content["data"] = format_dict
            content["metadata"] = md_dict or {}

    def finish_displayhook(self) -> None:
        content = getattr(self._content, "value", None)
        self._content.value = None
        if content is not None and content["data"]:
            self.shell_outputs().publish("execute_result", content)

    def shell_outputs(self) -> _Outputs:
        outputs: _Outputs = self.shell.mp_outputs  # type: ignore[union-attr]
        return outputs


class FunnelDisplayPublisher(DisplayPublisher):
    """Sends `display_data` / `update_display_data` / `clear_output` through the funnel."""

    def publish(
        self,
        data: Any,
        metadata: Any = None,
        source: Any = None,
        *,
        transient: Any = None,
        update: bool = False,
        **kwargs: Any,
    ) -> None:
        content = {"data": data, "metadata": metadata or {}, "transient": transient or {}}
        self._outputs().publish("update_display_data" if update else "display_data", content)

    def clear_output(self, wait: bool = False) -> None:
        self._outputs().publish("clear_output", {"wait": wait})

    def _outputs(self) -> _Outputs:
        outputs: _Outputs = self.shell.mp_outputs
        return outputs


class ZMQInteractiveShell(InteractiveShell):
    """InteractiveShell whose outputs go to the funnel.

    Named as ipykernel names its shell, because that is what it is (a shell whose frontends
    talk to it over ZMQ) and because libraries (rich, plotly) decide by this name whether
    they render for a Jupyter frontend or a terminal.
    """

    displayhook_class = FunnelDisplayHook
    display_pub_class = FunnelDisplayPublisher
    mp_outputs: _Outputs
    # The error dict set by _showtraceback during run_cell, per thread (see `last_error`).
    _last_errors: threading.local = threading.local()
    #: `get_ipython().kernel`: set once the kernel's parts exist (`kernel_object`)
    kernel: Any = None

    @property
    def last_error(self) -> Any:
        return getattr(self._last_errors, "value", None)

    @last_error.setter
    def last_error(self, value: Any) -> None:
        self._last_errors.value = value

    def get_parent(self) -> dict[str, Any]:
        """The request being served, as a message dict (ipykernel's shell has this)."""
        return self.mp_outputs.context.parent_message()

    def set_parent(self, parent: Mapping[str, Any]) -> None:
        """Make outputs belong to `parent` (ipywidgets' Output widget calls this)."""
        self.mp_outputs.context.adopt(parent)

    def _get_exc_info(self, exc_tuple: Any = None) -> tuple[Any, Any, Any]:
        etype, value, tb = super()._get_exc_info(exc_tuple)
        trimmed = without_kernel_frames(tb)
        if trimmed is not tb:
            # %debug and pdb.pm() start from the user's innermost frame too.
            sys.last_traceback = trimmed
            if value is not None:
                value.__traceback__ = trimmed
        return etype, value, trimmed

    @contextmanager
    def _tee(self, channel: Literal["stdout", "stderr"]) -> Iterator[None]:
        """IPython's recording of a cell's stream text (see `stream_history`)."""
        stream = getattr(sys, channel)
        if self.mp_outputs.context.on_subshell:
            # The writers' tee is the main shell's; a subshell cell's text is not recorded.
            yield
            return
        if not isinstance(stream, FunnelWriter):
            with super()._tee(channel):
                yield
            return
        outer = stream.tee
        stream.tee = StreamHistory(self, channel, outer)
        try:
            yield
        finally:
            stream.tee = outer

    def init_hooks(self) -> None:
        super().init_hooks()
        # Pager output (e.g. `zip?`) becomes a `page` payload on the execute_reply.
        self.set_hook("show_in_pager", page.as_hook(payloadpage.page), 99)

    def _showtraceback(self, etype: Any, evalue: Any, stb: list[str]) -> None:
        content = {
            "ename": getattr(etype, "__name__", str(etype)),
            "evalue": str(evalue),
            "traceback": list(stb),
        }
        self.last_error = content
        self.mp_outputs.publish("error", content)

    def set_next_input(self, text: str, replace: bool = False) -> None:
        self._payloads().write_payload(
            {"source": "set_next_input", "text": text, "replace": replace}
        )

    def _payloads(self) -> PayloadManager:
        manager: PayloadManager | None = self.payload_manager
        assert manager is not None, "InteractiveShell.init_payload always sets it"
        return manager

    def ask_exit(self) -> None:
        self.exit_now = True
        self._payloads().write_payload({"source": "ask_exit", "keepkernel": False})

    def enable_gui(self, gui: str | None = None) -> None:
        if gui not in (None, "inline"):
            raise UsageError(f"mpkernel has no {gui!r} event loop integration; use inline")


class ExecutionEngine:
    """Runs requests that need the interpreter; one method per shell request type."""

    def __init__(
        self,
        outbox: Outbox,
        capture: FdCapture,
        compiler_class: type | None = None,
        startup: StartupApp | None = None,
    ) -> None:
        """`startup`: the user's IPython profile, whose config the shell is made with."""
        self.outbox = outbox
        self.context = RequestContext()
        options: dict[str, Any] = {}
        if compiler_class is not None:
            options["compiler_class"] = compiler_class
        if startup is not None:
            options.update(config=startup.config, profile_dir=startup.profile_dir)
        self.shell: ZMQInteractiveShell = ZMQInteractiveShell.instance(**options)
        self.shell.mp_outputs = _Outputs(outbox, self.context, capture)
        register_magics(self.shell)
        self.executing = False
        self._hooks_lock = threading.Lock()
        self._hooked = 0
        self._saved_input: tuple[Callable[..., str], Callable[..., str]] = (
            builtins.input,
            getpass.getpass,
        )
        history = self.shell.history_manager
        assert history is not None, "InteractiveShell.init_history always sets it"
        self._history_writes = DeferredHistoryWrites(history)

    # -- execute -----------------------------------------------------------------
    def execute(self, content: Mapping[str, Any]) -> dict[str, Any]:
        shell = self.shell
        code = str(content.get("code", ""))
        silent = bool(content.get("silent", False))
        store_history = bool(content.get("store_history", not silent))
        user_expressions = content.get("user_expressions") or {}
        self.context.allow_stdin = bool(content.get("allow_stdin", True))
        shell.last_error = None
        # Interruptible from before its execute_input: a frontend that saw the cell start
        # and interrupts it must not find the SIGINT ignored because IPython had not yet
        # begun to run it. SIGINT reaches the main thread only: a subshell's cell is not
        # interruptible (docs/subshells.md).
        main = not self.context.on_subshell
        if main:
            self.executing = True
        try:
            if not silent:
                self.outbox.put(
                    Publish(
                        "execute_input",
                        {"code": code, "execution_count": shell.execution_count},
                        self.context.parent,
                    )
                )
            with self._stdin_hooks():
                result = shell.run_cell(code, store_history=store_history, silent=silent)
            success, exc = result.success, result.error_before_exec or result.error_in_exec
        except KeyboardInterrupt as interrupt:
            shell.showtraceback()  # the error goes out like any cell's, and is the reply's
            success, exc = False, interrupt
        finally:
            if main:
                self.executing = False
        if store_history:
            self._history_writes.after_cell()
        reply: dict[str, Any]
        if success:
            reply = {"status": "ok"}
        else:
            # Errors IPython reports without a traceback (UsageError from an unknown
            # magic, for one) are described from the exception itself.
            error: dict[str, Any] = shell.last_error or {
                "ename": type(exc).__name__ if exc is not None else "UnknownError",
                "evalue": str(exc) if exc is not None else "",
                "traceback": [],
            }
            reply = {"status": "error", **error}
        reply["execution_count"] = shell.execution_count - 1
        if reply["status"] == "ok" and isinstance(user_expressions, Mapping):
            reply["user_expressions"] = shell.user_expressions(dict(user_expressions))
        else:
            reply["user_expressions"] = {}
        payloads = shell._payloads()
        reply["payload"] = payloads.read_payload()
        payloads.clear_payload()
        return reply

    @contextmanager
    def _stdin_hooks(self) -> Iterator[None]:
        """`input()` and `getpass` ask the frontend while any shell runs a cell: the first
        cell to start installs them, the last one to end puts the originals back (cells of
        the main shell and of subshells overlap in any order)."""
        with self._hooks_lock:
            if self._hooked == 0:
                self._saved_input = builtins.input, getpass.getpass
                builtins.input = self._input
                getpass.getpass = self._getpass
            self._hooked += 1
        try:
            yield
        finally:
            with self._hooks_lock:
                self._hooked -= 1
                if self._hooked == 0:
                    builtins.input, getpass.getpass = self._saved_input

    def _ask(self, prompt: str, password: bool) -> str:
        if not self.context.allow_stdin or self.context.parent is None:
            # ipykernel's words: people search for this message.
            raise StdinNotImplementedError(
                "raw_input was called, but this frontend does not support input requests."
            )
        sys.stdout.flush()
        sys.stderr.flush()
        waiter = InputWaiter()
        self.outbox.put(
            InputRequest(self.context.identities, self.context.parent, prompt, password, waiter)
        )
        return waiter.wait()

    def _input(self, prompt: object = "") -> str:
        return self._ask(str(prompt), password=False)

    def _getpass(self, prompt: str = "Password: ", stream: Any = None) -> str:
        return self._ask(prompt, password=True)

    # -- introspection -------------------------------------------------------------
    def complete(self, code: str, cursor_pos: int | None) -> dict[str, Any]:
        if cursor_pos is None:
            cursor_pos = len(code)
        with provisionalcompleter():
            completions = list(
                rectify_completions(code, self.shell.Completer.completions(code, cursor_pos))
            )
        if completions:
            start, end = completions[0].start, completions[0].end
        else:
            start = end = cursor_pos
        return {
            "status": "ok",
            "matches": [c.text for c in completions],
            "cursor_start": start,
            "cursor_end": end,
            "metadata": {
                "_jupyter_types_experimental": [
                    {
                        "start": c.start,
                        "end": c.end,
                        "text": c.text,
                        "type": c.type,
                        "signature": c.signature,
                    }
                    for c in completions
                ]
            },
        }

    def inspect(self, code: str, cursor_pos: int | None, detail_level: int) -> dict[str, Any]:
        if cursor_pos is None:
            cursor_pos = len(code)
        name = token_at_cursor(code, cursor_pos)
        reply: dict[str, Any] = {"status": "ok", "found": False, "data": {}, "metadata": {}}
        try:
            bundle = self.shell.object_inspect_mime(name, detail_level=detail_level)
        except KeyError:
            return reply
        if not self.shell.enable_html_pager:
            bundle.pop("text/html", None)
        reply["data"] = bundle
        reply["found"] = True
        return reply

    def history(self, content: Mapping[str, Any]) -> dict[str, Any]:
        manager = self.shell.history_manager
        if manager is None:
            return {"status": "ok", "history": []}
        raw = bool(content.get("raw", True))
        output = bool(content.get("output", False))
        kind = content.get("hist_access_type", "tail")
        if kind == "tail":
            hist = manager.get_tail(
                int(content.get("n", 10)), raw=raw, output=output, include_latest=True
            )
        elif kind == "range":
            hist = manager.get_range(
                int(content.get("session", 0)),
                int(content.get("start", 1)),
                content.get("stop"),
                raw=raw,
                output=output,
            )
        elif kind == "search":
            n = content.get("n")
            hist = manager.search(
                str(content.get("pattern", "*")),
                raw=raw,
                output=output,
                n=int(n) if n is not None else None,
                unique=bool(content.get("unique", False)),
            )
        else:
            raise ValueError(f"unknown hist_access_type {kind!r}")
        # IPython numbers the current session 0 in some results; the protocol wants the
        # real session number, consistent with what tail and search return.
        current = manager.session_number
        return {
            "status": "ok",
            "history": [[entry[0] or current, *entry[1:]] for entry in hist],
        }

    def is_complete(self, code: str) -> dict[str, Any]:
        status, indent_spaces = self.shell.input_transformer_manager.check_complete(code)
        reply: dict[str, Any] = {"status": status}
        if status == "incomplete":
            reply["indent"] = " " * (indent_spaces or 0)
        return reply

    def close(self) -> None:
        # Run IPython's exit work (history, temp files) now, while logging still works,
        # rather than from its atexit hook.
        atexit.unregister(self.shell.atexit_operations)
        self.shell.atexit_operations()
