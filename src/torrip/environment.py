"""Facts about the target interpreter: tags, markers, install scheme, installed dists.

torrip itself runs on Python >= 3.10 but installs into any CPython 3.8+ (or PyPy).
``packaging`` cannot be imported in the target, so a stdlib-only probe runs there
once and reports raw facts as JSON; tags and metadata are derived here, with
``packaging``'s public tag functions, to give what ``packaging.tags.sys_tags()``
and ``packaging.markers.default_environment()`` would give inside the target.

Usage::

    env = inspect_environment(find_target_python(args.python))
    env.tags[0]               # Tag('cp312', 'cp312', 'linux_x86_64')
    env.installed.get("requests")
"""

from __future__ import annotations

import functools
import json
import marshal
import os
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypedDict, cast

from packaging.tags import (
    INTERPRETER_SHORT_NAMES,
    Tag,
    android_platforms,
    compatible_tags,
    cpython_tags,
    generic_tags,
    ios_platforms,
    mac_platforms,
)
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from torrip.closing import Closing
from torrip.errors import ExternallyManagedError, InterpreterError
from torrip.interpreters import InterpreterCache

if TYPE_CHECKING:
    from torrip.config import Settings

__all__ = [
    "InstalledDistribution",
    "Layout",
    "Probe",
    "TargetEnvironment",
    "find_target_python",
    "inspect_environment",
    "manylinux_platforms",
    "refuse_externally_managed",
]

_MINIMUM_TARGET_PYTHON = (3, 8)
_PROBE_TIMEOUT_SECONDS = 30.0
_PROBE_MARKER = "@@torrip-probe@@"
_MARKER_KEYS = frozenset(
    {
        "implementation_name",
        "implementation_version",
        "os_name",
        "platform_machine",
        "platform_release",
        "platform_system",
        "platform_version",
        "python_full_version",
        "platform_python_implementation",
        "python_version",
        "sys_platform",
    }
)

# Runs inside the target: stdlib only, Python 3.6+ syntax (so that 3.6/3.7 still
# answer and get a clear "too old" error), no importlib.metadata (its import alone
# costs 15-35 ms; reading METADATA headers directly is a few ms).
_PROBE = r"""
import marshal, os, sys, sysconfig
from importlib.machinery import EXTENSION_SUFFIXES

# Neither json nor platform: both import re, which was 9 of this probe's 25 ms. Where
# os.uname() says what platform would, the facts are taken from it.
if sys.platform.startswith("linux") and hasattr(os, "uname") and sys.implementation.name in (
    "cpython", "pypy"
):
    platform = None
else:
    import platform


def platform_facts():
    if platform is not None:
        return (platform.system(), platform.machine(), platform.release(), platform.version(),
                platform.python_version(), platform.python_implementation())
    uname = os.uname()
    return (uname.sysname, uname.machine, uname.release, uname.version,
            sys.version.split()[0], {"cpython": "CPython", "pypy": "PyPy"}[sys.implementation.name])


def glibc_version():
    try:
        _, version = os.confstr("CS_GNU_LIBC_VERSION").split()
        return version
    except (AttributeError, OSError, ValueError):
        pass
    try:
        import ctypes
        get_version = ctypes.CDLL(None).gnu_get_libc_version
    except (AttributeError, ImportError, OSError, TypeError):
        return None
    get_version.restype = ctypes.c_char_p
    return get_version().decode("ascii", "replace")


def mac_version():
    release, _, machine = platform.mac_ver()
    if release.split(".")[:2] == ["10", "16"]:
        # Built against an old SDK: ask again without the compatibility shim.
        import subprocess
        release = subprocess.run(
            [sys.executable, "-sS", "-c", "import platform; print(platform.mac_ver()[0])"],
            env={"SYSTEM_VERSION_COMPAT": "0"}, stdout=subprocess.PIPE,
            universal_newlines=True, check=True,
        ).stdout.strip()
    return [release, machine]


def scheme_name(in_venv):
    preferred = getattr(sysconfig, "get_preferred_scheme", None)
    if preferred is not None:
        return preferred("prefix")
    names = sysconfig.get_scheme_names()
    framework = sysconfig.get_config_var("PYTHONFRAMEWORK")
    if "osx_framework_library" in names and framework and not in_venv:
        return "osx_framework_library"
    impl = sys.implementation.name
    for name in (impl + "_" + os.name, impl, os.name + "_prefix", os.name):
        if name in names:
            return name
    return "posix_prefix"


LISTED = @LISTED@


def read(path, head=False):
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            if not head:
                return file.read()
            lines = []
            for line in file:
                if line == "\n":
                    break
                lines.append(line)
            return "".join(lines)
    except OSError:
        return None


def distributions(entries, listing):
    found = []
    for entry in entries:
        try:
            children = sorted(os.scandir(entry), key=lambda child: child.name)
        except OSError:
            continue
        listing[entry] = [child.name for child in children if child.name.lower().endswith(LISTED)]
        for child in children:
            lower = child.name.lower()
            egg = lower.endswith(".egg-info")
            if not (egg or lower.endswith(".dist-info")):
                continue
            path = child.path
            try:
                is_dir = child.is_dir()
            except OSError:
                continue
            if not is_dir:
                if egg:  # an .egg-info file is PKG-INFO itself
                    found.append({"location": entry, "path": path, "metadata": read(path, True)})
                continue
            metadata = read(os.path.join(path, "PKG-INFO" if egg else "METADATA"), True)
            if metadata is None:
                continue
            found.append({
                "location": entry,
                "path": path,
                "metadata": metadata,
                "requested": os.path.exists(os.path.join(path, "REQUESTED")),
                "installer": read(os.path.join(path, "INSTALLER")),
                "direct_url": read(os.path.join(path, "direct_url.json")),
                "requires_txt": read(os.path.join(path, "requires.txt")) if egg else None,
            })
    return found


# PEP 668: None, or the distributor's message (maybe "") when the stdlib folder holds
# EXTERNALLY-MANAGED; a virtual environment never is externally managed.
def externally_managed(in_venv):
    if in_venv:
        return None
    marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
    if not os.path.isfile(marker):
        return None
    try:
        import configparser

        parser = configparser.ConfigParser(interpolation=None)
        parser.read(marker, encoding="utf-8")
        section = parser["externally-managed"]
        names = []
        environ = os.environ
        language = environ.get("LC_ALL") or environ.get("LC_MESSAGES") or environ.get("LANG")
        language = (language or "").split(".")[0]
        if language and language not in ("C", "POSIX"):
            names += ["Error-" + language, "Error-" + language.split("_")[0]]
        for name in names + ["Error"]:
            if name in section:
                return section[name]
    except Exception:
        pass
    return ""


# --target: one folder for the code, its scripts in bin/ (as pip and uv); --prefix: this
# interpreter's layout under another root (pip's --prefix); --user: its user scheme
# (~/.local, or PYTHONUSERBASE), as pip's --user.
def layout_scheme(kind, base):
    if kind == "target":
        return {
            "purelib": base,
            "platlib": base,
            "headers": os.path.join(base, "include"),
            "scripts": os.path.join(base, "bin"),
            "data": base,
        }
    if kind == "user":
        paths = sysconfig.get_paths(user_scheme_name())
    else:
        roots = {"base": base, "platbase": base, "installed_base": base, "installed_platbase": base}
        paths = sysconfig.get_paths("nt" if os.name == "nt" else "posix_prefix", vars=roots)
    keys = ("purelib", "platlib", "scripts", "data")
    return dict([(key, paths[key]) for key in keys] + [("headers", paths["include"])])


# What site.check_enableusersite says in a normal run of this interpreter.
def user_site_enabled():
    if os.environ.get("PYTHONNOUSERSITE"):
        return False
    if hasattr(os, "getuid") and hasattr(os, "geteuid") and os.getuid() != os.geteuid():
        return False
    return True


def user_scheme_name():
    if hasattr(sysconfig, "get_preferred_scheme"):  # 3.10+
        return sysconfig.get_preferred_scheme("user")
    if os.name == "nt":
        return "nt_user"
    if sys.platform == "darwin" and getattr(sys, "_framework", None):
        return "osx_framework_user"
    return "posix_user"


def main(installed_only, layout):
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = None
    layout_paths = layout_scheme(*layout) if layout else None
    user = bool(layout) and layout[0] == "user"
    prefix = sys.prefix
    base_prefix = getattr(sys, "base_prefix", prefix)
    in_venv = prefix != base_prefix or hasattr(sys, "real_prefix")
    absent = []  # folders that would be on the path if they existed
    if layout_paths and not user:  # only what is installed there counts
        entries = list(dict.fromkeys([layout_paths["purelib"], layout_paths["platlib"]]))
    else:
        entries = []
        # Outside a venv the user site comes first at run time, as pip sees it (-I keeps
        # it off sys.path here).
        path = []
        if user or (not in_venv and user_site_enabled()):
            user_paths = layout_paths or layout_scheme("user", None)
            path = [user_paths["purelib"], user_paths["platlib"]]
        for entry in path + sys.path:
            if entry and entry != cwd and entry not in entries:
                (entries if os.path.isdir(entry) else absent).append(entry)
    listing = {}
    result = {
        "site_packages": entries,
        "absent": absent,
        "distributions": distributions(entries, listing),
        "listing": listing,
    }
    if installed_only:
        return result
    paths = sysconfig.get_paths(scheme=scheme_name(in_venv))
    if in_venv:  # pip's historical header location in virtual environments
        headers = os.path.join(prefix, "include", "site", "python%d.%d" % sys.version_info[:2])
    else:
        headers = paths["include"]
    scheme = layout_paths or {
        "purelib": paths["purelib"],
        "platlib": paths["platlib"],
        "headers": headers,
        "scripts": paths["scripts"],
        "data": paths["data"],
    }
    system, machine, release, version, python_version, implementation = platform_facts()
    config = sysconfig.get_config_var
    impl_version = sys.implementation.version
    impl_full = "%d.%d.%d" % impl_version[:3]
    if impl_version.releaselevel != "final":
        impl_full += impl_version.releaselevel[0] + str(impl_version.serial)
    result.update({
        "executable": sys.executable,
        "prefix": layout_paths["data"] if user else layout[1] if layout else prefix,
        "base_prefix": base_prefix,
        "is_virtualenv": in_venv,
        # A --target or --prefix folder is the user's, not the distributor's (as for pip);
        # --user installs beside what the distributor manages, and pip refuses it too.
        "externally_managed": None if layout and not user else externally_managed(in_venv),
        "user_site_disabled": not user_site_enabled(),
        "scheme": scheme,
        "markers": {
            "implementation_name": sys.implementation.name,
            "implementation_version": impl_full,
            "os_name": os.name,
            "platform_machine": machine,
            "platform_release": release,
            "platform_system": system,
            "platform_version": version,
            "python_full_version": python_version,
            "platform_python_implementation": implementation,
            "python_version": "%d.%d" % sys.version_info[:2],
            "sys_platform": sys.platform,
        },
        "tag_facts": {
            "executable": sys.executable,
            "implementation": sys.implementation.name,
            "version": list(sys.version_info[:3]),
            "py_version_nodot": config("py_version_nodot"),
            "py_debug": config("Py_DEBUG"),
            "gil_disabled": config("Py_GIL_DISABLED"),
            "ext_suffix": config("EXT_SUFFIX"),
            "has_refcount": hasattr(sys, "gettotalrefcount"),
            "extension_suffixes": list(EXTENSION_SUFFIXES),
            "platform": sysconfig.get_platform(),
            "system": system,
            "is_32bit": sys.maxsize <= 2 ** 32,
            "glibc": glibc_version() if system == "Linux" else None,
            "mac": mac_version() if system == "Darwin" else None,
            "ios": platform.ios_ver().release if system == "iOS" else None,
            "android": platform.android_ver().api_level if system == "Android" else None,
            "multiarch": getattr(sys.implementation, "_multiarch", None),
            "emscripten": config("PYEMSCRIPTEN_PLATFORM_VERSION"),
        },
    })
    return result


layout = sys.argv[sys.argv.index("--layout") + 1 :][:2] if "--layout" in sys.argv else None
result = main("--installed-only" in sys.argv, layout)
payload = marshal.dumps(result, 4)  # the format every Python 3.4+ reads
sys.stdout.flush()
sys.stdout.buffer.write(b"@@torrip-probe@@%010d" % len(payload) + payload)
"""
# What the probe lists in each sys.path folder; refresh_installed lists the same.
_LISTED = (".dist-info", ".egg-info", ".pth", ".egg-link")
_PROBE = _PROBE.replace("@LISTED@", repr(_LISTED))
# The probe's functions without its run: distributions() reads what is installed in this
# process too, for an interpreter whose description is kept (torrip.interpreters).
_PROBE_FUNCTIONS = _PROBE[: _PROBE.index("\nlayout = sys.argv")]


@functools.cache
def _probe_namespace() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "torrip_probe"}
    exec(compile(_PROBE_FUNCTIONS, "<torrip probe>", "exec"), namespace)
    return namespace


class InstalledDistribution(NamedTuple):
    """One distribution installed in the target, read from its .dist-info (or .egg-info)."""

    name: NormalizedName
    display_name: str
    version: Version
    location: Path
    """The sys.path entry (site-packages) the distribution lives in."""
    dist_info: Path
    requested: bool
    installer: str | None
    requires_dist: tuple[str, ...]
    requires_python: str | None
    summary: str | None
    editable: bool


@dataclass(frozen=True)
class TargetEnvironment:
    """Everything torrip needs to know about the interpreter it installs into."""

    python: Path
    prefix: Path
    base_prefix: Path
    is_virtualenv: bool
    implementation_name: str
    python_version: tuple[int, int, int]
    markers: Mapping[str, str]
    tags: tuple[Tag, ...]
    scheme: Mapping[str, Path]
    site_packages: tuple[Path, ...]
    installed: Mapping[NormalizedName, InstalledDistribution]
    listing: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)
    """What the probe saw in each sys.path folder: its distributions and ``.pth`` files."""
    externally_managed: str | None = None
    """PEP 668: the distributor's message if the interpreter is externally managed."""
    layout: Layout | None = None
    """A --target or --prefix folder that installs go to instead of the environment."""
    _priority: dict[Tag, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def tag_priority(self) -> Mapping[Tag, int]:
        """Rank of each supported tag; lower is better."""
        if not self._priority:
            for rank, tag in enumerate(self.tags):
                self._priority.setdefault(tag, rank)
        return MappingProxyType(self._priority)

    def marker_environment(self, extra: str | None = None) -> dict[str, str]:
        """The marker environment to evaluate a requirement's marker, for one extra."""
        return {**self.markers, "extra": extra or ""}

    def refresh_installed(self, *, if_listing_changed: bool = False) -> TargetEnvironment:
        """Re-read sys.path and the installed distributions, e.g. after an install.

        With ``if_listing_changed``, the same environment when no folder on sys.path gained
        or lost a distribution or a ``.pth`` file since the probe listed them (a few
        ``listdir`` calls, where running the interpreter again takes 30 ms or more): enough
        to see what another installer did, not to see metadata edited in place.
        """
        if if_listing_changed and self.listing and _listing(self.listing) == self.listing:
            return self
        facts = _run_probe(self.python, installed_only=True, layout=self.layout)
        try:
            site_packages, installed = _installed_from_facts(facts)
            listing = _listing_from_facts(facts)
        except _DATA_ERRORS as error:
            raise _unexpected_data(self.python, error) from error
        return replace(self, site_packages=site_packages, installed=installed, listing=listing)


class Layout(NamedTuple):
    """Where to install instead of the interpreter's environment, as pip's options say."""

    kind: Literal["target", "prefix", "user"]
    folder: Path  # absolute; for "user", unused (the target's own user base)


# ---------------------------------------------------------------------------
# Finding the interpreter


def _interpreter_in(directory: Path) -> Path | None:
    for relative in ("bin/python3", "bin/python", "Scripts/python.exe", "python.exe"):
        candidate = directory / relative
        if candidate.is_file():
            return candidate
    return None


def _checked(candidate: Path, what: str) -> Path:
    if not candidate.exists():
        raise InterpreterError(
            f"{what}: {candidate} does not exist",
            hint="Pass --python with the path of a Python executable or of a virtual "
            "environment directory.",
        )
    if candidate.is_dir():
        found = _interpreter_in(candidate)
        if found is None:
            raise InterpreterError(
                f"{what}: no Python interpreter in {candidate} "
                "(looked for bin/python3, bin/python, Scripts/python.exe)",
                hint="Create the environment first (python -m venv DIR), or pass "
                "--python with the path of a Python executable.",
            )
        candidate = found
    if not os.access(candidate, os.X_OK):
        raise InterpreterError(
            f"{what}: {candidate} is not executable",
            hint="Pass --python with the path of a Python executable.",
        )
    return candidate


def find_target_python(
    explicit: str | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Path:
    """The interpreter to install into, like pip run from the active environment.

    ``explicit`` (``--python``) is an executable, an environment directory, a bare
    name looked up on PATH, or a version (``3.12``: ``python3.12`` on PATH). Without
    it: ``$VIRTUAL_ENV``, then ``./.venv``, then the interpreter running torrip. The
    path is kept unresolved, since a virtual environment's ``bin/python`` is a symlink
    to its base interpreter.
    """
    env = os.environ if environ is None else environ
    here = Path.cwd() if cwd is None else cwd
    if explicit:
        path = Path(explicit).expanduser()
        path = path if path.is_absolute() else here / path
        bare_name = os.sep not in explicit and (os.altsep is None or os.altsep not in explicit)
        if path.exists() or not bare_name:
            return _checked(path, f"--python {explicit}")
        # A version alone (3.12, as uv takes it) names python3.12 on PATH.
        name = f"python{explicit}" if re.fullmatch(r"\d+(\.\d+)?", explicit) else explicit
        found = shutil.which(name, path=env.get("PATH", os.defpath))
        if found is None:
            raise InterpreterError(
                f"--python {explicit}: not a file or directory, and no {name} on PATH",
                hint="Pass the full path of a Python executable or of a virtual "
                "environment directory, or a version such as 3.12 to use python3.12.",
            )
        return _checked(Path(found), f"--python {explicit}")
    virtual_env = env.get("VIRTUAL_ENV")
    if virtual_env:
        return _checked(Path(virtual_env), "$VIRTUAL_ENV")
    local_venv = here / ".venv"
    if local_venv.is_dir():
        return _checked(local_venv, "./.venv")
    return Path(sys.executable)


# ---------------------------------------------------------------------------
# Running the probe


class Probe(Closing):
    """The target interpreter describing itself: started at once, read when needed, so that
    it runs (30-40 ms) while torrip goes on importing and fetching index pages.

    ``environment()`` waits for it and raises InterpreterError as ``inspect_environment``
    does; leaving the ``with`` block stops it if it was never read.
    """

    def __init__(
        self,
        python: Path,
        *,
        installed_only: bool = False,
        layout: Layout | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.python = python
        self.layout = layout
        arguments = ["--installed-only"] if installed_only else []
        if layout is not None:
            arguments += ["--layout", layout.kind, str(layout.folder)]
        self._process: subprocess.Popen[bytes] | None = None
        self._error: OSError | None = None
        self._facts: dict[str, Any] | None = None
        # With a cache, what the interpreter said last time, if it still holds.
        self._kept: InterpreterCache | None = None
        if cache_dir is not None and not installed_only:
            self._kept = InterpreterCache(cache_dir, python, arguments, _PROBE)
            self._facts = self._kept.load(_probe_namespace()["distributions"])
            if self._facts is not None:
                self._kept = None
                return
        command = [str(python), "-I", "-c", _PROBE, *arguments]
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as error:  # reported when the facts are asked for
            self._error = error

    def facts(self) -> dict[str, Any]:
        """What the probe printed (InterpreterError if it failed)."""
        if self._facts is None:
            self._facts = self._finish()
            if self._kept is not None:
                self._kept.store(self._facts)
        return self._facts

    def environment(self) -> TargetEnvironment:
        facts = self.facts()
        try:
            return _environment_from_facts(self.python, facts, self.layout)
        except _DATA_ERRORS as error:
            raise _unexpected_data(self.python, error) from error

    def close(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
            process.wait()  # not for its pipes: a child of a wrapper script may hold them
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()

    def _finish(self) -> dict[str, Any]:
        python = self.python
        hint = (
            f"Check that `{python} -c pass` works; torrip installs into CPython or PyPy "
            f"{'.'.join(map(str, _MINIMUM_TARGET_PYTHON))} or newer."
        )
        if self._process is None:
            error = self._error
            reason = (error.strerror or str(error)) if error is not None else "not started"
            raise InterpreterError(f"cannot run {python}: {reason}", hint=hint)
        try:
            stdout_bytes, stderr_bytes = self._process.communicate(timeout=_PROBE_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.close()
            raise InterpreterError(
                f"{python} did not answer within {_PROBE_TIMEOUT_SECONDS:.0f} s", hint=hint
            ) from None
        returncode = self._process.returncode
        payload = _probe_payload(stdout_bytes)
        if returncode != 0 or payload is None:
            stderr = stderr_bytes.decode("utf-8", "replace").strip().splitlines()
            detail = "".join(f"\n    {line}" for line in stderr[-5:])
            raise InterpreterError(
                f"{python} failed to report its environment (exit code {returncode})" + detail,
                hint=hint,
            )
        try:
            facts = marshal.loads(payload)
        except (EOFError, ValueError, TypeError) as error:
            raise InterpreterError(
                f"{python} answered with unreadable data: {error}", hint=hint
            ) from None
        if not isinstance(facts, dict):
            raise InterpreterError(f"{python} answered with unexpected data", hint=hint)
        return facts


def _probe_payload(stdout: bytes) -> bytes | None:
    """The probe's answer: what follows the marker and its length (10 digits), found from
    the end, where that length reaches the end (output of .pth files may come first, and
    the answer may hold the marker itself)."""
    marker = _PROBE_MARKER.encode("ascii")
    end = len(stdout)
    while (at := stdout.rfind(marker, 0, end)) >= 0:
        start = at + len(marker) + 10
        length = stdout[at + len(marker) : start]
        if length.isdigit() and start + int(length) == len(stdout):
            return stdout[start:]
        end = at
    return None


def _run_probe(
    python: Path, *, installed_only: bool = False, layout: Layout | None = None
) -> dict[str, Any]:
    with Probe(python, installed_only=installed_only, layout=layout) as probe:
        return probe.facts()


def inspect_environment(
    python: Path, *, layout: Layout | None = None, cache_dir: Path | None = None
) -> TargetEnvironment:
    """Run ``python`` once and describe the environment it installs into (``layout``: a
    --target or --prefix folder instead of its own); with ``cache_dir``, what it said last
    time while that still holds (torrip.interpreters)."""
    with Probe(python, layout=layout, cache_dir=cache_dir) as probe:
        return probe.environment()


# What malformed probe output raises while it is read.
_DATA_ERRORS = (AttributeError, IndexError, KeyError, TypeError, ValueError)


def _unexpected_data(python: Path, error: Exception) -> InterpreterError:
    return InterpreterError(
        f"{python} answered with unexpected data ({error!r})",
        hint="Report this to torrip's maintainers, with the interpreter's version.",
    )


def _environment_from_facts(
    python: Path, facts: Mapping[str, Any], layout: Layout | None = None
) -> TargetEnvironment:
    tag_facts = cast(_TagFacts, facts["tag_facts"])
    version = tuple(int(part) for part in tag_facts["version"])
    if version[:2] < _MINIMUM_TARGET_PYTHON:
        raise InterpreterError(
            f"{python} is Python {'.'.join(map(str, version))}, which torrip cannot install into",
            hint=f"Use a Python {'.'.join(map(str, _MINIMUM_TARGET_PYTHON))} or newer.",
        )
    markers = {str(key): str(value) for key, value in facts["markers"].items()}
    if set(markers) != _MARKER_KEYS:
        raise ValueError(f"marker keys {sorted(markers)}")
    if layout is not None and layout.kind == "user":
        _check_user_site(python, facts)
    site_packages, installed = _installed_from_facts(facts)
    return TargetEnvironment(
        python=Path(facts["executable"] or python),
        prefix=Path(facts["prefix"]),
        base_prefix=Path(facts["base_prefix"]),
        is_virtualenv=bool(facts["is_virtualenv"]),
        implementation_name=tag_facts["implementation"],
        python_version=(version[0], version[1], version[2]),
        markers=MappingProxyType(markers),
        tags=tuple(_compute_tags(tag_facts)),
        scheme=MappingProxyType({key: Path(value) for key, value in facts["scheme"].items()}),
        site_packages=site_packages,
        installed=installed,
        listing=_listing_from_facts(facts),
        externally_managed=_optional_text(facts.get("externally_managed")),
        layout=layout,
    )


def _check_user_site(python: Path, facts: Mapping[str, Any]) -> None:
    """--user, as pip refuses it: a virtual environment does not see the user site."""
    if facts["is_virtualenv"]:
        raise InterpreterError(
            f"cannot install with --user into {python}: a virtual environment does not see "
            "the user's site-packages",
            hint="Install into the virtual environment (without --user), or pass --python "
            "with the interpreter the user site belongs to.",
        )
    if facts.get("user_site_disabled"):
        raise InterpreterError(
            f"cannot install with --user into {python}: PYTHONNOUSERSITE turns the user's "
            "site-packages off",
            hint="Unset PYTHONNOUSERSITE, or install without --user.",
        )


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)


def refuse_externally_managed(environment: TargetEnvironment, settings: Settings) -> None:
    """ExternallyManagedError if the target is externally managed (PEP 668) and the user did
    not say to change it anyway (``break-system-packages``), as pip and uv refuse."""
    message = environment.externally_managed
    if message is None or settings.break_system_packages:
        return
    why = "\n".join(f"  {line}".rstrip() for line in message.strip().splitlines())
    raise ExternallyManagedError(
        f"{environment.python} is externally managed: its packages belong to the system's "
        "package manager (PEP 668)" + (f". Its distributor says:\n{why}" if why else ""),
        hint="Install into a virtual environment (python3 -m venv .venv, then --python .venv), "
        "or pass --break-system-packages (TORRIP_BREAK_SYSTEM_PACKAGES=1) to change it anyway.",
    )


# ---------------------------------------------------------------------------
# Tags: what packaging.tags.sys_tags() would yield inside the target


class _TagFacts(TypedDict):
    executable: str
    implementation: str
    version: list[int]
    py_version_nodot: str | None
    py_debug: int | None
    gil_disabled: int | None
    ext_suffix: str | None
    has_refcount: bool
    extension_suffixes: list[str]
    platform: str
    system: str
    is_32bit: bool
    glibc: str | None
    mac: list[str] | None
    ios: str | None
    android: int | None
    multiarch: str | None
    emscripten: str | None


# Architectures with manylinux wheels; i686 and armv7l need an ELF check first.
_MANYLINUX_ARCHS = frozenset(
    {"x86_64", "aarch64", "ppc64", "ppc64le", "s390x", "loongarch64", "riscv64"}
)
_LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
# Minor versions assumed for an older glibc major, should glibc 3 ever ship.
_LAST_GLIBC_MINOR = 50


def _normalize_platform(name: str) -> str:
    return name.replace(".", "_").replace("-", "_").replace(" ", "_")


def _nodot(version: Sequence[int]) -> str:
    return "".join(map(str, version))


def _compute_tags(facts: _TagFacts) -> list[Tag]:
    version = tuple(facts["version"][:2])
    platforms = _platforms(facts)
    short_name = INTERPRETER_SHORT_NAMES.get(facts["implementation"]) or facts["implementation"]
    interpreter_version = str(facts["py_version_nodot"] or _nodot(version))
    if short_name == "cp":
        tags = list(cpython_tags(version, _cpython_abis(facts), platforms))
        interpreter: str | None = f"cp{interpreter_version}"
    else:
        abis = _generic_abis(facts)
        tags = list(generic_tags(f"{short_name}{interpreter_version}", abis, platforms))
        interpreter = "pp3" if short_name == "pp" else None
    tags.extend(compatible_tags(version, interpreter, platforms))
    return tags


def _cpython_abis(facts: _TagFacts) -> list[str]:
    version = tuple(facts["version"][:2])
    debug = facts["py_debug"]
    # Windows does not set Py_DEBUG: a debug build shows by its refcount hook or _d.pyd.
    if debug or (
        debug is None and (facts["has_refcount"] or "_d.pyd" in facts["extension_suffixes"])
    ):
        flag = "d"
    else:
        flag = ""
    threading = "t" if version >= (3, 13) and facts["gil_disabled"] else ""
    abi = f"cp{_nodot(version)}{threading}"
    # Debug builds also load the extension modules of release builds.
    return [abi + flag, abi] if flag else [abi]


def _generic_abis(facts: _TagFacts) -> list[str]:
    """The ABI tag in EXT_SUFFIX, e.g. '.pypy310-pp73-x86_64-linux-gnu.so' -> pypy310_pp73."""
    suffix = facts["ext_suffix"]
    if not isinstance(suffix, str) or not suffix.startswith("."):
        return []
    parts = suffix.split(".")
    if len(parts) < 3:  # ".pyd" of old CPython on Windows
        return _cpython_abis(facts)
    soabi = parts[1]
    if soabi.startswith("cpython"):
        fields = soabi.split("-")
        abi = "cp" + fields[1] if len(fields) > 1 and fields[1] else ""
    elif soabi.startswith("cp"):
        abi = soabi.split("-")[0]
    elif soabi.startswith("pypy"):
        abi = "-".join(soabi.split("-")[:2])
    elif soabi.startswith("graalpy"):
        abi = "-".join(soabi.split("-")[:3])
    else:
        abi = soabi
    return [_normalize_platform(abi)] if abi else []


def _platforms(facts: _TagFacts) -> list[str]:
    system = facts["system"]
    if system == "Linux":
        return _linux_platforms(facts)
    mac_version = _major_minor(facts["mac"][0]) if facts["mac"] else None
    if system == "Darwin" and mac_version and facts["mac"]:
        machine = facts["mac"][1]
        if facts["is_32bit"]:
            machine = "ppc" if machine.startswith("ppc") else "i386"
        return list(mac_platforms(mac_version, machine))
    ios_version = _major_minor(facts["ios"])
    if system == "iOS" and ios_version and facts["multiarch"]:
        return list(ios_platforms(ios_version, facts["multiarch"]))
    if system == "Android" and facts["android"] is not None:
        return list(android_platforms(facts["android"], facts["platform"].split("-")[-1]))
    generic = _normalize_platform(facts["platform"])
    if system == "Emscripten" and facts["emscripten"]:
        return [f"pyemscripten_{facts['emscripten']}_wasm32", generic]
    return [generic]


def _major_minor(release: str | None) -> tuple[int, int] | None:
    match = re.match(r"([0-9]+)(?:\.([0-9]+))?", release or "")
    return (int(match[1]), int(match[2] or 0)) if match else None


def _linux_platforms(facts: _TagFacts) -> list[str]:
    linux = _normalize_platform(facts["platform"])
    if not linux.startswith("linux_"):
        return [linux]
    if facts["is_32bit"]:  # a 32-bit interpreter on a 64-bit kernel
        linux = {"linux_x86_64": "linux_i686", "linux_aarch64": "linux_armv8l"}.get(linux, linux)
    arch = linux.split("_", 1)[1]
    archs = ["armv8l", "armv7l"] if arch == "armv8l" else [arch]
    platforms = [f"linux_{arch}" for arch in archs]
    glibc = _parse_glibc(facts["glibc"])
    if glibc is not None and _manylinux_abi_matches(archs, facts["executable"]):
        platforms.extend(manylinux_platforms(archs, glibc))
    platforms.extend(_musllinux_platforms(archs, facts["executable"]))
    return platforms


def _parse_glibc(version: str | None) -> tuple[int, int] | None:
    match = re.match(r"([0-9]+)\.([0-9]+)", version or "")
    return (int(match[1]), int(match[2])) if match else None


def manylinux_platforms(archs: Sequence[str], glibc: tuple[int, int]) -> Iterator[str]:
    """manylinux_M_N_arch from the target's glibc down to the oldest the arch has.

    The oldest is 2.5 on x86 (with the PEP 513/571/599 aliases), 2.17 elsewhere.
    """
    oldest = (2, 5) if {"x86_64", "i686"} & set(archs) else (2, 17)
    for arch in archs:
        for major in range(glibc[0], 1, -1):
            top = glibc[1] if major == glibc[0] else _LAST_GLIBC_MINOR
            bottom = oldest[1] if major == oldest[0] else 0
            for minor in range(top, bottom - 1, -1):
                yield f"manylinux_{major}_{minor}_{arch}"
                legacy = _LEGACY_MANYLINUX.get((major, minor))
                if legacy:
                    yield f"{legacy}_{arch}"


def _elf_header(executable: str) -> tuple[int, int, int, int] | None:
    """(class, data encoding, machine, flags) of an ELF file, or None."""
    try:
        with Path(executable).open("rb") as file:
            header = file.read(64)
    except OSError:
        return None
    if len(header) < 52 or header[:4] != b"\x7fELF" or header[5] not in (1, 2):
        return None
    elf_class, encoding = header[4], header[5]
    order = "<" if encoding == 1 else ">"
    (machine,) = struct.unpack_from(order + "H", header, 18)
    flags_offset = 36 if elf_class == 1 else 48
    if len(header) < flags_offset + 4:
        return None
    (flags,) = struct.unpack_from(order + "I", header, flags_offset)
    return elf_class, encoding, machine, flags


_ELF_32BIT, _ELF_LSB, _EM_386, _EM_ARM = 1, 1, 3, 40
_EF_ARM_ABIMASK, _EF_ARM_ABI_VER5, _EF_ARM_ABI_FLOAT_HARD = 0xFF000000, 0x05000000, 0x00000400


def _manylinux_abi_matches(archs: Sequence[str], executable: str) -> bool:
    """Whether manylinux wheels can load: i686 and armv7l need a matching ELF binary."""
    if "armv7l" in archs or "i686" in archs:
        header = _elf_header(executable)
        if header is None or header[:2] != (_ELF_32BIT, _ELF_LSB):
            return False
        _, _, machine, flags = header
        if "armv7l" in archs:  # hard-float EABI5 only
            return (
                machine == _EM_ARM
                and flags & _EF_ARM_ABIMASK == _EF_ARM_ABI_VER5
                and flags & _EF_ARM_ABI_FLOAT_HARD == _EF_ARM_ABI_FLOAT_HARD
            )
        return machine == _EM_386
    return any(arch in _MANYLINUX_ARCHS for arch in archs)


def _musllinux_platforms(archs: Sequence[str], executable: str) -> list[str]:
    try:
        # Private, but it is what sys_tags() uses: it asks the musl loader named in the ELF.
        from packaging._musllinux import _get_musl_version

        musl = _get_musl_version(executable)
    except Exception:  # a private API that may move or fail: then no musl tags
        return []
    if musl is None:
        return []
    return [
        f"musllinux_{musl.major}_{minor}_{arch}"
        for arch in archs
        for minor in range(musl.minor, -1, -1)
    ]


# ---------------------------------------------------------------------------
# Installed distributions


def _installed_from_facts(
    facts: Mapping[str, Any],
) -> tuple[tuple[Path, ...], Mapping[NormalizedName, InstalledDistribution]]:
    site_packages = tuple(Path(entry) for entry in facts["site_packages"])
    installed: dict[NormalizedName, InstalledDistribution] = {}
    for raw in facts["distributions"]:
        dist = _distribution(raw)
        # The first on sys.path wins, as for importlib.metadata and the import system.
        if dist is not None and dist.name not in installed:
            installed[dist.name] = dist
    return site_packages, MappingProxyType(installed)


def _listing_from_facts(facts: Mapping[str, Any]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType(
        {str(entry): tuple(map(str, names)) for entry, names in facts["listing"].items()}
    )


def _listing(like: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """The probe's listing of the same folders, taken now (in this process)."""
    listing = {}
    for entry in like:
        try:
            names = sorted(os.listdir(entry))
        except OSError:
            continue
        listing[entry] = tuple(name for name in names if name.lower().endswith(_LISTED))
    return listing


def _parse_headers(text: str) -> dict[str, list[str]]:
    """Core metadata headers (RFC 822 style), keys lower-cased, folded lines joined."""
    headers: dict[str, list[str]] = {}
    values: list[str] | None = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t"):
            if values:
                values[-1] += line
            continue
        key, colon, value = line.partition(":")
        if not colon:
            values = None
            continue
        values = headers.setdefault(key.strip().lower(), [])
        values.append(value)
    return {key: [value.strip() for value in found] for key, found in headers.items()}


def _egg_info_requires(text: str) -> list[str]:
    """requires.txt sections ``[extra:marker]`` as Requires-Dist strings."""
    requirements = []
    section = ""
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        extra, _, marker = section.partition(":")
        conditions = []
        if marker:
            conditions.append(f"({marker})" if extra else marker)
        if extra:
            conditions.append(f'extra == "{extra}"')
        requirements.append(f"{line}; {' and '.join(conditions)}" if conditions else line)
    return requirements


def _is_editable(direct_url: str | None) -> bool:
    if not direct_url:
        return False
    try:
        data = json.loads(direct_url)
    except ValueError:
        return False
    dir_info = data.get("dir_info") if isinstance(data, dict) else None
    return isinstance(dir_info, dict) and dir_info.get("editable") is True


def _first(headers: Mapping[str, list[str]], key: str) -> str | None:
    values = headers.get(key)
    return values[0] if values and values[0] else None


def _distribution(raw: Mapping[str, Any]) -> InstalledDistribution | None:
    """An InstalledDistribution, or None for one whose name or version is unusable."""
    headers = _parse_headers(raw.get("metadata") or "")
    display_name = _first(headers, "name")
    if not display_name:
        return None
    try:
        version = Version(_first(headers, "version") or "")
    except InvalidVersion:
        return None
    requires = headers.get("requires-dist") or _egg_info_requires(raw.get("requires_txt") or "")
    installer = raw.get("installer")
    return InstalledDistribution(
        name=canonicalize_name(display_name),
        display_name=display_name,
        version=version,
        location=Path(raw["location"]),
        dist_info=Path(raw["path"]),
        requested=bool(raw.get("requested")),
        installer=installer.strip() if isinstance(installer, str) else None,
        requires_dist=tuple(requires),
        requires_python=_first(headers, "requires-python"),
        summary=_first(headers, "summary"),
        editable=_is_editable(raw.get("direct_url")),
    )
