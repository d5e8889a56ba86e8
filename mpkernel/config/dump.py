"""The effective configuration written out as TOML (`mpkernel config show`)."""

from __future__ import annotations

from mpkernel.config.model import Config
from mpkernel.config.values import toml_bool, toml_float, toml_key, toml_size, toml_string


def dump_config(config: Config) -> str:
    """Every setting as TOML; parse_config(dump_config(c), c.source) == c for any c that
    parse_config made (all built-in workers present, log_file absolute or without source)."""
    origin = "built-in defaults" if config.source is None else toml_string(str(config.source))
    k = config.kernel
    lines = [f"# mpkernel effective configuration, from {origin}", "", "[kernel]"]
    lines.append(f"log_level = {toml_string(k.log_level)}")
    if k.log_file is not None:
        lines.append(f"log_file = {toml_string(str(k.log_file))}")
    lines += [
        f"post_execute_budget_ms = {k.post_execute_budget_ms}",
        f"preview_min_bytes = {toml_size(k.preview_min_bytes)}",
        f"on_frontend_disconnect = {toml_string(k.on_frontend_disconnect)}",
        f"disconnect_grace_s = {toml_float(k.disconnect_grace_s)}",
        f"interrupt_mode = {toml_string(k.interrupt_mode)}",
        f"debugger = {'true' if k.debugger else 'false'}",
    ]
    for w in config.workers:
        lines += [
            "",
            f"[workers.{toml_key(w.name)}]",
            f"target = {toml_string(w.target)}",
            f"handler = {toml_string(w.handler)}",
            f"enabled = {toml_bool(w.enabled)}",
            f"start_method = {toml_string(w.start_method)}",
            f"memory_limit = {toml_size(w.memory_limit or 0)}",  # 0: no limit
            f"cpu_limit_s = {toml_float(w.cpu_limit_s)}",
            f"restart = {toml_string(w.restart)}",
            f"max_restarts = {w.max_restarts}",
            f"restart_window_s = {toml_float(w.restart_window_s)}",
            f"processes = {toml_string(w.processes)}",
            f"persistent = {toml_bool(w.persistent)}",
            f"rpc_timeout_s = {toml_float(w.rpc_timeout_s)}",
            f"subject = {toml_string(w.subject)}",
        ]
    return "\n".join(lines) + "\n"
