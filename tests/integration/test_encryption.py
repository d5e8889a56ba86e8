"""CurveZMQ transport encryption, provisioned by jupyter_client.

With ``KernelManager(transport_encryption="required")`` and a kernelspec that declares
``metadata.supported_encryption: ["curve"]`` (the one ``mpkernel install`` writes), the
connection file carries server keys, the kernel makes all five sockets curve servers, and
jupyter_client's clients connect with the keys. Checked here under encryption: the kernel
starts and serves, jupyter_kernel_test passes (``EncryptedKernelTests``), comms reach the
workers, every test of test_disconnect.py passes (they are collected again here, with an
encrypted ``lab``); a plain SUB on IOPub reads nothing and a plain DEALER holding the right
HMAC key gets nothing on shell, control or stdin (their handshakes fail: the client
socket's monitor says so). Without encryption the same plain sockets read and are answered.
A connection file with half a key pair, a malformed key or keys that do not belong together
stops the kernel at start with a clear message.

"Nothing received" is shown by the handshake failure on the plain socket's monitor (no
message can travel a connection whose handshake failed) plus an empty socket after the
encrypted client got the output; the positive control (unencrypted) waits for the message.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from jupyter_client.manager import KernelManager
from jupyter_client.session import Session
from zmq.utils.monitor import recv_monitor_message

from mpkernel.doctor.kernel import check_running_kernel
from mpkernel.kernelspec import build_kernel_json
from tests.conformance import test_kernel_tests as conformance
from tests.frontend import (
    DEFAULT_TIMEOUT,
    STARTUP_TIMEOUT,
    KernelHandle,
    get_reply,
    run_ok,
    start_kernel,
    stop_kernel,
    sync,
)
from tests.integration import test_disconnect as disconnect
from tests.integration.comm_client import ECHO, IOPubLog, call, close_comm, open_comm

pytestmark = [pytest.mark.integration, pytest.mark.mpkernel_only]

#: a kernelspec written by `mpkernel.kernelspec.build_kernel_json`, so it declares curve
CURVE_KERNEL = "mpkernel-test-curve"
HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)

if not zmq.has("curve"):
    pytest.skip("this libzmq has no CURVE support", allow_module_level=True)


@pytest.fixture(scope="module", autouse=True)
def curve_kernelspec(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """``mpkernel-test-curve`` on JUPYTER_PATH: the kernelspec ``mpkernel install``
    writes, with this interpreter."""
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "kernels" / CURVE_KERNEL
    spec_dir.mkdir(parents=True)
    spec = build_kernel_json(display_name=CURVE_KERNEL, python=sys.executable)
    assert spec["metadata"]["supported_encryption"] == ["curve"]
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(root), prepend=":")
        yield


def start_encrypted() -> KernelHandle:
    """Like ``tests.frontend.start_kernel``, under ``transport_encryption="required"``."""
    km = KernelManager(kernel_name=CURVE_KERNEL, transport_encryption="required")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    assert km.provisioner is not None
    handle = KernelHandle(
        CURVE_KERNEL,
        km,
        kc,
        km.provisioner.pid,  # type: ignore[attr-defined]
        ("shell", "iopub", "stdin", "control"),
    )
    try:
        kc.wait_for_ready(timeout=STARTUP_TIMEOUT)
        sync(kc, timeout=STARTUP_TIMEOUT)
    except BaseException:
        stop_kernel(handle)
        raise
    return handle


@pytest.fixture(params=["encrypted", "plain"])
def kernel(request: pytest.FixtureRequest) -> Iterator[KernelHandle]:
    handle = start_encrypted() if request.param == "encrypted" else start_kernel(CURVE_KERNEL)
    try:
        yield handle
    finally:
        stop_kernel(handle)


def encrypted(handle: KernelHandle) -> bool:
    info = json.loads(Path(handle.km.connection_file).read_text(encoding="utf-8"))
    return "curve_secretkey" in info


# ---------------------------------------------------------------------------------------------
# sockets without the keys


class PlainSocket:
    """A zmq socket that knows the HMAC key but not the curve keys, with a monitor."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], kind: int, url: str) -> None:
        self.socket = ctx.socket(kind)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.monitor = self.socket.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_SUCCEEDED | HANDSHAKE_FAILED
        )
        if kind == zmq.SUB:
            self.socket.setsockopt(zmq.SUBSCRIBE, b"")
        self.socket.connect(url)

    def handshake(self) -> str:
        """``"failed"`` or ``"succeeded"``: the first handshake outcome the monitor reports."""
        deadline = time.monotonic() + DEFAULT_TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            if self.monitor.poll(int(left * 1000) + 1):
                event = recv_monitor_message(self.monitor)["event"]
                return "succeeded" if event == zmq.EVENT_HANDSHAKE_SUCCEEDED else "failed"
        raise AssertionError(f"no handshake outcome within {DEFAULT_TIMEOUT}s")

    def close(self) -> None:
        self.socket.disable_monitor()
        self.monitor.close(linger=0)
        self.socket.close(linger=0)


def url(handle: KernelHandle, channel: str) -> str:
    km = handle.km
    port = getattr(km, f"{channel}_port")
    return f"tcp://{km.ip}:{port}" if km.transport == "tcp" else f"ipc://{km.ip}-{port}"


def test_plain_iopub_subscriber_reads_nothing(kernel: KernelHandle) -> None:
    """A SUB without the keys: under encryption its handshake fails and the output of a
    cell never reaches it; without encryption it reads that output."""
    session = Session(key=kernel.km.session.key)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sub = PlainSocket(ctx, zmq.SUB, url(kernel, "iopub"))
    try:
        outcome = sub.handshake()
        run_ok(kernel.kc, "print('the secret output')")
        if encrypted(kernel):
            assert outcome == "failed"
            assert not sub.socket.poll(0), "a plain SUB received something"
            return
        assert outcome == "succeeded"
        deadline = time.monotonic() + DEFAULT_TIMEOUT
        texts: list[str] = []
        while "the secret output\n" not in texts:
            left = deadline - time.monotonic()
            assert left > 0, texts
            assert sub.socket.poll(int(left * 1000) + 1), texts
            _, msg = session.recv(sub.socket)
            assert msg is not None
            if msg["msg_type"] == "stream":
                texts.append(msg["content"]["text"])
    finally:
        sub.close()
        ctx.destroy(linger=0)


@pytest.mark.parametrize("channel", ["shell", "control", "stdin", "hb"])
def test_plain_dealer_with_the_hmac_key_is_not_served(kernel: KernelHandle, channel: str) -> None:
    """A DEALER (REQ on hb) holding the right HMAC key but not the curve keys: under
    encryption its handshake fails, so nothing it signs reaches the kernel and nothing comes
    back; without encryption shell and control answer its kernel_info_request and hb echoes."""
    session = Session(key=kernel.km.session.key)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    plain = PlainSocket(ctx, zmq.REQ if channel == "hb" else zmq.DEALER, url(kernel, channel))
    try:
        outcome = plain.handshake()
        if encrypted(kernel):
            assert outcome == "failed"
            if channel in ("shell", "control"):
                # Queued, or refused at once when libzmq has dropped the failed connection's
                # pipe: either way never delivered.
                plain.socket.setsockopt(zmq.SNDTIMEO, 0)
                with contextlib.suppress(zmq.Again):
                    session.send(plain.socket, "kernel_info_request", {})
            # The kernel is still serving its own client, and nothing came to the plain one.
            msg_id = kernel.kc.kernel_info()
            get_reply(kernel.kc, msg_id)
            assert not plain.socket.poll(0), f"a plain {channel} socket received something"
            return
        assert outcome == "succeeded"
        if channel == "stdin":
            return  # the kernel never answers on stdin unasked; the handshake is the proof
        if channel == "hb":
            plain.socket.send(b"ping")
        else:
            session.send(plain.socket, "kernel_info_request", {})
        assert plain.socket.poll(int(DEFAULT_TIMEOUT * 1000)), f"no answer on {channel}"
        if channel == "hb":
            assert plain.socket.recv() == b"ping"
            return
        _, reply = session.recv(plain.socket)
        assert reply is not None
        assert reply["msg_type"] == "kernel_info_reply", reply
    finally:
        plain.close()
        ctx.destroy(linger=0)


def test_encrypted_kernel_serves_comms_heartbeat_and_doctor(tmp_path: Path) -> None:
    """The kernel started under "required" serves jupyter_client's own client: execute, an
    RPC through the echo worker, the heartbeat (a REQ with client keys of its own), and the
    doctor's running-kernel checks with the keys of the connection file."""
    handle = start_encrypted()
    try:
        assert encrypted(handle)
        log = IOPubLog(handle.kc)
        comm_id = open_comm(log, ECHO)
        assert call(log, comm_id, "echo", {"n": 3}).result == {"n": 3}
        close_comm(log, comm_id)
        assert run_ok(handle.kc, "print(6 * 7)").stdout() == "42\n"
        # The heartbeat, as jupyter_client's HBChannel connects: a REQ with a client key
        # pair of its own and the kernel's public key as server key.
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        try:
            hb = ctx.socket(zmq.REQ)
            hb.setsockopt(zmq.LINGER, 0)
            client_public, client_secret = zmq.curve_keypair()
            hb.setsockopt(zmq.CURVE_PUBLICKEY, client_public)
            hb.setsockopt(zmq.CURVE_SECRETKEY, client_secret)
            assert handle.km.curve_publickey is not None
            hb.setsockopt(zmq.CURVE_SERVERKEY, handle.km.curve_publickey)
            hb.connect(url(handle, "hb"))
            hb.send(b"ping")
            assert hb.poll(int(DEFAULT_TIMEOUT * 1000)), "no heartbeat echo"
            assert hb.recv() == b"ping"
        finally:
            ctx.destroy(linger=0)
        assert_doctor_connects_with_the_keys(Path(handle.km.connection_file), tmp_path)
    finally:
        stop_kernel(handle)


def assert_doctor_connects_with_the_keys(connection_file: Path, tmp_path: Path) -> None:
    """`mpkernel doctor --connection-file` checks: the file's keys get it served and it says
    the kernel is encrypted; the same file without the keys gets no heartbeat."""
    results = check_running_kernel(str(connection_file), None, DEFAULT_TIMEOUT)
    by_name = {r.name: r for r in results}
    assert [r.name for r in results if r.status != "ok"] == [], results
    assert by_name["transport"].details == {"encrypted": True}
    assert by_name["transport"].summary.startswith("encrypted (CurveZMQ")
    assert {"heartbeat", "kernel_info", "comm_info", "health"} <= by_name.keys()

    info = json.loads(connection_file.read_text(encoding="utf-8"))
    del info["curve_publickey"], info["curve_secretkey"]
    stripped = tmp_path / "kernel-without-keys.json"
    stripped.write_text(json.dumps(info), encoding="utf-8")
    results = check_running_kernel(str(stripped), None, 2.0)
    assert [(r.name, r.status) for r in results] == [
        ("connection file", "ok"),
        ("transport", "ok"),
        ("heartbeat", "fail"),
    ], results
    assert results[1].details == {"encrypted": False}


# ---------------------------------------------------------------------------------------------
# bad keys stop the kernel at start


def run_with(tmp_path: Path, **keys: Any) -> subprocess.CompletedProcess[str]:
    info: dict[str, Any] = {
        "transport": "tcp",
        "ip": "127.0.0.1",
        "shell_port": 0,
        "iopub_port": 0,
        "stdin_port": 0,
        "control_port": 0,
        "hb_port": 0,
        "key": "k",
        "signature_scheme": "hmac-sha256",
        **keys,
    }
    path = tmp_path / "kernel-bad.json"
    path.write_text(json.dumps(info), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "mpkernel", "run", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        check=False,
    )


def test_half_a_key_pair_is_refused(tmp_path: Path) -> None:
    public, secret = (k.decode() for k in zmq.curve_keypair())
    done = run_with(tmp_path, curve_publickey=public)
    assert done.returncode == 2, done
    assert "curve_publickey is set but curve_secretkey is missing" in done.stderr, done.stderr
    done = run_with(tmp_path, curve_secretkey=secret)
    assert done.returncode == 2, done
    assert "curve_secretkey is set but curve_publickey is missing" in done.stderr, done.stderr
    assert secret not in done.stderr


def test_malformed_or_mismatched_keys_are_refused(tmp_path: Path) -> None:
    public, _ = (k.decode() for k in zmq.curve_keypair())
    done = run_with(tmp_path, curve_publickey=public, curve_secretkey="not a key")
    assert done.returncode == 2, done
    assert "curve_secretkey is not a Z85-encoded CurveZMQ key" in done.stderr, done.stderr
    _, other = (k.decode() for k in zmq.curve_keypair())
    done = run_with(tmp_path, curve_publickey=public, curve_secretkey=other)
    assert done.returncode == 2, done
    assert "do not belong together" in done.stderr, done.stderr


# ---------------------------------------------------------------------------------------------
# jupyter_kernel_test and the disconnect tests, encrypted


class EncryptedKernelTests(conformance.MPKernelTests):
    kernel_name = CURVE_KERNEL

    @classmethod
    def setUpClass(cls) -> None:
        cls.handle = start_encrypted()
        cls.km, cls.kc = cls.handle.km, cls.handle.kc
        assert encrypted(cls.handle)


class EncryptedLab(disconnect.Lab):
    """test_disconnect.py's lab, whose kernels run under transport_encryption="required"
    (its clients, in-process and in client processes, read the keys from the manager or
    the connection file)."""

    def start(self, kernel_config: str = "") -> disconnect.Kernel:
        path = self.directory / f"mpkernel-{len(self.kernels)}.toml"
        path.write_text(disconnect.config(kernel_config), encoding="utf-8")
        km = KernelManager(kernel_name=CURVE_KERNEL, transport_encryption="required")
        env = {**os.environ, "MPKERNEL_CONFIG": str(path)}
        km.start_kernel(env=env, stderr=subprocess.PIPE)
        assert km.curve_secretkey is not None, "the disconnect tests must run encrypted"
        process = km.provisioner.process  # type: ignore[union-attr]
        kernel = disconnect.Kernel(km, disconnect.KernelLog(process.stderr))
        self.kernels.append(kernel)
        return kernel


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[disconnect.Lab]:
    lab = EncryptedLab(tmp_path)
    try:
        yield lab
    finally:
        lab.close()


# Every test of test_disconnect.py again, with the encrypted `lab` above.
for _name in dir(disconnect):
    if _name.startswith("test_"):
        globals()[f"{_name}_encrypted"] = getattr(disconnect, _name)
