"""The IOPub funnel: everything bound for the frontend, in one order (I1, I2, I3, I7, I8).

Owns the typed funnel items (`items`), the multi-producer queue they travel in (`outbox`),
the single consumer's ordering logic (`iopub.IOPubFunnel`, sans-I/O: it calls a sink), the
capture of fd 1/2 and `sys.stdout`/`sys.stderr` (`capture`) and the `input()` waiter
(`stdin`). Any thread may produce items; only the io thread consumes them. Imports
`mpkernel.wire` only: no zmq, no IPython.
"""
