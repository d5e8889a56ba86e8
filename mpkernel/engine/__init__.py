"""The execution engine: user code on the main thread, through IPython.

Owns the `InteractiveShell` adapter (`execute`), the shell request dispatcher that brackets
every request with busy and idle (`shell`), and the in-process comms of the `comm` package
(`inprocess`: ipywidgets and friends). Everything it produces becomes funnel items. Only
the main thread runs this code; the io thread never imports it.
"""
