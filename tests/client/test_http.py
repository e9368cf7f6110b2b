"""The frame client's HTTP/1.1 connection pool against real sockets on loopback.

Each test runs a small asyncio TCP server that answers with exactly the bytes the test
gives it, so every framing the protocol allows (Content-Length, chunked with extensions
and trailers, read-until-close, an interim 100 answer, answers split at any byte) and
every way a server can misbehave (closing an idle keep-alive connection, going silent,
cutting an answer short, sending garbage) is met on a real connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from hi_async.aws.errors import ErrorKind, Unreachable, classify
from hi_async.aws.http import HttpPool, ProtocolError

Handler = Callable[[bytes, int], list[bytes] | None]


class Server:
    """Answers each request on a connection with ``handler(request, n)`` (the parts are
    written with a flush between them); None closes the connection without an answer,
    and so does the end of any answer while ``close_after_answer`` is set."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.close_after_answer = False
        self.part_delay = 0.0
        self.requests: list[bytes] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                parts = self.handler(request, len(self.requests))
                if parts is None:
                    break
                for part in parts:
                    writer.write(part)
                    await writer.drain()
                    await asyncio.sleep(self.part_delay)
                if self.close_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], asyncio.Future[Server]]]:
    servers: list[Server] = []

    async def start(handler: Handler) -> Server:
        server = Server(handler)
        server.server = await asyncio.start_server(server._serve, "127.0.0.1", 0)
        servers.append(server)
        return server

    yield start  # type: ignore[misc]
    for server in servers:
        assert server.server is not None
        server.server.close()


def _pool(url: str, *, size: int = 2, read_timeout: float = 5.0,
          min_rate: float = 4096.0) -> HttpPool:
    return HttpPool(url, size=size, connect_timeout=2.0, read_timeout=read_timeout,
                    min_rate=min_rate, user_agent="test")


def _ok(body: bytes, *extra: bytes) -> list[bytes]:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: image/jph\r\n" + b"".join(extra)
    return [head + b"Content-Length: %d\r\n\r\n" % len(body) + body]


async def test_a_request_is_sent_as_one_post_with_its_headers_and_body(serve) -> None:
    server = await serve(lambda req, n: _ok(b"frame"))
    pool = _pool(server.url)
    answer = await pool.post("/a/b", {"X-Amz-Date": "20250101T000000Z"}, b'{"k": 1}')
    await pool.aclose()
    assert (answer.status, answer.body, answer.headers["content-type"]) == (
        200, b"frame", "image/jph")
    request = server.requests[0]
    assert request.startswith(b"POST /a/b HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:" in request and b"\r\nAccept-Encoding: identity\r\n" in request
    assert b"\r\nX-Amz-Date: 20250101T000000Z\r\n" in request
    assert request.endswith(b"Content-Length: 8\r\n\r\n{\"k\": 1}")


async def test_connections_are_kept_alive_and_reused(serve) -> None:
    server = await serve(lambda req, n: _ok(b"x" * n))
    pool = _pool(server.url, size=1)
    bodies = [(await pool.post("/", {}, b"")).body for _ in range(5)]
    await pool.aclose()
    assert bodies == [b"x", b"xx", b"xxx", b"xxxx", b"xxxxx"]
    assert server.connections == 1


@pytest.mark.parametrize("split", [1, 7, 1000])
async def test_answers_split_anywhere_are_read_whole(serve, split: int) -> None:
    whole = _ok(bytes(range(256)) * 40)[0]
    parts = [whole[i:i + split] for i in range(0, len(whole), split)]
    server = await serve(lambda req, n: parts)
    pool = _pool(server.url)
    answer = await pool.post("/", {}, b"")
    await pool.aclose()
    assert answer.body == bytes(range(256)) * 40


async def test_chunked_bodies_with_extensions_and_trailers(serve) -> None:
    answer_bytes = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5;name=value\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n"
                    b"0\r\nX-Checksum: abc\r\n\r\n")
    server = await serve(lambda req, n: [answer_bytes[i:i + 3]
                                         for i in range(0, len(answer_bytes), 3)])
    pool = _pool(server.url, size=1)
    first = await pool.post("/", {}, b"")
    second = await pool.post("/", {}, b"")
    await pool.aclose()
    assert first.body == second.body == b"hello world"
    assert server.connections == 1  # the connection survives a chunked answer


async def test_a_body_without_length_is_read_until_the_server_closes(serve) -> None:
    def handler(req: bytes, n: int) -> list[bytes] | None:
        return [b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", b"all ", b"of it"] \
            if n == 1 else _ok(b"second")

    server = await serve(handler)
    server.close_after_answer = True
    pool = _pool(server.url, size=1)
    first = await pool.post("/", {}, b"")
    second = await pool.post("/", {}, b"")
    await pool.aclose()
    assert first.body == b"all of it" and second.body == b"second"
    assert server.connections == 2


async def test_an_interim_100_answer_is_skipped(serve) -> None:
    server = await serve(lambda req, n: [b"HTTP/1.1 100 Continue\r\n\r\n", *_ok(b"done")])
    pool = _pool(server.url)
    answer = await pool.post("/", {}, b"")
    await pool.aclose()
    assert (answer.status, answer.body) == (200, b"done")


async def test_an_idle_connection_the_server_closed_is_replaced_without_a_retry(serve) -> None:
    # The server answers one request per connection and then closes it, as a server
    # does with keep-alive connections that sat idle too long.
    server = await serve(lambda req, n: _ok(b"ok") if n % 2 else None)
    pool = _pool(server.url, size=1)
    await pool.post("/", {}, b"")
    server.handler = lambda req, n: _ok(b"again")
    answer = await pool.post("/", {}, b"")
    await pool.aclose()
    assert answer.body == b"again"


async def test_an_answer_cut_short_is_a_broken_connection_to_retry(serve) -> None:
    server = await serve(lambda req, n: [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
                                         b"only part"])
    server.close_after_answer = True
    pool = _pool(server.url)
    with pytest.raises(ConnectionError, match="mid-answer") as err:
        await pool.post("/", {}, b"")
    await pool.aclose()
    assert classify(err.value) is ErrorKind.RETRY


async def test_a_silent_server_times_out(serve) -> None:
    server = await serve(lambda req, n: [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"])
    pool = _pool(server.url, read_timeout=0.3)
    with pytest.raises(TimeoutError) as err:
        await pool.post("/", {}, b"")
    await pool.aclose()
    assert classify(err.value) is ErrorKind.RETRY


async def test_an_answer_slower_than_the_minimum_rate_is_cut(serve) -> None:
    drip = [b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"] + [b"x"] * 1000
    server = await serve(lambda req, n: drip)
    server.part_delay = 0.01  # each byte well within the read timeout, the whole not
    pool = _pool(server.url, read_timeout=0.3, min_rate=2000.0)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="slower than 2000 bytes/s") as err:
        await pool.post("/", {}, b"")
    # Allowed 0.3 s plus 1040 bytes at 2000 bytes/s (the whole drip would take 10 s).
    assert time.monotonic() - started > 0.8
    assert classify(err.value) is ErrorKind.RETRY
    await pool.aclose()


async def test_a_chunked_answer_slower_than_the_minimum_rate_is_cut(serve) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    server = await serve(lambda req, n: [head] + [b"1\r\nx\r\n"] * 2000 + [b"0\r\n\r\n"])
    server.part_delay = 0.01
    pool = _pool(server.url, read_timeout=0.3, min_rate=2000.0)
    with pytest.raises(TimeoutError, match="slower than"):
        await pool.post("/", {}, b"")
    await pool.aclose()


async def test_an_answer_at_the_minimum_rate_or_faster_is_not_cut(serve) -> None:
    body = b"y" * 20_000
    parts = [b"HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n"] + [
        body[i:i + 1000] for i in range(0, len(body), 1000)]
    server = await serve(lambda req, n: parts)
    server.part_delay = 0.02  # 50 kB/s, for 0.4 s: longer than the read timeout
    pool = _pool(server.url, read_timeout=0.25, min_rate=20_000.0)
    answer = await pool.post("/", {}, b"")
    assert answer.body == body
    await pool.aclose()


async def test_garbage_is_a_protocol_error(serve) -> None:
    server = await serve(lambda req, n: [b"SSH-2.0-OpenSSH_9.2\r\n\r\n"])
    pool = _pool(server.url)
    with pytest.raises(ProtocolError):
        await pool.post("/", {}, b"")
    await pool.aclose()


async def test_nobody_listening_is_unreachable() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    pool = _pool(f"http://127.0.0.1:{port}")
    with pytest.raises(Unreachable) as err:
        await pool.post("/", {}, b"")
    assert classify(err.value) is ErrorKind.CONNECT
    assert err.value.url == f"http://127.0.0.1:{port}"


async def test_the_pool_never_opens_more_than_its_size(serve) -> None:
    server = await serve(lambda req, n: _ok(b"x"))
    pool = _pool(server.url, size=3)
    answers = await asyncio.gather(*(pool.post("/", {}, b"") for _ in range(30)))
    await pool.aclose()
    assert len(answers) == 30 and server.connections <= 3
