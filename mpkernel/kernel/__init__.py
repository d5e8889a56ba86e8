"""The kernel process shell: connection file, sockets, the io thread, heartbeat, control.

Owns the five frontend sockets (`sockets`), the `mpkernel-io` thread that alone polls and
writes them (`io_loop`, with the frames `frontend` makes), control requests answered while
user code runs (`control`), the heartbeat thread, the shell work queue handed to the main
thread (`work`), and the start-up and wind-down of the whole process (`app`). It wires the
funnel, the comm router and the worker supervisor together; it does not import IPython
(only `app` does, lazily).
"""
