"""One keep-alive HTTP/1.1 connection of :class:`hi_async.aws.http.HttpPool`: an asyncio
Protocol that parses an answer as it arrives (status line, headers, then a
``Content-Length``, chunked or read-until-close body) and resolves one future when it is
whole.

Two clocks cut an answer: ``read_timeout`` seconds of silence, and a minimum rate, which
is what stops a server that drips an answer a byte at a time (a silence timeout alone
never cuts it): an answer must be whole within ``read_timeout`` plus its size (its
``Content-Length``, or the bytes so far when it has none) over ``min_rate`` seconds from
the request. Either raises ``TimeoutError``; a connection that breaks mid-answer raises
``ConnectionError``, and an answer that is not HTTP :class:`ProtocolError`.
"""

from __future__ import annotations

import asyncio

_CRLF = b"\r\n"
_HEADER_END = b"\r\n\r\n"
#: A header block larger than this is not an HTTP answer worth parsing.
_MAX_HEADER = 64 * 1024
#: Header names as :meth:`Response.header` searches for them ("\r\nname:"), by name:
#: the same few are looked up in every answer.
_KEYS: dict[str, bytes] = {}
_KEYS_KEPT = 64


class ProtocolError(ConnectionError):
    """An answer that is not well-formed HTTP/1.1: the connection cannot be trusted."""


class Response:
    """One answer: its status, its header block and its body.

    Headers are looked up in the raw block when asked for (a frame's answer needs two of
    them), and parsed into a dict only for :attr:`headers`.
    """

    __slots__ = ("_head", "_lower", "body", "status")

    def __init__(self, status: int, head: bytes, body: bytes) -> None:
        self.status = status
        self.body = body
        self._head = head
        self._lower = head.lower()

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or None; the first if repeated."""
        key = _KEYS.get(name)
        if key is None:
            key = b"\r\n" + name.lower().encode("latin-1") + b":"
            if len(_KEYS) < _KEYS_KEPT:
                _KEYS[name] = key
        start = self._lower.find(key)
        if start < 0:
            return None
        start += len(key)
        end = self._lower.find(b"\r\n", start)
        value = self._head[start:end if end >= 0 else len(self._head)]
        return value.strip().decode("latin-1")

    @property
    def headers(self) -> dict[str, str]:
        """Every header, names in lower case (a repeated header keeps its last value)."""
        out: dict[str, str] = {}
        for line in self._head.split(_CRLF)[1:]:
            name, _, value = line.partition(b":")
            out[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        return out


class Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight."""

    def __init__(self, loop: asyncio.AbstractEventLoop, read_timeout: float,
                 min_rate: float) -> None:
        self._loop = loop
        self._read_timeout = read_timeout
        self._min_rate = min_rate
        self.transport: asyncio.Transport | None = None
        self.closed = False
        #: True while the server may still answer on this connection afterwards.
        self.reusable = True
        self._waiter: asyncio.Future[Response] | None = None
        self._timer: asyncio.TimerHandle | None = None
        #: loop.time() of the last bytes received (the read timer checks it when it fires).
        self._active = 0.0
        #: loop.time() the request was sent, and the bytes of its answer received so far.
        self._sent_at = 0.0
        self._received = 0
        self._buffer = bytearray()
        #: Bytes of an answer arrived on this connection (a reused connection that broke
        #: before any was closed by the server while idle: the request may be sent again).
        self.received_any = False
        self._reset_answer()

    def _reset_answer(self) -> None:
        self._status = 0
        self._head = b""
        self._length: int | None = None  # body bytes still expected (Content-Length)
        self._expected = 0  # the answer's size as announced (header block + Content-Length)
        self._chunked = False
        self._until_close = False
        self._body: list[bytes] = []
        self._chunk_left = 0  # bytes left in the current chunk (chunked bodies)
        self._in_body = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        self._stop_timer()
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._until_close and self._in_body:
            self._finish()
            return
        when = "mid-answer" if self.received_any else "before an answer"
        error = ConnectionError(f"the connection closed {when}")
        if exc is not None:
            error.__cause__ = exc
        waiter.set_exception(error)

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost reports what was cut short

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            # Bytes nobody asked for: the server is out of step with us.
            self.reusable = False
            self.close()
            return
        self.received_any = True
        self._active = self._loop.time()
        self._received += len(data)
        length = self._length
        if length is not None and self._in_body and not self._buffer and len(data) <= length:
            # The body, known in length: keep the bytes as they came, no copy.
            self._body.append(data)
            self._length = length - len(data)
            if not self._length:
                self._finish()
            return
        self._buffer += data
        try:
            self._parse()
        except ProtocolError as exc:
            self.reusable = False
            waiter.set_exception(exc)
            self.close()

    # Requests

    def request(self, data: bytes) -> asyncio.Future[Response]:
        transport = self.transport
        assert transport is not None, "connection_made sets the transport"
        assert self._waiter is None or self._waiter.done(), "one request at a time"
        self._reset_answer()
        self._buffer.clear()
        self.received_any = False
        self._received = 0
        self._waiter = self._loop.create_future()
        transport.write(data)
        self._active = self._sent_at = self._loop.time()
        if self._timer is None:
            self._timer = self._loop.call_at(self._active + self._read_timeout,
                                             self._timer_fired)
        return self._waiter

    def close(self) -> None:
        self.closed = True
        self.reusable = False
        self._stop_timer()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection at once (a request was cancelled mid-way)."""
        self.closed = True
        self.reusable = False
        self._stop_timer()
        if self.transport is not None:
            self.transport.abort()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timer_fired(self) -> None:
        """The read timer: one per connection, re-armed for the time left when bytes came
        meanwhile (cheaper than resetting a timer for every chunk received)."""
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # idle between requests: the next request arms it again
        now = self._loop.time()
        silent_until = self._active + self._read_timeout
        slow_after = (self._sent_at + self._read_timeout
                      + max(self._expected, self._received) / self._min_rate)
        if now < silent_until and now < slow_after:
            self._timer = self._loop.call_at(min(silent_until, slow_after), self._timer_fired)
            return
        if now >= silent_until:
            error = TimeoutError(f"the server sent nothing for {self._read_timeout:g} s")
        else:
            error = TimeoutError(
                f"the answer came slower than {self._min_rate:g} bytes/s: "
                f"{self._received} of {max(self._expected, self._received)} bytes in "
                f"{now - self._sent_at:.0f} s")
        waiter.set_exception(error)
        self.abort()

    # Parsing

    def _parse(self) -> None:
        if not self._in_body and not self._parse_head():
            return
        if self._chunked:
            self._parse_chunks()
        elif self._length is not None:
            take = min(self._length, len(self._buffer))
            if take:
                if take == len(self._buffer):
                    self._body.append(bytes(self._buffer))
                    self._buffer.clear()
                else:
                    self._body.append(bytes(self._buffer[:take]))
                    del self._buffer[:take]
                self._length -= take
            if self._length == 0:
                self._finish()
        else:  # read until the server closes the connection
            if self._buffer:
                self._body.append(bytes(self._buffer))
                self._buffer.clear()

    def _parse_head(self) -> bool:
        """Status line and headers; False until the whole header block is here."""
        while True:
            end = self._buffer.find(_HEADER_END)
            if end < 0:
                if len(self._buffer) > _MAX_HEADER:
                    raise ProtocolError("the answer's header block is too large")
                return False
            head = bytes(self._buffer[:end])
            del self._buffer[:end + 4]
            line_end = head.find(_CRLF)
            parts = head[:line_end if line_end >= 0 else len(head)].split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                raise ProtocolError(f"not an HTTP/1.1 status line: {head[:80]!r}")
            status = int(parts[1])
            if 100 <= status < 200:
                continue  # an interim answer (100 Continue): the real one follows
            self._status, self._head, self._in_body = status, head, True
            break
        answer = Response(status, head, b"")
        if "close" in (answer.header("connection") or "").lower():
            self.reusable = False
        encoding = (answer.header("transfer-encoding") or "").lower()
        if encoding:
            if encoding.rsplit(",", 1)[-1].strip() != "chunked":
                raise ProtocolError(f"unsupported Transfer-Encoding {encoding!r}")
            self._chunked = True
        elif (length := answer.header("content-length")) is not None:
            if not length.isdigit():
                raise ProtocolError(f"bad Content-Length {length!r}")
            self._length = int(length)
            self._expected = len(head) + 4 + self._length
        elif self._status in (204, 304):
            self._length = 0
        else:
            self._until_close = True
            self.reusable = False
        return True

    def _parse_chunks(self) -> None:
        buf = self._buffer
        while True:
            if self._chunk_left > 0:
                take = min(self._chunk_left, len(buf))
                if not take:
                    return
                self._body.append(bytes(buf[:take]))
                del buf[:take]
                self._chunk_left -= take
                if self._chunk_left:
                    return
                self._chunk_left = -1  # the CRLF after the chunk's data is next
            if self._chunk_left == -1:
                if len(buf) < 2:
                    return
                if buf[:2] != _CRLF:
                    raise ProtocolError("a chunk is not followed by CRLF")
                del buf[:2]
                self._chunk_left = 0
            end = buf.find(_CRLF)
            if end < 0:
                if len(buf) > _MAX_HEADER:
                    raise ProtocolError("a chunk size line is too long")
                return
            size_text = bytes(buf[:end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ProtocolError(f"bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                # The last chunk: then trailer fields (usually none) and an empty line.
                trailers_end = buf.find(_HEADER_END, end)
                if trailers_end < 0:
                    return
                del buf[:trailers_end + 4]
                self._finish()
                return
            del buf[:end + 2]
            self._chunk_left = size

    def _finish(self) -> None:
        waiter = self._waiter
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        response = Response(self._status, self._head, body)
        self._in_body = False
        if self._buffer:
            self.reusable = False  # more bytes than the answer: out of step
        if not self.reusable:
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(response)
