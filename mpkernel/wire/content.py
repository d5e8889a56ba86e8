"""TypedDicts for the content of each Jupyter message mpkernel sends or receives.

Single job: give every message content a static shape, named after its message in
PascalCase (``execute_request`` -> ``ExecuteRequest``), following the Jupyter messaging
spec 5.5 (jupyter_client ``docs/messaging.rst``).

Invariants:
- A key is optional (in a ``total=False`` part) only where the spec makes it optional:
  says "optional", gives a default, or says the key exists only in some cases. Where a
  TypedDict mixes both, the required keys sit in a private ``_*Required`` base (this
  works on Python 3.10, which lacks ``typing.NotRequired``).
- Replies carry their success keys; an error reply for any request is a ``ReplyError``
  (``execute_reply`` alone keeps ``execution_count`` in both cases, so ``ExecuteReply``
  has optional error keys too).
- These are static types only. Received content is unvalidated JSON: ``decode`` returns
  ``dict[str, Any]``, and readers of requests must tolerate missing or extra keys (the
  spec asks both sides to tolerate extra fields).

No thread owns this module: type declarations only.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

__all__ = [
    "ClearOutput",
    "CommClose",
    "CommInfoEntry",
    "CommInfoReply",
    "CommInfoRequest",
    "CommMsg",
    "CommOpen",
    "CompleteReply",
    "CompleteRequest",
    "DisplayData",
    "Error",
    "ErrorContent",
    "ExecuteInput",
    "ExecuteReply",
    "ExecuteRequest",
    "ExecuteResult",
    "ExecutionState",
    "HelpLink",
    "HistoryReply",
    "HistoryRequest",
    "InputReply",
    "InputRequest",
    "InspectReply",
    "InspectRequest",
    "InterruptReply",
    "IopubWelcome",
    "IsCompleteReply",
    "IsCompleteRequest",
    "IsCompleteStatus",
    "KernelInfoReply",
    "LanguageInfo",
    "MimeBundle",
    "ReplyError",
    "ReplyStatus",
    "ShutdownReply",
    "ShutdownRequest",
    "Status",
    "Stream",
    "StreamName",
    "UpdateDisplayData",
]

# -- shared vocabulary ------------------------------------------------------------------

ReplyStatus = Literal["ok", "error", "aborted"]  # "aborted" is deprecated since 5.1
ExecutionState = Literal["busy", "idle", "starting"]
StreamName = Literal["stdout", "stderr"]
IsCompleteStatus = Literal["complete", "incomplete", "invalid", "unknown"]
MimeBundle = dict[str, Any]  # mime type -> representation (any JSON value)


class ReplyError(TypedDict):
    """Content of any ``*_reply`` whose request failed (``status: "error"``)."""

    status: ReplyStatus
    ename: str
    evalue: str
    traceback: list[str]


# -- shell: execute ----------------------------------------------------------------------


class _ExecuteRequestRequired(TypedDict):
    code: str


class ExecuteRequest(_ExecuteRequestRequired, total=False):
    """``execute_request``. The spec gives defaults for the flags (silent False,
    store_history True unless silent); read them with ``.get``."""

    silent: bool
    store_history: bool
    user_expressions: dict[str, str]
    allow_stdin: bool
    stop_on_error: bool


class _ExecuteReplyRequired(TypedDict):
    status: ReplyStatus
    execution_count: int


class ExecuteReply(_ExecuteReplyRequired, total=False):
    """``execute_reply``: ``execution_count`` always; ``payload`` (deprecated) and
    ``user_expressions`` when ok; ``ename``/``evalue``/``traceback`` when error."""

    payload: list[dict[str, Any]]
    user_expressions: dict[str, Any]
    ename: str
    evalue: str
    traceback: list[str]


# -- iopub --------------------------------------------------------------------------------


class ExecuteInput(TypedDict):
    """``execute_input``: the code being run, re-broadcast with its counter."""

    code: str
    execution_count: int


class _DisplayDataRequired(TypedDict):
    data: MimeBundle
    metadata: dict[str, Any]


class DisplayData(_DisplayDataRequired, total=False):
    """``display_data``; ``transient`` (e.g. ``{"display_id": ...}``) is optional (5.1)."""

    transient: dict[str, Any]


class UpdateDisplayData(TypedDict):
    """``update_display_data``: like display_data, but ``transient.display_id`` is required."""

    data: MimeBundle
    metadata: dict[str, Any]
    transient: dict[str, Any]


class _ExecuteResultRequired(TypedDict):
    execution_count: int
    data: MimeBundle
    metadata: dict[str, Any]


class ExecuteResult(_ExecuteResultRequired, total=False):
    """``execute_result``: display_data plus ``execution_count``."""

    transient: dict[str, Any]


class Stream(TypedDict):
    """``stream``: text written to stdout or stderr."""

    name: StreamName
    text: str


class Error(TypedDict):
    """``error`` (IOPub): an execution error, without status and execution_count."""

    ename: str
    evalue: str
    traceback: list[str]


ErrorContent = Error  # the same type, under a name that does not read like an exception


class Status(TypedDict):
    """``status``: busy / idle around every request; starting once per process."""

    execution_state: ExecutionState


class ClearOutput(TypedDict):
    """``clear_output``: ``wait`` defers the clear until the next output arrives."""

    wait: bool


class IopubWelcome(TypedDict):
    """``iopub_welcome`` (5.5): the topic the new subscriber subscribed to."""

    subscription: str


# -- shell: introspection -----------------------------------------------------------------


class CompleteRequest(TypedDict):
    """``complete_request``: ``cursor_pos`` counts unicode code points (5.2)."""

    code: str
    cursor_pos: int


class CompleteReply(TypedDict):
    """``complete_reply`` (ok case): matches replace ``code[cursor_start:cursor_end]``."""

    status: ReplyStatus
    matches: list[str]
    cursor_start: int
    cursor_end: int
    metadata: dict[str, Any]


class InspectRequest(TypedDict):
    """``inspect_request``: ``detail_level`` is 0 or 1."""

    code: str
    cursor_pos: int
    detail_level: int


class InspectReply(TypedDict):
    """``inspect_reply`` (ok case): a mime bundle, empty when nothing was found."""

    status: ReplyStatus
    found: bool
    data: MimeBundle
    metadata: dict[str, Any]


class _HistoryRequestRequired(TypedDict):
    output: bool
    raw: bool
    hist_access_type: Literal["range", "tail", "search"]


class HistoryRequest(_HistoryRequestRequired, total=False):
    """``history_request``: the other keys apply only to some ``hist_access_type``s."""

    session: int
    start: int
    stop: int
    n: int
    pattern: str
    unique: bool


class HistoryReply(TypedDict):
    """``history_reply`` (ok case): ``(session, line, input)`` or
    ``(session, line, (input, output))`` triples."""

    status: ReplyStatus
    history: list[Any]


class IsCompleteRequest(TypedDict):
    """``is_complete_request``."""

    code: str


class _IsCompleteReplyRequired(TypedDict):
    status: IsCompleteStatus


class IsCompleteReply(_IsCompleteReplyRequired, total=False):
    """``is_complete_reply``: ``indent`` exists only when status is ``incomplete``."""

    indent: str


# -- kernel info ---------------------------------------------------------------------------


class _LanguageInfoRequired(TypedDict):
    name: str
    version: str
    mimetype: str
    file_extension: str


class LanguageInfo(_LanguageInfoRequired, total=False):
    """``language_info`` of kernel_info_reply; the lexer/mode/exporter keys are needed
    only when they differ from ``name``."""

    pygments_lexer: str
    codemirror_mode: str | dict[str, Any]
    nbconvert_exporter: str


class HelpLink(TypedDict):
    """One entry of kernel_info_reply's ``help_links``."""

    text: str
    url: str


class _KernelInfoReplyRequired(TypedDict):
    status: ReplyStatus
    protocol_version: str
    implementation: str
    implementation_version: str
    language_info: LanguageInfo
    banner: str


class KernelInfoReply(_KernelInfoReplyRequired, total=False):
    """``kernel_info_reply``; ``debugger`` is deprecated by ``supported_features`` (5.5)."""

    debugger: bool
    help_links: list[HelpLink]
    supported_features: list[str]


# -- comms ---------------------------------------------------------------------------------


class _CommOpenRequired(TypedDict):
    comm_id: str
    target_name: str
    data: dict[str, Any]


class CommOpen(_CommOpenRequired, total=False):
    """``comm_open``; ``target_module`` is an optional extension ipykernel understands."""

    target_module: str | None


class CommMsg(TypedDict):
    """``comm_msg``: one-way; replies, if any, are further comm_msgs."""

    comm_id: str
    data: dict[str, Any]


class CommClose(TypedDict):
    """``comm_close``."""

    comm_id: str
    data: dict[str, Any]


class CommInfoRequest(TypedDict, total=False):
    """``comm_info_request``: no ``target_name`` (or an empty one) means every comm."""

    target_name: str


class CommInfoEntry(TypedDict):
    """One open comm in comm_info_reply's ``comms``."""

    target_name: str


class CommInfoReply(TypedDict):
    """``comm_info_reply`` (ok case): ``comms`` maps comm_id to its target."""

    status: ReplyStatus
    comms: dict[str, CommInfoEntry]


# -- control -------------------------------------------------------------------------------


class ShutdownRequest(TypedDict):
    """``shutdown_request`` (control): ``restart`` says whether a restart follows."""

    restart: bool


class ShutdownReply(TypedDict):
    """``shutdown_reply``: echoes ``restart``."""

    status: ReplyStatus
    restart: bool


class InterruptReply(TypedDict):
    """``interrupt_reply`` (control, interrupt_mode "message")."""

    status: ReplyStatus


# -- stdin ---------------------------------------------------------------------------------


class InputRequest(TypedDict):
    """``input_request``: the frontend should not echo input when ``password`` is true."""

    prompt: str
    password: bool


class InputReply(TypedDict):
    """``input_reply``: the line the user entered."""

    value: str
