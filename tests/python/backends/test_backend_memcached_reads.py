"""The pipelined read path of MemcachedBackend (oxicache.backends.memcached.reads): the reply
parser alone, then on a real memcached."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from oxicache.backends.guard import BreakerState, GuardedBackend
from oxicache.backends.memcached import MemcachedBackend
from oxicache.backends.memcached.reads import MemcachedError, _Protocol
from tests.python.servers import MemcachedServer

# --- the parser, fed by hand ------------------------------------------------------------------


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def _protocol() -> tuple[_Protocol, _Transport]:
    proto = _Protocol()
    transport = _Transport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    return proto, transport


REPLIES = (
    b"VALUE e:a 0 3 17\r\nabc\r\nVALUE x:p 0 2 9\r\n42\r\nEND\r\n"  # gets: two items
    b"END\r\n"  # gets: nothing found
    b"VALUE e:b 0 8 5\r\nEND\r\nEND\r\nEND\r\n"  # a value that looks like protocol lines
    b"EXISTS\r\n"  # cas
    b"SERVER_ERROR out of memory storing object\r\n"  # that one command refused
    b"VALUE e:c 0 0\r\n\r\nEND\r\n"  # get (no CAS), an empty value
)


async def _parse_in_chunks(size: int) -> list[Any]:
    proto, _ = _protocol()
    waiters = [proto.send(b"x\r\n") for _ in range(6)]
    for i in range(0, len(REPLIES), size):
        proto.data_received(REPLIES[i : i + size])
    results: list[Any] = []
    for waiter in waiters:
        try:
            results.append(waiter.result())
        except MemcachedError as exc:
            results.append(exc)
    return results


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16, 1000])
async def test_replies_split_anywhere_parse_the_same(size: int) -> None:
    """TCP delivers replies in arbitrary pieces: every split gives the same answers, in order."""
    results = await _parse_in_chunks(size)
    assert results[0] == {b"e:a": (b"abc", 17), b"x:p": (b"42", 9)}
    assert results[1] == {}
    assert results[2] == {b"e:b": (b"END\r\nEND", 5)}
    assert results[3] == b"EXISTS"
    assert isinstance(results[4], MemcachedError) and "SERVER_ERROR" in str(results[4])
    assert results[5] == {b"e:c": (b"", None)}


@pytest.mark.parametrize(
    "garbage",
    [
        b"+OK\r\n",  # not memcached
        b"VALUE e:a 0 zz 1\r\n",  # a length that is not a number
        b"VALUE e:a 0 3 1\r\nabcXY",  # a data block without its terminator
        b"VALUE e:a\r\n",  # too few fields
    ],
)
async def test_a_stream_that_is_not_memcached_fails_every_read_and_closes(garbage: bytes) -> None:
    proto, transport = _protocol()
    first, second = proto.send(b"x\r\n"), proto.send(b"y\r\n")
    proto.data_received(garbage)
    assert transport.closed and proto.closed
    for waiter in (first, second):
        with pytest.raises(ConnectionError):
            waiter.result()
    with pytest.raises(ConnectionError):
        proto.send(b"z\r\n")


async def test_a_reply_nobody_asked_for_closes_the_connection() -> None:
    proto, transport = _protocol()
    proto.data_received(b"END\r\n")
    assert transport.closed and proto.closed


async def test_a_read_given_up_keeps_its_place_in_the_stream() -> None:
    proto, _ = _protocol()
    first, second = proto.send(b"x\r\n"), proto.send(b"y\r\n")
    first.cancel()  # its caller gave up
    proto.data_received(b"VALUE e:1 0 1 1\r\n1\r\nEND\r\nVALUE e:2 0 1 2\r\n2\r\nEND\r\n")
    assert second.result() == {b"e:2": (b"2", 2)}


async def test_commands_of_one_turn_go_out_in_one_write() -> None:
    proto, transport = _protocol()
    for i in range(5):
        proto.send(b"gets e:%d\r\n" % i)
    assert transport.written == []
    await asyncio.sleep(0)
    assert transport.written == [b"".join(b"gets e:%d\r\n" % i for i in range(5))]


async def test_a_due_read_whose_reply_is_in_the_socket_is_answered() -> None:
    """An event loop may run its due timers before it reads the sockets (uvloop does): the
    deadline timer then fires with the reply already there. The read is failed only after a
    couple of turns of the loop, in which that reply is read: a deadline measures the
    server, not the loop."""
    from oxicache.backends.pipelined import GRACE_TURNS

    proto, _ = _protocol()
    answered = proto.send(b"x\r\n", deadline=0.0)
    unanswered = proto.send(b"y\r\n", deadline=0.0)
    assert proto._timer is None  # the deadlines start when the commands are written
    await asyncio.sleep(0)  # written, at the end of this turn
    assert proto._timer is not None
    proto._timer.cancel()
    proto._expire()  # on time: the timer ran first, the socket was not read yet
    assert not answered.done()
    proto.data_received(b"VALUE e:1 0 1 1\r\n1\r\nEND\r\n")  # the loop's next read
    for _ in range(GRACE_TURNS + 1):
        await asyncio.sleep(0)
    assert answered.result() == {b"e:1": (b"1", 1)}
    with pytest.raises(TimeoutError):
        unanswered.result()  # no reply within the turns: a miss, as before


async def test_a_read_behind_replies_still_coming_gets_one_more_deadline() -> None:
    """Replies come in order: a server that answered the reads in front of this one since it
    was written is slow (its CPU shared with its clients), not hung, and the read is given a
    second deadline, once. A read after which nothing was heard fails at its one deadline."""
    proto, _ = _protocol()
    ahead = proto.send(b"x\r\n", deadline=0.2)
    behind = proto.send(b"y\r\n", deadline=0.2)
    await asyncio.sleep(0)  # written
    proto.data_received(b"END\r\n")  # the read in front answered: the server is working
    assert ahead.result() == {}
    await asyncio.sleep(0.3)  # past the first deadline, well within the second
    assert not behind.done()
    proto.data_received(b"VALUE e:2 0 1 2\r\n2\r\nEND\r\n")
    assert behind.result() == {b"e:2": (b"2", 2)}

    silent = proto.send(b"z\r\n", deadline=0.2)  # nothing heard after this one is written
    await asyncio.sleep(0)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await silent
    assert time.monotonic() - started < 0.35  # one deadline, not two (plus the loop's turns)

    late = proto.send(b"w\r\n", deadline=0.2)  # heard after its write, still not answered
    await asyncio.sleep(0)
    proto.heard = time.monotonic()  # (a piece of some other reply arrived)
    with pytest.raises(TimeoutError):
        await late  # the second deadline is the last one
    proto.data_received(b"END\r\nEND\r\n")  # the late replies are dropped in order
    assert not proto.closed


async def test_a_deadline_starts_when_the_command_is_written() -> None:
    """A read asked early in a busy turn of the loop goes out at the end of it: the rest of
    that turn (other requests' work) is not the server's time."""
    proto, transport = _protocol()
    waiter = proto.send(b"x\r\n", deadline=0.5)
    time.sleep(0.6)  # the rest of this turn: past the deadline (not by a whole one)
    await asyncio.sleep(0)
    assert transport.written == [b"x\r\n"]  # written now; the deadline starts here
    await asyncio.sleep(0.01)  # more turns than the grace gives, within the deadline
    assert not waiter.done()
    proto.data_received(b"END\r\n")
    assert waiter.result() == {}


# --- on a real memcached -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[MemcachedServer]:
    srv = MemcachedServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.close()


def _backend(server: MemcachedServer) -> MemcachedBackend:
    return MemcachedBackend([server.address], prefix="r" + uuid.uuid4().hex[:12])


async def test_reads_of_many_requests_share_one_connection(server: MemcachedServer) -> None:
    """More concurrent reads than emcache's pool has connections: all answered, each its own,
    over the one read connection."""
    b = _backend(server)
    keys = [f"{b.prefix}:ns:r:k{i}" for i in range(64)]
    for k in keys:
        await b.set(k, k.encode(), 60)
    got = await asyncio.gather(*(b.get_within(k, 2.0) for k in keys))
    assert got == [k.encode() for k in keys]
    assert await b.get(f"{b.prefix}:ns:r:absent") is None
    await b.close()


async def test_a_deadline_that_fires_late_gives_the_reply_a_second_chance(
    server: MemcachedServer,
) -> None:
    """The loop was blocked past the deadline (other requests' work): the reply is in the
    socket, and the read returns it instead of failing; a frozen server still times out and
    the connection stays in sync. (50 ms deadlines: a healthy server on a loaded machine must
    answer within the second one.)"""
    deadline = 0.05
    b = _backend(server)
    k = f"{b.prefix}:ns:r:late"
    await b.set(k, b"L", 60)
    assert await b.get(k) == b"L"  # connected
    read = asyncio.ensure_future(b.get_within(k, deadline))
    await asyncio.sleep(0)  # the gets is queued
    time.sleep(3 * deadline)  # the loop is blocked well past the deadline
    assert await read == b"L"
    server.pause()
    try:
        started = time.perf_counter()
        with pytest.raises(TimeoutError):
            await b.get_within(k, deadline)
        assert time.perf_counter() - started < 0.5
    finally:
        server.resume()
    assert await b.get_within(k, 2.0) == b"L"  # the late reply was dropped in order
    await b.close()


async def test_guard_counts_and_keeps_the_breaker_without_cancelling(
    server: MemcachedServer,
) -> None:
    b = _backend(server)
    guard = GuardedBackend(b, timeout=0.2, write_timeout=1.0)
    k = f"{b.prefix}:ns:r:g"
    await guard.set(k, b"G", 60)
    assert await guard.get(k) == b"G"
    assert await guard.get(f"{b.prefix}:ns:r:none") is None
    assert (guard.counters.hits, guard.counters.misses) == (1, 1)
    server.pause()
    try:
        assert await guard.get(k) is None
    finally:
        server.resume()
    assert guard.counters.timeouts == 1
    assert guard.state is BreakerState.CLOSED  # one failure is not an outage
    assert await guard.get(k) == b"G"
    await guard.close()


async def test_a_tag_check_and_the_epoch_rewrite_go_over_the_read_connection(
    server: MemcachedServer,
) -> None:
    """After an unrelated tag's invalidation, a read under a deadline checks its own tags and
    rewrites the entry under the new epoch (without waiting for that); the next read is one
    round trip again, and the entry's own tag still invalidates it."""
    b = _backend(server)
    k = f"{b.prefix}:ns:r:t"
    await b.set(k, b"T", 60, tags=["mine"])
    await b.delete_tag("other")
    assert await b.get_within(k, 2.0) == b"T"
    await asyncio.sleep(0.05)  # the rewrite's reply
    proto = b._reads[0].live()
    assert proto is not None
    sent: list[bytes] = []
    original = proto.send

    def counting(command: bytes, deadline: float | None = None) -> Any:
        sent.append(command)
        return original(command, deadline)

    proto.send = counting  # type: ignore[method-assign]
    assert await b.get_within(k, 2.0) == b"T"
    assert len(sent) == 1  # rewritten: no tag check any more
    await b.delete_tag("mine")
    assert await b.get_within(k, 2.0) is None
    await b.close()


async def test_a_restarted_server_fails_in_flight_reads_then_reconnects() -> None:
    srv = MemcachedServer()
    srv.start()
    try:
        b = _backend(srv)
        k = f"{b.prefix}:ns:r:x"
        await b.set(k, b"x", 60)
        assert await b.get(k) == b"x"
        srv.restart()  # empty, same port
        with pytest.raises(ConnectionError):
            await b.get_within(k, 2.0)
        assert await b.get_within(k, 2.0) is None  # a new connection, an empty server
        await b.close()
    finally:
        srv.close()


async def test_a_read_without_a_deadline_is_bounded_by_the_backends_timeout(
    server: MemcachedServer,
) -> None:
    """Called directly (a script, the admin CLI), ``get`` on a frozen server ends at the
    backend's ``timeout``, as emcache's operations do; the connection stays in sync."""
    b = MemcachedBackend([server.address], prefix="r" + uuid.uuid4().hex[:12], timeout=0.2)
    k = f"{b.prefix}:ns:r:bounded"
    await b.set(k, b"B", 60)
    assert await b.get(k) == b"B"  # connected
    server.pause()
    try:
        started = time.perf_counter()
        with pytest.raises(TimeoutError):
            await b.get(k)
        assert time.perf_counter() - started < 2.0
    finally:
        server.resume()
    assert await b.get(k) == b"B"
    await b.close()


async def test_a_forked_child_lets_go_of_the_read_connection(server: MemcachedServer) -> None:
    """What the fork hook asks of a backend in the child: the parent's read sockets, to be
    pointed at /dev/null; the backend forgets them and connects afresh when used."""
    b = _backend(server)
    k = f"{b.prefix}:ns:r:fork"
    await b.set(k, b"F", 60)
    assert await b.get(k) == b"F"
    proto = b._reads[0].live()
    assert proto is not None and proto.transport is not None
    sock = proto.transport.get_extra_info("socket")
    # The read connection's socket, and those of emcache's pool (the set() above)
    listed = [s.fileno() for s in b.inherited_sockets()]
    assert listed[0] == sock.fileno() and len(listed) >= 2
    assert b._reads[0].live() is None
    assert b.inherited_sockets() == []  # nothing left to hand over
    proto.transport.close()  # (here, in the same process, the old one is simply closed)
    assert await b.get(k) == b"F"  # its own connection
    await b.close()
