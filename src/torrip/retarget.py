"""Choose files for another platform or Python than the target interpreter's.

pip's ``--platform``, ``--python-version``, ``--implementation`` and ``--abi``: a Lambda
layer or a Docker stage for manylinux built from a Mac, wheels downloaded for a Python that
is not installed here. The probed interpreter's environment is kept; its tags are made
anew from the options (a manylinux or macOS platform stands for the older ones it runs
too, as in pip), and so are the markers the options decide (``python_version``,
``sys_platform``, ``platform_machine`` ...), so that dependencies' markers are judged for
the platform the files are for, as uv judges them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from types import MappingProxyType

from packaging.tags import (
    INTERPRETER_SHORT_NAMES,
    Tag,
    compatible_tags,
    cpython_tags,
    generic_tags,
    mac_platforms,
)

from torrip.environment import TargetEnvironment, manylinux_platforms
from torrip.errors import ConfigError

__all__ = ["Retarget", "parse_python_version", "retarget"]

_IMPLEMENTATIONS = {"cp": ("cpython", "CPython"), "pp": ("pypy", "PyPy")}


@dataclass(frozen=True)
class Retarget:
    platforms: tuple[str, ...] = ()
    python_version: tuple[int, ...] | None = None
    implementation: str | None = None  # "cp", "pp", or another interpreter short name
    abis: tuple[str, ...] = ()


def parse_python_version(text: str) -> tuple[int, ...]:
    """``3.11``, ``311``, ``3.11.4`` or ``3``, as pip reads --python-version."""
    if re.fullmatch(r"\d\d+", text):  # 312: 3.12
        return (int(text[0]), int(text[1:]))
    if re.fullmatch(r"\d+(\.\d+){0,2}", text):
        return tuple(int(part) for part in text.split("."))
    raise ConfigError(
        f"bad value {text!r} for --python-version",
        hint="Give a version such as 3.12 (or 312).",
    )


def retarget(environment: TargetEnvironment, options: Retarget) -> TargetEnvironment:
    """``environment`` with the tags and markers that ``options`` ask for."""
    given = options.python_version
    full = (*given, 0, 0)[:3] if given else environment.python_version  # "3.7": 3.7.0
    major_minor = full[:2]
    short = options.implementation or INTERPRETER_SHORT_NAMES.get(
        environment.implementation_name, environment.implementation_name
    )
    platforms = (
        _expanded(options.platforms) if options.platforms else _platforms_of(environment.tags)
    )
    abis = list(options.abis) or None
    if short == "cp":
        tags = list(cpython_tags(major_minor, abis, platforms))
        interpreter: str | None = f"cp{major_minor[0]}{major_minor[1]}"
    else:
        interpreter = f"{short}{major_minor[0]}{major_minor[1]}"
        tags = list(generic_tags(interpreter, abis or ["none"], platforms))
    tags.extend(compatible_tags(major_minor, interpreter, platforms))
    markers = dict(environment.markers)
    markers["python_version"] = f"{major_minor[0]}.{major_minor[1]}"
    markers["python_full_version"] = ".".join(map(str, full))
    if short in _IMPLEMENTATIONS:
        name, implementation = _IMPLEMENTATIONS[short]
        markers["implementation_name"] = name
        markers["platform_python_implementation"] = implementation
    if options.platforms:
        markers.update(_platform_markers(options.platforms[0]))
    return replace(
        environment,
        python_version=(full[0], full[1], full[2]),
        tags=tuple(dict.fromkeys(tags)),
        markers=MappingProxyType(markers),
    )


def _platforms_of(tags: tuple[Tag, ...]) -> list[str]:
    return list(dict.fromkeys(tag.platform for tag in tags if tag.platform != "any"))


def _expanded(platforms: tuple[str, ...]) -> list[str]:
    """Each platform, then the older ones it runs too: manylinux_2_28 runs manylinux_2_17
    and manylinux2014 wheels, macOS 14 runs macOS 11 wheels."""
    found: list[str] = []
    for platform in platforms:
        found.append(platform)
        manylinux = re.fullmatch(r"manylinux_(\d+)_(\d+)_(.+)", platform)
        legacy = re.fullmatch(r"manylinux(1|2010|2014)_(.+)", platform)
        mac = re.fullmatch(r"macosx_(\d+)_(\d+)_(.+)", platform)
        if manylinux:
            glibc = (int(manylinux[1]), int(manylinux[2]))
            found.extend(manylinux_platforms([manylinux[3]], glibc))
        elif legacy:
            glibc = {"1": (2, 5), "2010": (2, 12), "2014": (2, 17)}[legacy[1]]
            found.extend(manylinux_platforms([legacy[2]], glibc))
        elif mac:
            found.extend(mac_platforms((int(mac[1]), int(mac[2])), mac[3]))
    return list(dict.fromkeys(found))


def _platform_markers(platform: str) -> dict[str, str]:
    """The markers a platform tag decides; others (platform_release ...) stay as probed."""
    if platform.startswith("win"):
        machine = {"win32": "x86", "win_amd64": "AMD64", "win_arm64": "ARM64"}.get(platform, "")
        return {
            "sys_platform": "win32",
            "platform_system": "Windows",
            "os_name": "nt",
            "platform_machine": machine,
        }
    if platform.startswith("macosx"):
        machine = platform.rsplit("_", 1)[-1]
        return {
            "sys_platform": "darwin",
            "platform_system": "Darwin",
            "os_name": "posix",
            "platform_machine": "arm64" if machine in ("arm64", "universal2") else machine,
        }
    linux = re.fullmatch(r"(?:many|musl)linux_\d+_\d+_(.+)|manylinux\d+_(.+)|linux_(.+)", platform)
    if linux:
        machine = next(group for group in linux.groups() if group)
        return {
            "sys_platform": "linux",
            "platform_system": "Linux",
            "os_name": "posix",
            "platform_machine": machine,
        }
    return {}
