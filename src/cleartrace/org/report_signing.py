"""An audit report's manifest and the officer's signature over it.

A report is handed to people who must be able to trust it without trusting
whoever carried it (a works council, a data protection authority). So
`sign_report` lists every file of the report directory in `MANIFEST` — its
relative path, SHA-256 and size, as canonical JSON — and signs those exact
bytes with the officer key (org/keys.py) in `SIGNATURE`. `check_report`
recomputes everything: the signature, each listed file's hash and size, and
that no file is there the manifest does not list. A changed byte, an added
or deleted file, a swapped signature: each is a problem naming the file.

Symbolic links are refused on both sides: a link would let the signed bytes
live outside the directory (and change without the report changing). Paths
in a manifest that leave the directory are refused before anything is read.

    MANIFEST   {"type": "cleartrace-report-manifest", "v": 1,
                "files": [{"path", "sha256", "size"}, ...]}     (sorted by path)
    SIGNATURE  {"type": "cleartrace-report-signature", "v": 1, "signer",
                "ed25519": <public key>, "signature": <over MANIFEST's bytes>}
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cleartrace.errors import UsageError
from cleartrace.formats import b64url, canonical, key_fingerprint, unb64url, verify_ed25519
from cleartrace.paths import write_private_bytes

__all__ = ["MANIFEST", "SIGNATURE", "ReportCheck", "check_report", "sign_report"]

MANIFEST, SIGNATURE = "MANIFEST", "SIGNATURE"
_MANIFEST_TYPE = "cleartrace-report-manifest"
_SIGNATURE_TYPE = "cleartrace-report-signature"
_MAX_MANIFEST = 64 * 1024 * 1024
_MAX_SIGNATURE = 64 * 1024
_CHUNK = 1 << 20


@dataclass
class ReportCheck:
    """What `check_report` found: the files the manifest lists, the signer's
    fingerprint (None when the signature could not be read), and every problem."""

    files: int = 0
    signer: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _walk(root: Path) -> tuple[dict[str, Path], list[str]]:
    """Every regular file under `root` by relative POSIX path (MANIFEST and
    SIGNATURE at the top left out), and the paths that are symlinks or not
    regular files. Directory links are not followed."""
    files: dict[str, Path] = {}
    odd: list[str] = []
    for directory, dirs, names in os.walk(root, followlinks=False):
        here = Path(directory)
        for name in sorted(dirs):
            if (here / name).is_symlink():
                odd.append((here / name).relative_to(root).as_posix())
        for name in names:
            path = here / name
            rel = path.relative_to(root).as_posix()
            if rel in (MANIFEST, SIGNATURE):
                continue
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode):
                files[rel] = path
            else:
                odd.append(rel)
    return files, sorted(odd)


def _digest(path: Path) -> tuple[str, int]:
    """(SHA-256 hex, size) of a regular file, opened without following a link.

    Raises:
        OSError: ELOOP for a symlink, or the file cannot be read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        digest, size = hashlib.sha256(), 0
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def sign_report(report_dir: Path, officer_key: Ed25519PrivateKey) -> str:
    """Write `MANIFEST` of every file under `report_dir` and `SIGNATURE` over
    it (replacing both); returns the signer's fingerprint.

    Raises:
        UsageError: `report_dir` is not a directory, holds a symlink or a
            special file, or a file cannot be read.
        DiskFull: no room for the two files.
    """
    if not report_dir.is_dir() or report_dir.is_symlink():
        raise UsageError(f"{report_dir} is not a report directory; give the directory to sign")
    files, odd = _walk(report_dir)
    if odd:
        raise UsageError(
            f"{report_dir} holds {', '.join(odd)}, a symbolic link or special file; "
            "put the file itself there, or remove it, then sign again"
        )
    listed = []
    for rel in sorted(files):
        try:
            sha256, size = _digest(files[rel])
        except OSError as exc:
            raise UsageError(f"cannot read {report_dir / rel}: {exc.strerror}") from None
        listed.append({"path": rel, "sha256": sha256, "size": size})
    manifest = {"type": _MANIFEST_TYPE, "v": 1, "files": listed}
    return _write_signed(report_dir, manifest, officer_key)


def _write_signed(
    report_dir: Path, manifest: dict[str, Any], officer_key: Ed25519PrivateKey
) -> str:
    body = canonical(manifest)
    public = officer_key.public_key().public_bytes_raw()
    signer = key_fingerprint(public)
    signature = {
        "type": _SIGNATURE_TYPE,
        "v": 1,
        "signer": signer,
        "ed25519": b64url(public),
        "signature": b64url(officer_key.sign(body)),
    }
    for name, data in ((MANIFEST, body), (SIGNATURE, canonical(signature) + b"\n")):
        write_private_bytes(report_dir / name, data, "report " + name)
        os.chmod(report_dir / name, 0o644)  # a report is for handing on
    return signer


def _read(path: Path, limit: int) -> bytes:
    """A MANIFEST or SIGNATURE's bytes, not through a symlink.

    Raises:
        OSError: missing, a symlink (ELOOP), unreadable; EFBIG over `limit`.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as fh:
        raw = fh.read(limit + 1)
    if len(raw) > limit:
        raise OSError(errno.EFBIG, "too large")
    return raw


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "is missing"
    if exc.errno == errno.ELOOP:
        return "is a symbolic link"
    return f"cannot be read ({exc.strerror or exc})"


def _verify_signature(
    report_dir: Path, body: bytes, officer_pub: Ed25519PublicKey | None, out: ReportCheck
) -> None:
    try:
        obj = json.loads(_read(report_dir / SIGNATURE, _MAX_SIGNATURE))
        public = unb64url(obj["ed25519"])
        signature = unb64url(obj["signature"])
        if obj.get("type") != _SIGNATURE_TYPE or obj.get("v") != 1:
            raise ValueError("type")
    except OSError as exc:
        out.problems.append(f"{SIGNATURE} {_why(exc)}: the report is unsigned")
        return
    except (ValueError, KeyError, TypeError, AttributeError):
        out.problems.append(f"{SIGNATURE} is not a report signature")
        return
    out.signer = key_fingerprint(public)
    if officer_pub is not None:
        expected = key_fingerprint(officer_pub.public_bytes_raw())
        if out.signer != expected:
            out.problems.append(
                f"{SIGNATURE}: signed by {out.signer}, not by the officer key {expected}"
            )
    if not verify_ed25519(public, signature, body):
        out.problems.append(f"{SIGNATURE} does not verify over {MANIFEST}: one of them was changed")


def _entries(body: bytes, out: ReportCheck) -> dict[str, dict[str, Any]]:
    """The manifest's entries by path; a path leaving the directory is a problem."""
    try:
        obj = json.loads(body)
        if obj.get("type") != _MANIFEST_TYPE or obj.get("v") != 1:
            raise ValueError("type")
        files = [(str(f["path"]), str(f["sha256"]), int(f["size"])) for f in obj["files"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        out.problems.append(f"{MANIFEST} is not a report manifest")
        return {}
    entries: dict[str, dict[str, Any]] = {}
    for path, sha256, size in files:
        pure = PurePosixPath(path)
        if (
            not path
            or pure.is_absolute()
            or ".." in pure.parts
            or "\\" in path
            or pure.as_posix() != path
            or path in (MANIFEST, SIGNATURE)
        ):
            out.problems.append(f"{path}: a manifest path outside the report directory; refused")
            continue
        entries[path] = {"sha256": sha256, "size": size}
    out.files = len(files)
    return entries


def check_report(report_dir: Path, officer_pub: Ed25519PublicKey | None) -> ReportCheck:
    """Verify a signed report: the signature over MANIFEST (by `officer_pub`
    when given), each listed file present with its hash and size, and no
    file the manifest does not list.

    Raises:
        UsageError: `report_dir` is not a directory.
    """
    if not report_dir.is_dir() or report_dir.is_symlink():
        raise UsageError(f"{report_dir} is not a report directory; give the directory to check")
    out = ReportCheck()
    try:
        body = _read(report_dir / MANIFEST, _MAX_MANIFEST)
    except OSError as exc:
        out.problems.append(f"{MANIFEST} {_why(exc)}: the report was not signed, or was cut")
        return out
    _verify_signature(report_dir, body, officer_pub, out)
    entries = _entries(body, out)
    present, odd = _walk(report_dir)
    for rel in odd:
        out.problems.append(f"{rel} is a symbolic link or special file; refused")
    for rel, want in sorted(entries.items()):
        try:
            sha256, size = _digest(report_dir / rel)
        except OSError as exc:
            if exc.errno != errno.ELOOP or rel not in odd:
                out.problems.append(f"{rel} {_why(exc)}")
            continue
        if (sha256, size) != (want["sha256"], want["size"]):
            out.problems.append(f"{rel} was changed after signing")
    for rel in sorted(set(present) - set(entries)):
        out.problems.append(f"{rel} is not in the manifest (added after signing)")
    return out
