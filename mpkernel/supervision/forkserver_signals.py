"""Imported first by the forkserver (as a preload), never by the kernel: the forkserver and
every worker it forks ignore SIGINT from their first instruction.

An interrupt goes to the kernel's whole process group. A worker sets SIGINT aside when its
runtime starts, but one being forked at that moment (a restart right as the user presses
interrupt, or as Jupyter shuts the kernel down) would die in its bootstrap and print a
KeyboardInterrupt traceback. Forked children inherit the ignore.
"""

from __future__ import annotations

import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
