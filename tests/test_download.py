"""Tests for genofm.download against a real local HTTP server with scripted failures."""

from __future__ import annotations

import collections
import hashlib
import http.server
import logging
import socket
import threading
import time
from pathlib import Path

import pytest

from genofm import download
from genofm.download import fetch, parse_checksum, verify_checksum
from genofm.errors import GenofmInputError

BODY = b">chr1\nACGTACGTNN\n" * 500  # 8 kB, enough to truncate half-way


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves BODY, after failing in the way the path asks for.

    /ok                  200
    /fail/<code>/<n>     <code> for the first n requests to this path, then 200
    /truncate/<n>        first n responses stop half-way through (Content-Length is full)
    /slow/<n>            first n requests wait 1 s before answering
    (n = "always" never recovers.)
    """

    def do_GET(self) -> None:
        server = self.server
        with server.lock:
            server.hits[self.path] += 1
            hit = server.hits[self.path]
        parts = self.path.strip("/").split("/")
        failing = parts[-1] == "always" or (parts[-1].isdigit() and hit <= int(parts[-1]))
        if parts[0] == "fail" and failing:
            self.send_error(int(parts[1]))
            return
        if parts[0] == "slow" and failing:
            time.sleep(1.0)
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        if parts[0] == "truncate" and failing:
            self.wfile.write(BODY[: len(BODY) // 2])
            self.close_connection = True  # the client sees EOF before Content-Length bytes
            return
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def server():
    srv = _Server()
    # A short poll interval keeps shutdown() (and so each test's teardown) quick.
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Record backoff delays instead of sleeping them."""
    delays: list[float] = []
    monkeypatch.setattr(download, "sleep", delays.append)
    return delays


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


def _assert_nothing_left(dest: Path) -> None:
    """No file at dest and no temporary leftovers beside it."""
    assert not dest.exists()
    assert list(dest.parent.iterdir()) == []


# --- HTTP ---------------------------------------------------------------------------------


def test_http_download(server, tmp_path, sleeps):
    dest = tmp_path / "sub" / "genome.fa"
    assert fetch(server.url("/ok"), dest, checksum=_sha256(BODY)) == dest
    assert dest.read_bytes() == BODY
    assert server.hits["/ok"] == 1
    assert sleeps == []


@pytest.mark.parametrize("code", [503, 500, 429])
def test_transient_http_errors_are_retried_with_backoff(server, tmp_path, sleeps, caplog, code):
    dest = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="genofm.download"):
        fetch(server.url(f"/fail/{code}/2"), dest, retries=4, backoff_seconds=0.01)
    assert dest.read_bytes() == BODY
    assert server.hits[f"/fail/{code}/2"] == 3
    assert sleeps == pytest.approx([0.01, 0.02])  # backoff_seconds * 2**attempt
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and str(code) in warnings[0].getMessage()


def test_persistent_server_error_fails_after_retries(server, tmp_path, sleeps):
    dest = tmp_path / "out"
    url = server.url("/fail/500/always")
    with pytest.raises(GenofmInputError, match=r"after 3 attempts: HTTP 500") as info:
        fetch(url, dest, retries=2, backoff_seconds=0.01)
    assert url in str(info.value)
    assert server.hits["/fail/500/always"] == 3
    assert sleeps == pytest.approx([0.01, 0.02])
    _assert_nothing_left(dest)


@pytest.mark.parametrize("code", [404, 403])
def test_client_errors_fail_at_once(server, tmp_path, sleeps, code):
    dest = tmp_path / "out"
    with pytest.raises(GenofmInputError, match=f"HTTP {code}"):
        fetch(server.url(f"/fail/{code}/always"), dest, retries=4, backoff_seconds=0.01)
    assert server.hits[f"/fail/{code}/always"] == 1
    assert sleeps == []
    _assert_nothing_left(dest)


def test_truncated_transfer_is_retried(server, tmp_path, sleeps):
    dest = tmp_path / "out"
    fetch(server.url("/truncate/1"), dest, checksum=_md5(BODY), backoff_seconds=0.01)
    assert dest.read_bytes() == BODY  # the retry starts over rather than appending
    assert server.hits["/truncate/1"] == 2


def test_always_truncated_transfer_fails(server, tmp_path, sleeps):
    dest = tmp_path / "out"
    with pytest.raises(GenofmInputError, match=r"after 2 attempts: truncated"):
        fetch(server.url("/truncate/always"), dest, retries=1, backoff_seconds=0.01)
    assert server.hits["/truncate/always"] == 2
    _assert_nothing_left(dest)


def test_timeout_is_retried(server, tmp_path, sleeps):
    dest = tmp_path / "out"
    fetch(server.url("/slow/1"), dest, timeout_seconds=0.3, backoff_seconds=0.01)
    assert dest.read_bytes() == BODY
    assert server.hits["/slow/1"] == 2


def test_unreachable_port_fails_after_retries(tmp_path, sleeps):
    with socket.socket() as sock:  # a port that was free a moment ago, now closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dest = tmp_path / "out"
    with pytest.raises(GenofmInputError, match=r"could not download .* after 3 attempts"):
        fetch(f"http://127.0.0.1:{port}/x", dest, retries=2, backoff_seconds=0.01)
    assert len(sleeps) == 2
    _assert_nothing_left(dest)


@pytest.mark.parametrize("make_checksum", [_sha256, _md5])
def test_bad_checksum_leaves_nothing(server, tmp_path, sleeps, make_checksum):
    dest = tmp_path / "out"
    wrong = make_checksum(b"something else")
    right = make_checksum(BODY)
    with pytest.raises(GenofmInputError, match="checksum mismatch") as info:
        fetch(server.url("/ok"), dest, checksum=wrong)
    message = str(info.value)
    assert server.url("/ok") in message
    assert wrong.split(":")[1] in message and right.split(":")[1] in message
    assert server.hits["/ok"] == 1  # a mismatch is not retried
    _assert_nothing_left(dest)


# --- local sources ------------------------------------------------------------------------


@pytest.fixture
def local_file(tmp_path) -> Path:
    path = tmp_path / "src" / "input.fa"
    path.parent.mkdir()
    path.write_bytes(BODY)
    return path


def test_file_url(local_file, tmp_path):
    dest = tmp_path / "out" / "copy.fa"
    upper_hex = "md5:" + hashlib.md5(BODY).hexdigest().upper()  # hex case does not matter
    fetch(local_file.as_uri(), dest, checksum=upper_hex)
    assert dest.read_bytes() == BODY


def test_plain_paths(local_file, tmp_path, monkeypatch):
    fetch(str(local_file), tmp_path / "abs.fa")
    monkeypatch.chdir(local_file.parent)
    fetch("input.fa", tmp_path / "rel.fa", checksum=_sha256(BODY))
    assert (tmp_path / "abs.fa").read_bytes() == (tmp_path / "rel.fa").read_bytes() == BODY


def test_bad_checksum_on_local_copy_leaves_nothing(local_file, tmp_path):
    dest = tmp_path / "out" / "copy.fa"
    with pytest.raises(GenofmInputError, match="checksum mismatch"):
        fetch(str(local_file), dest, checksum=_sha256(b"other"))
    _assert_nothing_left(dest)


def test_missing_local_file_fails_at_once(tmp_path, sleeps):
    dest = tmp_path / "out" / "copy.fa"
    with pytest.raises(GenofmInputError, match="not found: .*nope.fa"):
        fetch(str(tmp_path / "nope.fa"), dest)
    with pytest.raises(GenofmInputError, match="not found"):
        fetch((tmp_path / "nope.fa").as_uri(), dest)
    assert sleeps == []
    _assert_nothing_left(dest)


def test_unsupported_scheme(tmp_path):
    with pytest.raises(GenofmInputError, match="unsupported source 's3://"):
        fetch("s3://bucket/genome.fa", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


# --- checksum helpers ---------------------------------------------------------------------


def test_parse_checksum():
    digest = hashlib.sha256(b"x").hexdigest()
    assert parse_checksum(f"SHA256:{digest.upper()}") == ("sha256", digest)
    assert parse_checksum(f" md5:{'A' * 32} ") == ("md5", "a" * 32)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha256",
        "abc123",
        f"sha1:{'0' * 40}",
        f"sha256:{'0' * 63}",
        f"md5:{'g' * 32}",
        f"sha256 {'0' * 64}",
        f"md5:{'0' * 32}:x",
    ],
)
def test_malformed_checksum(text, local_file, tmp_path):
    with pytest.raises(GenofmInputError):
        parse_checksum(text)
    with pytest.raises(GenofmInputError, match="checksum"):
        fetch(str(local_file), tmp_path / "out" / "copy.fa", checksum=text)
    assert not (tmp_path / "out").exists()  # failed before touching the destination


def test_verify_checksum(local_file):
    verify_checksum(local_file, _sha256(BODY))
    verify_checksum(local_file, _md5(BODY))
    with pytest.raises(GenofmInputError, match=r"checksum mismatch for .*input\.fa"):
        verify_checksum(local_file, _md5(b"other"))
