"""Build a static index from a folder of distribution files.

    result = build_index(Path("dist"), Path("public"), base_url="https://pkgs.example/")
    result.rejected   # files that could not be indexed, each with its reason

The output serves as is from any static host (docs/torrent-index.md)::

    public/simple/index.html, index.json                   project list
    public/simple/<project>/index.html, index.json         project pages
    public/files/<filename>                                 the distribution files
    public/files/<filename>.metadata                        PEP 658 metadata (wheels)
    public/files/<filename>.torrent                         torrent of the file
    public/torrents/<sha256[:2]>/<sha256>.torrent           torrent index, by file sha256

A manifest (``public/.torrip-index.json``) remembers each processed file by
name, size and modification time, so a rebuild only reads new or changed files.
Files that left the input folder leave the index. Every output is written
atomically, so a server can serve the folder while it is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from packaging.version import Version

from torrip.errors import ConfigError, DistributionFileError, IndexBuildError, TorripError
from torrip.fsutil import atomic_write
from torrip.indexserver.distributions import inspect_distribution, is_distribution_filename
from torrip.indexserver.pages import (
    FileEntry,
    ProjectSummary,
    TorrentInfo,
    render_project_html,
    render_project_json,
    render_root_html,
    render_root_json,
)
from torrip.transport.recipe import make_torrent

__all__ = ["MANIFEST_NAME", "BuildResult", "IndexedFile", "build_index"]

MANIFEST_NAME = ".torrip-index.json"
_MANIFEST_VERSION = 1
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class IndexedFile:
    """A file the index lists, and whether this build had to read it."""

    filename: str
    project: str
    version: str
    sha256: str
    size: int
    requires_python: str | None
    metadata_sha256: str | None
    torrent: TorrentInfo | None
    reused: bool


@dataclass(frozen=True)
class BuildResult:
    out_dir: Path
    files: tuple[IndexedFile, ...]
    rejected: tuple[DistributionFileError, ...]
    projects: tuple[str, ...]
    # Work done by this build: files read and hashed, torrents created.
    files_read: int = 0
    torrents_made: int = 0
    removed: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.rejected


def build_index(
    dist_dir: Path,
    out_dir: Path,
    *,
    base_url: str | None = None,
    torrents: bool = True,
    yanked: Mapping[str, str] | None = None,
    upload_times: Mapping[str, datetime] | None = None,
    adjust_entry: Callable[[FileEntry], FileEntry] | None = None,
) -> BuildResult:
    """Index every distribution file directly inside ``dist_dir`` into ``out_dir``.

    ``base_url`` is where ``out_dir`` will be served (``https://host/path/``); with
    it, pages use absolute file URLs and torrents carry the file URL as a web seed.
    Without it, pages use relative URLs and torrents have no web seed.
    ``yanked`` maps file names to a reason ("" for none) (PEP 592);
    ``upload_times`` maps file names to their upload time (PEP 700).
    ``adjust_entry`` may change each page entry before it is written (tests use it
    to serve broken metadata hashes).
    """
    dist_dir = Path(dist_dir)
    out_dir = Path(out_dir)
    if not dist_dir.is_dir():
        raise IndexBuildError(
            f"{dist_dir} is not a folder", hint="Pass the folder that holds your wheels and sdists."
        )
    if base_url is not None:
        base_url = _check_base_url(base_url)
    builder = _Builder(
        dist_dir=dist_dir,
        out_dir=out_dir,
        base_url=base_url,
        torrents=torrents,
        yanked=dict(yanked or {}),
        upload_times=dict(upload_times or {}),
        adjust_entry=adjust_entry,
    )
    try:
        return builder.run()
    except OSError as exc:
        raise IndexBuildError(
            f"cannot write the index to {out_dir}: {exc}",
            hint="Check that the output folder is writable and the disk is not full.",
        ) from None


def _check_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"--base-url must be an absolute http(s) URL, got {base_url!r}",
            hint="Give the URL where the output folder is served, e.g. https://pkgs.example.com/.",
        )
    return base_url if base_url.endswith("/") else base_url + "/"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_and_hash(source: Path, target: Path) -> tuple[str, int]:
    """Copy ``source`` to ``target`` atomically, keeping its mtime; return (sha256, size)."""
    digest = hashlib.sha256()
    size = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        stat = source.stat()
        os.utime(temp, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        temp.chmod(0o644)
        temp.replace(target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return digest.hexdigest(), size


def _write_if_changed(path: Path, text: str) -> bool:
    data = text.encode("utf-8")
    with contextlib.suppress(OSError):
        if path.read_bytes() == data:
            return False
    atomic_write(path, data)
    return True


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


@dataclass
class _Builder:
    dist_dir: Path
    out_dir: Path
    base_url: str | None
    torrents: bool
    yanked: dict[str, str]
    upload_times: dict[str, datetime]
    adjust_entry: Callable[[FileEntry], FileEntry] | None
    warnings: list[str] = field(default_factory=list)
    rejected: list[DistributionFileError] = field(default_factory=list)
    files_read: int = 0
    torrents_made: int = 0

    @property
    def files_dir(self) -> Path:
        return self.out_dir / "files"

    @property
    def simple_dir(self) -> Path:
        return self.out_dir / "simple"

    def torrent_index_path(self, sha256: str) -> Path:
        return self.out_dir / "torrents" / sha256[:2] / f"{sha256}.torrent"

    def file_url(self, filename: str) -> str:
        if self.base_url is None:
            return f"../../files/{quote(filename)}"
        return f"{self.base_url}files/{quote(filename)}"

    # -- the steps ---------------------------------------------------------------------

    def run(self) -> BuildResult:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        previous = self._load_manifest()
        records: dict[str, dict[str, Any]] = {}
        identities: dict[tuple[str, ...], str] = {}
        reused: set[str] = set()
        for path in sorted(self.dist_dir.iterdir(), key=lambda p: p.name):
            if path.name.startswith(".") or not path.is_file():
                continue
            record = self._index_file(path, previous.get(path.name), identities)
            if record is None:
                continue
            identities[tuple(record["identity"])] = path.name
            if record is previous.get(path.name):
                reused.add(path.name)
            records[path.name] = record

        self._make_torrents(records)
        removed = self._remove_stale(previous, records)
        projects = self._write_pages(records, previous)
        self._save_manifest(records)
        files = tuple(
            IndexedFile(
                filename=name,
                project=record["project"],
                version=record["version"],
                sha256=record["sha256"],
                size=record["size"],
                requires_python=record["requires_python"],
                metadata_sha256=record["metadata_sha256"],
                torrent=_torrent_info(record),
                reused=name in reused,
            )
            for name, record in records.items()
        )
        return BuildResult(
            out_dir=self.out_dir,
            files=files,
            rejected=tuple(self.rejected),
            projects=projects,
            files_read=self.files_read,
            torrents_made=self.torrents_made,
            removed=removed,
            warnings=tuple(self.warnings),
        )

    def _index_file(
        self,
        path: Path,
        known: dict[str, Any] | None,
        identities: Mapping[tuple[str, ...], str],
    ) -> dict[str, Any] | None:
        """The manifest record of one input file, reading it only if it is new or changed.

        None if the file is rejected, also when an earlier file has the same identity.
        """
        if not is_distribution_filename(path.name):
            reason = "not a distribution file (expected .whl, .tar.gz or .zip)"
            self.rejected.append(DistributionFileError(path, reason))
            return None
        stat = path.stat()
        target = self.files_dir / path.name
        if known is not None and self._still_valid(known, stat, target):
            return None if self._is_duplicate(path, known["identity"], identities) else known
        try:
            info = inspect_distribution(path)
        except DistributionFileError as error:
            self.rejected.append(error)
            return None
        if self._is_duplicate(path, info.identity, identities):
            return None
        self.files_read += 1
        if target.exists() and path.samefile(target):
            sha256, size = _sha256_file(target), stat.st_size
        else:
            sha256, size = _copy_and_hash(path, target)
        metadata_sha256: str | None = None
        metadata_path = self.files_dir / f"{path.name}.metadata"
        if info.metadata is not None:
            atomic_write(metadata_path, info.metadata)
            metadata_sha256 = hashlib.sha256(info.metadata).hexdigest()
        else:
            _unlink(metadata_path)
        return {
            "source_size": stat.st_size,
            "source_mtime_ns": stat.st_mtime_ns,
            "sha256": sha256,
            "size": size,
            "project": info.project,
            "display_name": info.display_name,
            "version": str(info.version),
            "kind": info.kind,
            "identity": list(info.identity),
            "requires_python": info.requires_python,
            "metadata_sha256": metadata_sha256,
            # Kept when the file is unchanged, so its torrent need not be made again.
            "torrent": known.get("torrent") if known and known.get("sha256") == sha256 else None,
        }

    def _is_duplicate(
        self, path: Path, identity: Sequence[str], identities: Mapping[tuple[str, ...], str]
    ) -> bool:
        first = identities.get(tuple(identity))
        if first is not None:
            reason = (
                f"same project, version and tags as {first}; an installer could not tell them apart"
            )
            self.rejected.append(DistributionFileError(path, reason))
        return first is not None

    def _still_valid(self, known: dict[str, Any], stat: os.stat_result, target: Path) -> bool:
        try:
            if known["source_size"] != stat.st_size or known["source_mtime_ns"] != stat.st_mtime_ns:
                return False
            if target.stat().st_size != known["size"]:
                return False
            metadata = self.files_dir / f"{target.name}.metadata"
            return known["metadata_sha256"] is None or metadata.is_file()
        except (KeyError, TypeError, OSError):
            return False

    def _make_torrents(self, records: dict[str, dict[str, Any]]) -> None:
        if not self.torrents:
            for name, record in records.items():
                _unlink(self.files_dir / f"{name}.torrent")
                self._unlink_torrent_index(record["sha256"])
                record["torrent"] = None
            return
        for name, record in records.items():
            torrent_path = self.files_dir / f"{name}.torrent"
            web_seed = None if self.base_url is None else self.file_url(name)
            existing = record.get("torrent")
            if (
                isinstance(existing, dict)
                and existing.get("web_seed") == web_seed
                and _file_sha256_is(torrent_path, existing.get("sha256"))
                and self.torrent_index_path(record["sha256"]).is_file()
            ):
                continue
            record["torrent"] = None
            try:
                web_seeds = [web_seed] if web_seed else []
                torrent = make_torrent(self.files_dir / name, web_seeds=web_seeds)
            except TorripError as exc:
                self.warnings.append(f"{name}: no torrent: {exc}")
                continue
            self.torrents_made += 1
            data = torrent.data
            atomic_write(torrent_path, data)
            atomic_write(self.torrent_index_path(record["sha256"]), data)
            record["torrent"] = {
                "btih": torrent.btih,
                "btmh": torrent.btmh,
                "sha256": hashlib.sha256(data).hexdigest(),
                "web_seed": web_seed,
            }

    def _unlink_torrent_index(self, sha256: str) -> None:
        path = self.torrent_index_path(sha256)
        _unlink(path)
        with contextlib.suppress(OSError):
            path.parent.rmdir()

    def _remove_stale(
        self, previous: Mapping[str, Mapping[str, Any]], records: Mapping[str, Mapping[str, Any]]
    ) -> tuple[str, ...]:
        removed = []
        for name, record in previous.items():
            if name in records:
                continue
            removed.append(name)
            copy, source = self.files_dir / name, self.dist_dir / name
            # Built in place (files/ is the input folder): never delete an input file.
            if not (source.exists() and copy.exists() and copy.samefile(source)):
                _unlink(copy)
            _unlink(self.files_dir / f"{name}.metadata")
            _unlink(self.files_dir / f"{name}.torrent")
            sha256 = record.get("sha256") if isinstance(record, Mapping) else None
            # Another name may hold the same bytes; its torrent keeps the tree entry.
            if isinstance(sha256, str) and all(r["sha256"] != sha256 for r in records.values()):
                self._unlink_torrent_index(sha256)
        return tuple(removed)

    def _write_pages(
        self, records: Mapping[str, Mapping[str, Any]], previous: Mapping[str, Mapping[str, Any]]
    ) -> tuple[str, ...]:
        by_project: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
        for name, record in records.items():
            by_project.setdefault(record["project"], []).append((name, record))
        summaries = []
        for project in sorted(by_project):
            items = sorted(by_project[project], key=lambda i: (Version(i[1]["version"]), i[0]))
            entries = [self._entry(name, record) for name, record in items]
            if self.adjust_entry is not None:
                entries = [self.adjust_entry(entry) for entry in entries]
            page_dir = self.simple_dir / project
            _write_if_changed(page_dir / "index.json", render_project_json(project, entries))
            _write_if_changed(page_dir / "index.html", render_project_html(project, entries))
            display_name = items[-1][1]["display_name"]  # as the newest version spells it
            summaries.append(ProjectSummary(name=project, display_name=display_name))
        _write_if_changed(self.simple_dir / "index.json", render_root_json(summaries))
        _write_if_changed(self.simple_dir / "index.html", render_root_html(summaries))
        gone = {
            record["project"]
            for record in previous.values()
            if isinstance(record, Mapping) and isinstance(record.get("project"), str)
        } - set(by_project)
        for project in gone:
            page_dir = self.simple_dir / project
            _unlink(page_dir / "index.json")
            _unlink(page_dir / "index.html")
            with contextlib.suppress(OSError):
                page_dir.rmdir()
        return tuple(sorted(by_project))

    def _entry(self, name: str, record: Mapping[str, Any]) -> FileEntry:
        return FileEntry(
            filename=name,
            url=self.file_url(name),
            sha256=record["sha256"],
            size=record["size"],
            version=record["version"],
            requires_python=record["requires_python"],
            core_metadata=record["metadata_sha256"] or False,
            yanked=self.yanked.get(name),
            upload_time=self.upload_times.get(name),
            torrent=_torrent_info(record),
        )

    # -- the manifest ------------------------------------------------------------------

    @property
    def manifest_path(self) -> Path:
        return self.out_dir / MANIFEST_NAME

    def _load_manifest(self) -> dict[str, dict[str, Any]]:
        try:
            document = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            self.warnings.append(f"{self.manifest_path} unreadable ({exc}); reading every file")
            return {}
        files = document.get("files") if isinstance(document, dict) else None
        if document.get("version") != _MANIFEST_VERSION or not isinstance(files, dict):
            return {}
        return {name: record for name, record in files.items() if isinstance(record, dict)}

    def _save_manifest(self, records: Mapping[str, Mapping[str, Any]]) -> None:
        document = {"version": _MANIFEST_VERSION, "files": dict(sorted(records.items()))}
        _write_if_changed(self.manifest_path, json.dumps(document, indent=1) + "\n")


def _torrent_info(record: Mapping[str, Any]) -> TorrentInfo | None:
    torrent = record.get("torrent")
    if not torrent:
        return None
    return TorrentInfo(btih=torrent["btih"], btmh=torrent["btmh"], sha256=torrent["sha256"])


def _file_sha256_is(path: Path, expected: object) -> bool:
    try:
        return _sha256_file(path) == expected
    except OSError:
        return False
