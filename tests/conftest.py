"""Test setup shared by every tier: private kernelspecs, kernel fixtures, the leftover check.

At import, before jupyter_client reads any path:

- a temporary directory holding the kernelspecs ``mpkernel-test`` (``interrupt_mode:
  signal``) and ``mpkernel-test-message`` (``interrupt_mode: message``) is prepended to
  ``JUPYTER_PATH``; both run ``sys.executable -m mpkernel run -f {connection_file}``; a third,
  ``ipykernel-reference``, always runs ipykernel (the reference of tests/drop_in);
- ``IPYTHONDIR`` points to a fresh directory (empty history, no user profile), runtime and
  config dirs are private too, and ``MPKERNEL_CONFIG`` is unset;
- ``TMPDIR`` is a directory of the session's own: at the end, whatever a kernel left there or
  in the snapshot segments' tmpfs fails the run (``tests/leftovers.py``).

``MPKERNEL_TEST_TARGET=ipykernel`` makes the same two kernelspecs launch ipykernel instead, so
that the generic protocol tests can be checked against the reference implementation; tests
marked ``mpkernel_only`` (guarantees ipykernel does not give) are skipped then, unless
``MPKERNEL_TEST_TARGET=ipykernel-all``.

Kernel fixtures: ``kc`` / ``shared_kernel`` (one kernel per test module, replaced after a
failed test so one failure does not cascade), ``fresh_kernel`` (one per test, for destructive
tests) and ``kernel_factory`` (several per test, custom channels). Every kernel is shut down
and its process tree checked with psutil, whatever the test outcome. After each test body
that used a kernel, every channel of its client must be empty (``assert_no_leftovers``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import contracts, leftovers

_TMP = Path(tempfile.mkdtemp(prefix="mpkernel-tests-"))

TARGET = os.environ.get("MPKERNEL_TEST_TARGET", "mpkernel")
if TARGET not in ("mpkernel", "ipykernel", "ipykernel-all"):
    raise RuntimeError(f"MPKERNEL_TEST_TARGET must be mpkernel or ipykernel, not {TARGET!r}")

#: kernelspec names the tests use
KERNEL_NAME = "mpkernel-test"
KERNEL_NAME_MESSAGE_INTERRUPT = "mpkernel-test-message"
#: always ipykernel, whatever the target: the reference of the drop-in comparison (tests/drop_in)
KERNEL_NAME_IPYKERNEL = "ipykernel-reference"


def _write_kernelspecs(root: Path) -> None:
    if TARGET == "mpkernel":
        argv = [sys.executable, "-m", "mpkernel", "run", "-f", "{connection_file}"]
    else:
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    for name, mode in ((KERNEL_NAME, "signal"), (KERNEL_NAME_MESSAGE_INTERRUPT, "message")):
        spec_dir = root / "kernels" / name
        spec_dir.mkdir(parents=True)
        spec = {
            "argv": argv,
            "display_name": f"{name} ({TARGET})",
            "language": "python",
            "interrupt_mode": mode,
            "metadata": {},
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    spec_dir = root / "kernels" / KERNEL_NAME_IPYKERNEL
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"{KERNEL_NAME_IPYKERNEL} (ipykernel)",
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")


def _private_environment() -> None:
    _write_kernelspecs(_TMP / "jupyter")
    old = os.environ.get("JUPYTER_PATH")
    jupyter_path = str(_TMP / "jupyter")
    os.environ["JUPYTER_PATH"] = jupyter_path + (os.pathsep + old if old else "")
    for var, sub in (
        ("IPYTHONDIR", "ipython"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTER_CONFIG_DIR", "jupyter-config"),
    ):
        (_TMP / sub).mkdir()
        os.environ[var] = str(_TMP / sub)
    os.environ.pop("MPKERNEL_CONFIG", None)


_private_environment()
_KERNELS_TMP = leftovers.private_tmp(_TMP)
_BEFORE = leftovers.entries(_KERNELS_TMP)
_LEFT = pytest.StashKey[list[Path]]()

# jupyter_client must be imported only after the environment above is in place.
from tests import frontend  # noqa: E402
from tests.frontend import KernelHandle, start_kernel, stop_kernel  # noqa: E402

_HANDLES = pytest.StashKey[list[KernelHandle]]()


#: docs/architecture.md section 2 and docs/subshells.md: the invariants a test can be marked
#: with (``invariant("I3", ...)``, ``invariant("S1", ...)``)
INVARIANTS = tuple(f"I{n}" for n in range(1, 9)) + tuple(f"S{n}" for n in range(1, 5))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "mpkernel_only: checks a guarantee of mpkernel that ipykernel does not give"
    )
    config.addinivalue_line(
        "markers",
        "invariant(*names): the invariants (I1..I8) of docs/architecture.md section 2 or the "
        "subshell ones (S1..S4, docs/subshells.md) this test checks; "
        "tests/unit/test_invariants_covered.py fails when one has no test",
    )


def _check_invariant_markers(items: list[pytest.Item]) -> None:
    """A typo in an invariant marker (``invariant("I9")``, ``invariant()``) is a usage error."""
    for item in items:
        for mark in item.iter_markers("invariant"):
            bad = [a for a in mark.args if a not in INVARIANTS]
            if not mark.args or bad or mark.kwargs:
                given = ", ".join(
                    [*map(repr, mark.args), *(f"{k}={v!r}" for k, v in mark.kwargs.items())]
                )
                raise pytest.UsageError(
                    f"{item.nodeid}: invariant({given}): "
                    f"give one or more of {', '.join(INVARIANTS)}, as positional strings"
                )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _check_invariant_markers(items)
    if TARGET != "ipykernel":
        return
    skip = pytest.mark.skip(reason="mpkernel-only guarantee; MPKERNEL_TEST_TARGET=ipykernel")
    for item in items:
        if item.get_closest_marker("mpkernel_only"):
            item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [contracts.header()]


def _count_contract_skips(report: pytest.TestReport) -> bool:
    if not report.skipped or not isinstance(report.longrepr, tuple):
        return False
    return contracts.MISSING in str(report.longrepr[2])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a kernel left files behind, however it ended."""
    left = leftovers.left_behind(_BEFORE, _KERNELS_TMP, frontend.STARTED_PIDS)
    session.config.stash[_LEFT] = left
    if left and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if _count_contract_skips(r)]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} tests skipped: {contracts.header()}", yellow=True
        )
    left = config.stash.get(_LEFT, [])
    if left:
        terminalreporter.section("files left behind by kernels", red=True)
        for path in left:
            terminalreporter.line(f"{path}")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_TMP, ignore_errors=True)


def register(node: pytest.Item, handle: KernelHandle) -> None:
    """Put a kernel under the end-of-test checks of ``node``."""
    node.stash.setdefault(_HANDLES, []).append(handle)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """After a passing test body: every channel of every kernel it used must be empty."""
    result = yield
    for handle in item.stash.get(_HANDLES, []):
        if not handle.stopped:
            frontend.assert_no_leftovers(handle.kc, handle.channels)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test may leave its kernel in any state: mark it for replacement."""
    report: pytest.TestReport = yield
    if report.failed:
        for handle in item.stash.get(_HANDLES, []):
            handle.dirty = True
    return report


class SharedKernel:
    """One kernel for the tests of a module; replaced when a test using it failed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.handle: KernelHandle | None = None

    def get(self) -> KernelHandle:
        if self.handle is not None and (self.handle.dirty or self.handle.stopped):
            old, self.handle = self.handle, None
            stop_kernel(old)
        if self.handle is None:
            self.handle = start_kernel(self.name)
        return self.handle

    def close(self) -> None:
        if self.handle is not None:
            stop_kernel(self.handle)


@pytest.fixture(scope="session")
def kernel_name() -> str:
    return KERNEL_NAME


@pytest.fixture(scope="module")
def _module_kernel() -> Iterator[SharedKernel]:
    shared = SharedKernel(KERNEL_NAME)
    try:
        yield shared
    finally:
        shared.close()


@pytest.fixture
def shared_kernel(request: pytest.FixtureRequest, _module_kernel: SharedKernel) -> KernelHandle:
    """The module's kernel (non-destructive tests only)."""
    handle = _module_kernel.get()
    register(request.node, handle)
    return handle


@pytest.fixture
def kc(shared_kernel: KernelHandle) -> Any:
    """A client of the module's kernel."""
    return shared_kernel.kc


@pytest.fixture
def fresh_kernel(request: pytest.FixtureRequest) -> Iterator[KernelHandle]:
    """A kernel of its own for one test; always shut down and checked afterwards."""
    handle = start_kernel(KERNEL_NAME)
    try:
        register(request.node, handle)
        yield handle
    finally:
        stop_kernel(handle)


@pytest.fixture
def kernel_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., KernelHandle]]:
    """``factory(kernel_name=KERNEL_NAME, stdin=True, control=True) -> KernelHandle``."""
    handles: list[KernelHandle] = []

    def factory(
        kernel_name: str = KERNEL_NAME, *, stdin: bool = True, control: bool = True
    ) -> KernelHandle:
        handle = start_kernel(kernel_name, stdin=stdin, control=control)
        handles.append(handle)
        register(request.node, handle)
        return handle

    try:
        yield factory
    finally:
        errors: list[BaseException] = []
        for handle in handles:
            try:
                stop_kernel(handle)
            except AssertionError as exc:  # report all survivors, stop every kernel first
                errors.append(exc)
        if errors:
            raise errors[0]
