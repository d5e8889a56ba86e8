"""The Positron data explorer (`positron.dataExplorer`): a table engine over Arrow columns
(`tables`, `view`, `filters`, `profiles`, `formatting`, `export`, `code`) and its comm
handler (`handler`). One worker process per open table by default."""

from __future__ import annotations

from mpkernel_workers.data_explorer.handler import DataExplorerHandler

__all__ = ["DataExplorerHandler"]
