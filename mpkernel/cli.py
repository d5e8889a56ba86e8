"""The `mpkernel` command line: run, install, uninstall, doctor, config.

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

    from mpkernel import kernel_dirs
    from mpkernel.config.model import load_effective_config_lenient
    from mpkernel.engine.compat import configure_environment
    from mpkernel.kernel.connection import ConnectionFileError, load_connection_file
    from mpkernel.log import setup_logging
    from mpkernel.supervision import zygote
    from mpkernel.titles import kernel_id_of

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
    configure_environment()
    # The janitor first, so that every process forked after it keeps the kernel's files:
    # they are removed once the last of them is gone, however it ended.
    kernel_id = kernel_id_of(path)
    dirs = kernel_dirs.create()
    try:
        dirs = kernel_dirs.start_janitor(dirs, kernel_id)
    except OSError as e:
        log.warning("no janitor (%s): if this kernel is killed, the next one cleans up", e)
    # The workers' server is forked now, before the kernel's own modules are imported and
    # before any thread or zmq context exists: it shares only what it needs with the
    # kernel, and a page the kernel later writes is not copied for it.
    server = zygote.start_for(config.workers, dirs.forkserver, kernel_id)
    from mpkernel.kernel.app import Kernel

    try:
        return Kernel(info, config, server, path, dirs, kernel_id).run()
    except OSError as e:
        print(f"mpkernel: cannot start: {e}", file=sys.stderr)
        dirs.remove()
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


#: `mpkernel doctor` exit code by overall status.
DOCTOR_EXIT_CODES = {"ok": 0, "warn": 1, "fail": 2}


def _cmd_doctor(args: argparse.Namespace) -> int:
    import json
    import logging
    import os

    from mpkernel.doctor.checks import (
        DoctorOptions,
        overall_status,
        render_text,
        report_json,
        run_doctor,
    )
    from mpkernel.log import setup_logging

    if args.verbose:
        setup_logging("debug")
    else:  # the checks report problems themselves; log lines would only repeat them
        logging.getLogger("mpkernel").addHandler(logging.NullHandler())
    options = DoctorOptions(
        config=args.config,
        connection_file=args.connection_file,
        kernel_id=args.kernel_id,
        timeout_s=args.timeout,
    )
    # Whatever the processes started by the checks write to fd 1 goes to stderr instead:
    # stdout holds the report alone (one JSON document with --json).
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        results = run_doctor(options, os.environ)
    finally:
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
    if args.json:
        print(json.dumps(report_json(results), indent=2))
    else:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        print(render_text(results, color=color), end="")
    return DOCTOR_EXIT_CODES[overall_status(results)]


def _cmd_config_show(args: argparse.Namespace) -> int:
    import os

    from mpkernel.config.dump import dump_config
    from mpkernel.config.model import ConfigError, load_effective_config

    try:
        config = load_effective_config(args.config, os.environ)
    except ConfigError as e:
        print(f"mpkernel: {e}", file=sys.stderr)
        return 2
    print(dump_config(config), end="")
    return 0


def _cmd_config_validate(args: argparse.Namespace) -> int:
    import os

    from mpkernel.config.model import ConfigError, find_config_path, load_config

    path = Path(args.path) if args.path else find_config_path(None, os.environ)
    if path is None:
        print("ok: no configuration file; the built-in defaults apply")
        return 0
    try:
        config = load_config(path)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    enabled = ", ".join(w.name for w in config.workers if w.enabled) or "none"
    print(f"{path}: ok (workers: {enabled})")
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

    doctor = sub.add_parser("doctor", help="check the installation, and a running kernel")
    doctor.add_argument("--json", action="store_true", help="print one JSON document")
    kernel = doctor.add_mutually_exclusive_group()
    kernel.add_argument("--connection-file", help="also check the kernel of this file")
    kernel.add_argument("--kernel-id", help="also check this kernel (Jupyter runtime dir)")
    doctor.add_argument("--config", help="TOML configuration file (as for `run`)")
    doctor.add_argument(
        "--timeout", type=float, default=10.0, help="seconds per request to a running kernel"
    )
    doctor.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    doctor.set_defaults(func=_cmd_doctor)

    config = sub.add_parser("config", help="show or validate the configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    show = config_sub.add_parser("show", help="print the effective configuration as TOML")
    show.add_argument("--config", help="TOML configuration file (else the usual lookup)")
    show.set_defaults(func=_cmd_config_show)
    validate = config_sub.add_parser("validate", help="check a configuration file")
    validate.add_argument("path", nargs="?", help="the file (else the usual lookup)")
    validate.set_defaults(func=_cmd_config_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code
