"""Crash trials for nearindex: kill real ``nearindex`` processes with SIGKILL and check what survives.

``scripts/crash_trials.py`` runs many trials and prints a table; ``tests/test_crash_trials.py``
runs a few. The pieces, each a module of one job:

* ``collection``: the generated image folders and the template databases a trial starts from;
* ``observe``: what a running ``nearindex`` process has reached (read from ``/proc`` and the
  catalog by another connection, never by hooks in nearindex) and the committed-state snapshot;
* ``verify``: the checks after a kill (``check``, ``check --repair``, nothing committed lost,
  vectors present, no duplicates, a re-run completes the rest);
* ``trial``: one trial from copying a template to the verdict.
"""
