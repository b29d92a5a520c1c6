"""The one progress convention of every long call: ``progress(stage, done, total)``.

Every function of the public API that can take a while (:func:`~mlflow_plugin.pack`,
:func:`~mlflow_plugin.push`, :func:`~mlflow_plugin.pull`, :func:`~mlflow_plugin.unpack`,
:func:`~mlflow_plugin.verify`, :func:`~mlflow_plugin.publish_run`, :func:`~mlflow_plugin.scan`)
takes ``progress: Progress | None = None`` and calls it as ``progress(stage, done, total)``:

* ``stage`` -- a short human-readable label of the current step: ``"compose"``, ``"scan"``,
  ``"copy"``, ``"unpack"``, ``"verify"``, ``"pack model model.joblib"``… A call reports its stages
  in order; a new ``stage`` means the previous one is over.
* ``done`` -- how much of the stage is done, *cumulative* (not a delta): bytes for transfers,
  steps for publish's stages. It starts at 0 and normally ends at ``total``; it can go *down*
  when a registry upload restarts after a dropped connection.
* ``total`` -- the stage's size in the same unit; ``0`` means unknown.

``None`` (the default) is silent. The callback runs in the caller's thread, often (every chunk):
keep it cheap. The CLI passes tqdm bars (on a terminal only); a notebook passes anything:

>>> seen = []
>>> def progress(stage: str, done: int, total: int) -> None:
...     seen.append((stage, done, total))
>>> cb = bytes_callback(progress, "copy", 10)       # adapt byte counts (deltas) to the convention
>>> cb(4); cb(6)
>>> seen
[('copy', 0, 10), ('copy', 4, 10), ('copy', 10, 10)]
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: see the module docstring; ``total == 0`` means unknown."""


def _silent(n: int) -> None:
    return None


def bytes_callback(progress: Progress | None, stage: str, total: int | None) -> Callable[[int], None]:
    """A ``cb(n)`` that adds byte counts ``n`` up and reports them as ``progress(stage, done, total)``.

    Reports ``(stage, 0, total)`` at once, then the running sum after every call; a negative ``n``
    (a restarted upload) rewinds ``done``, never below 0. ``total=None`` is reported as ``0``
    (unknown). With ``progress=None`` the callback does nothing.

    >>> cb = bytes_callback(lambda s, d, t: print(s, d, t), "unpack", None)
    unpack 0 0
    >>> cb(5); cb(-3)
    unpack 5 0
    unpack 2 0
    """
    if progress is None:
        return _silent
    size = int(total or 0)
    done = 0
    progress(stage, 0, size)

    def cb(n: int) -> None:
        nonlocal done
        done = max(0, done + n)
        progress(stage, done, size)

    return cb


def report_stage(progress: Progress | None, stage: str, done: int, total: int) -> None:
    """Call ``progress(stage, done, total)`` unless ``progress`` is ``None``.

    >>> report_stage(None, "scan", 0, 1)                       # silent
    >>> report_stage(lambda *a: print(a), "scan", 1, 1)
    ('scan', 1, 1)
    """
    if progress is not None:
        progress(stage, done, total)


__all__ = ["Progress", "bytes_callback", "report_stage"]
