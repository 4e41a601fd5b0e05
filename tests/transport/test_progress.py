"""The progress display of swarm downloads: "· 83% from 5 peers", and per-file sources."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from torrip.transport.fetch import FetchResult, FileRequest
from torrip.transport.progress import RichProgress, describe_sources

REQUEST = FileRequest("big-1.0-py3-none-any.whl", "http://127.0.0.1:1/big.whl", None, 1000)


def test_the_overall_bar_says_how_much_came_from_how_many_peers() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    with RichProgress(console) as progress:
        progress.start(REQUEST, 1000)
        assert progress._progress.tasks[0].fields["swarm"] == ""  # HTTP only so far: nothing
        progress.advance(REQUEST, 830, "peers")
        progress.advance(REQUEST, 170, "origin")
        progress.peers(REQUEST, 5)
        assert progress._progress.tasks[0].fields["swarm"] == "· 83% from 5 peers"
        progress.peers(REQUEST, 1)
        assert progress._progress.tasks[0].fields["swarm"] == "· 83% from 1 peer"


def test_finished_lines_name_the_share_from_peers(tmp_path: Path) -> None:
    path = tmp_path / REQUEST.filename
    path.write_bytes(b"x" * 1000)
    swarm = FetchResult(REQUEST, path, "swarm", {"cache": 0, "origin": 30, "peers": 970}, "", True)
    assert describe_sources(swarm) == "swarm: 97% from peers"
    origin = FetchResult(
        REQUEST, path, "origin", {"cache": 0, "origin": 1000, "peers": 0}, "", True
    )
    assert describe_sources(origin) == "origin"
    plain = io.StringIO()
    with RichProgress(Console(file=plain, force_terminal=False, width=120)) as progress:
        progress.finish(swarm)
    assert plain.getvalue().strip() == f"fetched {REQUEST.filename} (1.0 kB, swarm: 97% from peers)"
