"""Configuration: the TOML file, its lookup, its validation and its effective values.

Owns the frozen configuration model and the parser whose errors name file, line and key
(`model`), and the value parsers for sizes, durations and enumerations (`values`). Pure:
no sockets, no threads.
"""
