"""Snapshots: the one way user objects cross from the main process into workers.

`builder` runs on the main thread after each execution (and on demand): it finds what
changed in the user's namespace within `[kernel] post_execute_budget_ms`, and encodes it
(`codec`: pickle protocol 5 with out-of-band buffers in shared memory, or a descriptor for
what cannot be pickled). `dispatch` runs on the io thread: it hands each consuming worker
only the newest snapshot (latest wins) and frees what is superseded. `store` runs inside a
worker: it maps a snapshot and gives handlers the objects (`on_snapshot`).
"""

from __future__ import annotations

# In the open data of a viewer that follows a variable: the version of the snapshot its
# object is as of. A viewer whose worker first hears of a newer snapshot (cells ran while
# it started) takes the variable's value from that one instead.
OPENED_AS_OF = "snapshot_version"
