"""Model lifecycle: a lazy, once-only, thread-safe loader and a pool of LiteRT interpreters."""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from .errors import ModelError, ModelUnavailable
from .logs import get_logger

T = TypeVar("T")
FIRST_RETRY_SECONDS = 1.0
_MAX_CAUSE_CHARS = 300


@dataclass(frozen=True)
class LoadFailure:
    cause: str
    retry_at: float
    attempts: int


class LazyModel(Generic[T]):
    """Loads a model on first use, exactly once even under concurrent first requests.

    A failed load is not cached forever: the next attempt may start after a back-off that
    doubles from FIRST_RETRY_SECONDS up to `retry_max_seconds`; until then callers get 503.
    """

    def __init__(
        self,
        uri: str,
        load: Callable[[], T],
        retry_max_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.uri = uri
        self._load = load
        self._retry_max = retry_max_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._model: T | None = None
        self._failure: LoadFailure | None = None

    @property
    def loaded(self) -> T | None:
        """The model if it is loaded, without loading it."""
        return self._model

    @property
    def state(self) -> dict[str, object]:
        if self._model is not None:
            return {"state": "loaded"}
        failure = self._failure
        if failure is None:
            return {"state": "not_loaded"}
        return {"state": "failed", "cause": failure.cause, "attempts": failure.attempts}

    def get(self) -> T:
        """The loaded model; loads it if needed; ModelUnavailable (503) if it cannot be loaded."""
        model = self._model
        if model is not None:  # fast path: no lock once loaded
            return model
        with self._lock:
            if self._model is not None:
                return self._model
            now = self._clock()
            failure = self._failure
            if failure is not None and now < failure.retry_at:
                raise self._unavailable(failure.cause, failure.retry_at - now)
            try:
                self._model = self._load()
            except Exception as exc:  # any failure to load becomes a 503, never a 500
                cause = _describe(exc)
                attempts = failure.attempts + 1 if failure else 1
                delay = min(self._retry_max, FIRST_RETRY_SECONDS * 2 ** (attempts - 1))
                self._failure = LoadFailure(cause, now + delay, attempts)
                get_logger().error(
                    "model load failed",
                    extra={
                        "fields": {
                            "uri": self.uri,
                            "cause": cause,
                            "attempt": attempts,
                            "retry_in_s": delay,
                        }
                    },
                )
                raise self._unavailable(cause, delay) from None
            self._failure = None
            return self._model

    def _unavailable(self, cause: str, wait_seconds: float) -> ModelUnavailable:
        retry_after = max(1, math.ceil(wait_seconds))
        return ModelUnavailable(
            f"Model unavailable: could not load {self.uri} ({cause}). Retry after {retry_after} s.",
            retry_after,
        )


def _describe(exc: Exception) -> str:
    text = str(exc) if isinstance(exc, ModelError) else f"{type(exc).__name__}: {exc}"
    return text[:_MAX_CAUSE_CHARS]


class InterpreterPool:
    """A bounded pool of LiteRT interpreters over one model.

    An interpreter must never be invoked from two threads at once, and functions-framework
    serves many threads per instance: each call borrows an interpreter for its whole
    set-invoke-get sequence. LiteRT releases the GIL while invoking, so a pool as large as
    the CPU count runs that many inferences in parallel.
    """

    def __init__(self, model: bytes, size: int, num_threads: int = 1) -> None:
        self._model = model
        self._num_threads = num_threads
        self._size = max(1, size)
        self._idle: queue.SimpleQueue[Interpreter] = queue.SimpleQueue()
        self._created = 0
        self._create_lock = threading.Lock()
        first = self._new_interpreter()  # fails here, at load time, for a broken model
        input_detail = first.get_input_details()[0]
        output_detail = first.get_output_details()[0]
        self.input_index: int = input_detail["index"]
        self.output_index: int = output_detail["index"]
        self.input_shape: tuple[int, ...] = tuple(int(d) for d in input_detail["shape"])
        self.input_dtype = np.dtype(input_detail["dtype"])
        self.output_shape: tuple[int, ...] = tuple(int(d) for d in output_detail["shape"])
        self._idle.put(first)

    @property
    def interpreters(self) -> int:
        """How many interpreters exist so far (at most `size`)."""
        return self._created

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """Invoke the model on one input tensor and return a copy of its output tensor."""
        return self._run(lambda interpreter: interpreter.set_tensor(self.input_index, inputs))

    def run_filled(self, fill: Callable[[np.ndarray], object]) -> np.ndarray:
        """Invoke the model after `fill` wrote one input in place, into the interpreter's own
        buffer (shape input_shape[1:]); a copy of the output tensor.

        No input array is allocated per call: a fresh one of an image model's size (600 kB)
        costs page faults that can exceed the work of filling it. `fill` must keep no
        reference to the buffer (LiteRT refuses to invoke while one exists).
        """
        return self._run(lambda interpreter: fill(interpreter.tensor(self.input_index)()[0]))

    def _run(self, prepare: Callable[[Interpreter], object]) -> np.ndarray:
        interpreter = self._borrow()
        try:
            prepare(interpreter)
            interpreter.invoke()
            return interpreter.get_tensor(self.output_index)  # get_tensor returns a copy
        except (RuntimeError, ValueError) as exc:
            raise ModelUnavailable(
                f"Model failed to run: {_describe(exc)}", retry_after=1
            ) from None
        finally:
            self._idle.put(interpreter)

    def _borrow(self) -> Interpreter:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._create_lock:
            if self._created < self._size:
                return self._new_interpreter()
        return self._idle.get()

    def _new_interpreter(self) -> Interpreter:
        try:
            interpreter = Interpreter(model_content=self._model, num_threads=self._num_threads)
            interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"LiteRT cannot load the model: {exc}") from None
        self._created += 1
        return interpreter
