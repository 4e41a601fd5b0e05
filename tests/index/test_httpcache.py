"""The page cache follows HTTP caching semantics against a real server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from torrip.index.httpcache import PageCache


class _State:
    cache_control = "max-age=600"
    etag = '"v1"'
    body = b"<html>v1</html>"
    requests: list[dict[str, str]]


@pytest.fixture
def server() -> Iterator[tuple[str, type[_State]]]:
    state = type("State", (_State,), {"requests": []})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(dict(self.headers))
            if self.headers.get("If-None-Match") == state.etag:
                self.send_response(304)
                self.send_header("Cache-Control", state.cache_control)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Cache-Control", state.cache_control)
            self.send_header("ETag", state.etag)
            self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/simple/demo/", state
    httpd.shutdown()


def test_fresh_entries_are_served_from_disk(server, tmp_path: Path) -> None:
    url, state = server
    cache = PageCache(tmp_path)
    with httpx.Client() as client:
        first = cache.get(client, url, "text/html")
        second = cache.get(client, url, "text/html")
    assert (first.from_cache, second.from_cache) == (False, True)
    assert second.body == b"<html>v1</html>"
    assert len(state.requests) == 1


def test_stale_entries_are_revalidated(server, tmp_path: Path) -> None:
    url, state = server
    state.cache_control = "max-age=0"
    cache = PageCache(tmp_path)
    with httpx.Client() as client:
        cache.get(client, url, "text/html")
        assert not cache.is_fresh(url, "text/html")
        again = cache.get(client, url, "text/html")
        assert state.requests[-1].get("If-None-Match") == '"v1"'
        assert again.from_cache and again.body == b"<html>v1</html>"
        state.etag, state.body = '"v2"', b"<html>v2</html>"
        changed = cache.get(client, url, "text/html")
    assert not changed.from_cache and changed.body == b"<html>v2</html>"


def test_no_store_is_not_written(server, tmp_path: Path) -> None:
    url, state = server
    state.cache_control = "no-store"
    cache = PageCache(tmp_path)
    with httpx.Client() as client:
        cache.get(client, url, "text/html")
        cache.get(client, url, "text/html")
    assert len(state.requests) == 2
    assert "If-None-Match" not in state.requests[1]


def test_accept_header_is_part_of_the_key(server, tmp_path: Path) -> None:
    url, state = server
    cache = PageCache(tmp_path)
    with httpx.Client() as client:
        cache.get(client, url, "text/html")
        cache.get(client, url, "application/vnd.pypi.simple.v1+json")
    assert len(state.requests) == 2


def test_torn_entry_is_refetched(server, tmp_path: Path) -> None:
    url, _state = server
    cache = PageCache(tmp_path)
    with httpx.Client() as client:
        cache.get(client, url, "text/html")
        for body in tmp_path.rglob("*.body"):
            body.write_bytes(b"garbage")
        result = cache.get(client, url, "text/html")
    assert result.body == b"<html>v1</html>" and not result.from_cache


def test_is_fresh_answers_without_a_request(server, tmp_path: Path) -> None:
    url, state = server
    cache = PageCache(tmp_path)
    assert not cache.is_fresh(url, "text/html")  # nothing stored yet
    with httpx.Client() as client:
        cache.get(client, url, "text/html")
    assert cache.is_fresh(url, "text/html")
    assert not cache.is_fresh(url, "application/vnd.pypi.simple.v1+json")
    assert not PageCache(None).is_fresh(url, "text/html")
    assert len(state.requests) == 1
