"""Tests for torrip.requirements: real files in tmp_path, one rule per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from torrip.errors import ConfigError, HTTPStatusError, RequirementsFileError
from torrip.requirements import (
    FileOptions,
    ParsedRequirements,
    merge_options,
    parse_requirement_files,
    parse_requirement_text,
    wheel_reference,
)

SHA_A = "a" * 64
SHA_B = "b" * 64


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def parse(path: Path, environ: dict[str, str] | None = None) -> ParsedRequirements:
    return parse_requirement_files([path], environ=environ or {})


def names(parsed: ParsedRequirements) -> list[str]:
    return [str(line.requirement) for line in parsed.requirements]


def error_for(path: Path) -> RequirementsFileError:
    with pytest.raises(RequirementsFileError) as info:
        parse(path)
    return info.value


def test_requirements_with_specifiers_extras_and_markers(tmp_path: Path) -> None:
    reqs = write(
        tmp_path / "r.txt",
        'pytest\ndocopt == 0.6.1\nrequests[security]>=2.8.1,==2.8.* ; python_version < "2.7"\n',
    )
    parsed = parse(reqs)
    assert names(parsed) == [
        "pytest",
        "docopt==0.6.1",
        'requests[security]==2.8.*,>=2.8.1; python_version < "2.7"',
    ]
    assert [line.source for line in parsed.requirements] == [f"{reqs}:1", f"{reqs}:2", f"{reqs}:3"]
    assert not any(line.constraint for line in parsed.requirements)
    assert parsed.constraints == ()
    assert parsed.options == FileOptions()


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    parsed = parse(write(tmp_path / "r.txt", "\n\n  \nfoo\n\t\n\nbar\n"))
    assert names(parsed) == ["foo", "bar"]
    assert parsed.requirements[1].source.endswith("r.txt:7")


def test_comments_at_line_start_and_after_whitespace(tmp_path: Path) -> None:
    parsed = parse(
        write(tmp_path / "r.txt", "# header\n  # indented\nfoo==1.0  # pinned\nbar\t# x\n")
    )
    assert names(parsed) == ["foo==1.0", "bar"]


def test_hash_sign_inside_url_fragment_is_not_a_comment(tmp_path: Path) -> None:
    url = f"https://example.org/pkg-1.0-py3-none-any.whl#sha256={SHA_A}"
    parsed = parse(write(tmp_path / "r.txt", f"pkg @ {url}  # direct\n"))
    assert parsed.requirements[0].requirement.url == url


def test_line_continuation_joins_lines_and_keeps_first_line_number(tmp_path: Path) -> None:
    reqs = write(tmp_path / "r.txt", "first\nfoo\\\n==1.0 \\\n ; python_version > '3'\nlast\n")
    parsed = parse(reqs)
    assert names(parsed) == ["first", 'foo==1.0; python_version > "3"', "last"]
    assert parsed.requirements[1].source == f"{reqs}:2"
    assert parsed.requirements[2].source == f"{reqs}:5"


def test_comment_line_ends_a_continuation(tmp_path: Path) -> None:
    parsed = parse(write(tmp_path / "r.txt", "foo \\\n# a comment\nbar\n"))
    assert names(parsed) == ["foo", "bar"]


def test_trailing_backslash_on_last_line(tmp_path: Path) -> None:
    assert names(parse(write(tmp_path / "r.txt", "foo \\"))) == ["foo"]


def test_environment_variables_in_braces_are_expanded(tmp_path: Path) -> None:
    reqs = write(
        tmp_path / "r.txt",
        "--index-url https://${USER_1}:${TOKEN}@example.org/simple\nfoo==${FOO_VERSION}\n",
    )
    parsed = parse(reqs, {"USER_1": "me", "TOKEN": "s3cret", "FOO_VERSION": "2.0"})
    assert parsed.options.index_url == "https://me:s3cret@example.org/simple"
    assert names(parsed) == ["foo==2.0"]


def test_only_upper_case_brace_form_is_expanded_and_unset_is_kept(tmp_path: Path) -> None:
    reqs = write(
        tmp_path / "r.txt",
        "-i https://example.org/$TOKEN/${token}/${UNSET}/%TOKEN%\n",
    )
    parsed = parse(reqs, {"TOKEN": "x", "token": "y"})
    assert parsed.options.index_url == "https://example.org/$TOKEN/${token}/${UNSET}/%TOKEN%"


def test_nested_requirement_files_are_relative_to_the_including_file(tmp_path: Path) -> None:
    write(tmp_path / "reqs" / "common" / "base.txt", "base\n")
    write(tmp_path / "reqs" / "dev.txt", "-r common/base.txt\ndev\n")
    write(tmp_path / "reqs" / "more.txt", "more\n")
    top = write(
        tmp_path / "requirements.txt",
        "top\n-r reqs/dev.txt\n--requirement=reqs/more.txt\n-rreqs/more.txt\n",
    )
    parsed = parse(top)
    assert names(parsed) == ["top", "base", "dev", "more", "more"]
    base = parsed.requirements[1]
    assert Path(base.source.rsplit(":", 1)[0]) == tmp_path / "reqs" / "common" / "base.txt"
    assert base.source.endswith(":1")


def test_same_file_included_twice_is_not_a_cycle(tmp_path: Path) -> None:
    write(tmp_path / "shared.txt", "shared\n")
    write(tmp_path / "a.txt", "-r shared.txt\n")
    top = write(tmp_path / "r.txt", "-r a.txt\n-r shared.txt\n")
    assert names(parse(top)) == ["shared", "shared"]


def test_nested_constraint_files_become_constraints(tmp_path: Path) -> None:
    write(tmp_path / "pins.txt", "foo==1.0\n-r more-pins.txt\n")
    write(tmp_path / "more-pins.txt", "bar<2\n")
    top = write(tmp_path / "r.txt", "foo\n-c pins.txt\n--constraint=more-pins.txt\n")
    parsed = parse(top)
    assert names(parsed) == ["foo"]
    assert [str(line.requirement) for line in parsed.constraints] == ["foo==1.0", "bar<2", "bar<2"]
    assert all(line.constraint for line in parsed.constraints)


def test_top_level_constraint_files(tmp_path: Path) -> None:
    reqs = write(tmp_path / "r.txt", "foo\n")
    pins = write(tmp_path / "c.txt", "foo==1.0\n")
    parsed = parse_requirement_files([reqs], [pins], environ={})
    assert names(parsed) == ["foo"]
    assert parsed.constraints[0].constraint
    assert parsed.constraints[0].source == f"{pins}:1"


def test_constraints_cannot_have_extras(tmp_path: Path) -> None:
    pins = write(tmp_path / "c.txt", "\nfoo[bar]==1.0\n")
    with pytest.raises(RequirementsFileError) as info:
        parse_requirement_files(constraint_files=[pins], environ={})
    assert (info.value.path, info.value.line_number) == (str(pins), 2)
    assert "constraints cannot have extras" in info.value.reason


def test_include_cycle_is_reported(tmp_path: Path) -> None:
    write(tmp_path / "b.txt", "bar\n-r a.txt\n")
    top = write(tmp_path / "a.txt", "foo\n-r b.txt\n")
    error = error_for(top)
    assert error.path == str(tmp_path / "b.txt")
    assert error.line_number == 2
    assert "cycle" in error.reason
    assert f"{top} -> {tmp_path / 'b.txt'} -> {tmp_path / 'a.txt'}" in error.reason


def test_file_including_itself_as_constraint_is_a_cycle(tmp_path: Path) -> None:
    top = write(tmp_path / "a.txt", "-c a.txt\n")
    assert "cycle" in error_for(top).reason


def test_missing_nested_file_names_the_including_line(tmp_path: Path) -> None:
    top = write(tmp_path / "r.txt", "foo\n\n-r missing.txt\n")
    error = error_for(top)
    assert (error.path, error.line_number, error.line) == (str(top), 3, "-r missing.txt")
    assert str(tmp_path / "missing.txt") in error.reason
    assert str(error).startswith(f"{top}:3: could not open")


def _served(files: dict[str, str]):
    """A read_url over ``files`` (URL -> text), noting what was read."""
    read: list[str] = []

    def read_url(url: str) -> bytes:
        read.append(url)
        if url not in files:
            raise HTTPStatusError(url, 404, None)
        return files[url].encode()

    return read_url, read


def test_files_given_by_url_and_what_they_include(tmp_path: Path) -> None:
    """As pip: -r/-c may be URLs (Airflow publishes its constraints so); relative -r/-c
    inside them are read from beside them, absolute ones as they are."""
    base = "https://example.org/constraints-3.11/"
    read_url, read = _served(
        {
            base + "constraints.txt": "-c common.txt\nfoo==1.0\n",
            base + "common.txt": "-c https://other.example/pins.txt\nbar==2.0\n",
            "https://other.example/pins.txt": "baz<3\n",
            base + "reqs.txt": "qux\n",
        }
    )
    local = write(tmp_path / "r.txt", f"-r {base}reqs.txt\nlocal-one\n")
    parsed = parse_requirement_files(
        [local], [base + "constraints.txt"], environ={}, read_url=read_url
    )
    assert [str(line.requirement) for line in parsed.requirements] == ["qux", "local-one"]
    constraints = [str(line.requirement) for line in parsed.constraints]
    assert constraints == ["baz<3", "bar==2.0", "foo==1.0"]
    assert parsed.constraints[0].source == "https://other.example/pins.txt:1"
    assert read == [base + "reqs.txt", base + "constraints.txt", base + "common.txt",
                    "https://other.example/pins.txt"]  # fmt: skip


def test_url_files_that_cannot_be_read_or_that_cycle(tmp_path: Path) -> None:
    base = "https://example.org/"
    read_url, _ = _served({base + "a.txt": "-r b.txt\n", base + "b.txt": "-r a.txt\n"})
    with pytest.raises(RequirementsFileError, match="cycle") as cycle:
        parse_requirement_files([base + "a.txt"], environ={}, read_url=read_url)
    assert cycle.value.path == base + "b.txt"
    missing = write(tmp_path / "r.txt", f"foo\n-r {base}gone.txt\n")
    with pytest.raises(RequirementsFileError, match="404") as gone:
        parse_requirement_files([missing], environ={}, read_url=read_url)
    assert (gone.value.path, gone.value.line_number) == (str(missing), 2)
    with pytest.raises(ConfigError, match="read from local paths here"):
        parse_requirement_files([base + "a.txt"], environ={})  # no way to fetch it


def test_missing_top_level_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"could not open requirements file .*nope\.txt"):
        parse_requirement_files([tmp_path / "nope.txt"], environ={})
    with pytest.raises(ConfigError, match=r"could not open constraints file .*nope\.txt"):
        parse_requirement_files(constraint_files=[tmp_path / "nope.txt"], environ={})


def test_global_options_in_both_forms(tmp_path: Path) -> None:
    reqs = write(
        tmp_path / "r.txt",
        "-i https://one.example/simple\n"
        "--extra-index-url=https://two.example/simple\n"
        "--extra-index-url https://three.example/simple\n"
        "-f https://links.example/\n"
        "--no-index\n"
        "--pre\n"
        "--require-hashes\n"
        "--prefer-binary\n"
        "--only-binary=:all:\n"
        "--no-binary foo,bar\n"
        "--trusted-host=one.example\n",
    )
    assert parse(reqs).options == FileOptions(
        index_url="https://one.example/simple",
        extra_index_urls=("https://two.example/simple", "https://three.example/simple"),
        find_links=("https://links.example/",),
        no_index=True,
        pre=True,
        require_hashes=True,
        prefer_binary=True,
        only_binary=(":all:",),
        no_binary=("foo", "bar"),
        trusted_hosts=("one.example",),
    )


def test_several_options_on_one_line(tmp_path: Path) -> None:
    options = parse(write(tmp_path / "r.txt", "--pre --index-url=https://x.example/simple\n"))
    assert options.options == FileOptions(index_url="https://x.example/simple", pre=True)


def test_find_links_relative_path_resolves_against_the_file_dir(tmp_path: Path) -> None:
    (tmp_path / "sub" / "wheels").mkdir(parents=True)
    reqs = write(
        tmp_path / "sub" / "r.txt",
        "--find-links wheels\n--find-links not-there\n-f https://x.example/wheels\n",
    )
    assert parse(reqs).options.find_links == (
        str((tmp_path / "sub" / "wheels").resolve()),
        "not-there",
        "https://x.example/wheels",
    )


def test_index_url_last_wins_and_lists_append_across_files(tmp_path: Path) -> None:
    write(
        tmp_path / "nested.txt", "-i https://nested.example/simple\n--extra-index-url https://b\n"
    )
    first = write(tmp_path / "first.txt", "-i https://first.example/simple\n-r nested.txt\n")
    second = write(tmp_path / "second.txt", "--extra-index-url https://c\n-f https://f\n")
    options = parse_requirement_files([first, second], environ={}).options
    assert options.index_url == "https://nested.example/simple"
    assert options.extra_index_urls == ("https://b", "https://c")
    assert options.find_links == ("https://f",)


def test_merge_options() -> None:
    merged = merge_options(
        FileOptions(index_url="https://a", extra_index_urls=("https://x",), pre=True),
        FileOptions(extra_index_urls=("https://y",), only_binary=(":all:",)),
        FileOptions(index_url="https://b", no_index=True, trusted_hosts=("h",)),
    )
    assert merged == FileOptions(
        index_url="https://b",
        extra_index_urls=("https://x", "https://y"),
        no_index=True,
        pre=True,
        only_binary=(":all:",),
        trusted_hosts=("h",),
    )
    assert merge_options() == FileOptions()


def test_hashes_are_repeatable_and_may_sit_on_continuation_lines(tmp_path: Path) -> None:
    reqs = write(
        tmp_path / "r.txt",
        f"foo==1.0 \\\n    --hash=SHA256:{SHA_A.upper()} \\\n    --hash sha256:{SHA_B}  # two\n"
        f"bar==2.0 --hash=sha512:{'c' * 128}\n",
    )
    parsed = parse(reqs)
    assert parsed.requirements[0].hashes == (f"sha256:{SHA_A}", f"sha256:{SHA_B}")
    assert parsed.requirements[1].hashes == (f"sha512:{'c' * 128}",)
    assert names(parsed) == ["foo==1.0", "bar==2.0"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (SHA_A, "must be an algorithm and a digest"),
        (f"md5:{'a' * 32}", "is not allowed"),
        ("sha256:abc", "64 hex digits"),
        (f"sha256:{'z' * 64}", "64 hex digits"),
    ],
)
def test_bad_hashes_are_rejected(tmp_path: Path, value: str, reason: str) -> None:
    error = error_for(write(tmp_path / "r.txt", f"foo==1.0 --hash={value}\n"))
    assert reason in error.reason
    assert error.line_number == 1


def test_hash_without_a_requirement_is_rejected(tmp_path: Path) -> None:
    error = error_for(write(tmp_path / "r.txt", f"--hash=sha256:{SHA_A}\n"))
    assert "must follow a requirement" in error.reason


def test_global_option_on_a_requirement_line_is_rejected(tmp_path: Path) -> None:
    error = error_for(write(tmp_path / "r.txt", "foo --pre\n"))
    assert "--pre" in error.reason
    assert "line of its own" in error.reason


@pytest.mark.parametrize(
    "line",
    [
        "foo --config-settings=key=value",
        "foo -C key=value",
        "foo --global-option=--quiet",
    ],
)
def test_unsupported_per_requirement_options(tmp_path: Path, line: str) -> None:
    error = error_for(write(tmp_path / "r.txt", f"ok\n{line}\n"))
    assert error.line_number == 2
    assert "is not supported" in error.reason
    assert "torrip installs wheels (" in error.reason


@pytest.mark.parametrize("line", ["-e .", "--editable=./src/pkg", "-e git+https://x/y.git#egg=y"])
def test_editable_installs_are_rejected(tmp_path: Path, line: str) -> None:
    error = error_for(write(tmp_path / "r.txt", f"{line}\n"))
    assert "editable installs" in error.reason
    assert "torrip installs wheels (" in error.reason
    assert (
        "editable installs, project folders and source distributions need building" in error.reason
    )


@pytest.mark.parametrize(
    "line",
    [
        ".",
        "./downloads/numpy-1.9.2-cp34-none-win32.whl",
        "/abs/project",
        "https://example.org/pkg-1.0.tar.gz",
        "git+https://github.com/x/y.git#egg=y",
        "numpy-1.9.2-cp34-none-win32.whl",
    ],
)
def test_local_paths_and_unnamed_urls_are_rejected(tmp_path: Path, line: str) -> None:
    reqs = write(tmp_path / "r.txt", f"{line}\n")
    error = error_for(reqs)
    assert (error.path, error.line_number) == (str(reqs), 1)
    assert "torrip installs wheels (" in error.reason


def test_direct_references_are_kept(tmp_path: Path) -> None:
    url = "https://example.org/files/pkg-1.0-py3-none-any.whl"
    parsed = parse(write(tmp_path / "r.txt", f'pkg[extra] @ {url} ; python_version >= "3.8"\n'))
    requirement = parsed.requirements[0].requirement
    assert (requirement.name, requirement.url, requirement.extras) == ("pkg", url, {"extra"})
    assert requirement.marker is not None


def test_invalid_requirement_reports_packaging_error(tmp_path: Path) -> None:
    reqs = write(tmp_path / "r.txt", "ok\nfoo ==\n")
    error = error_for(reqs)
    assert (error.path, error.line_number, error.line) == (str(reqs), 2, "foo ==")
    assert "Expected" in error.reason
    assert str(error).startswith(f"{reqs}:2: Expected")


def test_unknown_option_is_named(tmp_path: Path) -> None:
    error = error_for(write(tmp_path / "r.txt", "--frobnicate=3\n"))
    assert error.reason == "unknown option --frobnicate"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("--index-url", "option -i/--index-url needs a value"),
        ("--pre=yes", "option --pre takes no value"),
        ("-r a.txt b.txt", "unexpected argument 'b.txt'"),
    ],
)
def test_malformed_options(tmp_path: Path, line: str, reason: str) -> None:
    assert error_for(write(tmp_path / "r.txt", f"{line}\n")).reason.startswith(reason)


def test_error_in_nested_file_names_that_file(tmp_path: Path) -> None:
    nested = write(tmp_path / "sub" / "nested.txt", "fine\n\nfoo >=< 1\n")
    top = write(tmp_path / "r.txt", "-r sub/nested.txt\n")
    error = error_for(top)
    assert (error.path, error.line_number) == (str(nested), 3)


def test_parse_requirement_text_uses_base_dir_and_source(tmp_path: Path) -> None:
    write(tmp_path / "base.txt", "base\n")
    parsed = parse_requirement_text(
        "-r base.txt\nfoo==${V}\n", "<stdin>", base_dir=tmp_path, environ={"V": "1"}
    )
    assert names(parsed) == ["base", "foo==1"]
    assert parsed.requirements[1].source == "<stdin>:2"
    constraints = parse_requirement_text("foo<2\n", "<text>", constraint=True, environ={})
    assert constraints.requirements == ()
    assert constraints.constraints[0].constraint


def test_utf8_bom_and_coding_comment(tmp_path: Path) -> None:
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbffoo\n")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"# -*- coding: latin-1 -*-\n# caf\xe9\nbar\n")
    assert names(parse_requirement_files([bom, latin], environ={})) == ["foo", "bar"]


def test_undecodable_file_names_the_bad_line(tmp_path: Path) -> None:
    reqs = tmp_path / "r.txt"
    reqs.write_bytes(b"foo\n# caf\xe9\n")
    error = error_for(reqs)
    assert (error.path, error.line_number) == (str(reqs), 2)
    assert "not valid utf-8" in error.reason


def test_a_wheel_by_its_path_or_url_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As pip takes them: ``./dist/x.whl`` (relative to the current folder) or a wheel's
    URL, with its #sha256= fragment and its marker; the name comes from the filename."""
    wheel = tmp_path / "dist" / "Demo_Pkg-1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"not read here")
    monkeypatch.chdir(tmp_path)
    lines = [
        "./dist/Demo_Pkg-1.0-py3-none-any.whl",
        "https://host.example/w/other-2.0-py3-none-any.whl#sha256=ab ; python_version > '3'",
    ]
    parsed = parse_requirement_files([str(write(tmp_path / "r.txt", "\n".join(lines) + "\n"))], [])
    first, second = (line.requirement for line in parsed.requirements)
    assert (first.name, first.url) == ("demo-pkg", wheel.as_uri())
    assert (second.name, second.url) == (
        "other",
        "https://host.example/w/other-2.0-py3-none-any.whl#sha256=ab",
    )
    assert str(second.marker) == 'python_version > "3"'
    assert wheel_reference("./dist/missing-1.0-py3-none-any.whl") is None
    assert wheel_reference("./dist/not-a-wheel.tar.gz") is None
    assert wheel_reference("https://host.example/bad-name.whl") is None
