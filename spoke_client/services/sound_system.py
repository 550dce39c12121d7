"""PortAudio (through sounddevice) with deadlines, so a vanished sound device can never freeze the app.

A sound server that dies or freezes can make PortAudio wait for ever: in stop or close under a running stream, in
opening one, and in starting up (which opens every device to list it). Those calls run here on a daemon helper thread
and the caller waits a few seconds at most: a stream that does not stop in time is abandoned (never waited for again,
and never terminated at exit, which would hang on it). PortAudio lists the devices once, when it starts: `refresh()`
restarts it, only while no stream is open, so a microphone plugged in later, or a sound server that restarted, is
found without restarting the app.
"""

from __future__ import annotations

import atexit
import ctypes
import importlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

OPEN_DEADLINE_S = 5.0     # opening a stream, or restarting PortAudio (it opens every device to list it)
STOP_DEADLINE_S = 4.0     # stopping and closing a stream: milliseconds with a sound card; up to 2 s with the tests'
                          # PulseAudio sine source, which sends 2 s of sound at a time


class NoAnswer(Exception):
    """The sound system did not answer within the deadline; the call goes on, abandoned, on its helper thread."""


_global = threading.RLock()          # PortAudio's global calls (open, list, restart) one at a time
_streams = threading.Lock()          # guards the two sets below; never held while PortAudio is called
_open: set[Any] = set()              # streams opened and not yet closed (a restart would close them under us)
_stuck: set[Any] = set()             # of those, the ones that did not stop in time, or at all
_unresponsive = False                # a restart of PortAudio did not finish in time: nothing more is tried
_module: Any = None                  # sounddevice, once imported
_importing = False                   # its import (which starts PortAudio) did not finish in time and goes on
_pinned: Any = None                  # PortAudio's library, held open for the life of the process


def sounddevice():
    """The sounddevice module. Importing it starts PortAudio, which opens every device to list it, so the first
    import also runs with a deadline (NoAnswer). OSError when the PortAudio library itself is missing."""
    global _importing
    if _module is not None:
        return _module
    with _global:
        if _module is not None:
            return _module
        if _importing:
            raise NoAnswer("PortAudio is still starting")
        _importing = True

        def late(outcome: Any) -> None:
            global _importing
            if not isinstance(outcome, BaseException):
                _adopt(outcome)
            _importing = False

        try:
            module = call(lambda: importlib.import_module("sounddevice"), "starting PortAudio", OPEN_DEADLINE_S, late)
        except NoAnswer:
            raise   # `late` adopts the module if the import ever ends
        except BaseException:
            _importing = False
            raise
        _importing = False
        return _adopt(module)


def _adopt(sd: Any) -> Any:
    global _module, _pinned
    if _module is None:
        # sounddevice's own exit handler stops streams and terminates PortAudio with no deadline: ours instead.
        atexit.unregister(sd._exit_handler)
        atexit.register(_at_exit)
        # A second handle on the library, which ctypes never closes: when Python frees sounddevice's at exit,
        # PortAudio stays mapped under the threads of an abandoned stream (unmapped, they crash the exit).
        try:
            _pinned = ctypes.CDLL(sd._libname)
        except (OSError, AttributeError):
            log.warning("PortAudio could not be pinned in memory; an exit with a stuck stream may crash")
        _module = sd
    return _module


def call(fn: Callable[[], Any], what: str, timeout_s: float, late: Callable[[Any], None] | None = None) -> Any:
    """fn() on a daemon thread: its result, or its exception raised here; NoAnswer after `timeout_s`. When fn ends
    after the caller gave up, `late` gets its result (or exception) on the helper thread, to release what it made."""
    lock = threading.Lock()
    box: dict[str, Any] = {}
    started = time.monotonic()

    def run() -> None:
        try:
            outcome: dict[str, Any] = {"result": fn()}
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, or to `late`
            outcome = {"error": exc}
        with lock:
            abandoned = box.get("abandoned", False)
            box.update(outcome)
        if abandoned:
            log.warning("%s returned %.1f s late, after it was abandoned", what, time.monotonic() - started)
            if late is not None:
                try:
                    late(outcome.get("result", outcome.get("error")))
                except Exception:  # noqa: BLE001 - nobody is left to tell but the log
                    log.exception("cleaning up after %s failed", what)

    helper = threading.Thread(target=run, name=f"sound: {what}", daemon=True)
    helper.start()
    helper.join(timeout_s)
    with lock:
        if "result" in box:
            return box["result"]
        if "error" in box:
            raise box["error"]
        box["abandoned"] = True
    log.warning("%s did not return within %.1f s: abandoned (the sound server died or froze?)", what, timeout_s)
    raise NoAnswer(what)


def _check_responsive() -> None:
    if _unresponsive:
        raise NoAnswer("PortAudio is still restarting")


def _forget(stream: Any) -> None:
    with _streams:
        _open.discard(stream)
        _stuck.discard(stream)


def open_stream(create: Callable[[], Any], what: str, timeout_s: float = OPEN_DEADLINE_S) -> Any:
    """create() opens a stream (a sounddevice stream's constructor opens it); it is then started. Both happen on a
    helper thread; a stream that opens after the deadline is closed there. Raises what PortAudio raised, or NoAnswer."""

    def work() -> Any:
        stream = create()
        with _streams:
            _open.add(stream)
        try:
            stream.start()
        except BaseException:
            _stop_and_close(stream)
            raise
        return stream

    def late(outcome: Any) -> None:
        if not isinstance(outcome, BaseException):
            _stop_and_close(outcome)

    with _global:
        _check_responsive()
        return call(work, what, timeout_s, late)


def _stop_and_close(stream: Any) -> Exception | None:
    """On the calling (helper) thread. Stop, never abort: with ALSA, abort cancels PortAudio's callback thread
    (pthread_cancel), which can leave a lock it waited on (Python's own, in our callback) held for ever. For the same
    reason a stream that would not stop is not closed either (closing an active stream aborts it): it stays open."""
    problem: Exception | None = None
    try:
        stream.stop(ignore_errors=False)
    except Exception as exc:  # noqa: BLE001 - PortAudioError, or a stream already closed
        problem = None if _already_stopped(exc) else exc
    if problem is not None and not _is_stopped(stream):
        with _streams:
            _stuck.add(stream)
        log.warning("a sound stream did not stop (%s); it is left open", problem)
        return problem
    try:
        stream.close(ignore_errors=True)
    finally:
        _forget(stream)
    return problem


def _already_stopped(exc: Exception) -> bool:
    """A PortAudioError that only says the stream had stopped already (it ended by itself)."""
    import sounddevice as sd

    return len(exc.args) > 1 and exc.args[1] == sd._lib.paStreamIsStopped


def _is_stopped(stream: Any) -> bool:
    try:
        return bool(stream.stopped)
    except Exception:  # noqa: BLE001 - a stream PortAudio no longer knows
        return False


def close_stream(stream: Any, what: str, timeout_s: float = STOP_DEADLINE_S) -> tuple[bool, Exception | None]:
    """Stops and closes a stream within the deadline: (True, PortAudio's complaint or None) when it answered; (False,
    None) when it did not, and the stream is abandoned."""
    try:
        return True, call(lambda: _stop_and_close(stream), what, timeout_s)
    except NoAnswer:
        with _streams:
            if stream in _open:
                _stuck.add(stream)
        return False, None


def close_later(stream: Any, what: str) -> None:
    """Closes a stream that finished by itself, on a helper thread (PortAudio's own thread may not close it)."""
    threading.Thread(target=lambda: close_stream(stream, what), name=f"sound: {what}", daemon=True).start()


def open_streams() -> tuple[int, int]:
    """(streams open, of which stuck): for the log and for tests."""
    with _streams:
        return len(_open), len(_stuck)


def refresh() -> bool:
    """Restarts PortAudio so that it lists the devices anew. False (the old list stays) while a stream is open:
    restarting would close it under its user. Raises NoAnswer when the restart does not finish in time."""
    global _unresponsive
    sd = sounddevice()
    with _global:
        _check_responsive()
        busy, stuck = open_streams()
        if busy:
            log.info("sound device list not refreshed: %d stream(s) open, %d of them stuck", busy, stuck)
            return False

        def work() -> None:
            if sd._initialized:
                sd._terminate()
            sd._initialize()

        def late(_outcome: Any) -> None:
            global _unresponsive
            _unresponsive = False

        try:
            call(work, "restarting PortAudio", OPEN_DEADLINE_S, late)
        except NoAnswer:
            _unresponsive = True
            raise
        return True


def query(fn: Callable[[Any], Any]) -> Any:
    """fn(sounddevice) for a quick look at PortAudio's state (its device list), never during a restart."""
    sd = sounddevice()
    with _global:
        _check_responsive()
        return fn(sd)


def _at_exit() -> None:
    """Closes what is still open and terminates PortAudio, each with a deadline; a stuck stream is left to the OS."""
    import sounddevice as sd

    with _streams:
        streams, stuck = list(_open - _stuck), len(_stuck)
    for stream in streams:
        close_stream(stream, "closing a stream at exit", 1.0)
    if stuck or _unresponsive or open_streams()[0]:
        log.warning("PortAudio not terminated at exit: a stream is stuck in it (terminating would abort it)")
        return
    try:
        while sd._initialized:
            call(sd._terminate, "terminating PortAudio", 2.0)
    except Exception:  # noqa: BLE001 - exiting anyway
        log.warning("PortAudio did not terminate at exit", exc_info=True)
