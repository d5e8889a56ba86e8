"""Worker processes: start, watch, limit, restart (main side) and the runtime inside them.

Owns the typed envelopes between the main process and workers (`ipc`), the supervisor that
starts workers from the forkserver or by spawn, watches their sentinels and psutil limits and
applies the restart policy (`supervisor`, io thread), and, inside every worker process, the
process entry (`runtime`), the loop thread that alone touches the worker's sockets and calls
the handler (`worker_loop`), a handler's `Comm` usable from any thread (`worker_comm`), and
requests as objects with the background pool (`requests`). Imports zmq, multiprocess and
psutil; never IPython.
"""
