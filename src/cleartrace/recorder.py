"""The recorder: keeps the installed hooks equal to what consent and pause allow.

It owns the session and the writer thread (the control socket that serves
it belongs to runtime.py, which runs the recorder). Hooks are
reconciled, never filtered: a category without consent, or any category while
paused, has no listener installed at all. Consent given or withdrawn from
another process reaches a running recorder through the ledger, which it reads
at once when the CLI or the tray pokes it over the socket, and every second
anyway; the lock screen and the session's bounds are checked every `tick`.

A session ends when it has run its length, after a spell without input, when
the screen locks or when the person ends it; the next input begins the next.
The hooks stay: events between sessions wait on the sink's queue.

Closing a session (its compaction, seconds for a long day) happens outside
the recorder's lock, so that status, pause and withdrawal answer meanwhile:
under the lock the session is only detached (its writer flushed and joined);
`_close_detached` then closes it, on the recorder's thread after a tick or
on the thread that ended it. No session begins while one is being closed:
both use the store's one connection, and input waits on the queue.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from operator import itemgetter

from cleartrace.capture.base import Backend, Sink
from cleartrace.capture.context import INPUT_KINDS, status_counts
from cleartrace.capture.hook_friendly import kind_to_hooks
from cleartrace.capture.hooks import Hooks
from cleartrace.capture.pipeline import Writer
from cleartrace.capture.timeline import FocusedWindow, FocusState, FocusTimeline
from cleartrace.categories import Category
from cleartrace.consent.closing import Closing
from cleartrace.consent.exclusions import Exclusions, PersonalExclusions, load_exclusions
from cleartrace.consent.judging import judge_window
from cleartrace.consent.signed_policy import active_policy
from cleartrace.consent.state import consent_from_records
from cleartrace.errors import ClearTraceError, NoConsent, UsageError
from cleartrace.events import RawEvent
from cleartrace.formats import rfc3339
from cleartrace.home import Home
from cleartrace.preferences import boundaries
from cleartrace.review.redaction import Forgotten, forget_since
from cleartrace.status import RecorderState, RecorderStatus
from cleartrace.store.sessions import SessionHandle

__all__ = ["Recorder"]

log = logging.getLogger(__name__)

#: How often the ledger is read for consent given or withdrawn elsewhere: the
#: CLI and the tray say so at once (`reload`), this is for an act they could not.
_LEDGER_POLL_S = 1.0


def _iso(ts: float) -> str:
    return rfc3339(datetime.fromtimestamp(ts, UTC), timespec="seconds")


class Recorder:
    """Records into `home` through `backend` until `stop()` or a duration."""

    def __init__(
        self,
        home: Home,
        backend: Backend,
        *,
        flush_interval: float = 0.2,
        tick: float = 0.2,
    ) -> None:
        self._home = home
        self._backend = backend
        # The policy in force, read again whenever the ledger grows (enrolment
        # installs another, and consent given to the old one lapses).
        self._policy = active_policy(home.paths)
        self._flush_interval = flush_interval
        self._tick = tick
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._sink = Sink()
        # Where the focus was when, judged by `_judge` on the focus thread; the
        # writer decides by it which events went to an excluded application.
        self._timeline = FocusTimeline(self._judge)
        self._granted: frozenset[Category] = frozenset()
        self._ledger_seq = -1
        self._ledger_read = 0.0  # monotonic s: when the ledger was last read
        self._personal = PersonalExclusions.open(home.ledger, home.keys.master)
        self._exclusions: Exclusions = load_exclusions(self._personal, self._policy)
        self._paused = False
        self._paused_until: float | None = None
        self._hooks = Hooks(backend, self._sink, self._timeline)
        self._counts: Counter[int] = Counter()
        self._session: SessionHandle | None = None
        self._writer: Writer | None = None
        self._bounds = boundaries(home.paths)
        self._began = self._last_input = 0.0  # monotonic s: the session's start, its last input
        # Between sessions: (wall ns, monotonic ns) when the queue was last seen
        # empty (the next session's start), and withdrawals for its writer.
        self._anchor: tuple[int, int] | None = None
        self._held_back: list[tuple[frozenset[int], int]] = []
        self._locked = False  # the screen was locked at the last tick
        self._closing = Closing(home.store, home.ledger)  # detached, not closed yet
        self.kept: bool | None = None  # whether the last session ended was kept

    # -- life ---------------------------------------------------------------

    def run(self, duration: float | None = None) -> None:
        """Record until stopped; flushes and closes the session on the way out.

        Raises:
            NoConsent: no category has consent.
            StoreError: the store failed (e.g. DiskFull); what was flushed stays.
        """
        with kind_to_hooks():
            self._run(duration)

    def _run(self, duration: float | None) -> None:
        with self._lock:  # as every act on the home's connection: a pause answered waits
            self._reload_consent()
        if not self._granted:
            raise NoConsent(
                "nothing to record: no category has consent; "
                "run 'cleartrace consent give --category keys ...' (or --all) first"
            )
        try:
            with self._lock:
                self._start_session()
                self._reconcile()
            deadline = None if duration is None else time.monotonic() + duration
            log.info("recording started (pid %d)", os.getpid())
            while not self._stop.wait(self._tick):
                writer = self._writer
                if writer is not None and writer.failed is not None:
                    raise writer.failed
                with self._lock:
                    self._on_tick()
                self._close_detached()
                if deadline is not None and time.monotonic() >= deadline:
                    break
        finally:
            self._shutdown()
        log.info("recording stopped")

    def stop(self) -> None:
        """Ask `run()` to return; safe from signal handlers and other threads."""
        self._stop.set()

    def _start_session(self, anchor: tuple[int, int] | None = None) -> None:
        self._close_detached()  # the store's connection is the new writer's from here
        wall_ns, mono_ns = anchor or (time.time_ns(), time.monotonic_ns())
        session = self._home.store.begin_session(wall_ns, mono_ns)
        self._session, self._anchor = session, None
        self._bounds = boundaries(self._home.paths)  # a new length applies from here
        self._began = self._last_input = time.monotonic()
        self._home.ledger.append("session.started", session=session.id)
        writer = Writer(
            self._sink.queue,
            self._write_batch,
            time.monotonic_ns,
            self._timeline,
            flush_interval=self._flush_interval,
            move_hz=self._policy.mouse_move_hz,
        )
        self._writer = writer
        for kinds, until_ns in self._held_back:
            writer.withdraw(kinds, until_ns)
        self._held_back.clear()
        writer.start()

    def _write_batch(self, batch: list[RawEvent]) -> None:
        assert self._session is not None
        self._home.store.append_chunk(self._session, batch)
        self._counts.update(map(itemgetter(1), batch))
        if any(ev[1] in INPUT_KINDS for ev in batch):
            self._last_input = time.monotonic()

    def _shutdown(self) -> None:
        try:
            with self._lock:
                self._hooks.close()
                self._catch_up()
                self.kept = None
                self._close_session()
        finally:
            self._close_detached()  # even when the last flush failed

    def _catch_up(self) -> None:
        """Between sessions, begin the session input that waits belongs to
        (once the last one is closed: see the module's docstring)."""
        if self._closing:
            return
        if self._session is None and not self._locked and not self._sink.queue.empty():
            self._start_session(self._anchor)

    def _close_session(self) -> None:
        """Flush what is queued into the session and detach it (under the lock);
        `_close_detached` closes and compacts it."""
        writer, session = self._writer, self._session
        if writer is None or session is None:
            return
        writer.stop()
        try:
            # Not abandoned after a timeout: a writer that has a long backlog to
            # write would go on appending to a session being closed.
            while not writer.join(timeout=10):
                log.warning("the writer is still writing what was queued")
        finally:
            counts, self._counts = self._counts, Counter()
            self._writer = self._session = None
            self._anchor = (time.time_ns(), time.monotonic_ns())  # the next may begin here
            self.kept = self._closing.add(session, counts, self._bounds.min_inputs)

    def _close_detached(self) -> None:
        """Close and compact the detached sessions (not under the recorder's lock)."""
        kept = self._closing.close_all()
        if kept is not None:
            self.kept = kept

    # -- reconciling hooks ----------------------------------------------------

    def _active(self) -> frozenset[Category]:
        return frozenset() if self._paused else self._granted

    def _reconcile(self) -> None:
        """Install exactly the hooks `_active()` allows; remove the rest. What
        the hooks removed delivered but is not written yet is never written:
        not after the pause or withdrawal is recorded."""
        kinds = self._hooks.reconcile(self._active())
        if not kinds:
            return
        if self._writer is None:  # between sessions: for the next session's writer
            self._held_back.append((kinds, time.monotonic_ns()))
        else:
            self._writer.withdraw(kinds, time.monotonic_ns())

    def _judge(self, window: FocusedWindow | None) -> FocusState:
        """What the recorder makes of a focused window (on the focus thread)."""
        return judge_window(window, self._exclusions, self._active())

    # -- periodic work ----------------------------------------------------------

    def _on_tick(self, *, force: bool = False) -> None:
        """The periodic work; `force`: read the ledger now, whenever it was last read."""
        if self._paused_until is not None and time.time() >= self._paused_until:
            self._resume(reason="timer")
        # A focus watcher that died (its X connection failed): until one runs
        # again every event waits, and its gap is judged unknown. If no new one
        # can start, DisplayUnavailable ends the recording.
        if self._hooks.restart_focus_if_dead():
            log.warning("the focus watcher stopped; it was started again")
        now = time.monotonic()
        if force or now - self._ledger_read >= _LEDGER_POLL_S:
            self._ledger_read = now
            self._read_ledger()
        self._bound()

    def _read_ledger(self) -> None:
        """Consent and exclusions as the ledger has them now, if it grew."""
        head = self._home.ledger.head()
        if (head[0] if head else 0) != self._ledger_seq:
            self._reload_consent()
            self._exclusions = load_exclusions(self._personal, self._policy)
            self._reconcile()
            if self._hooks.titles is not None:
                self._timeline.rejudge()

    def _bound(self) -> None:
        """End the session at a boundary; between sessions, begin the next
        once input waits on the queue. While the screen is locked, and as it
        is unlocked, what waits was typed at the lock screen: it goes."""
        now, locked = time.monotonic(), self._backend.screen_locked()
        if locked or self._locked:
            self._close_session()
            if dropped := self._sink.drop():
                log.info("%d input events at the lock screen were not kept", dropped)
            self._locked, self._anchor = locked, (time.time_ns(), time.monotonic_ns())
        elif self._session is None:
            if self._sink.queue.empty():
                self._anchor = (time.time_ns(), time.monotonic_ns())
            self._catch_up()
        elif (
            now - self._last_input >= self._bounds.idle_s
            or now - self._began >= self._bounds.session_s
        ):
            self._close_session()  # the next input begins the next: no empty session

    def end_session(self) -> tuple[str, bool] | None:
        """End the session being recorded now, so that it can be reviewed; the
        next input begins a new one. Returns its id and whether it was kept
        (it had input), None when none was open."""
        with self._lock:
            session = self._session
            self._close_session()
        self._close_detached()
        return None if session is None else (session.id, self.kept is not False)

    def _reload_consent(self) -> None:
        head = self._home.ledger.head()
        self._ledger_seq = head[0] if head else 0
        before = self._policy.sha256
        try:  # enrolment installs another policy; consent given to the old one lapses
            self._policy = active_policy(self._home.paths)
        except ClearTraceError:
            log.warning("the installed policy does not verify; recording nothing")
            self._granted = frozenset()
            return
        self._granted = consent_from_records(self._home.ledger.records(), self._policy).granted()
        if self._policy.sha256 != before and self._session is not None:
            # One policy per session: what follows is recorded under the new
            # terms (and only sessions begun after enrolment may be uploaded).
            with self._lock:
                self._close_session()
                self._start_session()

    # -- pause ------------------------------------------------------------------

    def pause(self, seconds: float | None) -> None:
        """Remove every hook, for `seconds` or until resumed; ledgered."""
        with self._lock:
            until = None if seconds is None else time.time() + seconds
            self._home.ledger.append(
                "recording.paused", until=None if until is None else _iso(until)
            )
            self._paused, self._paused_until = True, until
            self._ledger_seq += 1
            self._reconcile()

    def resume(self) -> None:
        with self._lock:
            if not self._paused:
                raise UsageError("recording is not paused")
            self._resume(reason="person")

    def _resume(self, reason: str) -> None:
        self._home.ledger.append("recording.resumed", reason=reason)
        self._ledger_seq += 1
        self._paused, self._paused_until = False, None
        self._reconcile()

    # -- forgetting ----------------------------------------------------------------

    def forget(self, seconds: float) -> Forgotten:
        """Remove everything recorded in the last `seconds`, this session included.

        The session is closed first (what is queued is flushed into it), the
        events are removed from every session, and recording goes on in a new
        session. Returns what went (counts only).
        """
        with self._lock:
            since = datetime.now(UTC) - timedelta(seconds=seconds)
            self._close_detached()  # one being closed first, so that ...
            self._catch_up()  # ... what waits is forgotten too
            recording = self._session is not None
            self._close_session()
            self._close_detached()  # before the store is searched
            try:
                done = forget_since(self._home.store, self._home.ledger, since)
            finally:
                if recording:  # its writer starts with the context in force
                    self._start_session()
            return done

    # -- status and control -----------------------------------------------------

    def status(self) -> RecorderStatus:
        """What the recorder does now; no captured content but the app class."""
        with self._lock:
            if self._paused:
                state = RecorderState.PAUSED
            elif self._granted:
                state = RecorderState.RECORDING
            else:
                state = RecorderState.OFF
            watched = self._hooks.titles is not None
            excluded = watched and self._timeline.current.excluded
            app = self._backend.focused()[0] if Category.APP_FOCUS in self._granted else None
            return RecorderStatus(
                pid=os.getpid(),
                state=state,
                paused_until=None if self._paused_until is None else _iso(self._paused_until),
                hooks=tuple(self._backend.hooks()),
                granted=tuple(sorted(c.value for c in self._granted)),
                session=None if self._session is None else self._session.id,
                excluded_now=excluded,
                screen_locked=self._locked,
                application=None if excluded else app,
                counts=status_counts(self._counts),
            )

    def reload(self) -> None:
        """Read the ledger now: the CLI changed consent or exclusions and says so."""
        with self._lock:
            self._on_tick(force=True)
