"""Worker processes: start, watch, limit, restart (main side) and the runtime inside them.

Owns the typed envelopes between the main process and workers (`ipc`), the supervisor that
starts workers from the forkserver or by spawn, watches their sentinels and psutil limits and
applies the restart policy (`supervisor`, io thread), and the loop that runs inside every
worker process and calls the handler (`runtime`). Imports zmq, multiprocess and psutil;
never IPython.
"""
