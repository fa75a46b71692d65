"""Fashion-MNIST and MNIST: the official gzip-compressed IDX files, their SHA-256 sums (of the
files and of their decompressed content), the download mirrors, and the reader that checks every
header field against the payload."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .._internal.io import PathLike
from ..errors import DatasetError, DatasetNotFoundError
from . import fetch
from .preprocess import Arrays, finish_images

__all__ = ["IDX_FILES", "IDX_MIRRORS", "IDX_SHA256", "find_idx", "idx_candidates", "load_idx", "read_idx"]

IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

#: SHA-256 of the official gzip files, as published.
IDX_SHA256: dict[str, dict[str, str]] = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
        ),
        "train-labels-idx1-ubyte.gz": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
        ),
    },
    "mnist": {
        "train-images-idx3-ubyte.gz": (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
        ),
        "train-labels-idx1-ubyte.gz": (
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
        ),
    },
}

#: SHA-256 of the *decompressed* official IDX payloads. Repackaged copies (Debian's build
#: rewrites the gzip header: stored name and timestamp) differ from the official ``.gz`` bytes
#: but carry the same content; such a copy is accepted when its content hash matches.
IDX_CONTENT_SHA256: dict[str, dict[str, str]] = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": (
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
        ),
        "train-labels-idx1-ubyte.gz": (
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
        ),
    },
    "mnist": {
        "train-images-idx3-ubyte.gz": (
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
        ),
        "train-labels-idx1-ubyte.gz": (
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
        ),
    },
}

#: Base URLs tried in order when a file has to be downloaded.
IDX_MIRRORS: dict[str, tuple[str, ...]] = {
    "fashion-mnist": (
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
}

IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801


def gunzip(path: Path, raw: bytes) -> bytes:
    try:
        return gzip.decompress(raw)
    except EOFError as exc:
        raise DatasetError(f"{path}: gzip data is truncated ({exc})") from None
    except (OSError, zlib.error) as exc:
        raise DatasetError(f"{path}: not a valid gzip file ({exc})") from None


def read_idx(
    path: Path, kind: str, dataset: str | None = None, verify: bool = False
) -> np.ndarray:
    """Read one gzip-compressed IDX file.

    ``kind`` is ``"images"`` (returns uint8 ``[n, rows * cols]``, each image flattened row by
    row) or ``"labels"`` (uint8 ``[n]``). When ``verify`` is true and ``dataset`` and the file
    name identify a known official file, its SHA-256 is checked.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read file ({exc})") from None

    expected = IDX_SHA256.get(dataset or "", {}).get(path.name) if verify else None
    file_hash_ok = expected is None or fetch.sha256_hex(raw) == expected

    data = gunzip(path, raw)

    if not file_hash_ok:
        # A repackaged copy (different gzip header) is fine if its content is the official one.
        content_expected = IDX_CONTENT_SHA256[dataset or ""][path.name]
        if fetch.sha256_hex(data) != content_expected:
            raise DatasetError(
                f"{path}: SHA-256 mismatch for the official {dataset} file {path.name}: "
                f"expected {expected}, got {fetch.sha256_hex(raw)} (the decompressed content does not "
                f"match either). Replace the file (a cached download can simply be deleted and is "
                f"fetched again), or pass verify=False to load it anyway."
            )

    header = 16 if kind == "images" else 8
    magic_expected = IDX_IMAGES_MAGIC if kind == "images" else IDX_LABELS_MAGIC
    if len(data) < header:
        raise DatasetError(
            f"{path}: IDX {kind} file too short ({len(data)} bytes, header needs {header})"
        )
    magic = int.from_bytes(data[0:4], "big")
    if magic != magic_expected:
        raise DatasetError(
            f"{path}: bad IDX magic number 0x{magic:08x}, expected 0x{magic_expected:08x} "
            f"(IDX {kind} file)"
        )
    n = int.from_bytes(data[4:8], "big")
    if n == 0:
        raise DatasetError(f"{path}: IDX {kind} file holds no items")
    if kind == "images":
        rows = int.from_bytes(data[8:12], "big")
        cols = int.from_bytes(data[12:16], "big")
        if rows == 0 or cols == 0:
            raise DatasetError(f"{path}: IDX image size {rows}x{cols} is empty")
        item = rows * cols
    else:
        item = 1
    expected_len = header + n * item
    if len(data) != expected_len:
        dims = f"{n}x{rows}x{cols}" if kind == "images" else f"{n}"
        raise DatasetError(
            f"{path}: IDX header declares {dims} items ({expected_len} bytes with header) "
            f"but the payload has {len(data)} bytes"
        )
    arr = np.frombuffer(data, dtype=np.uint8, offset=header)
    return arr.reshape(n, item) if kind == "images" else arr


def load_idx_split(
    directory: Path, prefix: str, dataset: str, verify: bool
) -> tuple[np.ndarray, np.ndarray]:
    img_path = directory / f"{prefix}-images-idx3-ubyte.gz"
    lab_path = directory / f"{prefix}-labels-idx1-ubyte.gz"
    images = read_idx(img_path, "images", dataset, verify)
    labels = read_idx(lab_path, "labels", dataset, verify)
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(
            f"{lab_path}: holds {labels.shape[0]} labels but {img_path.name} holds "
            f"{images.shape[0]} images"
        )
    bad = labels >= 10
    if bad.any():
        raise DatasetError(
            f"{lab_path}: {int(bad.sum())} label(s) outside 0..9 (largest {int(labels.max())})"
        )
    return images, labels.astype(np.int64)


def idx_candidates(name: str, data_dir: PathLike | None) -> list[Path]:
    out: list[Path] = []
    for root in (Path(data_dir).expanduser() if data_dir is not None else None, fetch.env_root()):
        if root is not None:
            out += [root, root / name]
    out.append(fetch.cache_root() / name)
    out += [d / name for d in fetch.SYSTEM_DIRS]
    return out


def find_idx(name: str, data_dir: PathLike | None) -> Path | None:
    for cand in idx_candidates(name, data_dir):
        if fetch.has_all(cand, IDX_FILES):
            return cand
    return None


def download_idx(name: str) -> Path:
    target = fetch.cache_root() / name
    for fname in IDX_FILES:
        dest = target / fname
        if dest.is_file():
            continue
        errors = []
        for base in IDX_MIRRORS[name]:
            try:
                fetch.download(base + fname, dest, IDX_SHA256[name][fname])
                break
            except (OSError, DatasetError) as exc:
                errors.append(f"{base + fname}: {exc}")
        else:
            raise DatasetError(
                f"could not download {name} file {fname} to {dest}:\n  "
                + "\n  ".join(errors)
                + f"\nWithout network access, put the four official files in a folder and pass "
                f"it as data_dir or set {fetch.ENV_VAR}."
            )
    return target


def load_idx(
    name: str, data_dir: PathLike | None, normalize: bool, verify: bool, download: bool
) -> Arrays:
    directory = find_idx(name, data_dir)
    if directory is None:
        if not download:
            raise DatasetNotFoundError(fetch.not_found_message(name, idx_candidates(name, data_dir)))
        directory = download_idx(name)
    X_tr, y_tr = load_idx_split(directory, "train", name, verify)
    X_te, y_te = load_idx_split(directory, "t10k", name, verify)
    if X_tr.shape[1] != X_te.shape[1]:
        raise DatasetError(
            f"{directory}: train images have {X_tr.shape[1]} pixels, test images {X_te.shape[1]}"
        )
    return finish_images(X_tr, y_tr, X_te, y_te, normalize, per_channel=None)
