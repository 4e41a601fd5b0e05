"""Recipe 1: the pure-Python torrent is byte for byte libtorrent 2.1's, and checks are strict."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import pytest

from torrip.errors import TorrentError
from torrip.transport import bencode
from torrip.transport.recipe import (
    MAX_TORRENT_BYTES,
    RECIPE_VERSION,
    TorrentFile,
    follows_recipe,
    make_torrent,
    parse_torrent,
    piece_length_for,
    validate_for_file,
    verify_file,
)

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

MakeFile = Callable[..., Path]


@pytest.fixture
def make_file(tmp_path: Path) -> MakeFile:
    """Write ``size`` seeded random bytes (or ``data``) to ``tmp_path/name``."""

    def make(size: int = 0, *, name: str = "demo-1.0-py3-none-any.whl", data: bytes = b"") -> Path:
        path = tmp_path / name
        path.write_bytes(data or random.Random(size).randbytes(size))
        return path

    return make


@pytest.fixture
def lt() -> ModuleType:
    module: ModuleType = pytest.importorskip("libtorrent")
    return module


def libtorrent_torrent(
    lt: ModuleType,
    path: Path,
    piece_length: int,
    *,
    trackers: Sequence[str] = (),
    web_seeds: Sequence[str] = (),
    flags: int | None = None,
) -> bytes:
    """The .torrent libtorrent 2.1 writes for ``path`` (creation date removed)."""
    if flags is None:
        flags = lt.create_torrent.no_attributes
    # flags= by keyword: positionally, list_files picks the wrong overload.
    creator = lt.create_torrent(lt.list_files(str(path), flags=flags), piece_length, flags)
    lt.set_piece_hashes(creator, str(path.parent))
    for tier, url in enumerate(trackers):
        creator.add_tracker(url, tier)
    for url in web_seeds:
        creator.add_url_seed(url)
    creator.set_creation_date(0)
    data: bytes = lt.bencode(creator.generate())
    return data


def rewrite(data: bytes, change: Callable[[dict[bytes, bencode.Decoded]], None]) -> bytes:
    """Decode a .torrent, let ``change`` edit it, encode it again (canonically)."""
    top = bencode.decode(data)
    assert isinstance(top, dict)
    change(top)
    return bencode.encode(top)


def info_of(top: dict[bytes, bencode.Decoded]) -> dict[bytes, bencode.Decoded]:
    info = top[b"info"]
    assert isinstance(info, dict)
    return info


# -- the piece table ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "piece_length"),
    [
        (1, 16 * KiB),
        (16 * KiB, 16 * KiB),
        (16 * MiB, 16 * KiB),
        (16 * MiB + 1, 32 * KiB),
        (32 * MiB, 32 * KiB),
        (100 * MiB, 128 * KiB),
        (1 * GiB, 1 * MiB),
        (1 * GiB + 1, 2 * MiB),
        (64 * GiB, 64 * MiB),
        (64 * GiB + 1, 64 * MiB),
        (1024 * GiB, 64 * MiB),
    ],
)
def test_piece_table(size: int, piece_length: int) -> None:
    assert piece_length_for(size) == piece_length


def test_piece_table_keeps_counts_sane() -> None:
    for exponent in range(0, 37):
        for size in (2**exponent - 1, 2**exponent, 2**exponent + 1, 3 * 2**exponent):
            if not 1 <= size <= 64 * GiB:
                continue
            length = piece_length_for(size)
            assert length & (length - 1) == 0
            assert 16 * KiB <= length <= 64 * MiB
            pieces = -(-size // length)
            assert pieces <= 1024
            # Never larger than needed: half the length would exceed 1024 pieces.
            assert length == 16 * KiB or -(-size // (length // 2)) > 1024


def test_piece_table_refuses_empty_files() -> None:
    with pytest.raises(TorrentError, match="0 bytes has no torrent"):
        piece_length_for(0)


def test_empty_file_has_no_torrent(make_file: MakeFile, tmp_path: Path) -> None:
    path = tmp_path / "empty-1.0.tar.gz"
    path.write_bytes(b"")
    with pytest.raises(TorrentError, match="0 bytes has no torrent"):
        make_torrent(path)


# -- byte identity with libtorrent 2.1 -----------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [
        1,
        16 * KiB - 1,
        16 * KiB,  # exactly one block, one piece
        16 * KiB + 1,  # two pieces, the second of one byte
        5 * 16 * KiB,  # five pieces: the piece layer is padded to eight
        1 * MiB,  # 64 pieces, a power of two: no padding
        3 * MiB + 7,
        4 * MiB,  # exactly one read chunk
        16 * MiB + 1,  # 32 KiB pieces: two blocks per piece, the last piece half empty
        17 * MiB + 12345,  # 545 pieces of 32 KiB, tree padded to 1024 pieces
    ],
)
def test_same_bytes_as_libtorrent(lt: ModuleType, make_file: MakeFile, size: int) -> None:
    path = make_file(size)
    torrent = make_torrent(path)
    reference = libtorrent_torrent(lt, path, piece_length_for(size))
    reference_top = bencode.decode(reference)
    assert isinstance(reference_top, dict)
    assert torrent.info == bencode.encode(reference_top[b"info"])
    assert torrent.data == reference  # outside the info dict too: piece layers, nothing else
    info = lt.torrent_info(reference)
    assert torrent.btih == str(info.info_hashes().v1)
    assert torrent.btmh == "1220" + str(info.info_hashes().v2)
    assert torrent.length == size
    assert torrent.piece_count == info.num_pieces()


def test_trackers_and_web_seeds_as_libtorrent_writes_them(
    lt: ModuleType, make_file: MakeFile
) -> None:
    path = make_file(40_000)
    plain = make_torrent(path)
    for trackers, seeds in [
        (["http://127.0.0.1:6969/announce"], ["http://127.0.0.1:8000/demo.whl"]),
        (
            ["http://127.0.0.1:6969/announce", "udp://127.0.0.1:6969"],
            ["http://127.0.0.1:8000/a/demo.whl", "https://127.0.0.1:8443/b/"],
        ),
    ]:
        torrent = make_torrent(path, trackers=trackers, web_seeds=seeds)
        assert torrent.data == libtorrent_torrent(
            lt, path, torrent.piece_length, trackers=trackers, web_seeds=seeds
        )
        assert (torrent.btih, torrent.btmh, torrent.info) == (plain.btih, plain.btmh, plain.info)
        assert parse_torrent(torrent.data) == torrent


def test_libtorrent_loads_it(lt: ModuleType, make_file: MakeFile) -> None:
    path = make_file(3 * MiB + 7)
    torrent = make_torrent(path, web_seeds=["http://127.0.0.1:8000/x.whl"])
    info = lt.torrent_info(torrent.data)
    assert str(info.info_hashes().v1) == torrent.btih
    assert str(info.info_hashes().v2) == torrent.infohash_v2
    assert info.name() == path.name
    assert info.total_size() == torrent.length
    assert info.piece_length() == torrent.piece_length
    assert lt.load_torrent_buffer(torrent.data).url_seeds == ["http://127.0.0.1:8000/x.whl"]


def test_libtorrent_reads_the_magnet(lt: ModuleType, make_file: MakeFile) -> None:
    path = make_file(100_000, name="odd name+1.0.tar.gz")
    seed = "http://127.0.0.1:8000/odd%20name%2B1.0.tar.gz"
    torrent = make_torrent(
        path, trackers=["http://127.0.0.1:6969/announce?a=1&b=2"], web_seeds=[seed]
    )
    params = lt.parse_magnet_uri(torrent.magnet())
    assert str(params.info_hashes.v1) == torrent.btih
    assert str(params.info_hashes.v2) == torrent.infohash_v2
    assert params.name == "odd name+1.0.tar.gz"
    assert params.trackers == ["http://127.0.0.1:6969/announce?a=1&b=2"]
    assert params.url_seeds == [seed]


@pytest.mark.parametrize(
    ("size", "piece_length"),
    [
        (40_000, 256 * KiB),  # one piece of three blocks: the tree is four leaves wide
        (1 * MiB + 5, 64 * KiB),
        (3 * MiB, 1 * MiB),
        (20_000, 16 * KiB),
    ],
)
def test_verifies_libtorrent_torrents_of_other_piece_lengths(
    lt: ModuleType, make_file: MakeFile, size: int, piece_length: int
) -> None:
    path = make_file(size)
    torrent = parse_torrent(libtorrent_torrent(lt, path, piece_length))
    verify_file(torrent, path)
    assert follows_recipe(torrent) == (piece_length == piece_length_for(size))


# -- golden values: other implementations can test against these ---------------------------


@pytest.mark.parametrize(
    ("repeat", "piece_length", "btih", "btmh"),
    [
        (
            1,
            16 * KiB,
            "16cddeeace57054b219f98533133317c377cd872",
            "122076fc8d6d70f6406cf7d808fc0353f971ed042cda40c0515d61e70c49ca8956e6",
        ),
        (
            2731,
            16 * KiB,
            "bf43827bc2018b9df988974a49ee46471f3a9226",
            "1220e2ff304a38612c446d8cf01be91f615ded5485f812ad57ad27e51c66e7a51c27",
        ),
        (
            1_000_000,
            16 * KiB,
            "a130edcbe9f352176fd4c21241e10552ca97c618",
            "1220ad88dd35ebf47c11ba5fcfdf07df44e8ee2acc978c917f496e557e547bd626cc",
        ),
        (
            3_000_000,
            32 * KiB,
            "609ceaa7eae2987083fdfd3d273e6e8dfd3f66f6",
            "1220c395aa28ea8cc3eeff1b7db1fd41d9d9c9d6d261c280b65b5062fd428e2716d6",
        ),
    ],
)
def test_golden_infohashes(
    make_file: MakeFile, repeat: int, piece_length: int, btih: str, btmh: str
) -> None:
    """``b"torrip" * repeat`` named ``golden.bin`` (also in docs/torrent-recipe.md)."""
    path = make_file(data=b"torrip" * repeat, name="golden.bin")
    torrent = make_torrent(path)
    assert (torrent.piece_length, torrent.btih, torrent.btmh) == (piece_length, btih, btmh)


def test_golden_whole_torrent(make_file: MakeFile) -> None:
    path = make_file(data=b"torrip" * 2731, name="golden.bin")
    torrent = make_torrent(path)
    assert len(torrent.data) == 350
    assert torrent.sha256 == "f838f2d818424e92127d5847dc23a9f58e396950813b0ea7615249539a4d2e71"


def test_one_block_torrent_spelled_out(make_file: MakeFile) -> None:
    path = make_file(data=b"torrip", name="golden.bin")
    root = hashlib.sha256(b"torrip").digest()  # one block: the root is its hash
    info = (
        b"d9:file treed10:golden.bind0:d6:lengthi6e11:pieces root32:" + root + b"eee"
        b"6:lengthi6e12:meta versioni2e4:name10:golden.bin12:piece lengthi16384e"
        b"6:pieces20:" + hashlib.sha1(b"torrip").digest() + b"e"
    )
    torrent = make_torrent(path)
    assert torrent.info == info
    assert torrent.data == b"d4:info" + info + b"12:piece layersdee"
    assert torrent.btih == hashlib.sha1(info).hexdigest()
    assert torrent.btmh == "1220" + hashlib.sha256(info).hexdigest()


def test_recipe_version() -> None:
    assert RECIPE_VERSION == 1


# -- what make_torrent writes --------------------------------------------------------------


def test_name_override_and_magnet(make_file: MakeFile) -> None:
    path = make_file(20_000, name="stored-under-its-hash")
    torrent = make_torrent(
        path,
        name="demo-1.0.tar.gz",
        trackers=["http://127.0.0.1:6969/announce", "http://127.0.0.1:6969/announce"],
        web_seeds=["https://files.example/p/demo-1.0.tar.gz"],
    )
    assert torrent.name == "demo-1.0.tar.gz"
    assert torrent.trackers == ("http://127.0.0.1:6969/announce",)  # duplicates dropped
    assert torrent.magnet() == (
        f"magnet:?xt=urn:btih:{torrent.btih}&xt=urn:btmh:{torrent.btmh}"
        "&dn=demo-1.0.tar.gz&xl=20000"
        "&tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce"
        "&ws=https%3A%2F%2Ffiles.example%2Fp%2Fdemo-1.0.tar.gz"
    )
    verify_file(torrent, path, filename="demo-1.0.tar.gz")


def test_same_file_same_torrent_anywhere(make_file: MakeFile, tmp_path: Path) -> None:
    path = make_file(70_000)
    other = tmp_path / "elsewhere" / path.name
    other.parent.mkdir()
    other.write_bytes(path.read_bytes())
    other.chmod(0o755)  # attributes and times stay out of the torrent
    assert make_torrent(path).data == make_torrent(other).data


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"name": "a/b.whl"}, "path separator"),
        ({"name": "a\\b.whl"}, "path separator"),
        ({"name": ".."}, "not a file name"),
        ({"name": ""}, "empty"),
        ({"name": "a\nb.whl"}, "control character"),
        ({"name": "x" * 256}, "longer than 255"),
        ({"web_seeds": ["ftp://h/x"]}, "not an http/https URL"),
        ({"web_seeds": ["http://h/a b"]}, "not a URL"),
        ({"trackers": ["ws://h/announce"]}, "not an http/https/udp URL"),
        ({"trackers": [""]}, "not a URL"),
    ],
)
def test_make_refuses(make_file: MakeFile, kwargs: dict[str, object], reason: str) -> None:
    with pytest.raises(TorrentError, match=reason):
        make_torrent(make_file(10), **kwargs)  # type: ignore[arg-type]


def test_make_reports_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TorrentError, match="cannot read"):
        make_torrent(tmp_path / "missing.whl")


# -- parse_torrent: structure --------------------------------------------------------------


@pytest.fixture
def good(make_file: MakeFile) -> TorrentFile:
    return make_torrent(make_file(5 * 16 * KiB + 3))


def set_info(key: bytes, value: bencode.Decoded) -> Callable[[dict[bytes, bencode.Decoded]], None]:
    def change(top: dict[bytes, bencode.Decoded]) -> None:
        info_of(top)[key] = value

    return change


def drop_info(key: bytes) -> Callable[[dict[bytes, bencode.Decoded]], None]:
    def change(top: dict[bytes, bencode.Decoded]) -> None:
        del info_of(top)[key]

    return change


def set_top(key: bytes, value: bencode.Decoded) -> Callable[[dict[bytes, bencode.Decoded]], None]:
    def change(top: dict[bytes, bencode.Decoded]) -> None:
        top[key] = value

    return change


def rename(name: bytes) -> Callable[[dict[bytes, bencode.Decoded]], None]:
    def change(top: dict[bytes, bencode.Decoded]) -> None:
        info = info_of(top)
        tree = info[b"file tree"]
        assert isinstance(tree, dict)
        info[b"file tree"] = {name: next(iter(tree.values()))}
        info[b"name"] = name

    return change


def file_entry(top: dict[bytes, bencode.Decoded]) -> dict[bytes, bencode.Decoded]:
    tree = info_of(top)[b"file tree"]
    assert isinstance(tree, dict)
    node = next(iter(tree.values()))
    assert isinstance(node, dict)
    entry = node[b""]
    assert isinstance(entry, dict)
    return entry


def add_attribute(top: dict[bytes, bencode.Decoded]) -> None:
    file_entry(top)[b"attr"] = b"x"


def second_file(top: dict[bytes, bencode.Decoded]) -> None:
    tree = info_of(top)[b"file tree"]
    assert isinstance(tree, dict)
    tree[b"zz-other"] = next(iter(tree.values()))


def tamper_layer(top: dict[bytes, bencode.Decoded]) -> None:
    layers = top[b"piece layers"]
    assert isinstance(layers, dict)
    root, layer = next(iter(layers.items()))
    assert isinstance(layer, bytes)
    layers[root] = bytes(32) + layer[32:]


def tamper_root(top: dict[bytes, bencode.Decoded]) -> None:
    entry = file_entry(top)
    layers = top[b"piece layers"]
    assert isinstance(layers, dict)
    root = entry[b"pieces root"]
    assert isinstance(root, bytes)
    layer = layers.pop(root)
    entry[b"pieces root"] = bytes(32)
    layers[bytes(32)] = layer


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (set_info(b"files", []), "several files"),
        (drop_info(b"meta version"), "not a v2 torrent"),
        (set_info(b"meta version", 3), "not a v2 torrent"),
        (drop_info(b"pieces"), "v2 only"),
        (set_info(b"private", 1), "unexpected keys: 'private'"),
        (drop_info(b"length"), "missing keys: 'length'"),
        (set_info(b"piece length", 8 * KiB), "not a power of two from 16384"),
        (set_info(b"piece length", 48 * KiB), "not a power of two"),
        (set_info(b"piece length", 128 * MiB), "not a power of two"),
        (set_info(b"piece length", b"16384"), "not an integer"),
        (set_info(b"length", 5 * 16 * KiB), "v1 piece hashes do not fit"),
        (set_info(b"length", 0), "not positive"),
        (set_info(b"pieces", b"x" * 20), "v1 piece hashes do not fit"),
        (set_info(b"name", b"other.whl"), "not named as the torrent"),
        (set_info(b"name", b"\xff.whl"), "not UTF-8"),
        (rename(b"../evil.whl"), "path separator"),
        (rename(b".."), "not a file name"),
        (rename(b"a\\b"), "path separator"),
        (rename(b"a\x00b"), "control character"),
        (add_attribute, "no attributes"),
        (second_file, "exactly one file"),
        (set_top(b"piece layers", {}), "not hold exactly the file's layer"),
        (set_top(b"piece layers", b""), "no piece layers"),
        (tamper_layer, "does not hash to the pieces root"),
        (tamper_root, "does not hash to the pieces root"),
        (set_top(b"url-list", [1]), "web seed (url-list) is not a string"),
        (set_top(b"announce-list", [b"http://x"]), "tier of the announce-list is not a list"),
        (set_top(b"info", b"x"), "no info dictionary"),
    ],
)
def test_parse_refuses(
    good: TorrentFile, change: Callable[[dict[bytes, bencode.Decoded]], None], reason: str
) -> None:
    with pytest.raises(TorrentError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_torrent(rewrite(good.data, change))


def test_parse_refuses_layers_for_one_piece(make_file: MakeFile) -> None:
    torrent = make_torrent(make_file(100))
    data = rewrite(torrent.data, set_top(b"piece layers", {torrent.pieces_root: bytes(32)}))
    with pytest.raises(TorrentError, match="layer for a one-piece file"):
        parse_torrent(data)
    # Without the (empty) piece layers a one-piece torrent is still complete.
    top = bencode.decode(torrent.data)
    assert isinstance(top, dict)
    del top[b"piece layers"]
    assert parse_torrent(bencode.encode(top)).btih == torrent.btih


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "data ends"),
        (b"<html>not found</html>", "unexpected byte"),
        (b"le", "not a dictionary"),
        (b"de", "no info dictionary"),
        (b"d4:infodee", "not a v2 torrent"),
    ],
)
def test_parse_refuses_garbage(data: bytes, reason: str) -> None:
    with pytest.raises(TorrentError, match=reason):
        parse_torrent(data)


def test_parse_refuses_non_canonical(good: TorrentFile) -> None:
    # Moving "piece layers" before "info" unsorts the keys: the infohash would be ambiguous.
    top = bencode.decode(good.data)
    assert isinstance(top, dict)
    layers = bencode.encode({b"piece layers": top[b"piece layers"]})[1:-1]
    unsorted = b"d" + layers + b"4:info" + good.info + b"e"
    with pytest.raises(TorrentError, match="out of order"):
        parse_torrent(unsorted)
    with pytest.raises(TorrentError, match="trailing bytes"):
        parse_torrent(good.data + b"\n")


def test_parse_refuses_oversized() -> None:
    with pytest.raises(TorrentError, match="more than torrip's limit"):
        parse_torrent(b"d" + b"0:" * (MAX_TORRENT_BYTES // 2) + b"e")


def test_parse_ignores_unknown_keys_outside_info(good: TorrentFile) -> None:
    data = rewrite(
        good.data,
        lambda top: top.update({b"comment": b"hi", b"creation date": 1, b"created by": b"x"}),
    )
    parsed = parse_torrent(data)
    assert (parsed.btih, parsed.btmh, parsed.info) == (good.btih, good.btmh, good.info)


def test_parse_round_trips(good: TorrentFile) -> None:
    assert parse_torrent(good.data) == good


def test_parse_refuses_v1_only_and_v2_only(lt: ModuleType, make_file: MakeFile) -> None:
    path = make_file(50_000)
    base = lt.create_torrent.no_attributes
    v1 = libtorrent_torrent(lt, path, 16 * KiB, flags=base | lt.create_torrent.v1_only)
    v2 = libtorrent_torrent(lt, path, 16 * KiB, flags=base | lt.create_torrent.v2_only)
    with pytest.raises(TorrentError, match="not a v2 torrent"):
        parse_torrent(v1)
    with pytest.raises(TorrentError, match="v2 only"):
        parse_torrent(v2)


def test_parse_refuses_attributes(lt: ModuleType, make_file: MakeFile) -> None:
    path = make_file(50_000, name="tool.sh")
    path.chmod(0o755)
    with_attributes = libtorrent_torrent(lt, path, 16 * KiB, flags=0)
    with pytest.raises(TorrentError, match=r"unexpected keys|no attributes"):
        parse_torrent(with_attributes)


# -- validate_for_file and verify_file -----------------------------------------------------


def test_validate_for_file(good: TorrentFile) -> None:
    validate_for_file(good, filename=good.name, size=good.length)
    with pytest.raises(TorrentError, match=re.escape("names the file 'demo-1.0-py3-none-any.whl'")):
        validate_for_file(good, filename="demo-2.0-py3-none-any.whl", size=good.length)
    with pytest.raises(TorrentError, match=f"is {good.length} bytes, expected 7"):
        validate_for_file(good, filename=good.name, size=7)


def test_verify_accepts_the_file(good: TorrentFile, make_file: MakeFile) -> None:
    verify_file(parse_torrent(good.data), make_file(5 * 16 * KiB + 3))


def test_verify_finds_the_bad_piece(make_file: MakeFile) -> None:
    path = make_file(5 * 16 * KiB + 3)
    torrent = make_torrent(path)
    data = bytearray(path.read_bytes())
    data[3 * 16 * KiB + 100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(TorrentError, match="piece index 3 of 6 pieces does not match the file"):
        verify_file(torrent, path)


def test_verify_checks_v2_where_v1_agrees(make_file: MakeFile, tmp_path: Path) -> None:
    """A torrent whose v1 half describes the file and whose v2 half describes another."""
    path = make_file(5 * 16 * KiB + 3)
    good = make_torrent(path)
    other_path = tmp_path / "other" / path.name
    other_path.parent.mkdir()
    other_path.write_bytes(bytes(5 * 16 * KiB + 3))
    other = make_torrent(other_path)

    def graft(top: dict[bytes, bencode.Decoded]) -> None:
        info_of(top)[b"pieces"] = good.pieces

    chimera = parse_torrent(rewrite(other.data, graft))
    with pytest.raises(TorrentError, match=r"piece index 0 of 6 pieces does not match.*v2"):
        verify_file(chimera, path)


def test_verify_checks_the_root_of_a_one_piece_file(make_file: MakeFile) -> None:
    path = make_file(100)
    torrent = make_torrent(path)
    other = make_torrent(make_file(100, name="twin", data=bytes(100)))

    def graft(top: dict[bytes, bencode.Decoded]) -> None:
        file_entry(top)[b"pieces root"] = other.pieces_root

    with pytest.raises(TorrentError, match="pieces root does not match"):
        verify_file(parse_torrent(rewrite(torrent.data, graft)), path)


def test_verify_checks_name_and_size(make_file: MakeFile, tmp_path: Path) -> None:
    path = make_file(1000)
    torrent = make_torrent(path)
    renamed = tmp_path / "renamed.whl"
    renamed.write_bytes(path.read_bytes())
    with pytest.raises(TorrentError, match=re.escape("expected 'renamed.whl'")):
        verify_file(torrent, renamed)
    verify_file(torrent, renamed, filename=torrent.name)
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(TorrentError, match="1000 bytes, expected 1001"):
        verify_file(torrent, path)
