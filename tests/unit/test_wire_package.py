"""The package boundary: no zmq, the public API the kernel core codes against, content shapes."""

from __future__ import annotations

import dataclasses
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mpkernel.wire as wire
from mpkernel.wire import content

REPO = Path(__file__).resolve().parents[2]


def test_importing_mpkernel_wire_does_not_import_zmq() -> None:
    code = "import mpkernel.wire, sys; assert 'zmq' not in sys.modules, 'zmq was imported'"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_name_in_all_is_exported() -> None:
    missing = [name for name in wire.__all__ if not hasattr(wire, name)]
    assert missing == []


@pytest.mark.parametrize(
    ("func", "params"),
    [
        (wire.split_identities, ["frames"]),
        (wire.split_parts, ["parts"]),
        (wire.join_frames, ["identities", "signature", "json_parts", "buffers"]),
        (wire.json_bytes, ["obj"]),
        (wire.decode, ["frames", "signer"]),
        (wire.encode, ["msg", "signer"]),
        (
            wire.encode_raw,
            [
                "identities",
                "header",
                "parent",
                "metadata_json",
                "content_json",
                "buffers",
                "signer",
            ],
        ),
        (wire.Signer.__init__, ["self", "key", "scheme", "replay_window"]),
        (wire.Signer.sign, ["self", "parts"]),
        (wire.Signer.verify, ["self", "signature", "parts"]),
        (wire.Header.from_dict, ["raw"]),
        (wire.HeaderFactory.__init__, ["self", "session", "username", "version"]),
        (wire.HeaderFactory.make, ["self", "msg_type"]),
        (wire.utc_now_iso, []),
    ],
    ids=lambda v: getattr(v, "__qualname__", ""),
)
def test_public_signatures_are_the_agreed_ones(func: object, params: list[str]) -> None:
    assert callable(func)
    assert list(inspect.signature(func).parameters) == params


def test_signer_defaults_are_sha256_and_a_65536_entry_replay_window() -> None:
    defaults = inspect.signature(wire.Signer.__init__).parameters
    assert defaults["scheme"].default == "hmac-sha256"
    assert defaults["replay_window"].default == 65536


def test_header_and_message_fields_are_the_agreed_ones() -> None:
    assert [f.name for f in dataclasses.fields(wire.Header)] == [
        "msg_id",
        "msg_type",
        "session",
        "username",
        "date",
        "version",
        "extra",
    ]
    assert [f.name for f in dataclasses.fields(wire.Message)] == [
        "header",
        "parent_header",
        "metadata",
        "content",
        "buffers",
        "identities",
    ]


@pytest.mark.parametrize("cls", [wire.Header, wire.Message])
def test_envelopes_are_frozen_and_slotted(cls: type) -> None:
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert "__slots__" in cls.__dict__


# Spec 5.5 reading, pinned: (required keys, optional keys).
CONTENT_SHAPES = {
    content.ExecuteRequest: (
        {"code"},
        {"silent", "store_history", "user_expressions", "allow_stdin", "stop_on_error"},
    ),
    content.ExecuteReply: (
        {"status", "execution_count"},
        {"payload", "user_expressions", "ename", "evalue", "traceback"},
    ),
    content.ExecuteInput: ({"code", "execution_count"}, set()),
    content.ExecuteResult: ({"execution_count", "data", "metadata"}, {"transient"}),
    content.DisplayData: ({"data", "metadata"}, {"transient"}),
    content.UpdateDisplayData: ({"data", "metadata", "transient"}, set()),
    content.Stream: ({"name", "text"}, set()),
    content.Error: ({"ename", "evalue", "traceback"}, set()),
    content.Status: ({"execution_state"}, set()),
    content.ClearOutput: ({"wait"}, set()),
    content.CompleteRequest: ({"code", "cursor_pos"}, set()),
    content.CompleteReply: ({"status", "matches", "cursor_start", "cursor_end", "metadata"}, set()),
    content.InspectRequest: ({"code", "cursor_pos", "detail_level"}, set()),
    content.InspectReply: ({"status", "found", "data", "metadata"}, set()),
    content.HistoryRequest: (
        {"output", "raw", "hist_access_type"},
        {"session", "start", "stop", "n", "pattern", "unique"},
    ),
    content.HistoryReply: ({"status", "history"}, set()),
    content.IsCompleteRequest: ({"code"}, set()),
    content.IsCompleteReply: ({"status"}, {"indent"}),
    content.KernelInfoReply: (
        {
            "status",
            "protocol_version",
            "implementation",
            "implementation_version",
            "language_info",
            "banner",
        },
        {"debugger", "help_links", "supported_features"},
    ),
    content.LanguageInfo: (
        {"name", "version", "mimetype", "file_extension"},
        {"pygments_lexer", "codemirror_mode", "nbconvert_exporter"},
    ),
    content.CommOpen: ({"comm_id", "target_name", "data"}, {"target_module"}),
    content.CommMsg: ({"comm_id", "data"}, set()),
    content.CommClose: ({"comm_id", "data"}, set()),
    content.CommInfoRequest: (set(), {"target_name"}),
    content.CommInfoReply: ({"status", "comms"}, set()),
    content.ShutdownRequest: ({"restart"}, set()),
    content.ShutdownReply: ({"status", "restart"}, set()),
    content.InterruptReply: ({"status"}, set()),
    content.InputRequest: ({"prompt", "password"}, set()),
    content.InputReply: ({"value"}, set()),
    content.IopubWelcome: ({"subscription"}, set()),
    content.ReplyError: ({"status", "ename", "evalue", "traceback"}, set()),
}


@pytest.mark.parametrize(
    ("cls", "shape"), CONTENT_SHAPES.items(), ids=[c.__name__ for c in CONTENT_SHAPES]
)
def test_content_typeddict_keys_follow_the_spec(cls: type, shape: tuple[set[str], ...]) -> None:
    required, optional = shape
    assert cls.__required_keys__ == required  # type: ignore[attr-defined]
    assert cls.__optional_keys__ == optional  # type: ignore[attr-defined]


def test_error_content_is_also_exported_as_error_content() -> None:
    assert content.ErrorContent is content.Error
