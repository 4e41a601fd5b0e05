"""The index client: project pages from every index and find-links location, and metadata.

All requests go through one thread pool, so the resolver can ask for pages and
metadata files ahead of time (``prefetch_*``) and later collect them without a
round trip. Every result is memoized per run; metadata files are also cached on
disk keyed by the distribution file's sha256, since they can never change.

What the disk cache can answer (a fresh page, a cached metadata file, a local wheel) is
not sent to the pool: it is read in the thread that first asks for it (``_OnDemand``).
Reading it is CPU work, which a pool on one GIL would only interleave with the resolver's
(a warm resolve of jupyterlab: 0.145 s through the pool, 0.098 s without).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import zipfile
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from packaging.utils import NormalizedName, canonicalize_name

from torrip.closing import Closing
from torrip.config import Settings
from torrip.errors import MetadataError, TorripError
from torrip.fsutil import atomic_write, file_url_path
from torrip.http import get_whole, http_errors, raise_for_status
from torrip.index.httpcache import PageCache
from torrip.index.lazywheel import fetch_wheel_metadata
from torrip.index.links import Link
from torrip.index.pages import PAGE_ACCEPT, parse_html_page, parse_page
from torrip.width import Stopwatch, Width

if TYPE_CHECKING:
    import httpx

__all__ = ["IndexClient", "pages_are_fresh"]

T = TypeVar("T")
Log = Callable[[str], None]

# Requests in flight while the index is near (torrip.width). On two cores, a cold dry-run
# of jupyterlab from PyPI 1-2 ms away took 1.01 s with 3, 1.08 s with 4 and about 1.09 s
# with 16; from a loopback mirror 0.60-0.63 s with 2 to 4 and 0.78 s with 16
# (docs/benchmarks.md).
NEAR_WIDTH = 3
# Requests in flight once the first showed the index on this machine (torrip.width's
# LOCAL_WAIT): each then costs only CPU, and more at once only contend for the GIL.
LOCAL_WIDTH = 1


def _ignore(_: str) -> None:
    pass


class IndexClient(Closing):
    def __init__(
        self,
        settings: Settings,
        http: httpx.Client,
        *,
        log: Log = _ignore,
        measure_now: bool = True,
    ) -> None:
        """``measure_now``: whether the first request decides how many go at once; if not,
        the first after ``start_measuring``."""
        self.settings = settings
        self.http = http
        self.log = log
        self._indexes = settings.index_urls_in_turn  # a bad index-strategy fails here
        cache = None if settings.no_cache else settings.http_cache_dir
        self.page_cache = PageCache(cache, offline=settings.offline)
        self.metadata_dir = None if settings.no_cache else settings.cache_dir / "metadata-v1"
        self._far_executor: ThreadPoolExecutor | None = None  # made when it widens
        # Requests at once: few while the index is near, all the pool's once the first
        # request shows network latency worth overlapping, one where it shows the index
        # on this machine. One width for all the indexes: narrowed only where the first
        # answer speaks for every one of them (a local mirror and PyPI beside it would put
        # PyPI's requests one at a time too).
        one_host = len({urlsplit(url).netloc for url in self._indexes}) == 1
        self._width = Width(
            NEAR_WIDTH,
            settings.max_connections_per_host,
            local=LOCAL_WIDTH if one_host else None,
            on_widen=self._widened,
            armed=measure_now,
        )
        # As many threads as may ask at once while the index is near: a thread waiting at
        # the width's gate still costs its start (for a local index, 16 starts of about
        # 2 ms each, on the resolver's thread). More come in a pool of their own if the
        # index turns out far.
        self._executor = ThreadPoolExecutor(
            max_workers=self._width.near, thread_name_prefix="torrip-index"
        )
        self._closed = False
        self._lock = threading.Lock()
        self._pages: dict[str, Future[Any]] = {}
        self._metadata: dict[str, Future[Any]] = {}
        self._skipped: dict[str, list[str]] = {}
        # Set once the target is known (see restrict_platforms).
        self.platforms: frozenset[str] | None = None

    def start_measuring(self) -> None:
        """Let the next request decide how many go at once (``Width.arm``)."""
        self._width.arm()

    def restrict_platforms(self, platforms: frozenset[str]) -> None:
        """Leave wheels for other platforms out of pages parsed from now on; they are
        only counted (``skipped_files``) for error messages."""
        self.platforms = platforms

    def skipped_files(self, name: str) -> list[str]:
        with self._lock:
            return list(self._skipped.get(canonicalize_name(name), ()))

    def close(self) -> None:
        with self._lock:
            self._closed = True  # what speculation asks for from now on is cancelled
        for executor in (self._executor, self._far_executor):
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)

    def _memoized(
        self,
        table: dict[str, Future[Any]],
        key: str,
        work: Callable[[], T],
        *,
        local: Callable[[], bool],
    ) -> Future[T]:
        """The future for ``key``, made once: on demand when ``local()`` says the answer
        needs no request, else running in the pool."""
        with self._lock:
            future = table.get(key)
            if future is not None:
                return future
        is_local = local()  # outside the lock: it reads the disk
        with self._lock:
            future = table.get(key)
            if future is None and self._closed:
                # A speculation's callback, still running when resolution ended (an error).
                cancelled: Future[T] = Future()
                cancelled.cancel()
                return cancelled
            if future is None:
                if is_local:
                    future = _OnDemand(work)
                else:
                    executor = self._far_executor or self._executor
                    future = executor.submit(self._gated, work)
                table[key] = future
            return future

    def _gated(self, work: Callable[[], T]) -> T:
        """Run ``work`` (requests) in a pool thread, within the current width."""
        with self._width:
            if self._width.measured:
                return work()
            watch = Stopwatch()
            try:
                return work()
            finally:
                self._width.observe_since(watch)

    def _widened(self, waited: float, extra: int) -> None:
        """The index is far: ``extra`` more requests at once, on threads of their own
        (what waits in the first pool keeps its place there)."""
        with self._lock:
            if self._far_executor is None and not self._closed:
                self._far_executor = ThreadPoolExecutor(
                    max_workers=max(1, extra), thread_name_prefix="torrip-index-far"
                )
        self.log(f"index {waited * 1000:.0f} ms away: {extra} more requests at once")

    # Project pages -------------------------------------------------------------------

    def prefetch_project(self, name: str) -> Future[list[Link]]:
        project = canonicalize_name(name)
        return self._memoized(
            self._pages,
            project,
            lambda: self._collect(project),
            local=lambda: self._pages_are_local(project),
        )

    def project_links(self, name: str) -> list[Link]:
        return self.prefetch_project(name).result()

    def _collect(self, project: NormalizedName) -> list[Link]:
        links: list[Link] = []
        # One index after another: a worker waiting on other workers could deadlock the pool.
        for base in self._indexes:
            found = self._index_page(base, project)
            if found is None:
                continue
            links.extend(found)
            if self.settings.index_strategy == "first-index":
                if len(self._indexes) > 1:
                    self.log(f"{project}: files from {base} alone (index-strategy first-index)")
                break
        for location in self.settings.find_links:
            links.extend(
                link
                for link in self._find_links(location)
                if (parsed := link.parsed) and parsed[0] == project
            )
        return links

    def page_digests(self) -> list[tuple[str, str]] | None:
        """(URL, sha256) of the page of every project asked for so far, on every index, as
        the cache holds them; None if any is not there (a 404, a page not to be stored,
        no cache) or find-links locations were read too (a folder has no validator)."""
        if self.settings.find_links:
            return None
        with self._lock:
            projects = sorted(self._pages)  # canonical names
        digests = []
        for project in projects:
            for base in self.settings.index_urls:
                url = _page_url(base, NormalizedName(project))
                digest = self.page_cache.digest(url, PAGE_ACCEPT, fresh=False)
                if digest is None:
                    return None
                digests.append((url, digest))
        return digests

    def _pages_are_local(self, project: NormalizedName) -> bool:
        return _fresh(self.page_cache, self.settings.index_urls, project) and all(
            _local_path(location) is not None for location in self.settings.find_links
        )

    def _index_page(self, base: str, project: NormalizedName) -> list[Link] | None:
        """The project's files on the index at ``base``; None if it has no such project."""
        url = _page_url(base, project)
        response = self.page_cache.get(self.http, url, PAGE_ACCEPT)
        if response.status == 404:
            self.log(f"{url}: not found (404)")
            return None
        skipped: list[str] = []
        links = parse_page(
            response.body,
            response.content_type,
            response.url,
            platforms=self.platforms,
            skipped=skipped,
        )
        if skipped:
            with self._lock:
                self._skipped.setdefault(project, []).extend(skipped)
        self.log(
            f"{url}: {len(links)} files ({response.content_type.split(';')[0]}"
            f"{', cached' if response.from_cache else ''})"
        )
        return links

    def _find_links(self, location: str) -> list[Link]:
        path = _local_path(location)
        if path is not None and path.is_dir():
            return [
                Link(filename=entry.name, url=entry.resolve().as_uri())
                for entry in sorted(path.iterdir())
                if entry.is_file()
            ]
        if path is not None:
            if not path.exists():
                raise TorripError(
                    f"--find-links location {location} does not exist",
                    hint="Give an existing folder, an HTML file or an http(s) URL.",
                )
            return parse_html_page(path.read_text(encoding="utf-8"), path.resolve().as_uri())
        response = self.page_cache.get(self.http, location, "text/html")
        if response.status == 404:
            raise TorripError(f"--find-links location {location} answered 404")
        return parse_html_page(response.body.decode("utf-8", "replace"), response.url)

    # Metadata ------------------------------------------------------------------------

    def prefetch_metadata(self, link: Link) -> Future[bytes]:
        return self._memoized(
            self._metadata,
            link.url,
            lambda: self._fetch_metadata(link),
            local=lambda: self._metadata_is_local(link),
        )

    def metadata(self, link: Link) -> bytes:
        return self.prefetch_metadata(link).result()

    def _cached_metadata_path(self, link: Link) -> Path | None:
        if self.metadata_dir is None or not link.sha256:
            return None
        return self.metadata_dir / link.sha256[:2] / f"{link.sha256}.metadata"

    def _metadata_is_local(self, link: Link) -> bool:
        cached = self._cached_metadata_path(link)
        return (cached is not None and cached.is_file()) or _local_path(link.url) is not None

    def _fetch_metadata(self, link: Link) -> bytes:
        cached = self._cached_metadata_path(link)
        if cached is not None:
            try:
                return cached.read_bytes()
            except OSError:
                pass
        data = self._fetch_metadata_uncached(link)
        if cached is not None:
            with contextlib.suppress(OSError):  # a read-only cache must not stop a resolve
                atomic_write(cached, data)
        return data

    def _fetch_metadata_uncached(self, link: Link) -> bytes:
        local = _local_path(link.url)
        if local is not None:
            return _read_local_wheel_metadata(local, link.url)
        if link.metadata_hashes is not None:
            data = self._get_bytes(link.metadata_url)
            if data is not None:
                mismatch = _hash_mismatch(data, link.metadata_hashes)
                if mismatch is None:
                    self.log(f"metadata of {link.filename}: PEP 658 file")
                    return data
                algorithm, expected, actual = mismatch
                # The wheel itself is checked against its own hash later, so reading its
                # METADATA is safe; a broken index should not stop the install.
                self.log(
                    f"warning: {link.metadata_url} does not match its {algorithm} "
                    f"(expected {expected}, got {actual}); reading the wheel instead"
                )
        result = fetch_wheel_metadata(
            self.http, link.url, link.filename, expected_sha256=link.sha256, size_hint=link.size
        )
        self.log(
            f"metadata of {link.filename}: no metadata file, read from the wheel "
            f"by {'range requests' if result.method == 'range' else 'full download'} "
            f"({result.bytes_fetched} bytes in {result.requests} requests)"
        )
        return result.metadata

    def _get_bytes(self, url: str) -> bytes | None:
        with http_errors(url):
            response = get_whole(self.http, url)
        if response.status_code == 404:
            return None
        raise_for_status(response)
        return response.content


class _OnDemand(Future[T]):
    """A future for an answer that needs no request: its work runs in the first thread that
    asks for the result or adds a callback, once; other threads wait for it. A callback runs
    in the thread that adds it, never in the one doing the work (which may hold a lock that
    the callback takes: ``Provider.files``)."""

    def __init__(self, work: Callable[[], T]) -> None:
        super().__init__()
        self._work = work
        self._claim = threading.Lock()
        self._claimed = False

    def _run(self) -> None:
        with self._claim:
            if self._claimed:
                return  # done, or being done by another thread: super() waits for it
            self._claimed = True
        if not self.set_running_or_notify_cancel():
            return  # cancelled before anyone asked
        try:
            result = self._work()
        except BaseException as error:  # carried to whoever asks, as from the pool
            self.set_exception(error)
        else:
            self.set_result(result)

    def result(self, timeout: float | None = None) -> T:
        self._run()
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._run()
        return super().exception(timeout)

    def add_done_callback(self, fn: Callable[[Future[T]], object]) -> None:
        self._run()
        super().exception()  # wait for another thread's run
        # Speculation adds callbacks from callbacks, one level per dependency level: those
        # added inside a callback run after it, in a loop, not deeper in the stack.
        queue: deque[tuple[Callable[[Future[T]], object], Future[T]]] | None
        queue = getattr(_callbacks, "queue", None)
        if queue is not None:
            queue.append((fn, self))
            return
        _callbacks.queue = queue = deque([(fn, self)])
        try:
            while queue:
                callback, future = queue.popleft()
                try:
                    callback(future)
                except Exception:  # as Future does: a failing callback spoils no other
                    _log.exception("exception calling callback for %r", future)
        finally:
            _callbacks.queue = None


# The callbacks of on-demand futures waiting to run on this thread (see add_done_callback).
_callbacks = threading.local()
_log = logging.getLogger("concurrent.futures")


def pages_are_fresh(settings: Settings, name: str) -> bool:
    """Whether the cache holds ``name``'s page of every index, fresh: reading it will ask
    the index nothing."""
    if settings.no_cache:
        return False
    cache = PageCache(settings.http_cache_dir, offline=settings.offline)
    return _fresh(cache, settings.index_urls, canonicalize_name(name))


def _fresh(cache: PageCache, index_urls: Sequence[str], project: NormalizedName) -> bool:
    return all(cache.is_fresh(_page_url(base, project), PAGE_ACCEPT) for base in index_urls)


def _page_url(base: str, project: NormalizedName) -> str:
    return base.rstrip("/") + f"/{project}/"


def _hash_mismatch(data: bytes, hashes: dict[str, str] | object) -> tuple[str, str, str] | None:
    assert isinstance(hashes, dict)
    for algorithm in ("sha256", "sha384", "sha512"):
        expected = hashes.get(algorithm)
        if expected:
            expected = expected.lower()
            actual = hashlib.new(algorithm, data).hexdigest()
            return None if actual == expected else (algorithm, expected, actual)
    return None  # no hash we know: nothing to check (PEP 658 allows "true")


def _local_path(location: str) -> Path | None:
    """A find-links location or file URL as a local path; None for http(s) URLs."""
    if location.startswith(("http://", "https://")):
        return None
    return file_url_path(location) or Path(location).expanduser()


def _read_local_wheel_metadata(path: Path, url: str) -> bytes:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if _is_metadata_member(n)]
            if len(names) != 1:
                raise MetadataError(f"{url}: expected one .dist-info/METADATA, found {len(names)}")
            return archive.read(names[0])
    except (OSError, zipfile.BadZipFile) as exc:
        raise MetadataError(f"cannot read {url}: {exc}") from None


def _is_metadata_member(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA"
