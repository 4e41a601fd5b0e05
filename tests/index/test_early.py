"""The index asked for what the command line names before the planner loads
(``torrip.index.early``), and the planner taking that client over."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.wheels import make_wheel
from torrip.config import Settings, load_settings
from torrip.index.client import IndexClient
from torrip.index.early import early_index
from torrip.planner import InstallRequest, plan_install


def _settings(url: str, tmp_path: Path) -> Settings:
    return load_settings(
        {"index_url": url, "cache_dir": tmp_path / "cache", "p2p": False},
        environ={"TORRIP_CONFIG_FILE": str(tmp_path / "none.toml")},
    )


def _ignore(_: str) -> None:
    pass


@pytest.fixture
def app_index(local_index, tmp_path: Path):  # type: ignore[no-untyped-def]
    """An index of app 1.0, which needs lib 1.0."""
    dists = tmp_path / "dists"
    return local_index(
        [make_wheel(dists, "app", "1.0", requires_dist=["lib"]), make_wheel(dists, "lib", "1.0")]
    )


def test_only_plainly_named_projects_are_asked_for(local_index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    index = local_index([make_wheel(tmp_path / "dists", "demo", "1.0")])
    requirements = [
        "rich[jupyter]>=13",
        "Django ; python_version > '3'",
        "demo",
        "./dist/app-1.0-py3-none-any.whl",
        "app-1.0-py3-none-any.whl",
        "tool @ https://example.invalid/tool-1.0-py3-none-any.whl",
        "C:\\wheels\\x.whl",
    ]
    early = early_index(_settings(index.url, tmp_path), requirements, log=_ignore)
    assert early is not None
    with early:
        assert len(early.index.project_links("demo")) == 1
    index.requests.settle()
    asked = sorted(r.path for r in index.requests if "/simple/" in r.path)
    assert asked == ["/simple/demo/", "/simple/django/", "/simple/rich/"]


@pytest.mark.parametrize(
    ("requirements", "files"),
    [
        (["demo"], {"requirement_files": ["requirements.txt"]}),  # may change the index
        (["demo"], {"constraint_files": ["constraints.txt"]}),
        (["./dist/demo-1.0-py3-none-any.whl"], {}),  # nothing to ask an index for
        ([], {}),
    ],
)
def test_nothing_starts_early_when_the_settings_may_change_or_nothing_is_named(
    tmp_path: Path, requirements: list[str], files: dict[str, list[str]]
) -> None:
    settings = _settings("http://127.0.0.1:9/simple/", tmp_path)
    assert early_index(settings, requirements, log=_ignore, **files) is None
    no_index = settings.replace(index_url="")
    assert early_index(no_index, ["demo"], log=_ignore) is None


def test_the_planner_takes_the_early_client_over(
    app_index,  # type: ignore[no-untyped-def]
    make_venv,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    venv = make_venv()
    settings = _settings(app_index.url, tmp_path)
    early = early_index(settings, ["app"], log=_ignore)
    assert early is not None
    armed: list[IndexClient] = []
    monkeypatch.setattr(IndexClient, "start_measuring", lambda self: armed.append(self))
    request = InstallRequest(requirements=("app",), python=str(venv / "bin" / "python"))
    planned = plan_install(request, settings, early=early)
    assert [d.candidate.name for d in planned.resolution.distributions] == ["app", "lib"]
    assert armed == [early.index]  # its width is measured from the planner on
    app_index.requests.settle()
    assert app_index.count("/simple/app/") == 1  # asked once, by the early client
    # The planner closed it: what it is asked now is cancelled, not sent.
    assert early.index.prefetch_project("other").cancelled()


def test_an_early_client_for_other_settings_is_closed_and_not_used(
    local_index,  # type: ignore[no-untyped-def]
    make_venv,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    dists = tmp_path / "dists"
    wrong = local_index([make_wheel(dists / "old", "app", "1.0")])
    right = local_index([make_wheel(dists / "new", "app", "2.0")])
    venv = make_venv()
    early = early_index(_settings(wrong.url, tmp_path), ["app"], log=_ignore)
    assert early is not None
    request = InstallRequest(requirements=("app",), python=str(venv / "bin" / "python"))
    planned = plan_install(request, _settings(right.url, tmp_path), early=early)
    assert [str(d.candidate.version) for d in planned.resolution.distributions] == ["2.0"]
    assert early.index.prefetch_project("other").cancelled()


@pytest.mark.parametrize(
    "command",
    [
        ["install", "--dry-run"],
        ["lock", "-o", "{tmp}/pylock.toml"],
        ["download", "-d", "{tmp}/wheels"],
        ["install", "--dry-run", "-r", "{tmp}/requirements.txt"],  # the planner makes its own
    ],
)
def test_commands_hand_their_early_client_to_the_planner(
    command: list[str],
    app_index,  # type: ignore[no-untyped-def]
    target_venv: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torrip.planner
    from torrip.cli.main import main
    from torrip.index.early import EarlyIndex

    (tmp_path / "requirements.txt").write_text("app\n")
    made_by_planner: list[Settings] = []

    class Recorded(EarlyIndex):
        def __init__(self, settings: Settings, log: Callable[[str], None]) -> None:
            made_by_planner.append(settings)
            super().__init__(settings, log)

    monkeypatch.setattr(torrip.planner, "EarlyIndex", Recorded)
    monkeypatch.setenv("TORRIP_CONFIG_FILE", str(tmp_path / "none.toml"))
    monkeypatch.setenv("TORRIP_CACHE_DIR", str(tmp_path / "cache"))
    args = [part.format(tmp=tmp_path) for part in command]
    if "-r" not in args:
        args.append("app")
    assert main([*args, "-q", "--index-url", app_index.url, "--python", str(target_venv)]) == 0
    app_index.requests.settle()
    assert app_index.count("/simple/app/") == 1
    assert len(made_by_planner) == (1 if "-r" in args else 0)
