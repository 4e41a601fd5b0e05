"""The index server over real HTTP: negotiation, redirects, ranges, revalidation, safety."""

from __future__ import annotations

import http.client
import json
import os
import threading
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from fixtures.wheels import make_wheel
from torrip.indexserver import IndexServer, RequestRecord, build_index

JSON = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
PIP_ACCEPT = f"{JSON}, {HTML_V1}; q=0.1, text/html; q=0.01"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
WHEEL = "demo-1.0-py3-none-any.whl"


@pytest.fixture
def built(tmp_path: Path) -> Path:
    dists = tmp_path / "dists"
    make_wheel(dists, "demo", "1.0", files={"demo/__init__.py": bytes(range(256)) * 400})
    root = tmp_path / "public"
    assert build_index(dists, root).ok
    return root


@pytest.fixture
def server(built: Path) -> Iterator[IndexServer]:
    with IndexServer(built) as running:
        yield running


@pytest.fixture
def client(server: IndexServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, follow_redirects=False) as http:
        yield http


def raw_get(server: IndexServer, path: str, method: str = "GET") -> http.client.HTTPResponse:
    """A request with the path sent exactly as given (httpx would normalize it)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.putrequest(method, path, skip_accept_encoding=True)
    connection.endheaders()
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_url_names_the_port(server: IndexServer) -> None:
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}/simple/"


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (PIP_ACCEPT, JSON),
        (f"{JSON}, {HTML_V1};q=0.2, text/html;q=0.01", JSON),  # uv
        ("application/vnd.pypi.simple.latest+json", JSON),
        (HTML_V1, HTML_V1),
        (f"{JSON};q=0.5, {HTML_V1}", HTML_V1),
        ("text/html", "text/html; charset=utf-8"),
        (BROWSER_ACCEPT, "text/html; charset=utf-8"),
        ("*/*", "text/html; charset=utf-8"),
        (None, "text/html; charset=utf-8"),
    ],
)  # fmt: skip
def test_content_negotiation(client: httpx.Client, accept: str | None, content_type: str) -> None:
    headers = {"Accept": accept} if accept is not None else {}
    for path in ("/simple/", "/simple/demo/"):
        request = client.build_request("GET", path, headers=headers)
        if accept is None:
            del request.headers["Accept"]
        response = client.send(request)
        assert response.status_code == 200
        assert response.headers["content-type"] == content_type
        assert response.headers["vary"] == "Accept"
        assert response.headers["cache-control"] == "max-age=600"
        if content_type == JSON:
            assert response.json()["meta"]["api-version"] == "1.1"
        else:
            assert response.text.startswith("<!DOCTYPE html>")


def test_nothing_acceptable_is_406(client: httpx.Client) -> None:
    response = client.get("/simple/demo/", headers={"Accept": "image/png"})
    assert response.status_code == 406
    assert JSON in response.text


def test_json_only_server(built: Path) -> None:
    with IndexServer(built, formats=("json",)) as server, httpx.Client() as http:
        assert http.get(server.url, headers={"Accept": "text/html"}).status_code == 406
        response = http.get(server.url, headers={"Accept": "*/*"})
        assert response.headers["content-type"] == JSON
        assert response.json()["projects"] == [{"name": "demo"}]


def test_html_only_server_ignores_accept(built: Path) -> None:
    with IndexServer(built, formats=("html",)) as server, httpx.Client() as http:
        response = http.get(server.url + "demo/", headers={"Accept": JSON})
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert http.get(server.url + "demo/index.json").status_code == 404


def test_static_page_files_are_served(client: httpx.Client) -> None:
    response = client.get("/simple/demo/index.json")
    assert response.headers["content-type"] == "application/json"
    assert response.json()["name"] == "demo"
    assert client.get("/simple/index.html").headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/simple", "/simple/"),
        ("/simple/demo", "/simple/demo/"),
        ("/simple/Demo/", "/simple/demo/"),
        ("/simple/DEMO", "/simple/demo/"),
        ("/simple/my_Pkg.x/", "/simple/my-pkg-x/"),
        ("/", "/simple/"),
    ],
)
def test_redirects(client: httpx.Client, path: str, location: str) -> None:
    response = client.get(path)
    assert response.status_code == 301
    assert response.headers["location"] == location


def test_redirect_is_followed_to_the_page(client: httpx.Client) -> None:
    response = client.get("/simple/DEMO", headers={"Accept": JSON}, follow_redirects=True)
    assert response.json()["name"] == "demo"


def test_unknown_project_is_404(client: httpx.Client) -> None:
    assert client.get("/simple/nothing-here/").status_code == 404


def test_file_content_types(client: httpx.Client) -> None:
    expected = {
        f"/files/{WHEEL}": "application/octet-stream",
        f"/files/{WHEEL}.metadata": "text/plain; charset=utf-8",
        f"/files/{WHEEL}.torrent": "application/x-bittorrent",
    }
    for path, content_type in expected.items():
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == content_type
        assert response.headers["accept-ranges"] == "bytes"
        assert "cache-control" not in response.headers


def test_ranges(client: httpx.Client, built: Path) -> None:
    body = (built / "files" / WHEEL).read_bytes()
    size = len(body)

    def get(range_header: str, **headers: str) -> httpx.Response:
        return client.get(f"/files/{WHEEL}", headers={"Range": range_header, **headers})

    response = get("bytes=10-19")
    assert response.status_code == 206
    assert response.content == body[10:20]
    assert response.headers["content-range"] == f"bytes 10-19/{size}"
    assert response.headers["content-length"] == "10"

    response = get("bytes=-22")  # a zip's end-of-central-directory, as lazy wheels ask
    assert (response.status_code, response.content) == (206, body[-22:])
    assert response.headers["content-range"] == f"bytes {size - 22}-{size - 1}/{size}"

    response = get(f"bytes={size - 5}-")
    assert (response.status_code, response.content) == (206, body[-5:])

    response = get(f"bytes={size - 5}-{size + 100}")
    assert (response.status_code, response.content) == (206, body[-5:])

    response = get(f"bytes=-{size * 2}")
    assert (response.status_code, response.content) == (206, body)

    response = get(f"bytes={size}-")
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"

    for ignored in ("bytes=0-1,5-9", "bytes=9-1", "items=0-1", "bytes=abc"):
        response = get(ignored)
        assert (response.status_code, response.content) == (200, body), ignored


def test_if_range(client: httpx.Client) -> None:
    first = client.get(f"/files/{WHEEL}")
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    for validator in (etag, last_modified):
        response = client.get(
            f"/files/{WHEEL}", headers={"Range": "bytes=0-3", "If-Range": validator}
        )
        assert response.status_code == 206
    response = client.get(f"/files/{WHEEL}", headers={"Range": "bytes=0-3", "If-Range": '"other"'})
    assert response.status_code == 200
    assert response.content == first.content


def test_head(client: httpx.Client, built: Path) -> None:
    size = (built / "files" / WHEEL).stat().st_size
    response = client.head(f"/files/{WHEEL}")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(size)
    assert response.content == b""
    page = client.head("/simple/demo/", headers={"Accept": JSON})
    assert page.headers["content-type"] == JSON
    assert int(page.headers["content-length"]) > 0


def test_not_modified(client: httpx.Client) -> None:
    page = client.get("/simple/demo/", headers={"Accept": JSON})
    etag = page.headers["etag"]
    again = client.get("/simple/demo/", headers={"Accept": JSON, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["vary"] == "Accept"
    # The HTML representation has its own validator.
    html = client.get("/simple/demo/", headers={"Accept": "text/html", "If-None-Match": etag})
    assert html.status_code == 200
    assert html.headers["etag"] != etag

    weak = client.get("/simple/demo/", headers={"Accept": JSON, "If-None-Match": f"W/{etag}"})
    assert weak.status_code == 304
    assert client.get("/simple/demo/", headers={"If-None-Match": "*"}).status_code == 304

    file = client.get(f"/files/{WHEEL}")
    since = client.get(
        f"/files/{WHEEL}", headers={"If-Modified-Since": file.headers["last-modified"]}
    )
    assert since.status_code == 304
    past = formatdate(0, usegmt=True)
    assert client.get(f"/files/{WHEEL}", headers={"If-Modified-Since": past}).status_code == 200
    # If-None-Match wins over If-Modified-Since.
    both = {"If-None-Match": '"other"', "If-Modified-Since": file.headers["last-modified"]}
    assert client.get(f"/files/{WHEEL}", headers=both).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/../../../etc/passwd",
        "/files/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/files/..%2f..%2fetc/passwd",
        "/files/%2E%2E/%2E%2E/etc/passwd",
        "/files/..\\..\\etc\\passwd",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/files/%00",
        "/files/%ff%fe",
        "/.torrip-index.json",
        "/files/",
        "/simple/demo/../../files",
        "http://127.0.0.1/../etc/passwd",
        "etc/passwd",
    ],
)
def test_traversal_is_404(server: IndexServer, path: str) -> None:
    assert raw_get(server, path).status == 404


def test_symlinks_out_of_the_folder_are_404(
    built: Path, server: IndexServer, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (built / "files" / "link.whl").symlink_to(secret)
    (built / "escape").symlink_to(tmp_path)
    assert raw_get(server, "/files/link.whl").status == 404
    assert raw_get(server, "/escape/secret.txt").status == 404
    # A symlink that stays inside the folder is fine.
    (built / "files" / "alias.whl").symlink_to(built / "files" / WHEEL)
    assert raw_get(server, "/files/alias.whl").status == 200


def test_other_methods_are_405(server: IndexServer) -> None:
    response = raw_get(server, "/simple/", method="POST")
    assert response.status == 405
    assert response.getheader("Allow") == "GET, HEAD"


def test_keep_alive(server: IndexServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for path in ("/simple/", "/simple/demo/", f"/files/{WHEEL}", "/nothing", "/simple/demo"):
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        assert response.version == 11
        assert not response.will_close, path
    connection.close()


def test_many_clients_at_once(server: IndexServer, built: Path) -> None:
    body = (built / "files" / WHEEL).read_bytes()
    errors: list[BaseException] = []
    barrier = threading.Barrier(32)

    def fetch() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            connection.connect()
            barrier.wait(timeout=10)  # every client connected and waiting at once
            for path in (f"/files/{WHEEL}", "/simple/demo/") * 5:
                connection.request("GET", path, headers={"Accept": JSON})
                response = connection.getresponse()
                content = response.read()
                assert response.status == 200
                assert content == body or path.startswith("/simple/")
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=fetch) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors


def test_on_request_records_every_answer(built: Path) -> None:
    records: list[RequestRecord] = []
    with IndexServer(built, on_request=records.append) as server, httpx.Client() as http:
        http.get(server.base_url + f"files/{WHEEL}", headers={"Range": "bytes=0-9"})
        http.head(server.base_url + f"files/{WHEEL}")
        http.get(server.base_url + "missing")
        assert server.wait_idle()
    assert records == [
        RequestRecord("GET", f"/files/{WHEEL}", 206, 10, "bytes=0-9"),
        RequestRecord("HEAD", f"/files/{WHEEL}", 200, 0, None),
        RequestRecord("GET", "/missing", 404, len(b"not found\n"), None),
    ]


def test_stop_ends_open_connections(built: Path) -> None:
    server = IndexServer(built).start()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/simple/")
    connection.getresponse().read()
    server.stop()
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        connection.request("GET", "/simple/")
        connection.getresponse().read()
    connection.close()


def test_serves_a_rebuilt_index(built: Path, server: IndexServer, tmp_path: Path) -> None:
    make_wheel(tmp_path / "dists", "other", "1.0")
    build_index(tmp_path / "dists", built)
    with httpx.Client() as http:
        projects = http.get(server.url, headers={"Accept": JSON}).json()["projects"]
    assert projects == [{"name": "demo"}, {"name": "other"}]


def test_bad_formats_are_refused(built: Path) -> None:
    with pytest.raises(ValueError, match="formats"):
        IndexServer(built, formats=("xml",))


def test_page_of_a_project_is_valid_json(client: httpx.Client) -> None:
    text = client.get("/simple/demo/", headers={"Accept": JSON}).text
    assert json.loads(text)["files"][0]["filename"] == WHEEL
    assert os.sep not in json.loads(text)["files"][0]["url"].replace("/", "")


def test_listen_backlog_takes_a_burst_of_connections() -> None:
    # With socketserver's default of 5, a burst of 50 connections (uv opens that many)
    # gets SYNs dropped and clients wait seconds for the kernel's retry.
    from torrip.indexserver.serve import _Server

    assert _Server.request_queue_size >= 128
