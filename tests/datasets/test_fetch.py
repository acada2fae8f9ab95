import hashlib
import http.server
import os
import threading

import numpy as np
import pytest

from skmia.datasets import CacheWarning, get_data_home
from skmia.datasets._fetch import (
    RemoteFile,
    atomic_savez,
    cache_record,
    fetch_file,
    load_npz_cache,
)

PAYLOAD = b"membership inference\n" * 1000
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
DEAD_URL = "http://127.0.0.1:9/nothing-here.bin"  # the discard port: connection refused


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_get_data_home_order(monkeypatch, tmp_path):
    monkeypatch.setenv("SKMIA_DATA_HOME", str(tmp_path / "env"))
    assert get_data_home() == tmp_path / "env"
    assert get_data_home(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.delenv("SKMIA_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert get_data_home() == tmp_path / "home" / "skmia_data"
    assert not (tmp_path / "home").exists(), "get_data_home must not create folders"


def test_download_verifies_and_writes(http_root, tmp_path):
    root, url = http_root
    (root / "file.bin").write_bytes(PAYLOAD)
    home = tmp_path / "home"
    remote = RemoteFile("file.bin", (url + "file.bin",), PAYLOAD_SHA)
    path = fetch_file(remote, home)
    assert path == home / "file.bin"
    assert path.read_bytes() == PAYLOAD
    assert leftovers(home) == ["file.bin"]


def test_second_url_is_used_when_first_fails(http_root, tmp_path):
    root, url = http_root
    (root / "file.bin").write_bytes(PAYLOAD)
    remote = RemoteFile("file.bin", (url + "missing.bin", url + "file.bin"), PAYLOAD_SHA)
    assert fetch_file(remote, tmp_path).read_bytes() == PAYLOAD


def test_checksum_mismatch_leaves_nothing(http_root, tmp_path):
    root, url = http_root
    (root / "file.bin").write_bytes(PAYLOAD + b"tampered")
    home = tmp_path / "home"
    remote = RemoteFile("file.bin", (url + "file.bin",), PAYLOAD_SHA)
    with pytest.raises(OSError, match="checksum mismatch") as info:
        fetch_file(remote, home)
    message = str(info.value)
    assert "file.bin" in message and str(home) in message and url + "file.bin" in message
    assert leftovers(home) == []


class _TruncatingHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_truncated_download_leaves_nothing(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TruncatingHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/file.bin"
        home = tmp_path / "home"
        # no checksum known: only the length tells that the download is incomplete
        with pytest.raises(OSError, match="could not download 'file.bin'"):
            fetch_file(RemoteFile("file.bin", (url,)), home)
        assert leftovers(home) == []
    finally:
        server.shutdown()
        server.server_close()


def test_offline_error_names_url_file_and_folder(tmp_path):
    home = tmp_path / "home"
    remote = RemoteFile("dataset_x.tgz", (DEAD_URL,), PAYLOAD_SHA)
    with pytest.raises(OSError) as info:
        fetch_file(remote, home)
    message = str(info.value)
    assert DEAD_URL in message and "dataset_x.tgz" in message and str(home) in message
    assert "by hand" in message
    assert leftovers(home) == []


def test_missing_file_without_download(tmp_path):
    remote = RemoteFile("dataset_x.tgz", (DEAD_URL,), PAYLOAD_SHA)
    with pytest.raises(FileNotFoundError, match="download_if_missing=False") as info:
        fetch_file(remote, tmp_path, download_if_missing=False)
    assert "dataset_x.tgz" in str(info.value) and DEAD_URL in str(info.value)


def test_file_placed_by_hand_is_used_offline(tmp_path):
    (tmp_path / "dataset_x.tgz").write_bytes(PAYLOAD)
    remote = RemoteFile("dataset_x.tgz", (DEAD_URL,), PAYLOAD_SHA)
    assert fetch_file(remote, tmp_path).read_bytes() == PAYLOAD


def test_file_placed_by_hand_with_wrong_bytes(tmp_path):
    (tmp_path / "dataset_x.tgz").write_bytes(PAYLOAD[:-1])
    remote = RemoteFile("dataset_x.tgz", (DEAD_URL,), PAYLOAD_SHA)
    with pytest.raises(ValueError, match="corrupt or not the expected file"):
        fetch_file(remote, tmp_path)


def test_non_http_urls_are_refused(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(PAYLOAD)
    remote = RemoteFile("file.bin", (source.as_uri(),), PAYLOAD_SHA)
    with pytest.raises(OSError, match="only http"):
        fetch_file(remote, tmp_path / "home")


def test_npz_cache_round_trip_and_corruption(tmp_path):
    path = tmp_path / "cache.npz"
    assert load_npz_cache(path, ("X",)) is None
    X = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert atomic_savez(path, X=X)
    np.testing.assert_array_equal(load_npz_cache(path, ("X",))["X"], X)
    with pytest.warns(CacheWarning, match="cannot be read, or lacks some of its arrays"):
        assert load_npz_cache(path, ("missing",)) is None
    assert not path.exists(), "a cache without the expected arrays is removed"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.warns(CacheWarning, match="cache.npz"):
        assert load_npz_cache(path, ("X",)) is None
    assert not path.exists()
    assert leftovers(tmp_path) == []


def test_npz_cache_records_its_source_and_parser(tmp_path):
    source, path = tmp_path / "archive.tgz", tmp_path / "cache.npz"
    source.write_bytes(PAYLOAD)
    X = np.arange(6, dtype=np.uint8).reshape(2, 3)
    record = cache_record(source, 3)
    assert str(record["source_sha256"]) == PAYLOAD_SHA and int(record["source_size"]) == len(
        PAYLOAD)

    def load(**kwargs):
        return load_npz_cache(path, ("X",), **{"source": source, "version": 3, **kwargs})

    atomic_savez(path, X=X, **record)
    np.testing.assert_array_equal(load()["X"], X)
    # the archive moved or touched, same bytes: its SHA-256 says it is the same file
    os.utime(source, ns=(0, 0))
    np.testing.assert_array_equal(load()["X"], X)
    # without its archive, a recorded cache is used as it is (a cache kept offline)
    source.rename(tmp_path / "elsewhere")
    np.testing.assert_array_equal(load()["X"], X)
    (tmp_path / "elsewhere").rename(source)
    with pytest.warns(CacheWarning, match="version 3 of the parser, not 4"):
        assert load(version=4) is None
    assert not path.exists()
    atomic_savez(path, X=X, **record)
    with pytest.warns(CacheWarning, match="X is odd; and too small"):
        assert load(check=lambda arrays: ["X is odd", "and too small"]) is None
    # a cache parsed from another archive than the one now beside it
    atomic_savez(path, X=X, **record)
    source.write_bytes(PAYLOAD + b"another release")
    with pytest.warns(CacheWarning, match="parsed from another 'archive.tgz'"):
        assert load() is None
    # a valid cache without a record, written before skmia kept one: rebuilt quietly,
    # or used as it is when its archive is not there to rebuild it from
    atomic_savez(path, X=X)
    assert load() is None and not path.exists()
    atomic_savez(path, X=X)
    np.testing.assert_array_equal(load(source=tmp_path / "elsewhere")["X"], X)
    with pytest.warns(CacheWarning, match="X is odd"):
        assert load(check=lambda arrays: ["X is odd"]) is None
    atomic_savez(path, X=X, **{**record, "source_size": np.array([1, 2])})
    with pytest.warns(CacheWarning, match="record of the archive is malformed"):
        assert load() is None
    atomic_savez(path, X=X, cache_version=np.int64(3))
    with pytest.warns(CacheWarning, match="record of the archive .* is incomplete"):
        assert load() is None
    assert leftovers(tmp_path) == ["archive.tgz"]


def test_atomic_savez_on_read_only_folder(tmp_path):
    assert atomic_savez(tmp_path / "no-such-folder" / "cache.npz", X=np.zeros(2)) is False
