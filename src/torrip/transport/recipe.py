"""The torrent recipe: one deterministic torrent per distribution file.

Anyone holding a file computes the same info dictionary, so the same infohashes,
with no coordination: any volunteer can seed any file, and anyone can check a
published torrent. Recipe 1 (docs/torrent-recipe.md is the specification):

- one file, hybrid v1 + v2 (BEP 52), ``name`` = the file's name;
- piece length from :func:`piece_length_for`, never a client's automatic choice;
- the info dictionary holds exactly ``file tree``, ``length``, ``meta version``,
  ``name``, ``piece length`` and ``pieces``; no attributes, no modification time;
- web seeds (``url-list``) and trackers (``announce``, ``announce-list``) lie
  outside it, and there is no creation date, creator or comment.

This is pure Python (hashlib and :mod:`torrip.transport.bencode`), so torrents can
be made and checked where libtorrent is not installed; the tests prove the bytes
identical to libtorrent 2.1's.

    >>> torrent = make_torrent(Path("dist/demo-1.0-py3-none-any.whl"))  # doctest: +SKIP
    >>> torrent.magnet()  # doctest: +SKIP
    'magnet:?xt=urn:btih:...&xt=urn:btmh:1220...&dn=demo-1.0-py3-none-any.whl&xl=1234'
    >>> wheel = Path("dist/demo-1.0-py3-none-any.whl")  # doctest: +SKIP
    >>> verify_file(parse_torrent(torrent.data), wheel)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

from torrip.errors import TorrentError
from torrip.transport import bencode

__all__ = [
    "BLOCK_SIZE",
    "MAX_NAME_BYTES",
    "MAX_PIECE_LENGTH",
    "MAX_TORRENT_BYTES",
    "MIN_PIECE_LENGTH",
    "RECIPE_VERSION",
    "TARGET_MAX_PIECES",
    "TorrentFile",
    "follows_recipe",
    "make_torrent",
    "parse_torrent",
    "piece_length_for",
    "validate_for_file",
    "verify_file",
]

RECIPE_VERSION = 1

BLOCK_SIZE = 16 * 1024
"""The leaf size of BEP 52's merkle trees, fixed by the protocol."""
MIN_PIECE_LENGTH = 16 * 1024
MAX_PIECE_LENGTH = 64 * 1024 * 1024
TARGET_MAX_PIECES = 1024
"""Recipe 1 doubles the piece length until the file has at most this many pieces."""
MAX_TORRENT_BYTES = 8 * 1024 * 1024
"""Larger .torrent files are refused unread (a recipe-1 torrent is at most ~60 KB below 64 GiB)."""
MAX_NAME_BYTES = 255
"""The longest file name (UTF-8 bytes) most file systems store."""

_INFO_KEYS = (b"file tree", b"length", b"meta version", b"name", b"piece length", b"pieces")
_V1_HASH = 20
_V2_HASH = 32
_ZERO_HASH = bytes(_V2_HASH)
_READ_CHUNK = 4 * 1024 * 1024  # a multiple of BLOCK_SIZE, so only the last read ends mid-block
_WEB_SEED_SCHEMES = ("http", "https")
_TRACKER_SCHEMES = ("http", "https", "udp")


def piece_length_for(size: int) -> int:
    """Recipe 1's piece length for a file of ``size`` bytes.

    The smallest power of two, at least 16 KiB, that splits the file into at most
    1024 pieces; at most 64 MiB (so files over 64 GiB have more pieces).

    >>> piece_length_for(1), piece_length_for(16 * 2**20), piece_length_for(16 * 2**20 + 1)
    (16384, 16384, 32768)
    """
    if size < 1:
        raise TorrentError(
            f"a file of {size} bytes has no torrent; the recipe needs at least 1 byte"
        )
    length = MIN_PIECE_LENGTH
    while length < MAX_PIECE_LENGTH and -(-size // length) > TARGET_MAX_PIECES:
        length *= 2
    return length


@dataclass(frozen=True)
class TorrentFile:
    """A parsed or freshly made .torrent of one file (hybrid v1 + v2)."""

    data: bytes
    """The whole .torrent as bytes."""
    info: bytes
    """The bencoded info dictionary, exactly as in ``data``; the infohashes are its hashes."""
    name: str
    length: int
    piece_length: int
    btih: str
    """The v1 infohash, hex: SHA-1 of ``info``."""
    btmh: str
    """The v2 infohash as a multihash, hex: ``1220`` + SHA-256 of ``info``."""
    web_seeds: tuple[str, ...]
    trackers: tuple[str, ...]
    pieces: bytes = field(repr=False)
    """The v1 piece hashes, 20 bytes each."""
    pieces_root: bytes = field(repr=False)
    """The v2 merkle root of the file."""
    piece_layer: bytes = field(repr=False)
    """The v2 piece-layer hashes, 32 bytes each; empty when the file is one piece."""

    @property
    def infohash_v2(self) -> str:
        """The v2 infohash, hex (64 digits), without the multihash prefix."""
        return self.btmh[4:]

    @property
    def piece_count(self) -> int:
        return -(-self.length // self.piece_length)

    @property
    def sha256(self) -> str:
        """SHA-256 of the .torrent bytes, as an index lists it."""
        return hashlib.sha256(self.data).hexdigest()

    def magnet(self) -> str:
        """The magnet link: both infohashes, name, length, then trackers and web seeds.

        >>> torrent.magnet()  # doctest: +SKIP
        'magnet:?xt=urn:btih:<40 hex>&xt=urn:btmh:1220<64 hex>&dn=NAME&xl=LENGTH&tr=...&ws=...'
        """
        params = [f"xt=urn:btih:{self.btih}", f"xt=urn:btmh:{self.btmh}"]
        params.append(f"dn={quote(self.name, safe='')}")
        params.append(f"xl={self.length}")
        params.extend(f"tr={quote(url, safe='')}" for url in self.trackers)
        params.extend(f"ws={quote(url, safe='')}" for url in self.web_seeds)
        return "magnet:?" + "&".join(params)


def follows_recipe(torrent: TorrentFile) -> bool:
    """Whether ``torrent`` has recipe 1's piece length for its size.

    Every :class:`TorrentFile` has recipe 1's shape (parsing refuses others), so once
    :func:`verify_file` passed, this says whether its info dictionary is byte for byte
    the one :func:`make_torrent` computes.
    """
    return torrent.piece_length == piece_length_for(torrent.length)


def make_torrent(
    path: Path,
    *,
    name: str | None = None,
    web_seeds: Sequence[str] = (),
    trackers: Sequence[str] = (),
) -> TorrentFile:
    """Make recipe 1's torrent of the file at ``path``, reading it once.

    ``name`` defaults to the file's name. Web seeds and trackers go outside the info
    dictionary, in the order given (duplicates dropped), so they do not change the
    infohashes.
    """
    name = path.name if name is None else name
    _check_name(name)
    seeds = _clean_urls(web_seeds, "web seed", _WEB_SEED_SCHEMES)
    announce = _clean_urls(trackers, "tracker", _TRACKER_SCHEMES)
    size = _file_size(path)
    piece_length = piece_length_for(size)
    hashes = _hash_file(path, piece_length)
    if hashes.length != size:
        raise TorrentError(f"{path} changed size while it was read")
    info_dict: dict[str, bencode.Encodable] = {
        "file tree": {name: {"": {"length": size, "pieces root": hashes.pieces_root}}},
        "length": size,
        "meta version": 2,
        "name": name,
        "piece length": piece_length,
        "pieces": hashes.pieces,
    }
    layers = {hashes.pieces_root: hashes.piece_layer} if hashes.piece_layer else {}
    outer: dict[str, bencode.Encodable] = {"info": info_dict, "piece layers": layers}
    if announce:
        outer["announce"] = announce[0]
        if len(announce) > 1:
            outer["announce-list"] = [[url] for url in announce]  # one tier each, in order
    if seeds:
        # One web seed is a string, several a list: both are BEP 19, and libtorrent does this.
        outer["url-list"] = seeds[0] if len(seeds) == 1 else list(seeds)
    info = bencode.encode(info_dict)
    return TorrentFile(
        data=bencode.encode(outer),
        info=info,
        name=name,
        length=size,
        piece_length=piece_length,
        btih=hashlib.sha1(info).hexdigest(),
        btmh="1220" + hashlib.sha256(info).hexdigest(),
        web_seeds=seeds,
        trackers=announce,
        pieces=hashes.pieces,
        pieces_root=hashes.pieces_root,
        piece_layer=hashes.piece_layer,
    )


def parse_torrent(data: bytes) -> TorrentFile:
    """Parse a .torrent and check its structure; raise :class:`TorrentError` with the reason.

    Accepted: canonical bencoding within torrip's limits, one file, hybrid v1 + v2
    with exactly recipe 1's info keys, a piece length that is a power of two from
    16 KiB to 64 MiB, piece hashes and piece layers of the right count, and a piece
    layer whose merkle root is the file's ``pieces root``. Unknown keys outside the
    info dictionary (creation date, comment) are ignored.
    """
    if len(data) > MAX_TORRENT_BYTES:
        raise TorrentError(
            f"the .torrent is {len(data)} bytes, more than torrip's limit of {MAX_TORRENT_BYTES}"
        )
    top = bencode.decode(data, max_size=MAX_TORRENT_BYTES, max_depth=8, max_items=10_000)
    if not isinstance(top, dict):
        raise TorrentError("the .torrent is not a dictionary")
    info = top.get(b"info")
    if not isinstance(info, dict):
        raise TorrentError("the .torrent has no info dictionary")
    name, length, piece_length, pieces, pieces_root = _parse_info(info)
    piece_layer = _parse_piece_layers(top.get(b"piece layers"), pieces_root, length, piece_length)
    info_bytes = bencode.encode(info)  # canonical decoding makes this the bytes received
    return TorrentFile(
        data=bytes(data),
        info=info_bytes,
        name=name,
        length=length,
        piece_length=piece_length,
        btih=hashlib.sha1(info_bytes).hexdigest(),
        btmh="1220" + hashlib.sha256(info_bytes).hexdigest(),
        web_seeds=_parse_web_seeds(top.get(b"url-list")),
        trackers=_parse_trackers(top.get(b"announce"), top.get(b"announce-list")),
        pieces=pieces,
        pieces_root=pieces_root,
        piece_layer=piece_layer,
    )


def validate_for_file(torrent: TorrentFile, *, filename: str, size: int) -> None:
    """Check, without the file, that ``torrent`` can describe ``filename`` of ``size`` bytes.

    Used before a swarm download: the name and length must be the expected ones and
    the metadata within limits. Raises :class:`TorrentError` naming the first problem.
    """
    if torrent.name != filename:
        raise TorrentError(f"the torrent names the file {torrent.name!r}, expected {filename!r}")
    if torrent.length != size:
        raise TorrentError(f"the torrent's file is {torrent.length} bytes, expected {size}")
    _check_name(torrent.name)
    _check_piece_length(torrent.piece_length)
    count = torrent.piece_count
    if len(torrent.pieces) != _V1_HASH * count:
        raise TorrentError(f"the torrent has {len(torrent.pieces)} bytes of v1 piece hashes")
    expected_layer = _V2_HASH * count if count > 1 else 0
    if len(torrent.piece_layer) != expected_layer or len(torrent.pieces_root) != _V2_HASH:
        raise TorrentError("the torrent's v2 piece layer does not fit the file's length")


def verify_file(torrent: TorrentFile, path: Path, *, filename: str | None = None) -> None:
    """Check that ``torrent`` describes the file at ``path`` exactly: metadata and every piece.

    ``filename`` (default: the file's name) is the name the torrent must carry. Reads
    the file once; raises :class:`TorrentError` naming the first mismatch.
    """
    validate_for_file(
        torrent, filename=path.name if filename is None else filename, size=_file_size(path)
    )
    hashes = _hash_file(path, torrent.piece_length)
    if hashes.length != torrent.length:
        raise TorrentError(f"{path} changed size while it was read")
    count = torrent.piece_count
    if hashes.pieces != torrent.pieces:
        bad = _first_difference(hashes.pieces, torrent.pieces, _V1_HASH)
        raise TorrentError(
            f"piece index {bad} of {count} pieces does not match the file (v1, SHA-1)"
        )
    if hashes.piece_layer != torrent.piece_layer:
        bad = _first_difference(hashes.piece_layer, torrent.piece_layer, _V2_HASH)
        raise TorrentError(
            f"piece index {bad} of {count} pieces does not match the file (v2 piece layer)"
        )
    if hashes.pieces_root != torrent.pieces_root:
        raise TorrentError("the v2 pieces root does not match the file")


# -- hashing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hashes:
    length: int
    pieces: bytes
    pieces_root: bytes
    piece_layer: bytes


def _hash_file(path: Path, piece_length: int) -> _Hashes:
    """Stream the file once: v1 SHA-1 per piece, v2 SHA-256 per 16 KiB block, merkle up.

    hashlib releases the GIL on large inputs, so v1 runs in a helper thread while
    this one does v2: with two cores, the time of the slower hash instead of both.
    """
    v1 = _V1Hasher(piece_length)
    v2 = _V2Hasher(piece_length)
    buffer = bytearray(_READ_CHUNK)
    view = memoryview(buffer)
    helper: ThreadPoolExecutor | None = None
    try:
        with path.open("rb", buffering=0) as file:
            while True:
                filled = 0
                while filled < _READ_CHUNK:
                    got = file.readinto(view[filled:])
                    if not got:
                        break
                    filled += got
                if not filled:
                    break
                chunk = view[:filled]
                if filled < _READ_CHUNK and helper is None:
                    v1.update(chunk)  # the whole file in one read: no thread worth starting
                    v2.update(chunk)
                else:
                    helper = helper or ThreadPoolExecutor(1, thread_name_prefix="torrip-v1")
                    v1_done = helper.submit(v1.update, chunk)
                    v2.update(chunk)
                    v1_done.result()  # before the buffer is read into again
                if filled < _READ_CHUNK:
                    break
    except OSError as error:
        raise TorrentError(f"cannot read {path}: {error.strerror or error}") from error
    finally:
        if helper is not None:
            helper.shutdown()
    pieces = v1.finish()
    pieces_root, piece_layer = v2.finish()
    return _Hashes(v2.length, pieces, pieces_root, piece_layer)


class _V1Hasher:
    """SHA-1 of each piece; fed whole blocks, only the file's end may be mid-block."""

    def __init__(self, piece_length: int) -> None:
        self.piece_length = piece_length
        self.hashes: list[bytes] = []
        self.current = hashlib.sha1()
        self.in_piece = 0

    def update(self, data: memoryview) -> None:
        position = 0
        while position < len(data):
            take = min(self.piece_length - self.in_piece, len(data) - position)
            self.current.update(data[position : position + take])
            self.in_piece += take
            position += take
            if self.in_piece == self.piece_length:
                self.hashes.append(self.current.digest())
                self.current = hashlib.sha1()
                self.in_piece = 0

    def finish(self) -> bytes:
        if self.in_piece:
            self.hashes.append(self.current.digest())
        return b"".join(self.hashes)


class _V2Hasher:
    """BEP 52's merkle tree: SHA-256 of 16 KiB blocks, one subtree root per piece."""

    def __init__(self, piece_length: int) -> None:
        self.blocks_per_piece = piece_length // BLOCK_SIZE
        self.layer: list[bytes] = []
        self.leaves: list[bytes] = []  # block hashes of the current piece
        self.length = 0

    def update(self, data: memoryview) -> None:
        sha256 = hashlib.sha256
        per_piece = self.blocks_per_piece
        self.length += len(data)
        for start in range(0, len(data), BLOCK_SIZE):
            self.leaves.append(sha256(data[start : start + BLOCK_SIZE]).digest())
            if len(self.leaves) == per_piece:
                self.layer.append(_merkle_root(self.leaves, per_piece, _ZERO_HASH))
                self.leaves = []

    def finish(self) -> tuple[bytes, bytes]:
        """The pieces root and the piece layer (empty for a file of one piece)."""
        per_piece = self.blocks_per_piece
        if len(self.layer) + bool(self.leaves) <= 1:
            # A one-piece file has no piece layer; its tree is only as wide as its blocks need.
            if self.layer:
                return self.layer[0], b""
            return _merkle_root(self.leaves, _pow2_ceil(len(self.leaves)), _ZERO_HASH), b""
        layer = list(self.layer)
        if self.leaves:
            layer.append(_merkle_root(self.leaves, per_piece, _ZERO_HASH))
        piece_pad = _merkle_root([], per_piece, _ZERO_HASH)
        return _merkle_root(layer, _pow2_ceil(len(layer)), piece_pad), b"".join(layer)


def _merkle_root(nodes: Sequence[bytes], width: int, pad: bytes) -> bytes:
    """Root of a binary SHA-256 tree over ``nodes`` padded with ``pad`` to ``width`` (2**k)."""
    level = list(nodes)
    sha256 = hashlib.sha256
    while width > 1:
        if len(level) % 2:
            level.append(pad)
        level = [sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
        pad = sha256(pad + pad).digest()
        width //= 2
    return level[0] if level else pad


def _pow2_ceil(count: int) -> int:
    return 1 << max(count - 1, 0).bit_length()


def _first_difference(actual: bytes, expected: bytes, step: int) -> int:
    """The 0-based index of the first differing ``step``-byte hash."""
    for index in range(0, min(len(actual), len(expected)), step):
        if actual[index : index + step] != expected[index : index + step]:
            return index // step
    return min(len(actual), len(expected)) // step


# -- checks ----------------------------------------------------------------------------


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as error:
        raise TorrentError(f"cannot read {path}: {error.strerror or error}") from error


def _check_name(name: str) -> None:
    if not name:
        raise TorrentError("the file name is empty")
    if name in (".", ".."):
        raise TorrentError(f"the file name {name!r} is not a file name")
    if "/" in name or "\\" in name:
        raise TorrentError(f"the file name {name!r} contains a path separator")
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs") for char in name):
        raise TorrentError(f"the file name {name!r} contains a control character")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise TorrentError(f"the file name is longer than {MAX_NAME_BYTES} bytes")


def _check_piece_length(piece_length: int) -> None:
    if not MIN_PIECE_LENGTH <= piece_length <= MAX_PIECE_LENGTH or (
        piece_length & (piece_length - 1)
    ):
        raise TorrentError(
            f"piece length {piece_length} is not a power of two from "
            f"{MIN_PIECE_LENGTH} to {MAX_PIECE_LENGTH}"
        )


def _clean_urls(urls: Sequence[str], what: str, schemes: Sequence[str]) -> tuple[str, ...]:
    cleaned: list[str] = []
    for url in urls:
        if not url or any(char.isspace() or not char.isprintable() for char in url):
            raise TorrentError(f"{what} {url!r} is not a URL")
        scheme = urlsplit(url).scheme.lower()
        if scheme not in schemes:
            raise TorrentError(f"{what} {url!r} is not an {'/'.join(schemes)} URL")
        if url not in cleaned:
            cleaned.append(url)
    return tuple(cleaned)


def _text(value: bencode.Decoded, what: str) -> str:
    if not isinstance(value, bytes):
        raise TorrentError(f"{what} is not a string")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise TorrentError(f"{what} is not UTF-8") from None


def _integer(value: bencode.Decoded | None, what: str) -> int:
    if not isinstance(value, int):
        raise TorrentError(f"{what} is missing or not an integer")
    return value


def _parse_info(info: dict[bytes, bencode.Decoded]) -> tuple[str, int, int, bytes, bytes]:
    if b"files" in info:
        raise TorrentError("the torrent has several files; torrip takes single-file torrents only")
    if info.get(b"meta version") != 2 or b"file tree" not in info:
        raise TorrentError("the torrent is not a v2 torrent (no meta version 2 and file tree)")
    if b"pieces" not in info:
        raise TorrentError("the torrent is v2 only; torrip takes hybrid v1 + v2 torrents")
    extra = sorted(set(info) - set(_INFO_KEYS))
    missing = sorted(set(_INFO_KEYS) - set(info))
    if extra or missing:
        listed = ", ".join(repr(key.decode("utf-8", "replace")) for key in extra or missing)
        kind = "unexpected" if extra else "missing"
        raise TorrentError(f"the info dictionary has {kind} keys: {listed}")
    name = _text(info[b"name"], "the name")
    _check_name(name)
    piece_length = _integer(info[b"piece length"], "the piece length")
    _check_piece_length(piece_length)
    length = _integer(info[b"length"], "the length")
    if length < 1:
        raise TorrentError(f"the file length {length} is not positive")
    count = -(-length // piece_length)
    pieces = info[b"pieces"]
    if not isinstance(pieces, bytes) or len(pieces) != _V1_HASH * count:
        raise TorrentError(
            f"the v1 piece hashes do not fit the length: {count} pieces need "
            f"{_V1_HASH * count} bytes"
        )
    tree = info[b"file tree"]
    if not isinstance(tree, dict) or len(tree) != 1:
        raise TorrentError("the file tree does not hold exactly one file")
    tree_name, node = next(iter(tree.items()))
    if tree_name != info[b"name"]:
        raise TorrentError("the file tree's file is not named as the torrent")
    entry = node.get(b"") if isinstance(node, dict) and len(node) == 1 else None
    if not isinstance(entry, dict):
        raise TorrentError("the file tree does not hold exactly one file")
    if set(entry) != {b"length", b"pieces root"}:
        raise TorrentError("the file entry must hold only length and pieces root (no attributes)")
    if entry[b"length"] != length:
        raise TorrentError("the file tree's length differs from the info length")
    pieces_root = entry[b"pieces root"]
    if not isinstance(pieces_root, bytes) or len(pieces_root) != _V2_HASH:
        raise TorrentError("the pieces root is not a 32-byte hash")
    return name, length, piece_length, pieces, pieces_root


def _parse_piece_layers(
    layers: bencode.Decoded | None, pieces_root: bytes, length: int, piece_length: int
) -> bytes:
    count = -(-length // piece_length)
    if layers is None and count == 1:
        return b""
    if not isinstance(layers, dict):
        raise TorrentError("the torrent has no piece layers dictionary")
    if count == 1:
        if layers:
            raise TorrentError("the piece layers hold a layer for a one-piece file")
        return b""
    if set(layers) != {pieces_root}:
        raise TorrentError("the piece layers do not hold exactly the file's layer")
    layer = layers[pieces_root]
    if not isinstance(layer, bytes) or len(layer) != _V2_HASH * count:
        raise TorrentError(
            f"the piece layer does not fit the length: {count} pieces need {_V2_HASH * count} bytes"
        )
    hashes = [layer[i : i + _V2_HASH] for i in range(0, len(layer), _V2_HASH)]
    piece_pad = _merkle_root([], piece_length // BLOCK_SIZE, _ZERO_HASH)
    if _merkle_root(hashes, _pow2_ceil(count), piece_pad) != pieces_root:
        raise TorrentError("the piece layer does not hash to the pieces root")
    return layer


def _parse_web_seeds(value: bencode.Decoded | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    return tuple(dict.fromkeys(_text(item, "a web seed (url-list)") for item in items))


def _parse_trackers(
    announce: bencode.Decoded | None, announce_list: bencode.Decoded | None
) -> tuple[str, ...]:
    urls: list[str] = []
    if announce_list is not None:
        if not isinstance(announce_list, list):
            raise TorrentError("the announce-list is not a list of tiers")
        for tier in announce_list:
            if not isinstance(tier, list):
                raise TorrentError("a tier of the announce-list is not a list")
            urls.extend(_text(url, "a tracker (announce-list)") for url in tier)
    if announce is not None:
        urls.insert(0, _text(announce, "the tracker (announce)"))
    return tuple(dict.fromkeys(urls))
