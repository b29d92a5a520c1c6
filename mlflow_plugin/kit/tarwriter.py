"""A streaming tar writer that emits exactly the bytes Go's ``archive/tar`` writes for kit.

Python's ``tarfile`` cannot be used: it appends ``/`` to directory names, pads archives to
10 KiB records and names PAX headers differently. This writer produces USTAR headers (mtime 0,
uid 1000, gid 0, empty uname/gname, disk mode), splits long names into prefix/name like Go's
``splitUSTARPath``, and falls back to PAX (``<dir>/PaxHeaders.0/<file>``) only when USTAR
cannot express an entry (non-ASCII or unsplittable long path, size ≥ 8 GiB).

>>> b"".join(file_header("a.txt", 0o644, 3))[:5]
b'a.txt'
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

BLOCK = 512
NAME_SIZE = 100
PREFIX_SIZE = 155
MAX_OCTAL_SIZE = 8**11  # 8 GiB: sizes at or above need a PAX record
END_OF_ARCHIVE = bytes(2 * BLOCK)
KIT_UID = 1000
KIT_GID = 0


def _octal(value: int, width: int) -> bytes:
    """Go ``formatOctal``: zero-padded octal leaving room for a trailing NUL."""
    s = format(value, "o")
    if len(s) > width - 1:
        s = "0"  # caller guarantees it fits; Go writes zero as a last resort
    return (s.rjust(width - 1, "0")).encode() + b"\0"


def _field(data: bytes, width: int) -> bytes:
    """Go ``formatter.formatString``: copy and truncate; if the cut ends in '/', Go writes one NUL
    where the trailing run of slashes starts (so readers do not see a directory)."""
    if len(data) > width and data[width - 1 : width] == b"/":
        out = bytearray(data[:width])
        out[len(data[: width - 1].rstrip(b"/"))] = 0
        return bytes(out)
    data = data[:width]
    return data + bytes(width - len(data))


def _encode(name: str) -> bytes:
    """File names as bytes; undecodable bytes (surrogate escapes from os.listdir) round-trip."""
    return name.encode("utf-8", "surrogateescape")


def _is_ascii(s: str) -> bool:
    return all(ord(c) < 0x80 for c in s)


def split_ustar_path(name: str) -> tuple[str, str] | None:
    """Go ``splitUSTARPath``: ``(prefix, name)`` or None if the name cannot be split."""
    b = _encode(name)
    length = len(b)
    if length <= NAME_SIZE or not _is_ascii(name):
        return None
    if length > PREFIX_SIZE + 1:
        length = PREFIX_SIZE + 1
    elif name[length - 1] == "/":
        length -= 1
    i = name.rfind("/", 0, length)
    nlen = len(name) - i - 1
    plen = i
    if i <= 0 or nlen > NAME_SIZE or nlen == 0 or plen > PREFIX_SIZE:
        return None
    return name[:i], name[i + 1 :]


def _checksum(block: bytearray) -> None:
    block[148:156] = b" " * 8
    s = sum(block)
    block[148:155] = _octal(s, 7)
    block[155] = 0x20


def _header(
    name: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    typeflag: bytes,
    prefix: bytes = b"",
    with_dev: bool = True,
) -> bytes:
    blk = bytearray(BLOCK)
    blk[0:100] = _field(name, 100)
    blk[100:108] = _octal(mode, 8)
    blk[108:116] = _octal(uid, 8)
    blk[116:124] = _octal(gid, 8)
    blk[124:136] = _octal(size, 12)
    blk[136:148] = _octal(0, 12)  # mtime: Unix epoch
    blk[156:157] = typeflag
    blk[257:263] = b"ustar\0"
    blk[263:265] = b"00"
    if with_dev:
        blk[329:337] = _octal(0, 8)
        blk[337:345] = _octal(0, 8)
    blk[345:500] = _field(prefix, 155)
    _checksum(blk)
    return bytes(blk)


def _pax_record(key: str, value: str) -> bytes:
    kv = _encode(f" {key}={value}\n")
    size = len(kv)
    size += len(str(size))
    rec = str(size).encode() + kv
    if len(rec) != size:
        rec = str(len(rec)).encode() + kv
    return rec


def _to_ascii(s: str) -> bytes:
    return "".join(c for c in s if ord(c) < 0x80).encode("ascii")


def pad(size: int) -> bytes:
    """Zero padding after ``size`` bytes of entry data."""
    return bytes(-size % BLOCK)


def entry_header(name: str, mode: int, size: int, typeflag: bytes) -> Iterator[bytes]:
    """Yield the header block(s) for one entry, USTAR if possible else PAX."""
    name_b = _encode(name)
    pax: dict[str, str] = {}
    ustar_ok = True
    if not _is_ascii(name) or len(name_b) > NAME_SIZE:
        pax["path"] = name
        if split_ustar_path(name) is None:
            ustar_ok = False
    if size >= MAX_OCTAL_SIZE:
        pax["size"] = str(size)
        ustar_ok = False
    if ustar_ok:
        split = split_ustar_path(name)
        prefix, base = (split[0].encode(), split[1].encode()) if split else (b"", name_b)
        yield _header(base, mode, KIT_UID, KIT_GID, size, typeflag, prefix)
        return
    data = b"".join(_pax_record(k, pax[k]) for k in sorted(pax))
    d, f = posixpath.split(name)
    pax_name = _to_ascii(posixpath.join(d, "PaxHeaders.0", f))[:NAME_SIZE].rstrip(b"/")
    yield _header(pax_name, 0, 0, 0, len(data), b"x", with_dev=False)
    yield data + pad(len(data))
    main_size = size if size < MAX_OCTAL_SIZE else 0
    yield _header(_to_ascii(name), mode, KIT_UID, KIT_GID, main_size, typeflag)  # _field truncates


def file_header(name: str, mode: int, size: int) -> Iterator[bytes]:
    """Header blocks of a regular file (``mode`` includes setuid/setgid/sticky bits)."""
    return entry_header(name, mode, size, b"0")


def dir_header(name: str, mode: int) -> Iterator[bytes]:
    """Header blocks of a directory (name without trailing slash, as kit writes it)."""
    return entry_header(name, mode, 0, b"5")


def tar_mode(st_mode: int) -> int:
    """Go ``FileInfoHeader`` mode bits: permissions plus setuid/setgid/sticky."""
    return st_mode & 0o7777
