"""Where `serve`'s accepted connections wait, holding no thread and no serving slot, until their request
starts to arrive: idle connections (opened, nothing sent) cannot take the slots deliveries need.

One thread watches them all with a selector. A connection with bytes to read is handed to `dispatch`;
one that `dispatch` cannot take yet (every slot busy) waits, ready, and is offered again. Each may wait
until `timeout` after it was accepted: then an idle one is closed and a ready one `refuse`d. Beyond
`capacity` waiting, the oldest idle one is closed first (a ready one only when none is idle).
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.common.reporting import Reporter


@dataclass(frozen=True)
class Arrival:
    sock: socket.socket
    address: Any
    accepted_at: float  # time.monotonic()


Dispatch = Callable[[Arrival], bool]  # True: taken (a thread serves it now)
Close = Callable[[Arrival], None]

_READY_RETRY = 0.02  # how often ready connections are offered again while every slot is busy
_LOG_EVERY = 10.0  # closing idle connections is logged at most this often, with a count


class Lobby:
    def __init__(
        self,
        dispatch: Dispatch,
        close: Close,
        refuse: Close,
        timeout: float,
        capacity: int,
        log: Reporter,
    ) -> None:
        self._dispatch, self._close, self._refuse = dispatch, close, refuse
        self.timeout = timeout
        self.capacity = capacity
        self.log = log
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        self._lock = threading.Lock()
        self._arrived: list[Arrival] = []  # handed over by the accepting thread, not yet watched
        self._idle: dict[socket.socket, Arrival] = {}  # watched; insertion order is arrival order
        self._ready: deque[Arrival] = deque()  # sent something; waiting for a slot
        self._count = 0
        self._closed_idle = 0  # since the last log line about them
        self._next_log = 0.0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pipeline-serve-lobby", daemon=True)
        self._thread.start()

    def admit(self, arrival: Arrival) -> None:
        """A connection just accepted (called by the accepting thread; never blocks)."""
        with self._lock:
            self._arrived.append(arrival)
            self._count += 1
        self._wake()

    def waiting(self) -> int:
        """How many connections wait here (idle or ready)."""
        with self._lock:
            return self._count

    def close(self) -> None:
        self._stopping.set()
        self._wake()
        self._thread.join(timeout=5)
        with self._lock:
            left = [*self._arrived, *self._idle.values(), *self._ready]
            self._arrived, self._count = [], 0
            self._idle.clear()
            self._ready.clear()
        for arrival in left:
            self._close(arrival)
        self._selector.close()
        self._wake_read.close()
        self._wake_write.close()

    def _wake(self) -> None:
        try:
            self._wake_write.send(b"\0")
        except OSError:  # the buffer is full (a wake-up is pending anyway) or the lobby is closed
            pass

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._turn()
            except Exception as exc:  # a bug here must not stop the server from accepting: report, go on
                self.log.say(f"lobby: {type(exc).__name__}: {exc}")
                self._stopping.wait(0.1)

    def _turn(self) -> None:
        """Offer the ready connections, wait for news (bytes, arrivals, a deadline), act on it."""
        self._offer_ready()
        for key, _ in self._selector.select(self._next_wait()):
            if key.fileobj is self._wake_read:
                try:
                    while self._wake_read.recv(4096):
                        pass
                except BlockingIOError:
                    pass
                continue
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            self._selector.unregister(sock)
            self._ready.append(self._idle.pop(sock))
        self._watch_arrivals()
        self._expire()
        self._offer_ready()

    def _watch_arrivals(self) -> None:
        with self._lock:
            arrived, self._arrived = self._arrived, []
        for arrival in arrived:
            try:
                self._selector.register(arrival.sock, selectors.EVENT_READ)
            except (OSError, ValueError):  # closed already
                self._done(arrival, self._close)
                continue
            self._idle[arrival.sock] = arrival
        while len(self._idle) + len(self._ready) > self.capacity:
            if self._idle:
                oldest = next(iter(self._idle.values()))
                self._forget_idle(oldest)
                self._closed_one()
            else:
                self._done(self._ready.popleft(), self._refuse)

    def _offer_ready(self) -> None:
        while self._ready and self._dispatch(self._ready[0]):
            self._ready.popleft()
            with self._lock:
                self._count -= 1

    def _expire(self) -> None:
        now = time.monotonic()
        for arrival in [a for a in self._idle.values() if now >= a.accepted_at + self.timeout]:
            self._forget_idle(arrival)
            self._closed_one()
        while self._ready and now >= self._ready[0].accepted_at + self.timeout:
            self._done(self._ready.popleft(), self._refuse)

    def _next_wait(self) -> float:
        if self._ready:
            return _READY_RETRY
        if not self._idle:
            return 1.0
        oldest = next(iter(self._idle.values()))
        return max(0.0, min(1.0, oldest.accepted_at + self.timeout - time.monotonic()))

    def _forget_idle(self, arrival: Arrival) -> None:
        del self._idle[arrival.sock]
        try:
            self._selector.unregister(arrival.sock)
        except (KeyError, ValueError):
            pass
        self._done(arrival, self._close)

    def _done(self, arrival: Arrival, how: Close) -> None:
        with self._lock:
            self._count -= 1
        how(arrival)

    def _closed_one(self) -> None:
        self._closed_idle += 1
        now = time.monotonic()
        if now >= self._next_log:
            self.log.say(
                f"closed {self._closed_idle} idle connection(s): nothing sent within {self.timeout:g}s, "
                f"or {self.capacity} connections were waiting"
            )
            self._closed_idle, self._next_log = 0, now + _LOG_EVERY
