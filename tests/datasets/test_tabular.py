"""The tabular fetchers, on small archives written here in the real formats."""

import dataclasses
import hashlib
import io
import shutil
import tarfile

import numpy as np
import pytest

from skmia.datasets import (
    CacheWarning,
    _tabular,
    fetch_location30,
    fetch_purchase100,
    fetch_texas100,
)
from skmia.datasets._fetch import RemoteFile, atomic_savez, cache_record

DEAD = ("http://127.0.0.1:9/dead",)
RNG = np.random.default_rng(0)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def make_tgz(members):
    """A gzip tarball with ``members``: name -> bytes (or a TarInfo for special entries)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            if isinstance(data, tarfile.TarInfo):
                tar.addfile(data)
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def table(n, d, n_classes):
    X = (RNG.random((n, d)) < 0.3).astype(int)
    labels = np.arange(n) % n_classes + 1  # 1..n_classes, every class present
    RNG.shuffle(labels)
    return X, labels


def csv_rows(labels, X, quote_label=False):
    lines = []
    for label, row in zip(labels, X, strict=True):
        first = f'"{label}"' if quote_label else str(label)
        lines.append(",".join([first, *map(str, row)]))
    return ("\n".join(lines) + "\n").encode()


def small_spec(monkeypatch, attr, archive_bytes, n, d, n_classes, perm_bytes=None, urls=DEAD):
    spec = getattr(_tabular, attr)
    permutation = None
    if spec.permutation is not None:
        permutation = dataclasses.replace(
            spec.permutation, urls=DEAD, sha256=sha256(perm_bytes) if perm_bytes else None
        )
    new = dataclasses.replace(
        spec,
        archive=RemoteFile(spec.archive.filename, urls, sha256(archive_bytes)),
        n_samples=n,
        n_features=d,
        n_classes=n_classes,
        permutation=permutation,
    )
    monkeypatch.setattr(_tabular, attr, new)
    return new


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


# --------------------------------------------------------------------------- Location30


@pytest.fixture
def location_home(tmp_path, monkeypatch):
    X, labels = table(40, 7, 5)
    archive = make_tgz({"bangkok": csv_rows(labels, X, quote_label=True)})
    small_spec(monkeypatch, "LOCATION30", archive, 40, 7, 5)
    (tmp_path / "dataset_location.tgz").write_bytes(archive)
    return tmp_path, X, labels


def test_location_parses_quoted_labels(location_home):
    home, X, labels = location_home
    bunch = fetch_location30(data_home=home, download_if_missing=False)
    assert bunch.data.dtype == np.float32 and bunch.target.dtype == np.int64
    np.testing.assert_array_equal(bunch.data, X)
    np.testing.assert_array_equal(bunch.target, labels - 1)
    assert len(bunch.feature_names) == 7 and "Location30" in bunch.DESCR
    assert (home / "location30.npz").is_file()


def test_location_cache_is_used_and_rebuilt(location_home):
    home, X, labels = location_home
    fetch_location30(data_home=home)
    (home / "dataset_location.tgz").unlink()
    X2, y2 = fetch_location30(data_home=home, download_if_missing=False, return_X_y=True)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, labels - 1)
    # a corrupt cache without the archive: a clear error naming the missing archive
    (home / "location30.npz").write_bytes(b"garbage")
    with pytest.warns(CacheWarning, match="location30.npz"), \
            pytest.raises(FileNotFoundError, match="dataset_location.tgz"):
        fetch_location30(data_home=home, download_if_missing=False)
    assert not (home / "location30.npz").exists()


def cached(home, name):
    with np.load(home / f"{name}.npz", allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


@pytest.mark.parametrize("change, problem", [
    ({"y": np.arange(17) % 5}, r"y holds \(17,\) labels, expected \(40,\)"),
    ({"y": np.arange(40) % 6}, "labels from 0 to 5, expected 0..4"),
    ({"y": -np.ones(40, dtype=np.int64)}, "labels from -1 to -1"),
    ({"y": (np.arange(40) % 5).astype(np.float64)}, "y is float64, expected int64"),
    ({"X": np.zeros((40, 6), dtype=np.uint8)}, r"X has shape \(40, 6\), expected \(40, 7\)"),
    ({"X": np.full((40, 7), np.nan, dtype=np.float32)}, "X holds non-finite values"),
    ({"X": np.zeros((40, 7), dtype=np.int32)}, "X is int32"),
    ({"cache_version": np.int64(0)}, "version 0 of the parser, not 1"),
])
def test_an_invalid_cache_is_rebuilt_from_the_archive(location_home, change, problem):
    home, X, labels = location_home
    fetch_location30(data_home=home)
    arrays = {**cached(home, "location30"), **change}
    atomic_savez(home / "location30.npz", **arrays)
    with pytest.warns(CacheWarning, match=problem):
        X2, y2 = fetch_location30(data_home=home, return_X_y=True)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, labels - 1)
    rebuilt = cached(home, "location30")
    np.testing.assert_array_equal(rebuilt["y"], labels - 1)
    assert int(rebuilt["cache_version"]) == _tabular.CACHE_VERSION
    fetch_location30(data_home=home)  # and the rebuilt cache is used without a warning


def test_a_cache_of_another_archive_is_rebuilt(tmp_path, monkeypatch):
    # Purchase100 publishes no SHA-256: any archive placed by hand is used as is
    X, labels = table(30, 5, 4)
    first = make_tgz({"dataset_purchase": csv_rows(labels, X)})
    spec = small_spec(monkeypatch, "PURCHASE100", first, 30, 5, 4, npy_bytes(np.arange(30)))
    monkeypatch.setattr(_tabular, "PURCHASE100", dataclasses.replace(
        spec, archive=dataclasses.replace(spec.archive, sha256=None)))
    (tmp_path / "dataset_purchase.tgz").write_bytes(first)
    (tmp_path / "random_r_purchase100.npy").write_bytes(npy_bytes(np.arange(30)))
    fetch_purchase100(data_home=tmp_path)
    assert str(cached(tmp_path, "purchase100")["source_sha256"]) == sha256(first)
    X_new, labels_new = table(30, 5, 4)
    second = make_tgz({"dataset_purchase": csv_rows(labels_new, X_new)})
    (tmp_path / "dataset_purchase.tgz").write_bytes(second)
    with pytest.warns(CacheWarning, match="parsed from another 'dataset_purchase.tgz'"):
        bunch = fetch_purchase100(data_home=tmp_path)
    np.testing.assert_array_equal(bunch.data, X_new)
    np.testing.assert_array_equal(bunch.target, labels_new - 1)
    assert str(cached(tmp_path, "purchase100")["source_sha256"]) == sha256(second)


def test_location_checksum_mismatch(location_home):
    home, _, _ = location_home
    (home / "dataset_location.tgz").write_bytes(make_tgz({"bangkok": b'"1",0,1\n'}))
    with pytest.raises(ValueError, match="SHA-256"):
        fetch_location30(data_home=home)
    assert not (home / "location30.npz").exists()


def test_truncated_archive(tmp_path, monkeypatch):
    X, labels = table(300, 50, 5)
    archive = make_tgz({"bangkok": csv_rows(labels, X, quote_label=True)})
    truncated = archive[: len(archive) // 2]
    small_spec(monkeypatch, "LOCATION30", truncated, 300, 50, 5)
    (tmp_path / "dataset_location.tgz").write_bytes(truncated)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        fetch_location30(data_home=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset_location.tgz"]


def test_missing_archive_without_download(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        fetch_location30(data_home=tmp_path, download_if_missing=False)
    message = str(info.value)
    assert "dataset_location.tgz" in message and str(tmp_path) in message
    assert "privacytrustlab" in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "rows, problem",
    [
        (b'"0",0,1\n"2",1,0\n', "expected 1..5"),
        (b'"1",0,1\n"6",1,0\n', "expected 1..5"),
        (b'"1",0,1\n"x",1,0\n', "not a numeric CSV"),
        (b'"1",0,1\n"2",1\n', "missing or non-finite"),
        (b'"1",0,1,1\n"2",1,0,0\n', "3 features, expected 2 x 2"),
    ],
)
def test_malformed_csv(tmp_path, monkeypatch, rows, problem):
    archive = make_tgz({"bangkok": rows})
    small_spec(monkeypatch, "LOCATION30", archive, 2, 2, 5)
    (tmp_path / "dataset_location.tgz").write_bytes(archive)
    with pytest.raises(ValueError, match=problem):
        fetch_location30(data_home=tmp_path)
    assert not (tmp_path / "location30.npz").exists()


def test_archive_without_the_member(tmp_path, monkeypatch):
    archive = make_tgz({"paris": b'"1",0\n'})
    small_spec(monkeypatch, "LOCATION30", archive, 1, 1, 1)
    (tmp_path / "dataset_location.tgz").write_bytes(archive)
    with pytest.raises(ValueError, match="no member named 'bangkok'"):
        fetch_location30(data_home=tmp_path)


def test_hostile_archive_is_read_not_extracted(tmp_path, monkeypatch):
    link = tarfile.TarInfo("bangkok")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    archive = make_tgz({"../escape": b"owned\n", "/abs": b"owned\n", "bangkok": link})
    small_spec(monkeypatch, "LOCATION30", archive, 1, 1, 1)
    home = tmp_path / "home"
    home.mkdir()
    (home / "dataset_location.tgz").write_bytes(archive)
    with pytest.raises(ValueError, match="not a regular file"):
        fetch_location30(data_home=home)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["dataset_location.tgz", "home"]


# --------------------------------------------------------------------------- Texas100


@pytest.mark.parametrize("labels_first", [False, True])
def test_texas_two_files_and_permutation(tmp_path, monkeypatch, labels_first):
    X, labels = table(30, 9, 4)
    feats = ("\n".join(",".join(map(str, row)) for row in X) + "\n").encode()
    label_file = ("\n".join(map(str, labels)) + "\n").encode()
    members = {"texas/100/feats": feats, "texas/100/labels": label_file}
    if labels_first:
        members = dict(reversed(members.items()))
    archive = make_tgz(members)
    perm = np.random.default_rng(1).permutation(30)
    perm_bytes = npy_bytes(perm)
    small_spec(monkeypatch, "TEXAS100", archive, 30, 9, 4, perm_bytes)
    (tmp_path / "dataset_texas.tgz").write_bytes(archive)
    (tmp_path / "random_r_texas100.npy").write_bytes(perm_bytes)
    Xt, yt = fetch_texas100(data_home=tmp_path, return_X_y=True)
    np.testing.assert_array_equal(Xt, X[perm])
    np.testing.assert_array_equal(yt, labels[perm] - 1)
    assert Xt.dtype == np.float32 and yt.dtype == np.int64


def test_texas_label_count_mismatch(tmp_path, monkeypatch):
    archive = make_tgz({"texas/100/feats": b"0,1\n1,0\n", "texas/100/labels": b"1\n"})
    small_spec(monkeypatch, "TEXAS100", archive, 2, 2, 2, npy_bytes(np.arange(2)))
    (tmp_path / "dataset_texas.tgz").write_bytes(archive)
    with pytest.raises(ValueError, match="2 rows but 'texas/100/labels' has 1"):
        fetch_texas100(data_home=tmp_path)


def test_bad_permutation_file(tmp_path, monkeypatch):
    archive = make_tgz({"texas/100/feats": b"0,1\n1,0\n", "texas/100/labels": b"1\n2\n"})
    bad = npy_bytes(np.array([0, 0]))
    small_spec(monkeypatch, "TEXAS100", archive, 2, 2, 2, bad)
    (tmp_path / "dataset_texas.tgz").write_bytes(archive)
    (tmp_path / "random_r_texas100.npy").write_bytes(bad)
    with pytest.raises(ValueError, match="not a permutation"):
        fetch_texas100(data_home=tmp_path)


# --------------------------------------------------------------------------- Purchase100


def test_purchase_downloaded_over_http(http_root, tmp_path, monkeypatch):
    root, url = http_root
    X, labels = table(50, 12, 10)
    archive = make_tgz({"dataset_purchase": csv_rows(labels, X)})
    perm = np.random.default_rng(2).permutation(50)
    perm_bytes = npy_bytes(perm)
    (root / "dataset_purchase.tgz").write_bytes(archive)
    (root / "random_r_purchase100.npy").write_bytes(perm_bytes)
    spec = small_spec(
        monkeypatch, "PURCHASE100", archive, 50, 12, 10, perm_bytes,
        urls=(url + "dataset_purchase.tgz",),
    )
    monkeypatch.setattr(
        _tabular,
        "PURCHASE100",
        dataclasses.replace(
            spec,
            permutation=dataclasses.replace(
                spec.permutation, urls=(DEAD[0], url + "random_r_purchase100.npy")
            ),
        ),
    )
    home = tmp_path / "home"
    bunch = fetch_purchase100(data_home=home)
    np.testing.assert_array_equal(bunch.data, X[perm])
    np.testing.assert_array_equal(bunch.target, labels[perm] - 1)
    assert sorted(p.name for p in home.iterdir()) == [
        "dataset_purchase.tgz",
        "purchase100.npz",
        "random_r_purchase100.npy",
    ]
    cached = np.load(home / "purchase100.npz")
    assert cached["X"].dtype == np.uint8, "binary features are cached compactly"
    np.testing.assert_array_equal(cached["X"], X)  # the cache keeps the archive's order


def test_published_checksums_are_pinned():
    assert _tabular.TEXAS100.permutation.sha256.startswith("4931bf6e")
    assert _tabular.PURCHASE100.permutation.sha256.startswith("c72372c3")
    assert _tabular.LOCATION30.archive.sha256.startswith("927203f8")
    for spec in (_tabular.TEXAS100, _tabular.PURCHASE100, _tabular.LOCATION30):
        assert len(spec.archive.urls) == 2, "a primary source and a mirror"


# --------------------------------------------------------------------------- the real thing


def test_real_location30(location_data_home):
    bunch = fetch_location30(data_home=location_data_home, download_if_missing=False)
    assert bunch.data.shape == (5010, 446)
    assert bunch.data.dtype == np.float32 and bunch.target.dtype == np.int64
    assert set(np.unique(bunch.data)) == {0.0, 1.0}
    np.testing.assert_array_equal(np.unique(bunch.target), np.arange(30))
    # the first record of the archive is labelled "13"
    assert bunch.target[0] == 12


def test_real_location30_cache_with_17_labels_is_rebuilt(location_data_home, tmp_path):
    archive = tmp_path / "dataset_location.tgz"
    shutil.copyfile(location_data_home / "dataset_location.tgz", archive)
    X, y = fetch_location30(data_home=tmp_path, return_X_y=True)
    arrays = cached(tmp_path, "location30")
    assert str(arrays["source_sha256"]) == _tabular.LOCATION30.archive.sha256
    # the cache of the issue: the 5,010 rows, and 17 labels
    atomic_savez(tmp_path / "location30.npz", **{**arrays, "y": arrays["y"][:17]})
    with pytest.warns(CacheWarning, match=r"y holds \(17,\) labels, expected \(5010,\)"):
        X2, y2 = fetch_location30(data_home=tmp_path, return_X_y=True)
    assert X2.shape == (5010, 446) and y2.shape == (5010,)
    np.testing.assert_array_equal(y2, y)
    # the same rows and labels, cached before skmia recorded the archive: rebuilt quietly
    atomic_savez(tmp_path / "location30.npz", X=arrays["X"], y=arrays["y"])
    fetch_location30(data_home=tmp_path)
    assert "source_sha256" in cached(tmp_path, "location30")
    # and the 17 labels without a record: rebuilt, loudly
    atomic_savez(tmp_path / "location30.npz", X=arrays["X"], y=arrays["y"][:17])
    with pytest.warns(CacheWarning, match=r"y holds \(17,\) labels"):
        assert fetch_location30(data_home=tmp_path).target.shape == (5010,)
    assert cache_record(archive, 1)["source_sha256"] == _tabular.LOCATION30.archive.sha256
