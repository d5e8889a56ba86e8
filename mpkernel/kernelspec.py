"""Building, installing and removing the mpkernel kernelspec.

The kernelspec runs the interpreter that installed it (`sys.executable`), so the
kernel always finds the mpkernel it was installed from. Its metadata declares CurveZMQ
transport encryption when this libzmq can do it: jupyter_client (>= 8.10, with
`KernelManager.transport_encryption` "auto" or "required") then puts server keys in the
connection file and the kernel applies them (`kernel.sockets`).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_NAME = "mpkernel"
DEFAULT_DISPLAY_NAME = "Python 3 (mpkernel)"


def kernel_metadata(curve: bool | None = None, debugger: bool | None = None) -> dict[str, Any]:
    """`metadata` of kernel.json; `curve` defaults to what this libzmq supports, `debugger`
    to whether debugpy is installed (the kernel's own kernel_info also heeds the config)."""
    if curve is None:
        import zmq

        curve = zmq.has("curve")
    if debugger is None:
        from mpkernel.debugger import debugpy_installed

        debugger = debugpy_installed()
    # JupyterLab reads this flag (and kernel_info's) to offer its debugger.
    metadata: dict[str, Any] = {"debugger": debugger}
    if curve:
        metadata["supported_encryption"] = ["curve"]
    return metadata


def build_kernel_json(
    display_name: str = DEFAULT_DISPLAY_NAME,
    interrupt_mode: str = "signal",
    config: Path | None = None,
    python: str | None = None,
) -> dict[str, Any]:
    argv = [python or sys.executable, "-m", "mpkernel", "run", "-f", "{connection_file}"]
    if config is not None:
        argv += ["--config", str(config.resolve())]
    if interrupt_mode not in ("signal", "message"):
        raise ValueError(f"interrupt_mode must be 'signal' or 'message', not {interrupt_mode!r}")
    return {
        "argv": argv,
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": interrupt_mode,
        "kernel_protocol_version": "5.5",
        "metadata": kernel_metadata(),
    }


def install_kernelspec(
    *,
    name: str = DEFAULT_NAME,
    display_name: str = DEFAULT_DISPLAY_NAME,
    user: bool = False,
    prefix: str | None = None,
    interrupt_mode: str = "signal",
    config: Path | None = None,
) -> Path:
    """Install the kernelspec; returns the directory it was installed into."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = build_kernel_json(display_name, interrupt_mode, config)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "kernel.json").write_text(json.dumps(spec, indent=1), encoding="utf-8")
        dest = KernelSpecManager().install_kernel_spec(
            tmp, kernel_name=name, user=user, prefix=prefix, replace=True
        )
    return Path(dest)


def uninstall_kernelspec(name: str = DEFAULT_NAME) -> Path | None:
    """Remove the kernelspec; returns the directory removed, None if there was none."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        path = Path(KernelSpecManager().get_kernel_spec(name).resource_dir)
    except NoSuchKernel:
        return None
    shutil.rmtree(path)
    return path
