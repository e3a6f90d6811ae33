"""Overlapping video decoding and encoding with inference, in background threads.

Decoding (FFmpeg), the network (PyTorch / ONNX Runtime / OpenVINO) and OpenCV all release
the GIL while they work, so a decode thread, the inference loop and a render/encode thread
run concurrently. Queues are bounded, so memory stays at a few frames.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_DONE = object()


class Prefetch(Generic[T]):
    """Iterates ``source`` in a background thread, ``maxsize`` items ahead of the consumer.

    Exceptions raised by the source are re-raised in the consumer at the point they occurred.
    ``close()`` (or leaving a ``with`` block) stops the thread early.
    """

    def __init__(self, source: Iterable[T], maxsize: int = 4) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, maxsize))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iter(source),), daemon=True,
                                        name="hydranet-prefetch")
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source: Iterator[T]) -> None:
        try:
            for item in source:
                if not self._put((True, item)):
                    return
        except BaseException as exc:  # handed to the consumer
            self._put((False, exc))
            return
        finally:
            close = getattr(source, "close", None)
            if close is not None and self._stop.is_set():
                try:
                    close()
                except Exception:
                    pass
        self._put((True, _DONE))

    def __iter__(self) -> Iterator[T]:
        while True:
            ok, item = self._queue.get()
            if not ok:
                raise item  # type: ignore[misc]
            if item is _DONE:
                return
            yield item  # type: ignore[misc]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> "Prefetch[T]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BackgroundWorker(Generic[T]):
    """Calls ``fn(item)`` for submitted items, in order, in one background thread.

    An exception in ``fn`` stops the worker; it is re-raised by the next ``submit`` or by
    ``close()``. ``close()`` waits for every submitted item to be handled.
    """

    def __init__(self, fn: Callable[[T], None], maxsize: int = 4) -> None:
        self._fn = fn
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, maxsize))
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="hydranet-worker")
        self._thread.start()
        self._closed = False

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._error is not None:
                continue  # drain without work so that submitters never block
            try:
                self._fn(item)
            except BaseException as exc:
                self._error = exc

    def submit(self, item: T) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def close(self) -> None:
        """Finish every submitted item, stop the thread, re-raise a worker error."""
        if not self._closed:
            self._closed = True
            self._queue.put(_DONE)
            self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def __enter__(self) -> "BackgroundWorker[T]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ordered_map(fn: Callable[[T], R], items: Iterable[T],
                depth: int = 1) -> Iterator[tuple[T, R | None, BaseException | None]]:
    """``(item, fn(item), None)``, or ``(item, None, exception)``, for each item in order.

    Up to ``depth`` calls run at once in worker threads (``depth`` 1: in the caller's thread,
    one after the other), so an engine with several streams keeps them all busy while the
    results still come out in the order of ``items``.
    """
    if depth <= 1:
        for item in items:
            try:
                yield item, fn(item), None
            except Exception as exc:
                yield item, None, exc
        return

    def done(item: T, future: Future) -> tuple[T, R | None, BaseException | None]:
        try:
            return item, future.result(), None
        except Exception as exc:
            return item, None, exc

    with ThreadPoolExecutor(depth, thread_name_prefix="hydranet-infer") as pool:
        window: deque[tuple[T, Future]] = deque()
        for item in items:
            window.append((item, pool.submit(fn, item)))
            if len(window) >= depth:
                yield done(*window.popleft())
        while window:
            yield done(*window.popleft())
