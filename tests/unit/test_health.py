"""The HTTP probe against a real local server: a reply cut mid-body is asked again, a refused port is not."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fraudops.stack import health


class _Flaky(BaseHTTPRequestHandler):
    cut_first = 0
    served = 0

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        type(self).served += 1
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if type(self).served <= type(self).cut_first:
            self.wfile.write(b"5\r\nhel")  # promised five bytes, sent three, then hung up
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(b"2\r\nok\r\n0\r\n\r\n")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Flaky]]]:
    handler = type("Handler", (_Flaky,), {"cut_first": 0, "served": 0})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_cut_reply_is_asked_again(server) -> None:
    url, handler = server
    handler.cut_first = 1
    assert health.http(url) == health.Health(True, "HTTP 200")
    assert handler.served == 2


def test_a_reply_cut_every_time_is_unhealthy(server) -> None:
    url, handler = server
    handler.cut_first = 10
    result = health.http(url, attempts=3)
    assert not result.ok and result.detail == "ChunkedEncodingError"
    assert handler.served == 3


def test_a_refused_port_is_not_retried() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        result = health.http(f"http://127.0.0.1:{port}/")
    assert not result.ok and result.detail == "ConnectionError"
