"""Fetch an input file from a URL or a local path, with retries and an optional checksum.

This is the only module in genofm that talks to the network. Sources may be http://,
https:// or ftp:// URLs (streamed with urllib), file:// URLs or plain local paths (copied).
The file is written through `atomic_path`, so a failed or corrupt download never leaves
anything at `dest`.
"""

from __future__ import annotations

import ftplib
import gzip
import hashlib
import http.client
import logging
import re
import shutil
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from time import sleep  # imported by name so tests can replace genofm.download.sleep
from typing import BinaryIO

from genofm import __version__
from genofm.atomic import atomic_path
from genofm.errors import GenofmInputError
from genofm.files import is_gzip

CHUNK_BYTES = 1 << 20
REMOTE_SCHEMES = ("http", "https", "ftp")
_HEX_LENGTHS = {"sha256": 64, "md5": 32}
_CHECKSUM_RE = re.compile(r"(?P<algo>[A-Za-z0-9]+):(?P<hex>[0-9A-Fa-f]+)")


class _TransientError(Exception):
    """A download attempt failed in a way that another attempt may fix."""


def parse_checksum(text: str) -> tuple[str, str]:
    """Split "sha256:<hex>" or "md5:<hex>" into (algorithm, lower-case hex digest)."""
    match = _CHECKSUM_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise GenofmInputError(
            f"malformed checksum {text!r}: expected 'sha256:<hex>' or 'md5:<hex>'"
        )
    algo, digest = match["algo"].lower(), match["hex"].lower()
    if algo not in _HEX_LENGTHS:
        raise GenofmInputError(
            f"unsupported checksum algorithm {algo!r} in {text!r}: use sha256 or md5"
        )
    if len(digest) != _HEX_LENGTHS[algo]:
        raise GenofmInputError(
            f"malformed checksum {text!r}: a {algo} digest has {_HEX_LENGTHS[algo]} hex digits, "
            f"not {len(digest)}"
        )
    return algo, digest


def verify_checksum(path: str | Path, checksum: str) -> None:
    """Raise GenofmInputError unless the file at `path` has the digest `checksum`."""
    algo, expected = parse_checksum(checksum)
    hasher = hashlib.new(algo)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
            hasher.update(chunk)
    _check_digest(str(path), algo, expected, hasher.hexdigest())


def fetch_gzipped(source: str, out: str | Path, checksum: str | None = None, **fetch_options) -> None:
    """fetch(), then store gzip-compressed at `out` (as it came when it is gzip or bgzip already)."""
    with atomic_path(out) as tmp:
        raw = tmp.with_name(tmp.name + ".download")
        fetch(source, raw, checksum=checksum, **fetch_options)
        if is_gzip(raw):
            raw.replace(tmp)
        else:
            with open(raw, "rb") as src, gzip.GzipFile(tmp, "wb", mtime=0) as dst:
                shutil.copyfileobj(src, dst)
            raw.unlink()


def fetch(
    source: str,
    dest: Path,
    *,
    checksum: str | None = None,
    retries: int = 4,
    backoff_seconds: float = 1.0,
    timeout_seconds: float = 60.0,
    log: logging.Logger | None = None,
) -> Path:
    """Download or copy `source` to `dest`; return `dest`.

    Transient network errors (refused/reset connections, timeouts, HTTP 5xx/429, truncated
    transfers) are retried up to `retries` times, waiting backoff_seconds * 2**attempt before
    each retry; anything else fails at once. Download, copy and checksum failures raise
    GenofmInputError; local disk errors while writing `dest` propagate as OSError.
    """
    if retries < 0:
        raise GenofmInputError(f"retries must be >= 0, not {retries}")
    log = log or logging.getLogger(__name__)
    dest = Path(dest)
    # Parse the checksum before any I/O so a typo in the config fails fast.
    expected = parse_checksum(checksum) if checksum is not None else None
    scheme = urllib.parse.urlsplit(source).scheme.lower()
    if scheme not in (*REMOTE_SCHEMES, "file", ""):
        raise GenofmInputError(
            f"unsupported source {source!r}: use an http(s)://, ftp:// or file:// URL, or a path"
        )

    with atomic_path(dest) as tmp:
        if scheme in REMOTE_SCHEMES:
            digest = _download_with_retries(
                source, tmp, expected, retries, backoff_seconds, timeout_seconds, log
            )
        else:
            digest = _copy_local(source, tmp, expected)
        if expected is not None:
            # Raised inside the atomic block, so nothing is left at dest.
            _check_digest(source, expected[0], expected[1], digest)
    return dest


def _check_digest(name: str, algo: str, expected: str, actual: str | None) -> None:
    if actual != expected:
        raise GenofmInputError(
            f"checksum mismatch for {name}: expected {algo}:{expected}, got {algo}:{actual}"
        )


def _copy_local(source: str, tmp: Path, expected: tuple[str, str] | None) -> str | None:
    """Copy a file:// URL or plain path to `tmp`, hashing on the way; return the hex digest."""
    if source.lower().startswith("file:"):
        parts = urllib.parse.urlsplit(source)
        if parts.netloc not in ("", "localhost"):
            raise GenofmInputError(f"unsupported file URL {source!r}: only local files can be read")
        path = Path(urllib.request.url2pathname(parts.path))
    else:
        path = Path(source).expanduser()
    if not path.is_file():
        raise GenofmInputError(f"input file not found: {source}")
    with open(path, "rb") as src, open(tmp, "wb") as out:
        return _copy_stream(src, out, expected)[1]


def _copy_stream(
    src: BinaryIO, out: BinaryIO, expected: tuple[str, str] | None
) -> tuple[int, str | None]:
    """Copy `src` to `out` in chunks; return (bytes copied, hex digest or None)."""
    hasher = hashlib.new(expected[0]) if expected else None
    total = 0
    for chunk in iter(lambda: src.read(CHUNK_BYTES), b""):
        out.write(chunk)
        total += len(chunk)
        if hasher is not None:
            hasher.update(chunk)
    return total, (hasher.hexdigest() if hasher else None)


def _download_with_retries(
    url: str,
    tmp: Path,
    expected: tuple[str, str] | None,
    retries: int,
    backoff_seconds: float,
    timeout_seconds: float,
    log: logging.Logger,
) -> str | None:
    """Download `url` to `tmp`, retrying transient failures; return the hex digest."""
    attempts = retries + 1
    for attempt in range(attempts):
        try:
            return _download_once(url, tmp, expected, timeout_seconds)
        except _TransientError as err:
            if attempt == attempts - 1:
                raise GenofmInputError(
                    f"could not download {url} after {attempts} attempts: {err}"
                ) from err.__cause__
            delay = backoff_seconds * 2**attempt
            log.warning(
                "download of %s failed (attempt %d of %d): %s; retrying in %.2f s",
                url,
                attempt + 1,
                attempts,
                err,
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")  # the loop always returns or raises


def _download_once(
    url: str, tmp: Path, expected: tuple[str, str] | None, timeout_seconds: float
) -> str | None:
    """One attempt: stream `url` into `tmp` (from scratch); return the hex digest.

    Raises _TransientError for failures worth retrying, GenofmInputError for the rest.
    """
    request = urllib.request.Request(url, headers={"User-Agent": f"genofm/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
            length = response.headers.get("Content-Length")
            with open(tmp, "wb") as out:  # "wb": a retry starts from an empty file
                received, digest = _copy_stream(response, out, expected)
    except urllib.error.HTTPError as err:  # before URLError: HTTPError is a subclass
        if err.code >= 500 or err.code == 429:
            raise _TransientError(f"HTTP {err.code} {err.reason}") from err
        raise GenofmInputError(f"could not download {url}: HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        # Socket-level trouble (refused, reset, timed out, DNS) or an FTP 4xx reply may pass;
        # a bad certificate, FTP 5xx ("no such file") or a malformed URL will not. urllib's FTP
        # handler keeps the real error in __cause__, its HTTP handler in .reason.
        reasons = (err.reason, err.__cause__)
        if any(isinstance(r, ssl.SSLCertVerificationError) for r in reasons):
            raise GenofmInputError(f"could not download {url}: {err.reason}") from err
        if any(isinstance(r, (OSError, ftplib.error_temp)) for r in reasons):
            raise _TransientError(str(err.reason)) from err
        raise GenofmInputError(f"could not download {url}: {err.reason}") from err
    except http.client.IncompleteRead as err:
        raise _TransientError(f"truncated transfer ({err!r})") from err
    except (ConnectionError, TimeoutError, http.client.BadStatusLine) as err:
        raise _TransientError(f"{type(err).__name__}: {err}") from err

    # urllib returns a short body silently when the server closes early; check it ourselves.
    if length is not None and length.isdigit() and received < int(length):
        raise _TransientError(f"truncated transfer: got {received} of {length} bytes")
    return digest
