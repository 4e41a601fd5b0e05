"""Build and serve a package index with PEP 658 metadata and torrents.

    result = build_index(Path("dist"), Path("public"), base_url="https://pkgs.example/")
    with IndexServer(Path("public"), port=8080) as server:
        ...

The format of the ``_torrent`` key, the ``data-torrent`` attribute and the
torrent index tree is documented in docs/torrent-index.md.
"""

from torrip.indexserver.build import MANIFEST_NAME, BuildResult, IndexedFile, build_index
from torrip.indexserver.pages import FileEntry, TorrentInfo
from torrip.indexserver.serve import FORMATS, IndexServer, RequestRecord

__all__ = [
    "FORMATS",
    "MANIFEST_NAME",
    "BuildResult",
    "FileEntry",
    "IndexServer",
    "IndexedFile",
    "RequestRecord",
    "TorrentInfo",
    "build_index",
]
