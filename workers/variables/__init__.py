"""`positron.variables`: Positron's variables pane, served from a worker.

`handler` speaks the comm; `inspectors` (with `formatting`, `tables`, `summary`) turns
values into the pane's rows; `access_keys` encodes path steps; `protocol` types the
messages.
"""

from __future__ import annotations

from mpkernel_workers.variables.handler import VariablesHandler

__all__ = ["VariablesHandler"]
