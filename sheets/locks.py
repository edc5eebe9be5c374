"""One sync per sheet at a time, across processes, with a lock that dies soon after its holder.

The lock lives in Redis with a short TTL (SHEETS_SYNC_LOCK_TTL, 30 s) that a heartbeat thread
renews while the sync works. A worker killed mid-sync therefore stops blocking its sheet within
one TTL, and the poller (sheets/poll.py) notices the sheet left "syncing" with no lock and takes
the sync up again. A long TTL instead (it was 15 minutes) kept a half-synced sheet stuck.

Redis being unreachable is not a crash: callers get `SmartsheetUnavailable` (the task retries
it later) and the log gets one line, no traceback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from redis.exceptions import LockError, LockNotOwnedError, RedisError

from core.ratelimit import redis_client
from sheets.client import SmartsheetUnavailable

logger = logging.getLogger(__name__)


def _lock_key(sheet_id: int) -> str:
    return f"{settings.REDIS_PREFIX}:sheets:sync:{sheet_id}"


def redis_unavailable(exc: RedisError, doing: str) -> SmartsheetUnavailable:
    """Log one line (no traceback: Redis down is expected now and then) and say "retry later"."""
    logger.warning("Redis is unreachable while %s (%s); will retry later", doing, exc)
    return SmartsheetUnavailable(f"Redis is unreachable: {exc}")


class SyncLockLost(Exception):
    """The lock expired while its sync worked (a stall longer than its TTL, a Redis failover)."""


class SyncLock:
    """The sync lock of one sheet, once acquired; `lost` turns true if its renewal failed."""

    def __init__(self, lock) -> None:
        self._lock = lock
        self._stop = threading.Event()
        self.lost = threading.Event()
        self.renewals = 0
        self._thread = threading.Thread(target=self._renew, daemon=True, name="sync-lock-renew")

    def check(self) -> None:
        """Raise SyncLockLost if the lock is gone: writing on could undo another sync's work."""
        if self.lost.is_set():
            raise SyncLockLost(f"{self._lock.name} expired while its sync worked")

    def _renew(self) -> None:
        ttl = settings.SHEETS_SYNC_LOCK_TTL
        while not self._stop.wait(ttl / 3):
            try:
                self._lock.reacquire()
                self.renewals += 1
            except LockNotOwnedError:
                logger.warning("sync lock %s expired before its sync ended", self._lock.name)
                self.lost.set()
                return
            except RedisError as exc:
                # A short outage: the next renewal may still come in time.
                logger.warning("could not renew sync lock %s (%s)", self._lock.name, exc)

    def _release(self) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self._lock.release()
        except LockError:
            logger.warning("sync lock %s expired before its sync ended", self._lock.name)
        except RedisError as exc:
            logger.warning("could not release sync lock %s (%s); it expires", self._lock.name, exc)


@contextmanager
def sheet_sync_lock(*, sheet_id: int, wait: float = 0) -> Iterator[SyncLock | None]:
    """Hold `sheet_id`'s sync lock for the block; None when another sync holds it.

    `wait`: seconds to wait for the other sync (0 for tasks: a worker slot never waits on a
    lock, the task re-requests itself instead). Raises SmartsheetUnavailable when Redis is down.
    """
    lock = redis_client().lock(
        _lock_key(sheet_id),
        timeout=settings.SHEETS_SYNC_LOCK_TTL,
        blocking=wait > 0,
        blocking_timeout=wait or None,
        sleep=0.2,
        # The heartbeat thread renews it: the token must not be kept per thread.
        thread_local=False,
    )
    try:
        acquired = lock.acquire()
    except RedisError as exc:
        raise redis_unavailable(exc, f"taking the sync lock of sheet {sheet_id}") from exc
    if not acquired:
        yield None
        return
    held = SyncLock(lock)
    held._thread.start()
    try:
        yield held
    finally:
        held._release()


def sheet_sync_locked(*, sheet_id: int) -> bool:
    """Whether some process holds the sheet's sync lock right now."""
    try:
        return bool(redis_client().exists(_lock_key(sheet_id)))
    except RedisError as exc:
        raise redis_unavailable(exc, f"looking for the sync lock of sheet {sheet_id}") from exc
