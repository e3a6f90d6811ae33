"""The backend interface: a compiled network that maps a normalised batch to raw outputs."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, Protocol

import numpy as np

from ...errors import InputError
from ...model import ModelConfig


class Backend(Protocol):
    """Runs the network: ``(N, 3, H, W)`` float32 normalised input -> raw outputs at 1/4 size.

    Outputs are the model's: ``"segmentation"`` logits ``(N, C, h, w)``, ``"depth"``
    ``(N, 1, h, w)`` and optionally ``"normals"``, as float32 numpy arrays.
    """

    name: str
    config: ModelConfig

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]: ...


Size = tuple[int, int]


def is_image_batch(batch: np.ndarray) -> bool:
    """Whether ``batch`` is uint8 RGB images ``(N, H, W, 3)`` (not a normalised network input)."""
    return isinstance(batch, np.ndarray) and batch.dtype == np.uint8 and batch.ndim == 4 and batch.shape[3] == 3


def check_batch(batch: np.ndarray) -> np.ndarray:
    """The batch as contiguous float32 ``(N, 3, H, W)``, or a one-line error."""
    x = np.ascontiguousarray(batch, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] != 3:
        raise InputError(f"expected a (N, 3, H, W) batch, got shape {x.shape}")
    return x


class GraphsBySize:
    """Exported graphs of one network by input ``(H, W)``, made on first use.

    The key ``None`` holds a graph valid for every size. Networks whose graph depends on
    the input size (TensorFlow-style SAME padding) get one graph per size instead, and a
    file exported for one size (``fixed_size``) refuses the others with the fix.
    """

    def __init__(self, prepare: Callable[[Size | None], Any], source: str = "model",
                 fixed_size: Size | None = None) -> None:
        self._prepare = prepare
        self.source = source
        self.fixed_size = fixed_size
        self._graphs: dict[Size | None, Any] = {}

    def add(self, size: Size | None, graph: Any) -> None:
        self._graphs[size] = graph

    def __getitem__(self, size: Size | None) -> Any:
        return self._graphs[size]

    def prepare_dynamic(self) -> None:
        """Make the any-size graph now, unless the network only exports per size."""
        from ...export.onnx import SizeSpecificModelError

        try:
            self._graphs[None] = self._prepare(None)
        except SizeSpecificModelError:
            pass  # exported per input size on first use

    def get(self, size: Size) -> Any:
        if None in self._graphs:
            return self._graphs[None]
        if self.fixed_size is not None and size != self.fixed_size:
            h, w = self.fixed_size
            raise InputError(f"{self.source}: exported for {h}x{w} inputs, got {size[0]}x{size[1]}; "
                             f"resize the input (Predictor size=({h}, {w}) / predict --size {h}x{w}) "
                             "or export with --size dynamic")
        if size not in self._graphs:
            self._graphs[size] = self._prepare(size)
        return self._graphs[size]


class SetupClock:
    """Seconds a backend spent making engines (export, quantization, compilation), not running them.

    ``seconds`` is the time spent building; :meth:`waited` the time the calling thread spent
    in :meth:`CompiledByShape.get` (building, or waiting for another thread's build), which is
    what a caller timing its own requests has to leave out.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._local = threading.local()

    def add(self, seconds: float) -> None:
        with self._lock:
            self.seconds += seconds

    @contextmanager
    def timing(self) -> Iterator[None]:
        """Count the time spent in the ``with`` block as set-up."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(time.perf_counter() - start)

    def add_wait(self, seconds: float) -> None:
        self._local.seconds = self.waited() + seconds

    def waited(self) -> float:
        return getattr(self._local, "seconds", 0.0)


class CompiledByShape:
    """The last ``capacity`` compiled runners by full input shape (each is specialised to it).

    Building one (and the graph it needs) is timed on ``clock``, so that a first call's
    conversion is not reported as the network's speed.
    """

    def __init__(self, build: Callable[[tuple[int, ...]], Any], capacity: int = 4,
                 clock: SetupClock | None = None) -> None:
        self._build = build
        self.capacity = capacity
        self.clock = clock
        self._items: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._lock = threading.Lock()  # streamed inference asks from several threads

    def get(self, shape: tuple[int, ...]) -> Any:
        called = time.perf_counter()
        try:
            with self._lock:
                item = self._items.get(shape)
                if item is None:
                    with self.clock.timing() if self.clock is not None else nullcontext():
                        item = self._items[shape] = self._build(shape)
                    if len(self._items) > self.capacity:
                        self._items.popitem(last=False)
                else:
                    self._items.move_to_end(shape)
                return item
        finally:
            if self.clock is not None:  # this thread's wait, for its own build or another's
                self.clock.add_wait(time.perf_counter() - called)


class ExportedBackend:
    """Shared by the backends that run exported graphs: where they came from, what size, and
    the time spent making engines (``setup``)."""

    _graphs: GraphsBySize
    setup: SetupClock

    @property
    def fixed_size(self) -> Size | None:
        """The input size an exported file was made for (None: any size)."""
        return self._graphs.fixed_size

    @property
    def source(self) -> str:
        """The exported file, or ``"model"`` for a network exported here."""
        return self._graphs.source
