"""The Positron data explorer (`positron.dataExplorer`): a table engine over Arrow columns
(`tables`, `view`, `filters`, `profiles`, `formatting`, `export`, `code`) and its comm
handler (`handler`). One worker process per open table by default.

The handler is imported on first use, not with the package: the kernel's forkserver
preloads this package, and importing pyarrow there would cost every idle kernel about
60 MB of its own memory (measured: the forkserver's USS 79 MB against 17 MB); a table's
worker imports it instead (about 0.1 s of its start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mpkernel_workers.data_explorer.handler import DataExplorerHandler

__all__ = ["DataExplorerHandler"]


def __getattr__(name: str) -> Any:
    if name == "DataExplorerHandler":
        from mpkernel_workers.data_explorer.handler import DataExplorerHandler

        return DataExplorerHandler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
