"""Texas100, Purchase100 and Location30: the tabular membership-inference benchmarks.

Each archive is read member by member straight from the (gzip) stream: nothing is
extracted to disk, so a hostile archive cannot write outside the data home. The parsed
arrays are cached as an ``.npz`` beside the archive, in the archive's own row order, with
a record of the archive they were parsed from; a cache that does not match that archive
or holds arrays of the wrong shape, type or label range is rebuilt (with a
:class:`~skmia.datasets.CacheWarning`). The reference code's fixed row permutation is
applied after loading, as the reference does.
"""

import io
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from .._registry import DATASETS, RemoteFile
from ._fetch import (
    atomic_savez,
    cache_record,
    fetch_file,
    get_data_home,
    load_npz_cache,
)

__all__ = ["fetch_texas100", "fetch_purchase100", "fetch_location30"]

# the version of the parsed cache: a cache written by another one is rebuilt
CACHE_VERSION = 1



@dataclass(frozen=True)
class _TabularSpec:
    """How to read one dataset; its files (and checksums) are the registry's."""

    cache: str  # the parsed .npz's name in the data home
    title: str
    archive: RemoteFile
    members: tuple
    parse: Callable
    n_samples: int
    n_features: int
    n_classes: int
    permutation: RemoteFile | None
    descr: str


def _read_csv(fileobj, what):
    try:
        frame = pd.read_csv(fileobj, header=None, dtype=np.float32, engine="c")
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"{what} is not a numeric CSV: {exc}") from exc
    return frame.to_numpy(dtype=np.float32, copy=False)


def _parse_label_first(files, member):
    table = _read_csv(files[member], f"member {member!r}")
    return table[:, 1:], table[:, 0]


def _parse_texas(files):
    X = _read_csv(files["texas/100/feats"], "member 'texas/100/feats'")
    labels = _read_csv(files["texas/100/labels"], "member 'texas/100/labels'")
    if labels.shape[1] != 1:
        raise ValueError(
            f"member 'texas/100/labels' should hold one label per line, "
            f"found {labels.shape[1]} columns"
        )
    if len(labels) != len(X):
        raise ValueError(
            f"'texas/100/feats' has {len(X)} rows but 'texas/100/labels' has {len(labels)}"
        )
    return X, labels[:, 0]


TEXAS100 = _TabularSpec(
    cache=DATASETS["texas"].cache,
    title="Texas100",
    archive=DATASETS["texas"].archive,
    members=("texas/100/feats", "texas/100/labels"),
    parse=_parse_texas,
    n_samples=67_330,
    n_features=6_169,
    n_classes=100,
    permutation=DATASETS["texas"].permutation,
    descr=(
        "Texas100 (Shokri et al., 2017): hospital discharge records of the Texas Department"
        " of State Health Services, 67,330 patients x 6,169 binary features, 100 classes"
        " (the main procedure). Rows in the RelaxLoss reference code's fixed order"
        " (random_r_texas100.npy)."
    ),
)

PURCHASE100 = _TabularSpec(
    cache=DATASETS["purchase"].cache,
    title="Purchase100",
    archive=DATASETS["purchase"].archive,
    members=("dataset_purchase",),
    parse=lambda files: _parse_label_first(files, "dataset_purchase"),
    n_samples=197_324,
    n_features=600,
    n_classes=100,
    permutation=DATASETS["purchase"].permutation,
    descr=(
        "Purchase100 (Shokri et al., 2017): Kaggle's Acquire Valued Shoppers purchase"
        " histories, 197,324 customers x 600 binary features, 100 classes (clusters of"
        " shopping profiles). Rows in the RelaxLoss reference code's fixed order"
        " (random_r_purchase100.npy)."
    ),
)

LOCATION30 = _TabularSpec(
    cache=DATASETS["location"].cache,
    title="Location30",
    archive=DATASETS["location"].archive,
    members=("bangkok",),
    parse=lambda files: _parse_label_first(files, "bangkok"),
    n_samples=5_010,
    n_features=446,
    n_classes=30,
    permutation=DATASETS["location"].permutation,  # none: rows in the archive's order
    descr=(
        "Location30 (Shokri et al., 2017): Foursquare check-ins in Bangkok, 5,010 users x"
        " 446 binary features (visited region or location type), 30 classes (clusters of"
        " mobility profiles). Rows in the archive's order."
    ),
)


def _member_name(member):
    name = member.name
    while name.startswith("./"):
        name = name[2:]
    return name


def _read_archive(path, spec):
    """Parse the members ``spec.members`` of the archive at ``path`` in one pass."""
    contents = {}
    try:
        # "r|*": a single forward pass over the compressed stream; members are only read,
        # never extracted, so names with "..", absolute paths or links cannot escape.
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                name = _member_name(member)
                if name not in spec.members:
                    continue
                if not member.isfile():
                    raise ValueError(f"member {name!r} is not a regular file")
                contents[name] = tar.extractfile(member)
                if len(contents) == len(spec.members):
                    # parse inside the stream, while the members are readable
                    return spec.parse(contents)
                # a member that arrives before the others has to be kept: parse later
                contents[name] = io.BytesIO(contents[name].read())
    except (tarfile.TarError, EOFError, OSError, zlib.error, ValueError) as exc:
        raise ValueError(
            f"{str(path)!r} is not a readable {spec.title} archive ({exc}). It may be "
            f"truncated or corrupt: delete it to download it again, or replace it with the "
            f"file from {spec.archive.urls[0]}."
        ) from exc
    missing = sorted(set(spec.members) - set(contents))
    raise ValueError(
        f"{str(path)!r} is not a {spec.title} archive: it has no member named "
        f"{', '.join(repr(m) for m in missing)}. Replace it with the file from "
        f"{spec.archive.urls[0]}."
    )


def _check_parsed(X, labels, spec, path):
    problems = []
    if X.shape != (spec.n_samples, spec.n_features):
        problems.append(
            f"{X.shape[0]} rows x {X.shape[1]} features, expected "
            f"{spec.n_samples} x {spec.n_features}"
        )
    if not np.isfinite(X).all():
        problems.append("missing or non-finite feature values")
    if not np.isfinite(labels).all() or not np.array_equal(labels, np.round(labels)):
        problems.append("labels that are missing or not integers")
    elif len(labels) and (labels.min() < 1 or labels.max() > spec.n_classes):
        problems.append(
            f"labels from {labels.min():g} to {labels.max():g}, expected 1..{spec.n_classes}"
        )
    if problems:
        raise ValueError(
            f"{str(path)!r} does not hold {spec.title} as published: "
            + "; ".join(problems)
            + f". Replace it with the file from {spec.archive.urls[0]}."
        )


def _cache_problems(arrays, spec):
    """What is wrong with a cached ``(X, y)`` of ``spec``: shapes, dtypes, label range."""
    X, y = arrays["X"], arrays["y"]
    problems = []
    if X.shape != (spec.n_samples, spec.n_features):
        problems.append(
            f"X has shape {X.shape}, expected ({spec.n_samples}, {spec.n_features})"
        )
    if X.dtype not in (np.uint8, np.float32):
        problems.append(f"X is {X.dtype}, expected uint8 or float32")
    elif X.dtype == np.float32 and not np.isfinite(X).all():
        problems.append("X holds non-finite values")
    if y.shape != (spec.n_samples,):
        problems.append(f"y holds {y.shape} labels, expected ({spec.n_samples},)")
    if y.dtype != np.int64:
        problems.append(f"y is {y.dtype}, expected int64")
    elif len(y) and (y.min() < 0 or y.max() >= spec.n_classes):
        problems.append(
            f"labels from {y.min()} to {y.max()}, expected 0..{spec.n_classes - 1}"
        )
    return problems


def _load_raw(spec, data_home, download_if_missing):
    """Return ``(X, y)`` in the archive's row order, from the cache or the archive."""
    home = get_data_home(data_home)
    cache = home / spec.cache
    cached = load_npz_cache(
        cache, ("X", "y"), source=home / spec.archive.filename, version=CACHE_VERSION,
        check=lambda arrays: _cache_problems(arrays, spec),
    )
    if cached is not None:
        return cached["X"], cached["y"]
    archive = fetch_file(spec.archive, data_home, download_if_missing=download_if_missing)
    record = cache_record(archive, CACHE_VERSION)
    X, labels = _read_archive(archive, spec)
    _check_parsed(X, labels, spec, archive)
    y = labels.astype(np.int64) - 1
    if np.isin(X, (0.0, 1.0)).all():
        X = X.astype(np.uint8)  # binary features: a quarter of the cache size
    atomic_savez(cache, X=X, y=y, **record)
    return X, y


def _load_permutation(spec, data_home, download_if_missing):
    path = fetch_file(spec.permutation, data_home, download_if_missing=download_if_missing)
    try:
        perm = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{str(path)!r} is not a readable .npy file ({exc})") from exc
    n = spec.n_samples
    if (
        perm.ndim != 1
        or len(perm) != n
        or not np.issubdtype(perm.dtype, np.integer)
        or not np.array_equal(np.sort(perm), np.arange(n))
    ):
        raise ValueError(
            f"{str(path)!r} is not a permutation of the {n} rows of {spec.title}. Replace it "
            f"with the file from {spec.permutation.urls[0]}."
        )
    return perm


def _fetch_tabular(spec, data_home, download_if_missing, return_X_y):
    X, y = _load_raw(spec, data_home, download_if_missing)
    if spec.permutation is not None:
        perm = _load_permutation(spec, data_home, download_if_missing)
        X, y = X[perm], y[perm]
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.ascontiguousarray(y, dtype=np.int64)
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        feature_names=np.array([f"x{i}" for i in range(spec.n_features)], dtype=object),
        DESCR=spec.descr,
    )


_FETCHER_PARAMETERS = """
    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding the archive and the parsed cache. None means
        ``$SKMIA_DATA_HOME`` if set, else ``~/skmia_data``.
    download_if_missing : bool, default=True
        Download missing files. When False, a missing file raises ``FileNotFoundError``
        naming the file, its URLs and the folder to put it in.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``data`` (float32, one row per record), ``target`` (int64, classes from 0),
        ``feature_names`` and ``DESCR``.
    (data, target) : tuple
        When ``return_X_y`` is True.

    Raises
    ------
    FileNotFoundError
        A file is missing and ``download_if_missing`` is False.
    OSError
        A download failed; the message says where to put the file by hand.
    ValueError
        A file in the data home is corrupt, truncated or not the expected one.
"""


def fetch_texas100(*, data_home=None, download_if_missing=True, return_X_y=False):
    """Load Texas100: 67,330 hospital records, 6,169 binary features, 100 classes.

    Downloads ``dataset_texas.tgz`` (Shokri's archive, with a GitHub mirror) and the
    RelaxLoss reference code's row permutation ``random_r_texas100.npy`` (SHA-256
    verified), parses the two CSVs ``texas/100/feats`` and ``texas/100/labels`` once,
    caches them as ``texas100.npz`` and returns the rows in the reference code's order,
    labels shifted from 1..100 to 0..99, so that :func:`skmia.model_selection.membership_split`
    gives the paper's exact rows.
    {parameters}
    References
    ----------
    .. [1] R. Shokri, M. Stronati, C. Song, V. Shmatikov. "Membership Inference Attacks
       against Machine Learning Models". IEEE S&P 2017. arXiv:1610.05820.
    """
    return _fetch_tabular(TEXAS100, data_home, download_if_missing, return_X_y)


def fetch_purchase100(*, data_home=None, download_if_missing=True, return_X_y=False):
    """Load Purchase100: 197,324 shopping histories, 600 binary features, 100 classes.

    Downloads ``dataset_purchase.tgz`` (Shokri's archive, with a GitHub mirror) and the
    RelaxLoss reference code's row permutation ``random_r_purchase100.npy`` (SHA-256
    verified), parses the CSV ``dataset_purchase`` (label 1..100 first, then the
    features) once, caches it as ``purchase100.npz`` and returns the rows in the
    reference code's order with labels 0..99.
    {parameters}
    References
    ----------
    .. [1] R. Shokri, M. Stronati, C. Song, V. Shmatikov. "Membership Inference Attacks
       against Machine Learning Models". IEEE S&P 2017. arXiv:1610.05820.
    """
    return _fetch_tabular(PURCHASE100, data_home, download_if_missing, return_X_y)


def fetch_location30(*, data_home=None, download_if_missing=True, return_X_y=False):
    """Load Location30: 5,010 Foursquare users, 446 binary features, 30 classes.

    Downloads ``dataset_location.tgz`` from the ``privacytrustlab/datasets`` repository
    (SHA-256 verified), parses its CSV ``bangkok`` (a quoted label "1".."30", then the
    features) and caches it as ``location30.npz`` when the data home is writable. Labels
    become 0..29; rows keep the archive's order.
    {parameters}
    References
    ----------
    .. [1] R. Shokri, M. Stronati, C. Song, V. Shmatikov. "Membership Inference Attacks
       against Machine Learning Models". IEEE S&P 2017. arXiv:1610.05820.

    Examples
    --------
    >>> from skmia.datasets import fetch_location30
    >>> X, y = fetch_location30(return_X_y=True)  # doctest: +SKIP
    >>> X.shape, y.max()  # doctest: +SKIP
    ((5010, 446), 29)
    """
    return _fetch_tabular(LOCATION30, data_home, download_if_missing, return_X_y)


for _fetcher in (fetch_texas100, fetch_purchase100, fetch_location30):
    _fetcher.__doc__ = _fetcher.__doc__.replace("    {parameters}", _FETCHER_PARAMETERS)
del _fetcher
