"""CIFAR-10 and CIFAR-100: the image benchmarks of the RelaxLoss paper.

The archives are the publisher's ``python`` versions: a gzip tarball of Python 2
pickles, one per batch, each a dict holding a ``uint8`` array of 10,000 (or 50,000)
flattened 3x32x32 images and a list of labels. A pickle can run arbitrary code when
loaded, so two things stand between the archive and ``pickle``: the archive's MD5 (the
publisher's) is verified before anything is read, and the batches are loaded by an
unpickler that builds nothing but strings, numbers, lists, dicts and numpy arrays, so
even a file that got past the checksum cannot call anything. Members are read straight
from the compressed stream, never extracted. The parsed images are cached as ``uint8``
in an ``.npz`` beside the archive, with a record of the archive they were parsed from (a
cache that does not match it, or holds arrays of the wrong shape, type or label range,
is rebuilt); normalisation happens on every load.

torchvision is not needed (its dataset classes unpickle without restriction and extract
the archive to disk); the training augmentation lives with the networks, in
:class:`skmia.nn.RandomCropFlip`.
"""

import pickle
import tarfile
import zlib
from dataclasses import dataclass

import numpy as np
from sklearn.utils import Bunch

from .._registry import DATASETS, RemoteFile
from ._fetch import (
    atomic_savez,
    cache_record,
    fetch_file,
    get_data_home,
    load_npz_cache,
)
from ._tabular import _member_name

__all__ = ["CIFAR_MEAN", "CIFAR_STD", "fetch_cifar10", "fetch_cifar100", "normalize_cifar"]

#: Per-channel (R, G, B) mean of the reference code's ``Normalize``, on values in [0, 1].
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
#: Per-channel (R, G, B) standard deviation of the reference code's ``Normalize``.
CIFAR_STD = (0.2023, 0.1994, 0.2010)

# the version of the parsed cache: a cache written by another one is rebuilt
CACHE_VERSION = 1

_PIXELS = 3 * 32 * 32


@dataclass(frozen=True)
class _CIFARSpec:
    """How to read one CIFAR archive; its file (and checksum) is the registry's."""

    cache: str  # the parsed .npz's name in the data home
    title: str
    archive: RemoteFile
    folder: str
    batches: tuple  # in the reference's order: training batches, then test
    label_key: str
    meta: str
    names_key: str
    n_samples: int
    n_classes: int
    descr: str


CIFAR10 = _CIFARSpec(
    cache=DATASETS["cifar10"].cache,
    title="CIFAR-10",
    archive=DATASETS["cifar10"].archive,
    folder="cifar-10-batches-py",
    batches=(*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"),
    label_key="labels",
    meta="batches.meta",
    names_key="label_names",
    n_samples=60_000,
    n_classes=10,
    descr=(
        "CIFAR-10 (Krizhevsky, 2009): 60,000 colour images of 32x32 pixels in 10 classes"
        " (airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck), 6,000"
        " per class. The 50,000 training images (data_batch_1 .. data_batch_5) come"
        " first, then the 10,000 test images, as the RelaxLoss reference code merges"
        " them. Images are float32 arrays (3, 32, 32), channels R, G, B, scaled to [0, 1]"
        " and normalised per channel with mean (0.4914, 0.4822, 0.4465) and standard"
        " deviation (0.2023, 0.1994, 0.2010)."
    ),
)

CIFAR100 = _CIFARSpec(
    cache=DATASETS["cifar100"].cache,
    title="CIFAR-100",
    archive=DATASETS["cifar100"].archive,
    folder="cifar-100-python",
    batches=("train", "test"),
    label_key="fine_labels",
    meta="meta",
    names_key="fine_label_names",
    n_samples=60_000,
    n_classes=100,
    descr=(
        "CIFAR-100 (Krizhevsky, 2009): 60,000 colour images of 32x32 pixels in 100"
        " classes (the fine labels; the 20 superclasses are not used), 600 per class."
        " The 50,000 training images come first, then the 10,000 test images, as the"
        " RelaxLoss reference code merges them. Images are float32 arrays (3, 32, 32),"
        " channels R, G, B, scaled to [0, 1] and normalised per channel with mean"
        " (0.4914, 0.4822, 0.4465) and standard deviation (0.2023, 0.1994, 0.2010), the"
        " reference code's CIFAR-10 statistics, which it uses for CIFAR-100 too."
    ),
)


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _BatchUnpickler(pickle.Unpickler):
    """Loads CIFAR batches: containers, strings, numbers and numpy arrays, nothing else.

    The batches were written by Python 2 with numpy arrays inside; an array is rebuilt
    from ``numpy.core.multiarray._reconstruct``, ``numpy.ndarray`` and ``numpy.dtype``,
    the only globals allowed. Any other global (a function to call) is refused.
    """

    def find_class(self, module, name):
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _numpy_reconstruct()
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return np.dtype
        raise pickle.UnpicklingError(
            f"global '{module}.{name}' is not allowed in a CIFAR batch (only numpy arrays are)"
        )


def _unpickle(fileobj, member):
    try:
        # latin1: the Python 2 strings holding the arrays' bytes decode byte for byte
        entry = _BatchUnpickler(fileobj, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, OverflowError, UnicodeDecodeError) as exc:
        raise ValueError(f"member {member!r} is not a readable CIFAR pickle: {exc}") from exc
    if not isinstance(entry, dict):
        raise ValueError(f"member {member!r} holds a {type(entry).__name__}, not a dict")
    return entry


def _parse_batch(entry, member, spec):
    data = entry.get("data")
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == _PIXELS
    ):
        shown = (
            f"{data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise ValueError(
            f"member {member!r} has no 'data' array of uint8 images (n, {_PIXELS}); "
            f"found {shown}"
        )
    labels = entry.get(spec.label_key)
    if not isinstance(labels, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in labels
    ):
        raise ValueError(f"member {member!r} has no list of integer {spec.label_key!r}")
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(data):
        raise ValueError(
            f"member {member!r} has {len(data)} images but {len(labels)} {spec.label_key!r}"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= spec.n_classes):
        raise ValueError(
            f"member {member!r} has {spec.label_key!r} from {labels.min()} to "
            f"{labels.max()}, expected 0..{spec.n_classes - 1}"
        )
    return data.reshape(-1, 3, 32, 32), labels


def _parse_meta(entry, member, spec):
    names = entry.get(spec.names_key)
    if (
        not isinstance(names, list)
        or len(names) != spec.n_classes
        or not all(isinstance(v, str) for v in names)
    ):
        raise ValueError(
            f"member {member!r} has no list of {spec.n_classes} class names "
            f"{spec.names_key!r}"
        )
    return np.asarray(names, dtype=str)


def _read_archive(path, spec):
    """``(images, labels, class names)`` from the archive at ``path``, in one pass."""
    wanted = {f"{spec.folder}/{name}": name for name in (*spec.batches, spec.meta)}
    batches, names = {}, None
    try:
        # "r|*": one forward pass over the compressed stream; members are read, never
        # extracted, so names with "..", absolute paths or links cannot escape
        with tarfile.open(path, mode="r|*") as tar:
            for member in tar:
                name = wanted.get(_member_name(member))
                if name is None:
                    continue
                if not member.isfile():
                    raise ValueError(f"member {member.name!r} is not a regular file")
                entry = _unpickle(tar.extractfile(member), member.name)
                if name == spec.meta:
                    names = _parse_meta(entry, member.name, spec)
                else:
                    batches[name] = _parse_batch(entry, member.name, spec)
    except (tarfile.TarError, EOFError, OSError, zlib.error, ValueError) as exc:
        raise ValueError(
            f"{str(path)!r} is not a readable {spec.title} archive ({exc}). Delete it to "
            f"download it again, or replace it with the file from {spec.archive.urls[0]}."
        ) from exc
    found = {*batches, *([spec.meta] if names is not None else [])}
    missing = [f"{spec.folder}/{n}" for n in (*spec.batches, spec.meta) if n not in found]
    if missing:
        raise ValueError(
            f"{str(path)!r} is not a {spec.title} archive: it has no member named "
            f"{', '.join(repr(m) for m in missing)}. Replace it with the file from "
            f"{spec.archive.urls[0]}."
        )
    images = np.concatenate([batches[b][0] for b in spec.batches])
    labels = np.concatenate([batches[b][1] for b in spec.batches])
    if len(images) != spec.n_samples:
        raise ValueError(
            f"{str(path)!r} holds {len(images)} images, expected {spec.n_samples} for "
            f"{spec.title}. Replace it with the file from {spec.archive.urls[0]}."
        )
    return images, labels, names


def _cache_problems(arrays, spec):
    """What is wrong with cached CIFAR arrays of ``spec``: shapes, dtypes, label range."""
    images, target, names = arrays["images"], arrays["target"], arrays["target_names"]
    problems = []
    if images.shape != (spec.n_samples, 3, 32, 32) or images.dtype != np.uint8:
        problems.append(
            f"images are {images.dtype} of shape {images.shape}, expected uint8 of shape "
            f"({spec.n_samples}, 3, 32, 32)"
        )
    if target.shape != (spec.n_samples,) or not np.issubdtype(target.dtype, np.integer):
        problems.append(
            f"target is {target.dtype} of shape {target.shape}, expected "
            f"{spec.n_samples} integer labels"
        )
    elif len(target) and (target.min() < 0 or target.max() >= spec.n_classes):
        problems.append(
            f"labels from {target.min()} to {target.max()}, expected 0..{spec.n_classes - 1}"
        )
    if names.shape != (spec.n_classes,) or names.dtype.kind != "U":
        problems.append(f"target_names holds {names.shape} names, expected {spec.n_classes}")
    return problems


def _load_raw(spec, data_home, download_if_missing):
    """``(uint8 images, labels, class names)`` from the cache, or the archive."""
    home = get_data_home(data_home)
    cache = home / spec.cache
    keys = ("images", "target", "target_names")
    cached = load_npz_cache(
        cache, keys, source=home / spec.archive.filename, version=CACHE_VERSION,
        check=lambda arrays: _cache_problems(arrays, spec),
    )
    if cached is not None:
        return tuple(cached[k] for k in keys)
    archive = fetch_file(spec.archive, data_home, download_if_missing=download_if_missing)
    record = cache_record(archive, CACHE_VERSION)
    images, target, names = _read_archive(archive, spec)
    atomic_savez(cache, images=images, target=target, target_names=names, **record)
    return images, target, names


def normalize_cifar(images):
    """CIFAR ``uint8`` images ``(n, 3, H, W)`` as the reference code feeds them to a model.

    ``ToTensor`` (scale to [0, 1]) then ``Normalize(CIFAR_MEAN, CIFAR_STD)``, computed in
    float32 in the same order, so that the values equal torchvision's bit for bit.

    Parameters
    ----------
    images : ndarray of uint8, shape (n_samples, 3, height, width)
        Images with channels R, G, B.

    Returns
    -------
    X : ndarray of float32, shape (n_samples, 3, height, width)
        ``(images / 255 - mean) / std`` per channel.

    Examples
    --------
    >>> import numpy as np
    >>> from skmia.datasets import normalize_cifar
    >>> black_and_white = np.stack([np.zeros((3, 1, 1)), np.full((3, 1, 1), 255)])
    >>> normalize_cifar(black_and_white.astype(np.uint8))[:, :, 0, 0].round(4)
    array([[-2.4291, -2.4183, -2.2214],
           [ 2.5141,  2.5968,  2.7537]], dtype=float32)
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(
            f"images must be uint8 of shape (n, 3, height, width), got {images.dtype} "
            f"of shape {images.shape}."
        )
    X = images.astype(np.float32)
    X /= np.float32(255)
    X -= np.asarray(CIFAR_MEAN, dtype=np.float32)[:, None, None]
    X /= np.asarray(CIFAR_STD, dtype=np.float32)[:, None, None]
    return X


def _fetch_cifar(spec, data_home, download_if_missing, return_X_y):
    images, target, names = _load_raw(spec, data_home, download_if_missing)
    X = normalize_cifar(images)
    y = np.ascontiguousarray(target, dtype=np.int64)
    if return_X_y:
        return X, y
    return Bunch(data=X, target=y, target_names=np.asarray(names, dtype=object), DESCR=spec.descr)


_FETCHER_PARAMETERS = """
    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding the archive and the parsed cache. None means
        ``$SKMIA_DATA_HOME`` if set, else ``~/skmia_data``.
    download_if_missing : bool, default=True
        Download the archive when it is missing. When False, a missing archive raises
        ``FileNotFoundError`` naming the file, its URL and the folder to put it in.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``data``: float32 images of shape (60000, 3, 32, 32), normalised as the
        reference code does (see :func:`normalize_cifar`); ``target``: int64 classes
        from 0; ``target_names``: the class names of the archive's meta file;
        ``DESCR``. There is no ``feature_names``: the records are images.
    (data, target) : tuple
        When ``return_X_y`` is True.

    Raises
    ------
    FileNotFoundError
        The archive is missing and ``download_if_missing`` is False.
    OSError
        The download failed; the message says where to put the file by hand.
    ValueError
        The archive in the data home fails its MD5 check, or is truncated or not the
        expected file.

    Notes
    -----
    The archive's MD5 is checked before any of it is read, and its Python pickles are
    loaded by an unpickler that can build only numpy arrays and plain containers. The
    parsed ``uint8`` images are cached (about 185 MB) beside the archive; the float32
    array returned takes 737 MB.

    No augmentation is applied here. The reference code's optional training
    augmentation (random crop with padding 4, horizontal flip) is part of the network:
    ``module__augment=True`` for :func:`skmia.nn.resnet20` or :func:`skmia.nn.vgg11_bn`,
    or :class:`skmia.nn.RandomCropFlip` in front of any module; it acts in training
    mode only.

    References
    ----------
    .. [1] A. Krizhevsky. "Learning Multiple Layers of Features from Tiny Images".
       Technical report, University of Toronto, 2009.
"""


def fetch_cifar10(*, data_home=None, download_if_missing=True, return_X_y=False):
    """Load CIFAR-10: 60,000 colour images of 32x32 pixels, 10 classes.

    Downloads ``cifar-10-python.tar.gz`` (163 MB, MD5 verified) from the University of
    Toronto, reads its batches ``data_batch_1`` .. ``data_batch_5`` then ``test_batch``
    (the reference code's order: 50,000 training images, then 10,000 test images) and
    the class names from ``batches.meta``, and caches them as ``cifar10.npz``.
    :func:`skmia.model_selection.membership_split` then gives the paper's rows.
    {parameters}
    Examples
    --------
    >>> from skmia.datasets import fetch_cifar10
    >>> X, y = fetch_cifar10(return_X_y=True)  # doctest: +SKIP
    >>> X.shape, X.dtype, y.max()  # doctest: +SKIP
    ((60000, 3, 32, 32), dtype('float32'), 9)
    """
    return _fetch_cifar(CIFAR10, data_home, download_if_missing, return_X_y)


def fetch_cifar100(*, data_home=None, download_if_missing=True, return_X_y=False):
    """Load CIFAR-100: 60,000 colour images of 32x32 pixels, 100 classes (fine labels).

    Downloads ``cifar-100-python.tar.gz`` (161 MB, MD5 verified) from the University of
    Toronto, reads its batches ``train`` then ``test`` (the reference code's order) with
    their ``fine_labels``, and the class names ``fine_label_names`` from ``meta``, and
    caches them as ``cifar100.npz``.
    {parameters}
    Examples
    --------
    >>> from skmia.datasets import fetch_cifar100
    >>> bunch = fetch_cifar100()  # doctest: +SKIP
    >>> bunch.data.shape, len(bunch.target_names)  # doctest: +SKIP
    ((60000, 3, 32, 32), 100)
    """
    return _fetch_cifar(CIFAR100, data_home, download_if_missing, return_X_y)


for _fetcher in (fetch_cifar10, fetch_cifar100):
    _fetcher.__doc__ = _fetcher.__doc__.replace("    {parameters}", _FETCHER_PARAMETERS)
del _fetcher
