"""Overlap reading, hashing and writing on separate threads (all three release the GIL).

>>> import hashlib, io
>>> h, out = hashlib.sha256(), io.BytesIO()
>>> fan_out(iter([b"ab", b"c"]), [h.update, out.write])
3
>>> out.getvalue(), h.hexdigest()[:8]
(b'abc', 'ba7816bf')

A download that hashes inline runs at the speed of its slowest stage instead of the sum of
all stages; memory stays bounded by ``depth`` chunks per consumer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

_END = object()


def fan_out(chunks: Iterator[bytes], consumers: list[Callable[[bytes], object]], depth: int = 8) -> int:
    """Feed every chunk to every consumer, each consumer on its own thread; returns bytes seen.

    The first exception (from the producer or any consumer) is re-raised after all threads stop.
    """
    queues: list[queue.Queue[object]] = [queue.Queue(maxsize=depth) for _ in consumers]
    errors: list[BaseException] = []
    stop = threading.Event()

    def run(q: queue.Queue[object], fn: Callable[[bytes], object]) -> None:
        while True:
            item = q.get()
            if item is _END:
                return
            if stop.is_set():
                continue
            try:
                fn(item)  # type: ignore[arg-type]
            except BaseException as e:
                errors.append(e)
                stop.set()

    threads = [
        threading.Thread(target=run, args=(q, fn), daemon=True)
        for q, fn in zip(queues, consumers, strict=True)
    ]
    for t in threads:
        t.start()
    n = 0
    try:
        for chunk in chunks:
            if stop.is_set():
                break
            n += len(chunk)
            for q in queues:
                q.put(chunk)
    except BaseException as e:
        errors.insert(0, e)
        stop.set()
    finally:
        for q in queues:
            q.put(_END)
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return n
