"""Tests for torrip.environment: real interpreters, real venvs in tmp_path.

The tags and markers torrip computes for a target are checked against what
``packaging`` itself says when imported inside that target (packaging 26 on
3.10+; on older targets the packaging vendored in a pip on this machine).
"""

from __future__ import annotations

import json
import marshal
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import packaging
import pytest
from packaging.tags import Tag, mac_platforms, sys_tags
from packaging.version import Version

import torrip.environment as environment
from torrip.config import Settings
from torrip.environment import (
    Probe,
    TargetEnvironment,
    _compute_tags,
    _linux_platforms,
    _TagFacts,
    find_target_python,
    inspect_environment,
    refuse_externally_managed,
)
from torrip.errors import ExternallyManagedError, InterpreterError

# ---------------------------------------------------------------------------
# Interpreters on this machine


def _find_python(name: str) -> Path | None:
    """A real interpreter binary: pyenv's version directory first, then PATH."""
    if name[:1].isdigit():
        pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
        for candidate in sorted(pyenv.glob(f"{name}.*/bin/python{name}"), reverse=True):
            if candidate.is_file():
                return candidate
        found = shutil.which(f"python{name}")
    else:
        found = shutil.which(name)
    return Path(found) if found else None


TARGETS = ["3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "pypy3"]
PYTHONS = {name: _find_python(name) for name in TARGETS}


def _target_params() -> list[Any]:
    params = []
    for name, python in PYTHONS.items():
        marks = [] if python else [pytest.mark.skip(reason=f"no {name} on this machine")]
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def make_venv(python: Path, directory: Path) -> Path:
    subprocess.run([str(python), "-m", "venv", "--without-pip", str(directory)], check=True)
    return directory


def run_json(python: Path, code: str, pythonpath: Path) -> Any:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    completed = subprocess.run(
        [str(python), "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(completed.stdout)


REFERENCE = """
import json
from {package} import __version__, markers, tags
print(json.dumps({{
    "version": __version__,
    "tags": [str(tag) for tag in tags.sys_tags()],
    "markers": markers.default_environment(),
}}))
"""


@pytest.fixture(scope="session")
def pip_packages() -> list[Path]:
    """pip directories of the interpreters here, newest pip first (for old targets)."""
    found: dict[Version, Path] = {}
    for python in PYTHONS.values():
        if python is None:
            continue
        completed = subprocess.run(
            [str(python), "-I", "-c", "import os, pip; print(pip.__version__, pip.__file__)"],
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode == 0:
            version, init_file = completed.stdout.strip().split(" ", 1)
            found[Version(version)] = Path(init_file).parent
    return [found[version] for version in sorted(found, reverse=True)]


def reference_facts(
    python: Path, version: tuple[int, ...], pip_packages: list[Path], tmp: Path
) -> dict[str, Any] | None:
    """sys_tags() and default_environment() as packaging computes them inside ``python``."""
    if version >= (3, 10):  # this packaging (26) runs there
        tmp.mkdir()
        (tmp / "packaging").symlink_to(Path(packaging.__file__).parent)
        return dict(run_json(python, REFERENCE.format(package="packaging"), tmp))
    # Older targets: the newest packaging vendored in a pip here that runs there.
    for number, pip_dir in enumerate(pip_packages):
        directory = tmp / str(number)
        directory.mkdir(parents=True)
        (directory / "pip").symlink_to(pip_dir)
        try:
            return dict(
                run_json(python, REFERENCE.format(package="pip._vendor.packaging"), directory)
            )
        except subprocess.CalledProcessError:
            continue
    return None


def assert_same_tags(ours: list[str], reference: list[str], reference_version: str) -> None:
    if Version(reference_version) >= Version("26.3"):
        assert ours == reference
        return
    # Before packaging 26.3, linux_<arch> came after the manylinux tags; all else is equal.
    assert set(ours) == set(reference)
    assert len(ours) == len(reference)
    for native in (True, False):
        assert [tag for tag in ours if ("-linux_" in tag) is native] == [
            tag for tag in reference if ("-linux_" in tag) is native
        ]


# ---------------------------------------------------------------------------
# One real venv per interpreter


@pytest.mark.parametrize("name", _target_params())
def test_venv_of_each_interpreter(name: str, tmp_path: Path, pip_packages: list[Path]) -> None:
    base = PYTHONS[name]
    assert base is not None
    venv = make_venv(base, tmp_path / "venv")

    env = inspect_environment(find_target_python(str(venv)))

    assert env.python == venv / "bin" / "python3"
    assert env.is_virtualenv
    assert env.prefix == venv
    assert env.base_prefix != env.prefix
    if name.startswith("3."):
        assert env.implementation_name == "cpython"
        assert ".".join(map(str, env.python_version[:2])) == name
    else:
        assert env.implementation_name == "pypy"

    # Where pip would install: all inside the venv, headers at include/site/pythonX.Y.
    assert set(env.scheme) == {"purelib", "platlib", "headers", "scripts", "data"}
    for path in env.scheme.values():
        assert path.is_relative_to(venv), path
    major, minor, _ = env.python_version
    assert env.scheme["headers"] == venv / "include" / "site" / f"python{major}.{minor}"
    assert env.scheme["scripts"] == venv / "bin"
    assert env.scheme["data"] == venv
    assert env.scheme["purelib"] in env.site_packages
    assert all(path.is_absolute() and path.is_dir() for path in env.site_packages)
    # --without-pip: nothing in the venv (PyPy's stdlib directory holds cffi and friends).
    assert not [dist for dist in env.installed.values() if dist.location.is_relative_to(venv)]

    ours = [str(tag) for tag in env.tags]
    reference = reference_facts(env.python, env.python_version, pip_packages, tmp_path / "ref")
    if reference is not None:
        assert_same_tags(ours, reference["tags"], reference["version"])
        assert dict(env.markers) == reference["markers"]
    # Structure, whatever the reference.
    interpreter = f"cp{major}{minor}" if env.implementation_name == "cpython" else None
    if interpreter:
        assert ours[0] == f"{interpreter}-{interpreter}-linux_x86_64" or sys.platform != "linux"
        assert any(tag.startswith(f"{interpreter}-abi3-") for tag in ours)
    else:
        assert ours[0].startswith(f"pp{major}{minor}-pypy{major}{minor}_pp")
        assert "pp3-none-any" in ours
    assert f"py{major}{minor}-none-any" in ours
    assert ours[-1] == "py30-none-any"
    assert len(set(ours)) == len(ours)
    if sys.platform == "linux" and env.markers["platform_machine"] == "x86_64":
        assert any("-manylinux2014_x86_64" in tag for tag in ours)
        assert any("-manylinux1_x86_64" in tag for tag in ours)
    assert set(env.markers) == environment._MARKER_KEYS
    assert env.markers["python_version"] == f"{major}.{minor}"


# ---------------------------------------------------------------------------
# The running interpreter (always there)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_venv(Path(sys.executable), tmp_path_factory.mktemp("env") / "venv")


@pytest.fixture(scope="module")
def venv_env(venv: Path) -> TargetEnvironment:
    return inspect_environment(venv / "bin" / "python")


def test_running_interpreter_matches_packaging_in_process(venv_env: TargetEnvironment) -> None:
    assert list(venv_env.tags) == list(sys_tags())
    assert venv_env.python_version == tuple(sys.version_info[:3])


def test_tag_priority_and_marker_environment(venv_env: TargetEnvironment) -> None:
    priority = venv_env.tag_priority()
    assert priority[venv_env.tags[0]] == 0
    assert priority[Tag("py3", "none", "any")] == venv_env.tags.index(Tag("py3", "none", "any"))
    assert len(priority) == len(venv_env.tags)
    assert venv_env.tag_priority() == priority  # cached

    markers = venv_env.marker_environment()
    assert markers["extra"] == ""
    assert venv_env.marker_environment("socks")["extra"] == "socks"
    assert set(markers) == environment._MARKER_KEYS | {"extra"}
    markers["extra"] = "changed"  # a fresh dict each time
    assert "extra" not in venv_env.markers


def test_probe_is_isolated_and_tolerates_noise_from_pth_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = make_venv(Path(sys.executable), tmp_path / "venv")
    python = venv / "bin" / "python"
    purelib = inspect_environment(python).scheme["purelib"]
    (purelib / "noisy.pth").write_text("import sys; sys.stdout.write('hello from a .pth\\n')\n")
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "json.py").write_text("raise ImportError('the probe imported PYTHONPATH')\n")
    monkeypatch.setenv("PYTHONPATH", str(shadow))

    env = inspect_environment(python)

    assert env.prefix == venv
    assert shadow not in env.site_packages


# ---------------------------------------------------------------------------
# Installed distributions


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


DEMO_METADATA = """\
Metadata-Version: 2.1
Name: Demo_Pkg
Version: 1.0
Summary: A demo
  package
Requires-Python: >=3.8
Requires-Dist: requests>=2
Requires-Dist: rich; extra == "cli"

Name: Not-The-Name
Requires-Dist: not-a-header
"""


def test_installed_distributions(tmp_path: Path) -> None:
    venv = make_venv(Path(sys.executable), tmp_path / "venv")
    python = venv / "bin" / "python"
    site = inspect_environment(python).scheme["purelib"]

    demo = site / "Demo_Pkg-1.0.dist-info"
    write(demo / "METADATA", DEMO_METADATA)
    write(demo / "REQUESTED", "")
    write(demo / "INSTALLER", "torrip\n")
    write(
        demo / "direct_url.json", json.dumps({"url": "file:///src", "dir_info": {"editable": True}})
    )
    write(site / "plain-2.0.dist-info" / "METADATA", "Name: plain\nVersion: 2.0\n")
    write(site / "broken-1.dist-info" / "METADATA", "Name: broken\nVersion: not a version\n")
    (site / "empty-1.0.dist-info").mkdir()
    egg = site / "Old_Egg-0.5-py3.egg-info"
    write(egg / "PKG-INFO", "Metadata-Version: 1.1\nName: Old-Egg\nVersion: 0.5\n")
    write(
        egg / "requires.txt",
        'six\n\n[:sys_platform == "win32"]\npywin32\n\n[test]\npytest\n\n'
        '[socks:python_version < "3.10"]\npysocks\n',
    )
    write(site / "single_file-3.0.egg-info", "Name: single-file\nVersion: 3.0\n")
    # A later sys.path entry (added by a .pth) with another demo-pkg: the first one wins.
    shadow = tmp_path / "shadow"
    write(shadow / "demo_pkg-9.0.dist-info" / "METADATA", "Name: demo-pkg\nVersion: 9.0\n")
    write(site / "zz-shadow.pth", f"{shadow}\n")

    env = inspect_environment(python)

    installed = {str(name): dist for name, dist in env.installed.items()}
    assert set(installed) == {"demo-pkg", "plain", "old-egg", "single-file"}
    dist = installed["demo-pkg"]
    assert dist.display_name == "Demo_Pkg"
    assert dist.version == Version("1.0")
    assert dist.location == site
    assert dist.dist_info == demo
    assert dist.requested
    assert dist.installer == "torrip"
    assert dist.requires_dist == ("requests>=2", 'rich; extra == "cli"')
    assert dist.requires_python == ">=3.8"
    assert dist.summary == "A demo  package"
    assert dist.editable

    plain = installed["plain"]
    assert (plain.requested, plain.installer, plain.editable) == (False, None, False)
    assert (plain.requires_dist, plain.requires_python, plain.summary) == ((), None, None)

    assert installed["old-egg"].requires_dist == (
        "six",
        'pywin32; sys_platform == "win32"',
        'pytest; extra == "test"',
        'pysocks; (python_version < "3.10") and extra == "socks"',
    )
    assert installed["single-file"].dist_info == site / "single_file-3.0.egg-info"
    assert env.site_packages.index(site) < env.site_packages.index(shadow)

    # After an install, refresh_installed sees the new distribution.
    write(site / "later-1.0.dist-info" / "METADATA", "Name: later\nVersion: 1.0\n")
    refreshed = env.refresh_installed()
    assert "later" in refreshed.installed
    assert "later" not in env.installed
    assert refreshed.tags == env.tags
    assert refreshed.scheme == env.scheme


def test_refresh_runs_the_interpreter_only_when_sys_path_folders_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = make_venv(Path(sys.executable), tmp_path / "venv")
    env = inspect_environment(venv / "bin" / "python")
    site = env.scheme["purelib"]
    write(site / "kept-1.0.dist-info" / "METADATA", "Name: kept\nVersion: 1.0\n")
    env = env.refresh_installed(if_listing_changed=True)
    assert "kept" in env.installed
    probes: list[Path] = []
    real_probe = environment._run_probe

    def counting_probe(python: Path, **kwargs: bool) -> dict[str, object]:
        probes.append(python)
        return real_probe(python, **kwargs)

    monkeypatch.setattr(environment, "_run_probe", counting_probe)
    (site / "kept-1.0.dist-info" / "INSTALLER").write_text("pip\n")  # not a listing change
    (site / "module.py").write_text("")
    assert env.refresh_installed(if_listing_changed=True) is env
    assert probes == []
    assert env.refresh_installed() is not env  # without the flag: always asks the interpreter
    assert len(probes) == 1
    probes.clear()

    # Each of these changes what is installed, or where Python looks.
    shadow = tmp_path / "shadow"
    write(shadow / "shadowed-2.0.dist-info" / "METADATA", "Name: shadowed\nVersion: 2.0\n")
    changes = [
        lambda: (site / "kept-1.0.dist-info").rename(site / "kept-1.1.dist-info"),
        lambda: write(site / "extra.pth", f"{shadow}\n"),
        lambda: shutil.rmtree(site / "kept-1.1.dist-info"),
    ]
    for number, change in enumerate(changes, 1):
        change()
        env = env.refresh_installed(if_listing_changed=True)
        assert len(probes) == number
    assert "kept" not in env.installed
    assert "shadowed" in env.installed
    assert env.refresh_installed(if_listing_changed=True) is env


# ---------------------------------------------------------------------------
# find_target_python


def test_explicit_executable_wins_over_everything(venv: Path, tmp_path: Path) -> None:
    other = make_venv(Path(sys.executable), tmp_path / ".venv")
    python = venv / "bin" / "python"
    found = find_target_python(str(python), environ={"VIRTUAL_ENV": str(other)}, cwd=tmp_path)
    assert found == python  # unresolved: the venv's symlink, not its base


def test_explicit_relative_path_and_venv_directory(venv: Path) -> None:
    assert find_target_python("venv", environ={}, cwd=venv.parent) == venv / "bin" / "python3"
    assert find_target_python(str(venv), environ={}) == venv / "bin" / "python3"
    relative = find_target_python("venv/bin/python", environ={}, cwd=venv.parent)
    assert relative == venv / "bin" / "python"


def test_explicit_bare_name_is_looked_up_on_path(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    name = Path(sys.executable).name
    found = find_target_python(name, environ={"PATH": str(bin_dir)}, cwd=tmp_path)
    assert found == bin_dir / name


def test_a_version_alone_names_that_python_on_path(tmp_path: Path) -> None:
    """--python 3.12, as uv takes it: python3.12 on PATH."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    (tmp_path / f"python{version}").symlink_to(sys.executable)
    environ = {"PATH": str(tmp_path)}
    assert find_target_python(version, environ=environ, cwd=tmp_path) == (
        tmp_path / f"python{version}"
    )
    with pytest.raises(InterpreterError, match=r"no python2\.7 on PATH"):
        find_target_python("2.7", environ=environ, cwd=tmp_path)


def test_virtual_env_then_dot_venv_then_running_interpreter(venv: Path, tmp_path: Path) -> None:
    assert find_target_python(environ={"VIRTUAL_ENV": str(venv)}, cwd=tmp_path) == (
        venv / "bin" / "python3"
    )
    assert find_target_python(environ={}, cwd=tmp_path) == Path(sys.executable)
    local = make_venv(Path(sys.executable), tmp_path / ".venv")
    assert find_target_python(environ={}, cwd=tmp_path) == local / "bin" / "python3"
    assert find_target_python(environ={"VIRTUAL_ENV": str(venv)}, cwd=tmp_path) == (
        venv / "bin" / "python3"
    )
    assert (
        find_target_python(environ={"VIRTUAL_ENV": ""}, cwd=tmp_path) == local / "bin" / "python3"
    )


@pytest.mark.parametrize(
    ("explicit", "environ", "expected"),
    [
        ("missing/python", {}, "does not exist"),
        ("no-such-python-3.99", {"PATH": "/nonexistent"}, "no no-such-python-3.99 on PATH"),
        ("empty-dir", {}, "looked for bin/python3"),
        ("not-executable", {}, "is not executable"),
        (None, {"VIRTUAL_ENV": "/nonexistent/venv"}, "$VIRTUAL_ENV: /nonexistent/venv does not"),
    ],
)
def test_bad_python_is_an_interpreter_error(
    tmp_path: Path, explicit: str | None, environ: dict[str, str], expected: str
) -> None:
    (tmp_path / "empty-dir").mkdir()
    write(tmp_path / "not-executable", "#!/bin/sh\n")
    with pytest.raises(InterpreterError) as info:
        find_target_python(explicit, environ=environ, cwd=tmp_path)
    assert expected in str(info.value)
    assert info.value.hint


def test_empty_dot_venv_is_an_error_not_a_silent_fallback(tmp_path: Path) -> None:
    (tmp_path / ".venv").mkdir()
    with pytest.raises(InterpreterError, match=r"\./\.venv: no Python interpreter"):
        find_target_python(environ={}, cwd=tmp_path)


# ---------------------------------------------------------------------------
# Interpreters that cannot answer


def script(path: Path, body: str) -> Path:
    write(path, f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


@pytest.mark.skipif(sys.platform == "win32", reason="shell scripts as fake interpreters")
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("echo 'no such option' >&2; exit 2", "(exit code 2)\n    no such option"),
        ("echo hello", "failed to report its environment"),
        ("printf '@@torrip-probe@@0000000003abc'", "unreadable data"),
        ("echo '@@torrip-probe@@0000000003abc'", "failed to report its environment"),
        # marshal.dumps([1], 4): a list, not the dict of facts
        (
            "printf '@@torrip-probe@@0000000010\\133\\001\\000\\000\\000\\351\\001\\000\\000\\000'",
            "unexpected data",
        ),
        ("sleep 5", "did not answer within"),
    ],
)
def test_probe_failures_are_interpreter_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, expected: str
) -> None:
    monkeypatch.setattr(environment, "_PROBE_TIMEOUT_SECONDS", 0.5)
    with pytest.raises(InterpreterError) as info:
        inspect_environment(script(tmp_path / "python", body))
    assert expected in str(info.value)
    assert info.value.hint


def test_the_probe_answer_is_found_after_other_output_and_may_hold_the_marker() -> None:
    """A .pth file may print before the probe answers (even the marker), and a
    distribution's metadata inside the answer may hold the marker too."""
    answer = marshal.dumps({"note": "see @@torrip-probe@@0000000001x"}, 4)
    stdout = b"@@torrip-probe@@ from a .pth\n" + b"@@torrip-probe@@%010d" % len(answer) + answer
    payload = environment._probe_payload(stdout)
    assert payload is not None and marshal.loads(payload) == {
        "note": "see @@torrip-probe@@0000000001x"
    }
    assert environment._probe_payload(stdout[:-5]) is None  # cut short: no answer


def test_missing_interpreter_is_an_interpreter_error(tmp_path: Path) -> None:
    with pytest.raises(InterpreterError, match="cannot run"):
        inspect_environment(tmp_path / "gone")


def test_a_probe_started_early_answers_later(venv_env: TargetEnvironment) -> None:
    with Probe(venv_env.python) as probe:
        assert probe.environment() == venv_env
        assert probe.facts() is probe.facts()  # read once


def test_a_probe_fails_when_read_not_when_started(tmp_path: Path) -> None:
    probe = Probe(tmp_path / "gone")  # starting it raised nothing
    with probe, pytest.raises(InterpreterError, match="cannot run"):
        probe.environment()


@pytest.mark.skipif(sys.platform == "win32", reason="shell scripts as fake interpreters")
def test_a_probe_never_read_is_stopped(tmp_path: Path) -> None:
    with Probe(script(tmp_path / "python", "sleep 30")) as probe:
        process = probe._process
        assert process is not None and process.poll() is None
    assert process.returncode is not None  # killed and reaped on leaving the block


_DEBIAN_LIKE = """[externally-managed]
Error=To install Python packages system-wide, try apt install
 python3-xyz, where xyz is the package you are trying to
 install.
Error-de_DE=Um Python-Pakete systemweit zu installieren, nutzen Sie apt.
"""


def test_an_externally_managed_interpreter_says_so(make_system_python, make_venv) -> None:
    """PEP 668: the marker in the stdlib folder, outside a virtual environment, with the
    distributor's message in the user's language when it has one."""
    managed = make_system_python(_DEBIAN_LIKE)
    found = inspect_environment(managed)
    assert not found.is_virtualenv
    assert found.externally_managed == (
        "To install Python packages system-wide, try apt install\n"
        "python3-xyz, where xyz is the package you are trying to\ninstall."
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LANG", "de_DE.UTF-8")
        patch.delenv("LC_ALL", raising=False)
        patch.delenv("LC_MESSAGES", raising=False)
        german = inspect_environment(managed).externally_managed
    assert german == "Um Python-Pakete systemweit zu installieren, nutzen Sie apt."
    # A marker without a message (or unreadable) still marks it; a venv of it never is.
    assert inspect_environment(make_system_python("")).externally_managed == ""
    assert inspect_environment(make_system_python(None)).externally_managed is None
    assert inspect_environment(make_venv(managed) / "bin" / "python").externally_managed is None


def test_refusing_an_externally_managed_target(make_system_python) -> None:
    managed = inspect_environment(make_system_python(_DEBIAN_LIKE))
    with pytest.raises(ExternallyManagedError) as refused:
        refuse_externally_managed(managed, Settings())
    assert str(managed.python) in refused.value.message
    assert "PEP 668" in refused.value.message
    assert "  python3-xyz, where xyz" in refused.value.message  # the distributor's words
    assert "--break-system-packages" in (refused.value.hint or "")
    refuse_externally_managed(managed, Settings(break_system_packages=True))  # told to
    unmanaged = inspect_environment(make_system_python(None))
    refuse_externally_managed(unmanaged, Settings())


@pytest.mark.parametrize("name", ["3.7", "2.7"])
def test_too_old_interpreters_are_refused(name: str) -> None:
    python = _find_python(name)
    if python is None:
        pytest.skip(f"no Python {name} on this machine")
    with pytest.raises(InterpreterError) as info:
        inspect_environment(python)
    assert "3.8 or newer" in f"{info.value} {info.value.hint}"


# ---------------------------------------------------------------------------
# Tags for platforms that are not this one (facts as a probe would report them)


def facts(**changes: Any) -> _TagFacts:
    base: dict[str, Any] = {
        "executable": sys.executable,
        "implementation": "cpython",
        "version": [3, 12, 1],
        "py_version_nodot": "312",
        "py_debug": 0,
        "gil_disabled": 0,
        "ext_suffix": ".cpython-312-x86_64-linux-gnu.so",
        "has_refcount": False,
        "extension_suffixes": [".cpython-312-x86_64-linux-gnu.so", ".abi3.so", ".so"],
        "platform": "linux-x86_64",
        "system": "Linux",
        "is_32bit": False,
        "glibc": "2.17",
        "mac": None,
        "ios": None,
        "android": None,
        "multiarch": "x86_64-linux-gnu",
        "emscripten": None,
    }
    base.update(changes)
    return cast(_TagFacts, base)


def tag_strings(tag_facts: _TagFacts) -> list[str]:
    return [str(tag) for tag in _compute_tags(tag_facts)]


def test_manylinux_on_x86_64_goes_down_to_manylinux1_with_aliases() -> None:
    expected = ["linux_x86_64"]
    for minor in range(17, 4, -1):
        expected.append(f"manylinux_2_{minor}_x86_64")
        alias = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}.get(minor)
        if alias:
            expected.append(f"{alias}_x86_64")
    assert _linux_platforms(facts()) == expected
    assert expected[:4] == [
        "linux_x86_64",
        "manylinux_2_17_x86_64",
        "manylinux2014_x86_64",
        "manylinux_2_16_x86_64",
    ]


def test_manylinux_elsewhere_stops_at_2_17_and_needs_glibc() -> None:
    platforms = _linux_platforms(facts(platform="linux-aarch64", glibc="2.28"))
    assert platforms[:2] == ["linux_aarch64", "manylinux_2_28_aarch64"]
    assert platforms[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert len(platforms) == 1 + 12 + 1
    assert _linux_platforms(facts(glibc=None)) == ["linux_x86_64"]
    assert _linux_platforms(facts(platform="linux-armv6l")) == ["linux_armv6l"]


def elf(path: Path, machine: int, flags: int = 0) -> str:
    header = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9) + struct.pack("<HHI", 2, machine, 1)
    header += bytes(36 - len(header)) + struct.pack("<I", flags) + bytes(16)
    path.write_bytes(header)
    return str(path)


def test_32_bit_interpreters_need_a_32_bit_binary_for_manylinux(tmp_path: Path) -> None:
    # A 32-bit interpreter on a 64-bit kernel: i686, but manylinux only if the binary is i386.
    i686 = facts(is_32bit=True, executable=elf(tmp_path / "python-i386", machine=3))
    assert _linux_platforms(i686)[:3] == ["linux_i686", "manylinux_2_17_i686", "manylinux2014_i686"]
    assert _linux_platforms(i686)[-1] == "manylinux1_i686"
    assert _linux_platforms(facts(is_32bit=True)) == ["linux_i686"]  # this 64-bit binary

    hard_float = elf(tmp_path / "python-armhf", machine=40, flags=0x05000400)
    armhf = _linux_platforms(facts(platform="linux-armv7l", executable=hard_float))
    assert armhf[:2] == ["linux_armv7l", "manylinux_2_17_armv7l"]
    soft_float = elf(tmp_path / "python-armel", machine=40, flags=0x05000000)
    assert _linux_platforms(facts(platform="linux-armv7l", executable=soft_float)) == [
        "linux_armv7l"
    ]
    armv8l = _linux_platforms(facts(platform="linux-aarch64", is_32bit=True, executable=hard_float))
    assert armv8l[:3] == ["linux_armv8l", "linux_armv7l", "manylinux_2_17_armv8l"]
    assert "manylinux_2_17_armv7l" in armv8l


def test_free_threaded_and_debug_abis() -> None:
    threaded = tag_strings(facts(version=[3, 13, 0], py_version_nodot="313", gil_disabled=1))
    assert threaded[0] == "cp313-cp313t-linux_x86_64"
    assert not any("-abi3-" in tag for tag in threaded)
    assert "cp313-none-linux_x86_64" in threaded

    debug = tag_strings(facts(py_debug=1))
    assert debug[0] == "cp312-cp312d-linux_x86_64"
    assert "cp312-cp312-linux_x86_64" in debug
    assert debug.index("cp312-cp312-linux_x86_64") < debug.index("cp312-abi3-linux_x86_64")


def test_pypy_tags() -> None:
    tags = tag_strings(
        facts(
            implementation="pypy",
            version=[3, 10, 14],
            py_version_nodot="310",
            ext_suffix=".pypy310-pp73-x86_64-linux-gnu.so",
        )
    )
    assert tags[0] == "pp310-pypy310_pp73-linux_x86_64"
    assert "pp310-none-manylinux1_x86_64" in tags
    assert tags.index("pp3-none-any") < tags.index("py310-none-any")
    assert not any(tag.startswith("cp") for tag in tags)


def test_macos_windows_and_other_platforms() -> None:
    mac = _compute_tags(
        facts(system="Darwin", platform="macosx-11.0-arm64", mac=["14.2.1", "arm64"])
    )
    assert str(mac[0]) == "cp312-cp312-macosx_14_0_arm64"
    assert [tag.platform for tag in mac if tag.abi == "cp312"] == list(
        mac_platforms((14, 0), "arm64")
    )
    intel32 = tag_strings(facts(system="Darwin", is_32bit=True, mac=["10.9", "x86_64"]))
    assert intel32[0] == "cp312-cp312-macosx_10_9_i386"

    windows = facts(
        system="Windows",
        platform="win-amd64",
        py_debug=None,
        ext_suffix=".cp312-win_amd64.pyd",
        extension_suffixes=[".cp312-win_amd64.pyd", ".pyd"],
    )
    assert tag_strings(windows)[:3] == [
        "cp312-cp312-win_amd64",
        "cp312-abi3-win_amd64",
        "cp312-none-win_amd64",
    ]
    windows_debug = facts(**{**windows, "extension_suffixes": ["_d.cp312-win_amd64.pyd", "_d.pyd"]})
    assert tag_strings(windows_debug)[:2] == ["cp312-cp312d-win_amd64", "cp312-cp312-win_amd64"]

    emscripten = facts(
        system="Emscripten", platform="emscripten-3.1.58-wasm32", emscripten="2024_0"
    )
    assert {tag.platform for tag in _compute_tags(emscripten)} == {
        "pyemscripten_2024_0_wasm32",
        "emscripten_3_1_58_wasm32",
        "any",
    }
    android = facts(system="Android", platform="android-24-arm64_v8a", android=24)
    assert tag_strings(android)[0] == "cp312-cp312-android_24_arm64_v8a"
    ios = facts(system="iOS", ios="17.1", multiarch="arm64-iphoneos")
    assert tag_strings(ios)[0] == "cp312-cp312-ios_17_1_arm64_iphoneos"
    freebsd = facts(system="FreeBSD", platform="freebsd-14.0-RELEASE-amd64")
    assert tag_strings(freebsd)[0] == "cp312-cp312-freebsd_14_0_release_amd64"


def test_probe_marker_is_the_one_parsed() -> None:
    assert environment._PROBE_MARKER in environment._PROBE
