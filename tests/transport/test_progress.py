"""The progress display of swarm downloads: "· 83% from 5 peers", and per-file sources."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from torrip.transport.fetch import FetchResult, FileRequest
from torrip.transport.progress import LABEL_WIDTH, RichProgress, describe_sources, file_label

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


def test_a_bar_names_the_package_and_fits_its_line() -> None:
    """A manylinux wheel's whole filename is longer than a terminal line's label column."""
    wheel = "black-26.10.1-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
    assert file_label(wheel) == "black 26.10.1"
    assert file_label("pydantic_core-2.50.5-cp311-cp311-win_amd64.whl") == "pydantic-core 2.50.5"
    assert file_label("odd-1.0.tar.gz") == "odd-1.0.tar.gz"  # not a wheel: as it is
    long = FileRequest(
        f"{'x' * 60}-1.0-py3-none-any.whl", "http://127.0.0.1:1/x.whl", None, 2_000_000
    )
    terminal = Console(file=io.StringIO(), force_terminal=True, width=80)
    screen = Console(file=io.StringIO(), width=80, color_system=None)  # the rows, plainly
    with RichProgress(terminal) as progress:
        progress.start(long, 2_000_000)
        progress.advance(long, 1_000_000, "origin")
        screen.print(progress._progress.make_tasks_table(progress._progress.tasks))
    rows = screen.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert len(rows) == 2 and all(len(line.rstrip()) <= 80 for line in rows), rows
    assert "1.0/2.0 MB" in rows[1], rows  # the file's bar: not squeezed out of its line
    assert rows[1].startswith("x" * (LABEL_WIDTH - 1) + "…"), rows


def test_the_overall_total_is_known_before_downloads_start() -> None:
    """Downloads wait for their turn; the overall bar's total does not grow as each starts."""
    other = FileRequest("other-1.0-py3-none-any.whl", "http://127.0.0.1:1/o.whl", None, 500)
    unsized = FileRequest("nosize-1.0-py3-none-any.whl", "http://127.0.0.1:1/n.whl", None, None)
    with RichProgress(Console(file=io.StringIO(), force_terminal=True, width=120)) as progress:
        progress.expect([REQUEST, other, unsized])
        assert progress._progress.tasks[0].total == 1500
        progress.start(REQUEST, 1000)
        progress.start(unsized, 300)  # its size is known only now
        assert progress._progress.tasks[0].total == 1800
