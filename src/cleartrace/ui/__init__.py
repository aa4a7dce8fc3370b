"""The tray app: Qt only here, a thin layer over `cleartrace.service`.

Every window talks to the service through a `Runner` (ui/runner.py), which
runs the call on its own thread and hands the result back on the GUI thread,
so the GUI thread never does disk, crypto or X I/O.
"""
