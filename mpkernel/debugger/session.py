"""The io thread's side of the debugger: `debug_request` in, `debug_reply` and `debug_event` out.

Each request is bracketed by busy/idle on IOPub like every control request. Most are
forwarded to debugpy's adapter over a ZMQ STREAM socket (TCP, DAP framing) under a sequence
number of the kernel's own, and answered when the adapter's response comes back (matched by
`request_seq`, so requests in flight never wait on each other). The kernel answers itself
what is about cells and the namespace (`debugInfo`, `dumpCell`, `source`, `inspectVariables`,
`richInspectVariables`, `modules`), and adds to `attach` what only it knows.

Events from the adapter become `debug_event`s on IOPub, after everything the main thread
queued before them (I1, I2): a `stopped` event never overtakes the output printed before
the breakpoint.
"""

from __future__ import annotations

import ast
import itertools
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from mpkernel.debugger.cells import HASH_SEED, CellFiles
from mpkernel.debugger.dap import Dap, DapError, DapReader, frame, response
from mpkernel.debugger.namespace import NamespaceView, shown_name
from mpkernel.funnel.items import Publish, Reply
from mpkernel.wire import Header, Message

log = logging.getLogger(__name__)

Emit = Callable[[Publish | Reply], None]
#: run a function on the main thread between requests; then call back on the io thread
RunOnMain = Callable[[Callable[[], Any], Callable[[Any, BaseException | None], None]], None]

_PEER = b"debugpy"  # the adapter's routing id on the STREAM socket (CONNECT_ROUTING_ID)
# Threads of IPython's that are not the user's (the kernel's own threads are hidden from
# debugpy where they start, `mpkernel.threads`).
_NOT_USER_THREADS = ("IPythonHistorySavingThread",)
_RESUMING = frozenset({"continue", "next", "stepIn", "stepOut", "stepBack", "reverseContinue"})


@dataclass
class _Pending:
    request: Message[dict[str, Any]] | None  # the debug_request; None: the kernel's own
    seq: int  # the frontend's seq (the response's request_seq)
    then: Callable[[Dap], None] | None


class DebugSession:
    """The debugger as the io thread runs it (see the module docstring)."""

    def __init__(
        self,
        ctx: zmq.Context[zmq.Socket[bytes]],
        poller: zmq.Poller,
        emit: Emit,
        run_on_main: RunOnMain,
        before_event: Callable[[], None],
        start_debugpy: Callable[[], tuple[str, int]],
        view: NamespaceView,
        rich_repr: Callable[[str], tuple[dict[str, Any], dict[str, Any]]],
        kernel_files: list[str],
        cells: CellFiles,
    ) -> None:
        self._ctx = ctx
        self._poller = poller
        self._emit = emit
        self._run_on_main = run_on_main
        self._before_event = before_event
        self._start_debugpy = start_debugpy
        self._view = view
        self._rich_repr = rich_repr
        self._kernel_files = kernel_files
        self.cells = cells
        self.socket: zmq.Socket[bytes] | None = None
        self._connected = False
        self._outgoing: list[bytes] = []
        self._reader = DapReader()
        self._seq = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._endpoint: tuple[str, int] | None = None
        self._event_parent: Header | None = None
        self.started = False
        self.breakpoints: dict[str, list[Dap]] = {}
        self.stopped_threads: set[int] = set()
        # Threads the kernel itself asked to continue, until that request is answered.
        self._resuming: set[int] = set()
        self._local: dict[str, Callable[[Message[dict[str, Any]], Dap], None]] = {
            "debugInfo": self._debug_info,
            "initialize": self._initialize,
            "attach": self._attach,
            "configurationDone": lambda msg, req: self._reply(msg, response(req)),
            "dumpCell": self._dump_cell,
            "source": self._source,
            "setBreakpoints": self._set_breakpoints,
            "inspectVariables": self._inspect_variables,
            "variables": self._variables,
            "richInspectVariables": self._rich_inspect,
            "copyToGlobals": self._copy_to_globals,
            "modules": self._modules,
            "disconnect": self._disconnect,
        }

    # -- requests ------------------------------------------------------------------------
    def handle(self, msg: Message[dict[str, Any]]) -> None:
        self._emit(Publish("status", {"execution_state": "busy"}, msg.header))
        self._event_parent = msg.header
        request = msg.content
        command, seq = request.get("command"), request.get("seq")
        if not isinstance(command, str) or type(seq) is not int:
            self._reply(
                msg, response(request, False, message="a DAP request needs a command and a seq")
            )
            return
        local = self._local.get(command)
        try:
            if local is not None:
                local(msg, request)
            elif self._require_started(msg, request):
                self._forward(msg, request)
        except Exception as exc:  # a bad request gets its error, the session lives on
            log.exception("debug request %s failed", command)
            self._reply(msg, response(request, False, message=f"{type(exc).__name__}: {exc}"))

    def _reply(self, msg: Message[dict[str, Any]], content: Dap) -> None:
        self._emit(Reply("control", msg.identities, "debug_reply", content, msg.header))
        self._emit(Publish("status", {"execution_state": "idle"}, msg.header))

    def _require_started(self, msg: Message[dict[str, Any]], request: Dap) -> bool:
        if not self.started:
            self._reply(
                msg,
                response(request, False, message="the debugger is not started (initialize it)"),
            )
        return self.started

    def _forward(
        self,
        msg: Message[dict[str, Any]],
        request: Dap,
        then: Callable[[Dap], None] | None = None,
    ) -> None:
        """Send `request` to debugpy; its response answers `msg` (or goes to `then`)."""
        own = next(self._seq)
        self._pending[own] = _Pending(msg, int(request.get("seq", 0)), then)
        self._send({**request, "seq": own})

    def _on_main(
        self, msg: Message[dict[str, Any]], fn: Callable[[], Any], done: Callable[[Any], Dap]
    ) -> None:
        request = msg.content

        def answer(result: Any, error: BaseException | None) -> None:
            if error is not None:
                text = f"{type(error).__name__}: {error}"
                self._reply(msg, response(request, False, message=text))
            else:
                self._reply(msg, done(result))

        self._run_on_main(fn, answer)

    # -- the kernel's own answers ---------------------------------------------------------
    def _debug_info(self, msg: Message[dict[str, Any]], request: Dap) -> None:
        body = {
            "isStarted": self.started,
            "hashMethod": "Murmur2",
            "hashSeed": HASH_SEED,
            "tmpFilePrefix": self.cells.prefix,
            "tmpFileSuffix": self.cells.suffix,
            "breakpoints": [{"source": s, "breakpoints": b} for s, b in self.breakpoints.items()],
            "stoppedThreads": sorted(self.stopped_threads),
            "richRendering": True,
            "exceptionPaths": ["Python Exceptions"],
            "copyToGlobals": True,
        }
        self._reply(msg, response(request, body=body))

    def _initialize(self, msg: Message[dict[str, Any]], request: Dap) -> None:
        if self._endpoint is not None:
            self._connect()
            self._forward(msg, request)
            return

        def started(endpoint: Any, error: BaseException | None) -> None:
            if error is not None:
                log.error("debugpy did not start: %s", error)
                text = f"debugpy did not start: {type(error).__name__}: {error}"
                self._reply(msg, response(request, False, message=text))
                return
            self._endpoint = endpoint
            self._connect()
            self._forward(msg, request)

        self._run_on_main(self._start_debugpy, started)

    def _attach(self, msg: Message[dict[str, Any]], request: Dap) -> None:
        if not self._require_started(msg, request) or self._endpoint is None:
            return
        host, port = self._endpoint
        arguments = dict(request.get("arguments") or {})
        arguments["connect"] = {"host": host, "port": port}
        # debugpy's default, stated: library code is not stepped into, and exceptions raised
        # and caught inside libraries (IPython formatting a traceback) do not stop.
        arguments.setdefault("justMyCode", True)
        # Stepping and stack traces stay out of the kernel's own code.
        arguments["rules"] = [{"path": path, "include": False} for path in self._kernel_files]
        self._forward(msg, {**request, "arguments": arguments})

    def _dump_cell(self, msg: Message[dict[str, Any]], request: Dap) -> None:
        code = (request.get("arguments") or {}).get("code")
        if not isinstance(code, str):
            self._reply(msg, response(request, False, message="dumpCell needs arguments.code"))
            return
        self._reply(msg, response(request, body={"sourcePath": self.cells.dump(code)}))

    def _source(self, msg: Message[dict[str, Any]], request: Dap) -> None:
        source = (request.get("arguments") or {}).get("source") or {}
        path = Path(str(source.get("path", "")))
        if source.get("path") and path.is_file():
            content = path.read_text(encoding="utf-8", errors="replace")
            self._reply(msg, response(request, body={"content": content}))
        else:
            self._reply(msg, response(request, False, message="source unavailable", body={}))

    def _set_breakpoints(self, msg: Message[dict[str, Any]], request: Dap) -> None:
        if not self._require_started(msg, request):
            return
        path = str(((request.get("arguments") or {}).get("source") or {}).get("path", ""))

        def record(answer: Dap) -> None:
            if answer.get("success"):
                # debugpy may move a breakpoint to the next line that has code.
                placed = (answer.get("body") or {}).get("breakpoints") or []
                self.breakpoints[path] = [{"line": b["line"]} for b in placed if "line" in b]
                if not self.breakpoints[path]:
                    del self.breakpoints[path]
            self._reply(msg, answer)

        self._forward(msg, request, record)

    def _inspect_variables(self, msg: Message[dict[str, Any]], request: Dap) -> None:
        def done(variables: Any) -> Dap:
            return response(request, body={"variables": variables})

        if self.stopped_threads:
            # The main thread is paused: nobody changes the namespace while it is read.
            self._reply(msg, done(self._view.inspect()))
        else:
            self._on_main(msg, self._view.inspect, done)

    def _variables(self, msg: Message[dict[str, Any]], request: Dap) -> None:
        reference = int((request.get("arguments") or {}).get("variablesReference", 0))
        if self.stopped_threads and self._require_started(msg, request):

            def filtered(answer: Dap) -> None:
                body = answer.get("body") or {}
                if "variables" in body:
                    body["variables"] = [
                        v for v in body["variables"] if shown_name(str(v.get("name", "")))
                    ]
                self._reply(msg, answer)

            self._forward(msg, request, filtered)
        elif not self.stopped_threads:
            self._on_main(
                msg,
                lambda: self._view.variables(reference),
                lambda variables: response(request, body={"variables": variables}),
            )

    def _rich_inspect(self, msg: Message[dict[str, Any]], request: Dap) -> None:
        arguments = request.get("arguments") or {}
        name = str(arguments.get("variableName", ""))
        if not name.isidentifier():
            self._reply(msg, response(request, body={"data": {}, "metadata": {}}))
            return

        def bundle(result: tuple[dict[str, Any], dict[str, Any]]) -> Dap:
            data, metadata = result
            return response(request, body={"data": data, "metadata": metadata})

        if not self.stopped_threads:
            self._on_main(msg, lambda: self._rich_repr(name), bundle)
            return
        if not self._require_started(msg, request):
            return
        evaluate = {
            "type": "request",
            "command": "evaluate",
            "seq": request["seq"],
            "arguments": {
                "expression": f"get_ipython().display_formatter.format({name})",
                "frameId": arguments.get("frameId"),
                "context": "clipboard",
            },
        }

        def formatted(answer: Dap) -> None:
            if not answer.get("success"):
                self._reply(msg, response(request, False, message=answer.get("message", "")))
                return
            try:
                data, metadata = ast.literal_eval(str(answer["body"]["result"]))
            except (ValueError, SyntaxError, KeyError, TypeError) as exc:
                self._reply(msg, response(request, False, message=f"no rich repr: {exc}"))
                return
            meta = {k: v for k, v in dict(metadata).items() if k in data}
            self._reply(msg, bundle((dict(data), meta)))

        self._forward(msg, evaluate, formatted)

    def _copy_to_globals(self, msg: Message[dict[str, Any]], request: Dap) -> None:
        if not self._require_started(msg, request):
            return
        arguments = request.get("arguments") or {}
        destination = str(arguments.get("dstVariableName", ""))
        source = str(arguments.get("srcVariableName", ""))
        if not (destination.isidentifier() and source.isidentifier()):
            text = "dstVariableName and srcVariableName must be identifiers"
            self._reply(msg, response(request, False, message=text))
            return
        set_expression = {
            "type": "request",
            "command": "setExpression",
            "seq": request["seq"],
            "arguments": {
                "expression": f"globals()[{destination!r}]",
                "value": source,
                "frameId": arguments.get("srcFrameId"),
            },
        }

        def answered(answer: Dap) -> None:
            self._reply(msg, {**answer, "command": request["command"]})

        self._forward(msg, set_expression, answered)

    def _modules(self, msg: Message[dict[str, Any]], request: Dap) -> None:
        arguments = request.get("arguments") or {}
        loaded = list(sys.modules.values())
        start = int(arguments.get("startModule", 0))
        count = int(arguments.get("moduleCount", 0)) or len(loaded)
        modules = []
        for index, module in enumerate(loaded[start : start + count], start):
            origin = getattr(getattr(module, "__spec__", None), "origin", None)
            if isinstance(origin, str) and origin.endswith(".py"):
                modules.append({"id": index, "name": module.__name__, "path": origin})
        body = {"modules": modules, "totalModules": len(loaded)}
        self._reply(msg, response(request, body=body))

    def _disconnect(self, msg: Message[dict[str, Any]], request: Dap) -> None:
        def stopped(answer: Dap) -> None:
            self._stop()
            self._reply(msg, answer)

        if self.started:
            self._forward(msg, request, stopped)
        else:
            self._reply(msg, response(request))

    # -- the adapter connection -----------------------------------------------------------
    def _connect(self) -> None:
        if self.socket is not None or self._endpoint is None:
            self.started = True
            return
        host, port = self._endpoint
        sock = self._ctx.socket(zmq.STREAM)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.CONNECT_ROUTING_ID, _PEER)
        sock.connect(f"tcp://{host}:{port}")
        self._poller.register(sock, zmq.POLLIN)
        self.socket = sock
        self._connected = False
        self.started = True

    def _stop(self) -> None:
        """After `disconnect`: the adapter stays (debugpy listens once per process); the
        next `initialize` connects again."""
        if self.socket is not None:
            self._poller.unregister(self.socket)
            self.socket.close(linger=0)
        self.socket = None
        self._connected = False
        self._outgoing.clear()
        self._reader = DapReader()
        self.started = False
        self.breakpoints.clear()
        self.stopped_threads.clear()
        self._resuming.clear()
        pending, self._pending = list(self._pending.values()), {}
        for waiting in pending:
            if (
                waiting.request is not None
                and waiting.request.content.get("command") != "disconnect"
            ):
                content = waiting.request.content
                self._reply(waiting.request, response(content, False, message="debugger stopped"))

    def close(self) -> None:
        self._stop()

    def _send(self, message: Dap) -> None:
        data = frame(message)
        if self._connected and self.socket is not None:
            self.socket.send_multipart([_PEER, data])
        else:
            self._outgoing.append(data)

    def on_readable(self) -> None:
        """Read what the adapter sent (the io loop calls this when the socket polls in)."""
        sock = self.socket
        while sock is not None:
            try:
                _peer, data = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if not data:  # STREAM's connect / disconnect notification
                self._connected = not self._connected
                if self._connected:
                    for queued in self._outgoing:
                        sock.send_multipart([_PEER, queued])
                    self._outgoing.clear()
                else:
                    log.warning("debugpy's adapter closed the connection")
                continue
            try:
                messages = self._reader.feed(data)
            except DapError as exc:
                log.error("unreadable data from debugpy's adapter: %s", exc)
                self._reader = DapReader()
                continue
            for message in messages:
                self._on_message(message)
            sock = self.socket

    def _on_message(self, message: Dap) -> None:
        kind = message.get("type")
        if kind == "response":
            pending = self._pending.pop(int(message.get("request_seq", -1)), None)
            if pending is None:
                return  # the answer to a request of the kernel's own that wants none
            message["request_seq"] = pending.seq
            if message.get("success") and message.get("command") in _RESUMING:
                self._resumed(message, pending)
            if pending.then is not None:
                pending.then(message)
            elif pending.request is not None:
                self._reply(pending.request, message)
        elif kind == "event":
            self._on_event(message)

    def resume_all(self) -> None:
        """Let every paused thread run (for an interrupt to reach it in the user's code).

        Called again while the main thread is still in debugpy's code (an interrupt is
        retried until it lands in the user's): a thread already asked to continue is not
        asked again before the adapter answers. debugpy's adapter never answers a
        `continue` for a thread that runs, and answers nothing after it."""
        for thread in sorted(self.stopped_threads - self._resuming):
            own = next(self._seq)
            self._resuming.add(thread)
            # Answered like a frontend's continue (`_resumed`): the thread runs, and
            # debugInfo must not report it stopped (debugpy sends no `continued` event).
            self._pending[own] = _Pending(None, own, self._answered_resume(thread))
            self._send(
                {
                    "type": "request",
                    "seq": own,
                    "command": "continue",
                    "arguments": {"threadId": thread},
                }
            )

    def _answered_resume(self, thread: int) -> Callable[[Dap], None]:
        def answered(_answer: Dap) -> None:
            self._resuming.discard(thread)

        return answered

    def _resumed(self, answer: Dap, pending: _Pending) -> None:
        """A thread runs again once its resume request is answered: `debugInfo` must not
        report it stopped until the `continued` event, which may come later."""
        body = answer.get("body") or {}
        if body.get("allThreadsContinued", answer.get("command") == "continue"):
            self.stopped_threads.clear()
        elif pending.request is not None:
            thread = (pending.request.content.get("arguments") or {}).get("threadId")
            self.stopped_threads.discard(thread if isinstance(thread, int) else -1)

    def _request_own(self, command: str, then: Callable[[Dap], None] | None = None) -> None:
        own = next(self._seq)
        if then is not None:
            self._pending[own] = _Pending(None, own, then)
        self._send({"type": "request", "seq": own, "command": command})

    def _on_event(self, event: Dap) -> None:
        name = event.get("event")
        body = event.get("body") or {}
        if name == "initialized":
            # The frontend's configurationDone is answered by the kernel: the adapter needs
            # its own now, before it answers the attach.
            self._request_own("configurationDone")
        elif name == "stopped":
            if body.get("allThreadsStopped"):

                def threads(answer: Dap) -> None:
                    for thread in (answer.get("body") or {}).get("threads", []):
                        if thread.get("name") not in _NOT_USER_THREADS:
                            self.stopped_threads.add(int(thread["id"]))
                    self._publish_event(event)

                self._request_own("threads", threads)
                return
            if "threadId" in body:
                self.stopped_threads.add(int(body["threadId"]))
        elif name == "continued":
            if body.get("allThreadsContinued", False):
                self.stopped_threads.clear()
            else:
                self.stopped_threads.discard(int(body.get("threadId", -1)))
        self._publish_event(event)

    def _publish_event(self, event: Dap) -> None:
        self._before_event()
        self._emit(Publish("debug_event", event, self._event_parent))
