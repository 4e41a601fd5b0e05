"""From what the user asked for to a Plan: target, requirements, index, resolution.

This is the core of ``torrip install`` up to the point where files are fetched;
``--dry-run``, ``--report`` and ``lock`` stop here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from packaging.requirements import InvalidRequirement
from packaging.requirements import Requirement as PEP508Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name

from torrip.config import Settings, upload_cutoff
from torrip.environment import (
    Probe,
    TargetEnvironment,
    find_target_python,
    inspect_environment,
    refuse_externally_managed,
)
from torrip.errors import ConfigError, TorripError
from torrip.hashcheck import allowed_hashes, check_resolution_hashed
from torrip.http import url_reader
from torrip.index.early import EarlyIndex
from torrip.index.links import TorrentRef
from torrip.install.plan import Plan, make_plan
from torrip.pyproject import is_pyproject, project_requirements
from torrip.requirements import (
    ParsedRequirements,
    merge_options,
    parse_requirement_files,
    vcs_error,
    wheel_reference,
)
from torrip.resolver.memo import ResolutionMemo
from torrip.resolver.models import Requirement
from torrip.resolver.provider import Provider, ProviderOptions, requirement_from_pep508
from torrip.resolver.resolve import Resolution, resolve

if TYPE_CHECKING:
    from torrip.install.prefetch import Prefetch
    from torrip.retarget import Retarget

__all__ = ["InstallRequest", "PlannedInstall", "plan_install", "settings_with_file_options"]

Log = Callable[[str], None]


class InstallRequest(NamedTuple):
    requirements: tuple[str, ...] = ()
    requirement_files: tuple[str, ...] = ()
    constraint_files: tuple[str, ...] = ()
    python: str | None = None
    upgrade: bool = False
    upgrade_strategy: str = "only-if-needed"  # or "eager": dependencies too, as in pip
    no_deps: bool = False
    reinstall: bool = False
    require_hashes: bool = False  # hash-checking mode even without --hash lines
    groups: tuple[str, ...] = ()  # PEP 735 dependency groups, "[path:]name"
    # Optional dependencies of the pyproject.toml among requirement_files (--extra ...).
    extras: tuple[str, ...] = ()
    all_extras: bool = False
    # Files for another platform or Python than the target's (--platform ...).
    retarget: Retarget | None = None
    ignore_installed: bool = False  # resolve as for an empty environment (torrip lock)
    # The plan will be carried out (not --dry-run): refuse an externally managed target
    # (PEP 668) before resolving.
    refuse_externally_managed: bool = False


@dataclass(frozen=True)
class PlannedInstall:
    environment: TargetEnvironment
    resolution: Resolution
    plan: Plan
    settings: Settings
    seconds: dict[str, float] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()  # requirements whose markers do not match the target
    # --no-binary of requirements files: what they ask to build, which torrip does not.
    no_binary: tuple[str, ...] = ()
    # Torrents found in torrent indexes for files whose index announced none (by file URL).
    torrents: Mapping[str, TorrentRef] = field(default_factory=dict)
    # Hash-checking mode (or a lockfile): the hashes each project's file must match.
    allowed_hashes: Mapping[NormalizedName, frozenset[str]] = field(default_factory=dict)


def _parse_user_requirement(text: str) -> PEP508Requirement:
    try:
        return PEP508Requirement(text)
    except InvalidRequirement as exc:
        vcs = vcs_error(text)  # git+https://host/repo
        if vcs is not None:
            raise vcs from None
        wheel = wheel_reference(text)  # ./dist/x-1.0-py3-none-any.whl, https://host/x.whl
        if wheel is not None:
            return wheel
        path = Path(text)
        if path.is_dir() or text.lower().endswith(_SOURCE_SUFFIXES):
            what = "a project folder" if path.is_dir() else "a source distribution"
            raise TorripError(
                f"{text} is {what}: torrip installs wheels and does not build them",
                hint="Build a wheel first (python -m build --wheel, or pip wheel --no-deps "
                "-w dist PATH) and install that file; for an editable install of a project "
                "you work on, use pip install -e or uv pip install -e.",
            ) from None
        hint = "Write a requirement such as 'requests>=2.31' or 'rich[jupyter]'."
        if text.endswith((".txt", ".in")) or path.exists():
            hint = f"To install from a requirements file, use -r {text}."
        elif text.lower().endswith(".whl"):
            hint = f"Check the path: {text} is no file."
        raise TorripError(f"invalid requirement {text!r}: {exc}", hint=hint) from None


_SOURCE_SUFFIXES = (".tar.gz", ".zip", ".tgz", ".tar.bz2", ".tar.xz", ".tar")


def settings_with_file_options(
    settings: Settings, explicit: set[str], request: InstallRequest
) -> tuple[Settings, ParsedRequirements]:
    """Apply options lines of requirements files (``--index-url`` ...) below explicit flags."""
    files = [name for name in request.requirement_files if not is_pyproject(name)]
    parsed = parse_requirement_files(files, request.constraint_files, read_url=url_reader(settings))
    options = merge_options(parsed.options)
    changes: dict[str, object] = {}
    if options.index_url and "index_url" not in explicit:
        changes["index_url"] = options.index_url
    if options.no_index and "index_url" not in explicit:
        changes["index_url"] = ""
    if options.extra_index_urls:
        changes["extra_index_url"] = (*settings.extra_index_url, *options.extra_index_urls)
    if options.find_links:
        changes["find_links"] = (*settings.find_links, *options.find_links)
    if options.pre:
        changes["pre"] = True
    return settings.replace(**changes), parsed


def _project_requirements(request: InstallRequest) -> list[str]:
    """What ``-r pyproject.toml`` asks for, with the extras chosen (--extra, --all-extras)."""
    projects = [Path(name) for name in request.requirement_files if is_pyproject(name)]
    if (request.extras or request.all_extras) and not projects:
        raise ConfigError(
            "--extra and --all-extras choose optional dependencies of a pyproject.toml, and "
            "no -r names one",
            hint="Add -r pyproject.toml (or the path of the project's file).",
        )
    found: list[str] = []
    for path in projects:
        found += project_requirements(path, request.extras, all_extras=request.all_extras)
    return found


def _applicable(
    user: list[PEP508Requirement], environment: TargetEnvironment
) -> tuple[list[Requirement], list[str]]:
    """The user's requirements whose markers hold for the target, and the text of the rest."""
    requirements: list[Requirement] = []
    ignored: list[str] = []
    markers = environment.marker_environment("")
    for pep508 in user:
        if pep508.marker is not None and not pep508.marker.evaluate(markers):
            ignored.append(str(pep508))
        else:
            requirements.append(requirement_from_pep508(pep508))
    return requirements, ignored


def _constraints(
    parsed: ParsedRequirements, environment: TargetEnvironment
) -> dict[NormalizedName, SpecifierSet]:
    constraints: dict[NormalizedName, SpecifierSet] = {}
    markers = environment.marker_environment("")
    for line in parsed.constraints:
        c = line.requirement
        if c.marker is None or c.marker.evaluate(markers):
            name = canonicalize_name(c.name)
            constraints[name] = constraints.get(name, SpecifierSet()) & c.specifier
    return constraints


def plan_install(
    request: InstallRequest,
    settings: Settings,
    *,
    explicit: set[str] | None = None,
    log: Log = lambda _: None,
    probe: Probe | None = None,
    early: EarlyIndex | None = None,
    prefetch: Prefetch | None = None,
) -> PlannedInstall:
    """``probe``: of the target, if the caller started it already (``Probe``); ``early``:
    an index client the caller started (``torrip.index.early``), taken over and closed;
    ``prefetch``: told of each pinned candidate, if made with the settings the files
    (-r, -c) leave (its client has their index's credentials)."""
    started = time.perf_counter()
    settings, parsed_files = settings_with_file_options(settings, explicit or set(), request)
    command_line = [_parse_user_requirement(t) for t in request.requirements]
    user: list[PEP508Requirement] = [*command_line]
    user += [line.requirement for line in parsed_files.requirements]
    user += [_parse_user_requirement(text) for text in _project_requirements(request)]
    if request.groups:
        from torrip.groups import group_requirements

        user += [_parse_user_requirement(text) for text in group_requirements(request.groups)]
    if early is None or early.index.settings != settings:
        if early is not None:  # -r or -c files changed the settings after it started
            early.close()
        early = EarlyIndex(settings, log)
    with early:
        http, index = early.http, early.index
        index.start_measuring()  # the imports are done: this process's CPU is the requests'
        # The pages of what was asked for load while the target interpreter is probed.
        for pep508 in user:
            if not pep508.url:
                index.prefetch_project(pep508.name)
        if probe is None:
            environment = inspect_environment(
                find_target_python(request.python), cache_dir=settings.kept_cache_dir
            )
        else:
            environment = probe.environment()
        if request.refuse_externally_managed:
            refuse_externally_managed(environment, settings)
        if request.retarget is not None:
            from torrip.retarget import retarget

            environment = retarget(environment, request.retarget)
        log(
            f"target: {environment.python} (Python {environment.markers['python_full_version']}, "
            f"{len(environment.installed)} distributions installed)"
        )
        probed = time.perf_counter()
        hashes = allowed_hashes(
            parsed_files,
            command_line,
            environment.marker_environment(""),
            require_hashes=request.require_hashes,
        )
        if request.ignore_installed:
            environment = replace(environment, installed={})
        requirements, ignored = _applicable(user, environment)
        order: dict[NormalizedName, int] = {}  # first mention wins
        for req in requirements:
            order.setdefault(req.name, len(order))
        options = ProviderOptions(
            pre=settings.pre,
            no_deps=request.no_deps,
            upgrade=frozenset(order) if request.upgrade else frozenset(),
            upgrade_all=request.upgrade and request.upgrade_strategy == "eager",
            constraints=_constraints(parsed_files, environment),
            requested_order=order,
            hashes=hashes or {},
            uploaded_before=upload_cutoff(settings.uploaded_prior_to),
        )
        memo = None
        if ResolutionMemo.applies(settings, requirements):
            memo = ResolutionMemo(settings, requirements, options, environment)
        resolution = memo.load() if memo is not None else None
        if resolution is not None:
            log("resolved as last time: every page the resolution read is unchanged")
        else:
            fetches = prefetch if prefetch is not None and prefetch.settings == settings else None
            provider = Provider(
                index, environment, options, on_likely=fetches.likely if fetches else None
            )
            resolution = resolve(
                provider, requirements, on_pinned=fetches.pinned if fetches else None
            )
            if memo is not None:
                memo.keep(resolution, index.page_digests())
        if hashes is not None:
            check_resolution_hashed(resolution, hashes)
        resolved = time.perf_counter()
        plan = make_plan(resolution, environment, reinstall=request.reinstall)
        links = [d.candidate.link for d in plan.install if d.candidate.link is not None]
        torrents: Mapping[str, TorrentRef] = {}
        if settings.torrent_index and not settings.offline:  # then the torrent parser loads
            from torrip.index.torrents import lookup_torrents

            torrents = lookup_torrents(http, links, settings.torrent_index, log=log)
    return PlannedInstall(
        environment=environment,
        resolution=resolution,
        plan=plan,
        settings=settings,
        seconds={"inspect": probed - started, "resolve": resolved - probed},
        ignored=tuple(ignored),
        no_binary=merge_options(parsed_files.options).no_binary,
        torrents=torrents,
        allowed_hashes=hashes or {},
    )
