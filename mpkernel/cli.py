"""The `mpkernel` command line: run, install, uninstall.

Printing and exit codes live here and nowhere else.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import mpkernel


def _cmd_run(args: argparse.Namespace) -> int:
    import logging
    import os

    from mpkernel.app import Kernel
    from mpkernel.config import load_effective_config_lenient
    from mpkernel.connection import ConnectionFileError, load_connection_file
    from mpkernel.log import setup_logging

    config, errors = load_effective_config_lenient(args.config, os.environ)
    setup_logging(args.log_level or config.kernel.log_level, config.kernel.log_file)
    log = logging.getLogger("mpkernel.cli")
    for error in errors:
        # A broken configuration must not stop the kernel: that section has its defaults.
        log.error("configuration: %s (using defaults for that section)", error)
    if config.source is not None:
        log.info("configuration from %s", config.source)
    path = Path(args.connection_file)
    try:
        info = load_connection_file(path)
    except ConnectionFileError as e:
        print(f"mpkernel: {e}", file=sys.stderr)
        return 2
    try:
        return Kernel(info, config, path).run()
    except OSError as e:
        print(f"mpkernel: cannot start: {e}", file=sys.stderr)
        return 1


def _cmd_install(args: argparse.Namespace) -> int:
    from mpkernel.kernelspec import install_kernelspec

    prefix = sys.prefix if args.sys_prefix else args.prefix
    dest = install_kernelspec(
        name=args.name,
        display_name=args.display_name,
        user=args.user,
        prefix=prefix,
        interrupt_mode=args.interrupt_mode,
        config=Path(args.config) if args.config else None,
    )
    print(f"installed kernelspec {args.name} in {dest}")
    return 0


def _cmd_uninstall(args: argparse.Namespace) -> int:
    from mpkernel.kernelspec import uninstall_kernelspec

    removed = uninstall_kernelspec(args.name)
    if removed is None:
        print(f"no kernelspec named {args.name}", file=sys.stderr)
        return 1
    print(f"removed {removed}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mpkernel", description=mpkernel.__doc__)
    parser.add_argument("--version", action="version", version=f"mpkernel {mpkernel.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a kernel (what kernel.json starts)")
    run.add_argument("-f", "--connection-file", required=True)
    run.add_argument("--config", help="TOML configuration file")
    run.add_argument("--log-level", help="overrides [kernel] log_level")
    run.set_defaults(func=_cmd_run)

    install = sub.add_parser("install", help="install the kernelspec")
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for this user only")
    where.add_argument("--sys-prefix", action="store_true", help="into this environment")
    where.add_argument("--prefix", help="under this prefix")
    install.add_argument("--name", default="mpkernel")
    install.add_argument("--display-name", default="Python 3 (mpkernel)")
    install.add_argument("--interrupt-mode", choices=("signal", "message"), default="signal")
    install.add_argument("--config", help="TOML configuration file the kernel will use")
    install.set_defaults(func=_cmd_install)

    uninstall = sub.add_parser("uninstall", help="remove the kernelspec")
    uninstall.add_argument("--name", default="mpkernel")
    uninstall.set_defaults(func=_cmd_uninstall)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code
