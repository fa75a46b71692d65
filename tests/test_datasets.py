"""Tests for motifcore.datasets.

Real-data tests read the files in ``$MOTIFCORE_DATA`` (falling back to ``shared/data`` next to
the repository) and are skipped only when that folder is missing. Everything else runs on small
files generated in ``tmp_path``; downloads are served by a fake ``fetch.urlopen``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import pickle
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from motifcore import datasets as ds
from motifcore.data import fetch, idx

_env_data = os.environ.get("MOTIFCORE_DATA")
DATA_ROOT = (
    Path(_env_data) if _env_data else Path(__file__).resolve().parents[2] / "shared" / "data"
)

needs_fmnist = pytest.mark.skipif(
    not (DATA_ROOT / "fashion-mnist").is_dir(), reason=f"no Fashion-MNIST under {DATA_ROOT}"
)
needs_mnist = pytest.mark.skipif(
    not (DATA_ROOT / "mnist").is_dir(), reason=f"no MNIST under {DATA_ROOT}"
)
needs_skf = pytest.mark.skipif(
    not (DATA_ROOT / "scikit-feature").is_dir(), reason=f"no scikit-feature under {DATA_ROOT}"
)

IDX_NAMES = idx.IDX_FILES
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No env data dir, a private cache, no system dirs, and no network."""
    monkeypatch.delenv("MOTIFCORE_DATA", raising=False)
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setattr(fetch, "SYSTEM_DIRS", [])

    def no_network(url, *args, **kwargs):
        raise AssertionError(f"unexpected download of {url}")

    monkeypatch.setattr(fetch, "urlopen", no_network)
    return cache / "motifcore"


def idx_images(arr: np.ndarray, magic: int = 0x803, n: int | None = None) -> bytes:
    arr = np.asarray(arr, dtype=np.uint8)
    count = arr.shape[0] if n is None else n
    head = b"".join(int(v).to_bytes(4, "big") for v in (magic, count, arr.shape[1], arr.shape[2]))
    return head + arr.tobytes()


def idx_labels(arr: np.ndarray, magic: int = 0x801) -> bytes:
    arr = np.asarray(arr, dtype=np.uint8)
    return magic.to_bytes(4, "big") + len(arr).to_bytes(4, "big") + arr.tobytes()


def make_idx_set(folder: Path, seed: int = 0, n_train: int = 30, n_test: int = 10, size=(4, 5)):
    """Write four small, valid IDX files; return the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, size=(n, *size), dtype=np.uint8)
        labs = (np.arange(n) % 10).astype(np.uint8)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_images(imgs)))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_labels(labs)))
        out[prefix] = (imgs, labs)
    return out


def write_cifar_batch(path: Path, data, labels, protocol: int = 2) -> None:
    batch = {
        b"batch_label": b"generated batch",
        b"labels": list(labels),
        b"data": data,
        b"filenames": [f"img{i}.png".encode() for i in range(len(labels))],
    }
    path.write_bytes(pickle.dumps(batch, protocol=protocol))


def make_cifar(folder: Path, per_batch: int = 20, seed: int = 0):
    """Write a miniature CIFAR-10 in the official python-batch layout."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    # channels with clearly different brightness so per-channel statistics matter
    lo = np.repeat([0, 60, 120], 1024)
    hi = np.repeat([100, 200, 255], 1024)
    arrays = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(lo, hi + 1, size=(per_batch, 3072)).astype(np.uint8)
        labels = rng.integers(0, 10, size=per_batch)
        write_cifar_batch(folder / name, data, labels)
        arrays[name] = (data, labels)
    return arrays


# ----------------------------------------------------------------------------------------------
# names
# ----------------------------------------------------------------------------------------------


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as err:
        ds.load("imagenet")
    msg = str(err.value)
    for known in ("fashion-mnist", "mnist", "digits", "cifar10", "skf:", "npz:", "csv:"):
        assert known in msg


@pytest.mark.parametrize("bad", ["skf:", "npz:", "csv:  ", "foo:bar"])
def test_prefixed_name_needs_argument(bad):
    with pytest.raises(ValueError):
        ds.load(bad)


def test_errors_are_value_errors():
    assert issubclass(ds.DatasetError, ValueError)
    assert issubclass(ds.DatasetNotFoundError, ds.DatasetError)
    assert issubclass(ds.DatasetNotFoundError, FileNotFoundError)
    assert set(ds.__all__) >= {"load", "available", "find", "augment_cifar", "DatasetError"}


# ----------------------------------------------------------------------------------------------
# real Fashion-MNIST / MNIST
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fmnist():
    return ds.load("fashion-mnist", DATA_ROOT)


@pytest.fixture(scope="module")
def mnist():
    return ds.load("mnist", DATA_ROOT)


def _check_common(data, n_train, n_test):
    X_tr, y_tr, X_te, y_te = data
    assert X_tr.shape == (n_train, 784) and X_te.shape == (n_test, 784)
    assert y_tr.shape == (n_train,) and y_te.shape == (n_test,)
    assert X_tr.dtype == np.float32 and X_te.dtype == np.float32
    assert y_tr.dtype == np.int64 and y_te.dtype == np.int64
    assert X_tr.flags.c_contiguous and X_te.flags.c_contiguous


def _check_standardised(X_tr):
    mean = X_tr.mean(axis=0, dtype=np.float64)
    std = X_tr.std(axis=0, dtype=np.float64)
    assert np.abs(mean).max() < 1e-4
    varying = std > 1e-3
    assert varying.sum() > 600
    np.testing.assert_allclose(std[varying], 1.0, atol=2e-3)
    # constant features are centred to exactly zero (std clipped to 1, not divided by ~0)
    assert np.all(X_tr[:, ~varying] == 0)


@needs_fmnist
def test_fashion_mnist_real(fmnist):
    _check_common(fmnist, 60000, 10000)
    X_tr, y_tr, X_te, y_te = fmnist
    assert np.array_equal(np.bincount(y_tr), [6000] * 10)
    assert np.array_equal(np.bincount(y_te), [1000] * 10)
    _check_standardised(X_tr)
    # the test split uses train statistics, so it is close to but not exactly standardised
    assert 0 < abs(float(X_te.mean())) < 0.05


@needs_fmnist
def test_fashion_mnist_raw_and_formula(fmnist):
    X_raw, y_raw, Xt_raw, _ = ds.load("fashion-mnist", DATA_ROOT, normalize=False)
    assert X_raw.dtype == np.float32
    assert X_raw.min() == 0 and X_raw.max() == 255
    assert np.all(X_raw == np.round(X_raw))
    assert abs(float(X_raw.mean(dtype=np.float64)) - 72.9404) < 1e-3  # README sanity value
    assert np.array_equal(y_raw, fmnist[1])
    cols = [0, 100, 350, 783]
    scaled = X_raw[:, cols].astype(np.float64) / 255
    mu, sd = scaled.mean(axis=0), scaled.std(axis=0)
    sd[sd < 1e-8] = 1
    np.testing.assert_allclose(fmnist[0][:, cols], (scaled - mu) / sd, atol=1e-4)
    np.testing.assert_allclose(fmnist[2][:, cols], (Xt_raw[:, cols] / 255 - mu) / sd, atol=1e-4)


@needs_mnist
def test_mnist_real(mnist):
    _check_common(mnist, 60000, 10000)
    X_tr, y_tr, X_te, y_te = mnist
    assert np.bincount(y_tr).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(y_te).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    _check_standardised(X_tr)
    # the top-left pixel is blank in every digit: centred to 0, not divided by a zero std
    assert np.all(X_tr[:, 0] == 0) and np.all(X_te[:, 0] == 0)


def _manifest() -> dict:
    out = {}
    for line in (DATA_ROOT / "SHA256SUMS").read_text().splitlines():
        digest, _, name = line.partition("  ")
        out[name.strip()] = digest
    return out


@needs_fmnist
@needs_mnist
def test_embedded_sha256_match_manifest_and_files():
    manifest = _manifest()
    for dataset in ("fashion-mnist", "mnist"):
        for fname in IDX_NAMES:
            expected = idx.IDX_SHA256[dataset][fname]
            assert manifest[f"{dataset}/{fname}"] == expected
            assert (
                hashlib.sha256((DATA_ROOT / dataset / fname).read_bytes()).hexdigest() == expected
            )


@needs_fmnist
def test_repackaged_official_file_accepted_but_altered_content_rejected(tmp_path):
    content = gzip.decompress(
        (DATA_ROOT / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    )
    # same content, different gzip header (what Debian's repackaging does)
    repacked = tmp_path / "t10k-labels-idx1-ubyte.gz"
    repacked.write_bytes(gzip.compress(content, mtime=0))
    labels = idx.read_idx(repacked, "labels", "fashion-mnist", verify=True)
    assert np.array_equal(np.bincount(labels), [1000] * 10)

    altered = bytearray(content)
    altered[8] = (altered[8] + 1) % 10  # change one label: still a well-formed file
    repacked.write_bytes(gzip.compress(bytes(altered), mtime=0))
    with pytest.raises(ds.DatasetError) as err:
        idx.read_idx(repacked, "labels", "fashion-mnist", verify=True)
    msg = str(err.value)
    assert str(repacked) in msg and idx.IDX_SHA256["fashion-mnist"][repacked.name] in msg
    # opting out loads the altered file
    assert idx.read_idx(repacked, "labels", "fashion-mnist", verify=False)[0] == altered[8]


@needs_fmnist
@needs_mnist
@needs_skf
def test_available_and_find_on_real_data(monkeypatch):
    monkeypatch.delenv("MOTIFCORE_DATA", raising=False)
    found = ds.available(DATA_ROOT)
    assert found["fashion-mnist"] == DATA_ROOT / "fashion-mnist"
    assert found["mnist"] == DATA_ROOT / "mnist"
    assert found["skf:PCMAC"] == DATA_ROOT / "scikit-feature" / "PCMAC.mat"
    assert "skf:lung_small" in found and "skf:COIL20" in found
    assert ds.find("mnist", DATA_ROOT) == DATA_ROOT / "mnist"
    assert ds.find("skf:pcmac", DATA_ROOT) == DATA_ROOT / "scikit-feature"
    # the environment variable works like data_dir
    monkeypatch.setenv("MOTIFCORE_DATA", str(DATA_ROOT))
    assert ds.find("fashion-mnist") == DATA_ROOT / "fashion-mnist"


# ----------------------------------------------------------------------------------------------
# real scikit-feature sets
# ----------------------------------------------------------------------------------------------


@needs_skf
@pytest.mark.parametrize(
    "name, n, features, counts",
    [
        ("skf:PCMAC", 1943, 3289, [982, 961]),
        ("skf:lung_small", 73, 325, [6, 5, 5, 16, 7, 13, 21]),
        ("skf:coil20", 1440, 1024, [72] * 20),
    ],
)
def test_scikit_feature_real(name, n, features, counts):
    X_tr, y_tr, X_te, y_te = ds.load(name, DATA_ROOT, seed=3)
    n_test = math.ceil(n / 3)
    assert X_tr.shape == (n - n_test, features) and X_te.shape == (n_test, features)
    assert X_tr.dtype == np.float32 and y_tr.dtype == np.int64 and X_tr.flags.c_contiguous
    k = len(counts)
    total = np.bincount(y_tr, minlength=k) + np.bincount(y_te, minlength=k)
    assert total.tolist() == counts
    # stratified: each class's test share is within one sample of a third
    assert np.all(np.abs(np.bincount(y_te, minlength=k) - np.asarray(counts) / 3) <= 1)
    mean = X_tr.mean(axis=0, dtype=np.float64)
    std = X_tr.std(axis=0, dtype=np.float64)
    assert np.abs(mean).max() < 1e-4
    np.testing.assert_allclose(std[std > 1e-3], 1.0, atol=1e-3)


@needs_skf
def test_scikit_feature_split_is_seeded(monkeypatch):
    monkeypatch.delenv("MOTIFCORE_DATA", raising=False)
    folder = DATA_ROOT / "scikit-feature"
    a = ds.load("skf:lung_small", folder, seed=1, normalize=False)
    b = ds.load("SKF:LUNG_SMALL", folder, seed=1, normalize=False)
    c = ds.load("skf:lung_small", folder, seed=2, normalize=False)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    raw = scipy.io.loadmat(str(folder / "lung_small.mat"))["X"]
    assert np.all(np.isin(a[0][:, 0], raw[:, 0]))  # raw values, only reordered


# ----------------------------------------------------------------------------------------------
# digits
# ----------------------------------------------------------------------------------------------


def test_digits():
    X_tr, y_tr, X_te, y_te = ds.load("digits", seed=0)
    assert X_tr.shape == (1198, 64) and X_te.shape == (599, 64)
    assert X_tr.dtype == np.float32 and y_te.dtype == np.int64
    assert sorted(np.unique(y_tr)) == list(range(10))
    full = np.bincount(np.concatenate([y_tr, y_te]))
    assert np.all(np.abs(np.bincount(y_te) - full / 3) <= 1)
    assert np.abs(X_tr.mean(axis=0)).max() < 1e-5
    raw = ds.load("digits", seed=0, normalize=False)
    assert raw[0].max() == 16 and np.array_equal(raw[1], y_tr)
    assert not np.array_equal(ds.load("digits", seed=5)[1], y_tr)


# ----------------------------------------------------------------------------------------------
# generated IDX files
# ----------------------------------------------------------------------------------------------


def test_generated_idx_good(isolated, tmp_path):
    written = make_idx_set(tmp_path / "data" / "mnist")
    # parent form: data_dir holds mnist/
    X_tr, y_tr, X_te, y_te = ds.load("mnist", tmp_path / "data", verify=False, normalize=False)
    assert X_tr.shape == (30, 20) and X_te.shape == (10, 20)
    assert np.array_equal(y_tr, written["train"][1]) and y_tr.dtype == np.int64
    assert np.array_equal(X_tr, written["train"][0].reshape(30, 20))
    assert np.array_equal(y_te, written["t10k"][1])
    # direct form: data_dir is the folder itself
    Xn, _, Xtn, _ = ds.load("mnist", tmp_path / "data" / "mnist", verify=False)
    assert np.abs(Xn.mean(axis=0)).max() < 1e-5
    ref = written["train"][0].reshape(30, 20) / 255
    np.testing.assert_allclose(
        Xtn, (written["t10k"][0].reshape(10, 20) / 255 - ref.mean(0)) / ref.std(0), atol=1e-4
    )
    assert ds.find("mnist", tmp_path / "data") == tmp_path / "data" / "mnist"


def test_generated_idx_wrong_checksum_for_official_name(isolated, tmp_path):
    make_idx_set(tmp_path / "fashion-mnist")
    with pytest.raises(ds.DatasetError) as err:
        ds.load("fashion-mnist", tmp_path)
    msg = str(err.value)
    bad = tmp_path / "fashion-mnist" / "train-images-idx3-ubyte.gz"
    actual = hashlib.sha256(bad.read_bytes()).hexdigest()
    assert str(bad) in msg
    assert idx.IDX_SHA256["fashion-mnist"]["train-images-idx3-ubyte.gz"] in msg
    assert actual in msg


def test_search_order(isolated, tmp_path, monkeypatch):
    make_idx_set(tmp_path / "arg" / "fashion-mnist", seed=1)
    env = make_idx_set(tmp_path / "env" / "fashion-mnist", seed=2)
    system = make_idx_set(tmp_path / "sys" / "fashion-mnist", seed=3)
    monkeypatch.setenv("MOTIFCORE_DATA", str(tmp_path / "env"))
    monkeypatch.setattr(fetch, "SYSTEM_DIRS", [tmp_path / "sys"])
    assert ds.find("fashion-mnist", tmp_path / "arg") == tmp_path / "arg" / "fashion-mnist"
    # a data_dir without the files falls through to the environment variable
    X = ds.load("fashion-mnist", tmp_path / "nowhere", verify=False, normalize=False)[0]
    assert np.array_equal(X, env["train"][0].reshape(30, 20))
    monkeypatch.delenv("MOTIFCORE_DATA")
    X = ds.load("fashion-mnist", verify=False, normalize=False)[0]
    assert np.array_equal(X, system["train"][0].reshape(30, 20))
    # the user cache comes before the system folder
    make_idx_set(isolated / "fashion-mnist", seed=4)
    assert ds.find("fashion-mnist") == isolated / "fashion-mnist"


def _corrupt(folder: Path, fname: str, payload: bytes, compress: bool = True) -> Path:
    path = folder / fname
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


@pytest.mark.parametrize(
    "case, fname, expected",
    [
        ("truncated", "train-images-idx3-ubyte.gz", "truncated"),
        ("not-gzip", "t10k-labels-idx1-ubyte.gz", "gzip"),
        ("bad-magic", "train-images-idx3-ubyte.gz", "magic"),
        ("labels-magic", "train-labels-idx1-ubyte.gz", "magic"),
        ("short-payload", "t10k-images-idx3-ubyte.gz", "payload"),
        ("count-mismatch", "train-labels-idx1-ubyte.gz", "29 labels"),
        ("label-range", "t10k-labels-idx1-ubyte.gz", "outside 0..9"),
        ("tiny", "t10k-labels-idx1-ubyte.gz", "too short"),
    ],
)
def test_generated_idx_errors(isolated, tmp_path, case, fname, expected):
    folder = tmp_path / "mnist"
    written = make_idx_set(folder)
    imgs, labs = written["train"]
    t_imgs, t_labs = written["t10k"]
    if case == "truncated":
        full = (folder / fname).read_bytes()
        path = _corrupt(folder, fname, full[: len(full) // 2], compress=False)
    elif case == "not-gzip":
        path = _corrupt(folder, fname, idx_labels(t_labs), compress=False)
    elif case == "bad-magic":
        path = _corrupt(folder, fname, idx_images(imgs, magic=0x801))
    elif case == "labels-magic":
        path = _corrupt(folder, fname, idx_labels(labs, magic=0x803))
    elif case == "short-payload":
        path = _corrupt(folder, fname, idx_images(t_imgs, n=11))
    elif case == "count-mismatch":
        path = _corrupt(folder, fname, idx_labels(labs[:29]))
    elif case == "label-range":
        bad = t_labs.copy()
        bad[3] = 10
        path = _corrupt(folder, fname, idx_labels(bad))
    else:
        path = _corrupt(folder, fname, b"\x00\x00\x08")
    with pytest.raises(ValueError) as err:
        ds.load("mnist", folder, verify=False)
    assert isinstance(err.value, ds.DatasetError)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


# ----------------------------------------------------------------------------------------------
# download (mocked)
# ----------------------------------------------------------------------------------------------


class FakeNet:
    """Serves bytes per file name; records every requested URL."""

    def __init__(self, files, fail_hosts=()):
        self.files = files
        self.fail_hosts = fail_hosts
        self.calls = []

    def __call__(self, url, timeout=None):
        self.calls.append(url)
        if any(h in url for h in self.fail_hosts):
            raise urllib.error.URLError("simulated outage")
        return io.BytesIO(self.files[url.rsplit("/", 1)[1]])


def _tiny_official(tmp_path, monkeypatch, dataset):
    """Generate a tiny set and pretend its hashes are the official ones."""
    src = tmp_path / "src"
    make_idx_set(src)
    files = {n: (src / n).read_bytes() for n in IDX_NAMES}
    monkeypatch.setitem(
        idx.IDX_SHA256, dataset, {n: hashlib.sha256(b).hexdigest() for n, b in files.items()}
    )
    return files


def test_download_good(isolated, tmp_path, monkeypatch, capsys):
    files = _tiny_official(tmp_path, monkeypatch, "mnist")
    net = FakeNet(files)
    monkeypatch.setattr(fetch, "urlopen", net)
    X_tr, y_tr, _, _ = ds.load("mnist", normalize=False)  # verify=True against patched hashes
    assert X_tr.shape == (30, 20) and y_tr.tolist() == [i % 10 for i in range(30)]
    assert len(net.calls) == 4 and all(u.startswith(idx.IDX_MIRRORS["mnist"][0]) for u in net.calls)
    target = isolated / "mnist"
    assert sorted(p.name for p in target.iterdir()) == sorted(IDX_NAMES)  # no temp leftovers
    for n in IDX_NAMES:
        assert (target / n).read_bytes() == files[n]
    assert "downloading" in capsys.readouterr().err
    # a second load uses the cache
    ds.load("mnist")
    assert len(net.calls) == 4


def test_download_falls_back_to_second_mirror(isolated, tmp_path, monkeypatch):
    files = _tiny_official(tmp_path, monkeypatch, "fashion-mnist")
    first_host = idx.IDX_MIRRORS["fashion-mnist"][0].split("/")[2]
    net = FakeNet(files, fail_hosts=(first_host,))
    monkeypatch.setattr(fetch, "urlopen", net)
    ds.load("fashion-mnist")
    assert len(net.calls) == 8
    assert sorted(p.name for p in (isolated / "fashion-mnist").iterdir()) == sorted(IDX_NAMES)


def test_download_bad_bytes_raise_and_leave_nothing(isolated, tmp_path, monkeypatch):
    files = _tiny_official(tmp_path, monkeypatch, "mnist")
    tampered = {n: b + b"x" for n, b in files.items()}
    net = FakeNet(tampered)
    monkeypatch.setattr(fetch, "urlopen", net)
    with pytest.raises(ds.DatasetError) as err:
        ds.load("mnist")
    assert "SHA-256 mismatch" in str(err.value)
    assert len(net.calls) == len(idx.IDX_MIRRORS["mnist"])  # every mirror tried for file 1
    target = isolated / "mnist"
    assert not target.exists() or list(target.iterdir()) == []


def test_download_interrupted_leaves_nothing(isolated, tmp_path, monkeypatch):
    class Broken(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 0:
                raise ConnectionResetError("simulated drop")
            return super().read(8)

    monkeypatch.setattr(fetch, "urlopen", lambda url, timeout=None: Broken(b"0123456789" * 10))
    with pytest.raises(ds.DatasetError, match="simulated drop"):
        ds.load("fashion-mnist")
    target = isolated / "fashion-mnist"
    assert not target.exists() or list(target.iterdir()) == []


def test_no_download_when_disabled(isolated):
    with pytest.raises(ds.DatasetNotFoundError) as err:
        ds.load("mnist", download=False)  # the isolated fixture fails on any network use
    assert "mnist" in str(err.value)
    with pytest.raises(FileNotFoundError):
        ds.find("fashion-mnist")


# ----------------------------------------------------------------------------------------------
# CIFAR-10 (generated python batches)
# ----------------------------------------------------------------------------------------------


def test_cifar_generated(isolated, tmp_path):
    arrays = make_cifar(tmp_path / "cifar-10-batches-py")
    raw = ds.load("cifar10", tmp_path, normalize=False)
    X_tr, y_tr, X_te, y_te = raw
    assert X_tr.shape == (100, 3072) and X_te.shape == (20, 3072)
    expected = np.concatenate([arrays[f"data_batch_{i}"][0] for i in range(1, 6)])
    assert np.array_equal(X_tr, expected)
    assert np.array_equal(y_te, arrays["test_batch"][1]) and y_te.dtype == np.int64

    Xn, yn, Xtn, _ = ds.load("cifar10", tmp_path)
    assert Xn.dtype == np.float32 and Xn.flags.c_contiguous and np.array_equal(yn, y_tr)
    per_channel = Xn.reshape(100, 3, 1024)
    np.testing.assert_allclose(per_channel.mean(axis=(0, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(per_channel.std(axis=(0, 2)), 1, atol=1e-5)
    # one mean/std per channel, not per pixel: individual pixel columns are not centred
    assert np.abs(Xn.mean(axis=0)).max() > 0.1
    scaled = expected.reshape(100, 3, 1024) / 255
    mu, sd = scaled.mean(axis=(0, 2)), scaled.std(axis=(0, 2))
    ref = (X_te.reshape(20, 3, 1024) / 255 - mu[:, None]) / sd[:, None]
    np.testing.assert_allclose(Xtn.reshape(20, 3, 1024), ref, atol=1e-5)
    assert ds.available(tmp_path)["cifar10"] == tmp_path / "cifar-10-batches-py"


def test_cifar_from_archive(isolated, tmp_path):
    make_cifar(tmp_path / "unpacked" / "cifar-10-batches-py")
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    with tarfile.open(archive_dir / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "unpacked" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    a = ds.load("cifar10", tmp_path / "unpacked")
    b = ds.load("cifar10", archive_dir)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert ds.find("cifar10", archive_dir) == archive_dir


@pytest.mark.parametrize("case", ["garbage", "no-labels", "wrong-width", "count", "evil-global"])
def test_cifar_corrupt_batch(isolated, tmp_path, case):
    folder = tmp_path / "cifar-10-batches-py"
    arrays = make_cifar(folder)
    data, labels = arrays["data_batch_3"]
    target = folder / "data_batch_3"
    if case == "garbage":
        target.write_bytes(b"\x80\x02not a pickle at all")
        expected = "pickle"
    elif case == "no-labels":
        target.write_bytes(pickle.dumps({b"data": data}, protocol=2))
        expected = "labels"
    elif case == "wrong-width":
        write_cifar_batch(target, data[:, :3000], labels)
        expected = "3072"
    elif case == "count":
        write_cifar_batch(target, data, labels[:-1])
        expected = "labels"
    else:
        target.write_bytes(pickle.dumps({b"data": os.getcwd, b"labels": []}, protocol=2))
        expected = "refusing"
    with pytest.raises(ds.DatasetError) as err:
        ds.load("cifar10", tmp_path)
    assert str(target) in str(err.value) and expected in str(err.value)


def test_cifar_missing_is_not_found(isolated, tmp_path):
    with pytest.raises(ds.DatasetNotFoundError, match="cifar"):
        ds.load("cifar10", tmp_path)


def test_augment_flip_on_known_image():
    row = np.arange(32, dtype=np.float32)
    img = np.broadcast_to(row, (3, 32, 32)).reshape(1, 3072)
    X = np.repeat(img, 64, axis=0)
    out = ds.augment_cifar(X, np.random.default_rng(0), flip=True, crop_pad=0)
    assert out.shape == X.shape and out.dtype == X.dtype
    assert out is not X and np.array_equal(X[0], img[0])  # input untouched
    flipped_img = img[0].reshape(3, 32, 32)[..., ::-1].reshape(3072)
    is_same = np.all(out == img[0], axis=1)
    is_flipped = np.all(out == flipped_img, axis=1)
    assert np.all(is_same ^ is_flipped)
    assert 10 < is_flipped.sum() < 54
    assert out[is_flipped][0].reshape(3, 32, 32)[0, 0, 0] == 31
    again = ds.augment_cifar(X, np.random.default_rng(0), flip=True, crop_pad=0)
    assert np.array_equal(out, again)


def test_augment_crop_is_a_zero_padded_shift():
    rng = np.random.default_rng(1)
    X = (np.arange(3072, dtype=np.float32) + 1)[None].repeat(12, axis=0)
    out = ds.augment_cifar(X, rng, flip=False, crop_pad=4)
    src = X[0].reshape(3, 32, 32)
    padded = np.zeros((3, 40, 40), dtype=np.float32)
    padded[:, 4:36, 4:36] = src
    shifts = set()
    for k in range(12):
        img = out[k].reshape(3, 32, 32)
        matches = [
            (dy, dx)
            for dy in range(9)
            for dx in range(9)
            if np.array_equal(img, padded[:, dy : dy + 32, dx : dx + 32])
        ]
        assert len(matches) == 1
        shifts.add(matches[0])
    assert len(shifts) > 1
    assert np.array_equal(ds.augment_cifar(X, rng, flip=False, crop_pad=0), X)
    with pytest.raises(ValueError):
        ds.augment_cifar(X[:, :100], rng)


# ----------------------------------------------------------------------------------------------
# scikit-feature .mat (generated)
# ----------------------------------------------------------------------------------------------


def test_skf_generated_binary_labels(isolated, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 7))
    Y = np.where(np.arange(30) % 3 == 0, -1, 1).reshape(-1, 1)
    scipy.io.savemat(tmp_path / "Toy.mat", {"X": X, "Y": Y})
    X_tr, y_tr, X_te, y_te = ds.load("skf:toy", tmp_path)
    assert X_tr.shape == (20, 7) and X_te.shape == (10, 7)
    assert set(np.unique(y_tr)) == {0, 1}
    assert np.all(np.abs(np.bincount(y_te) - np.array([10, 20]) / 3) <= 1)
    assert np.bincount(np.concatenate([y_tr, y_te])).tolist() == [10, 20]  # -1 -> 0, 1 -> 1
    assert ds.available(tmp_path)["skf:Toy"] == tmp_path / "Toy.mat"


@pytest.mark.parametrize(
    "case, expected",
    [
        ("no-Y", "missing key"),
        ("short-Y", "labels"),
        ("not-mat", "cannot read"),
        ("nan", "NaN"),
        ("3d", "2-D"),
    ],
)
def test_skf_generated_errors(isolated, tmp_path, case, expected):
    path = tmp_path / "bad.mat"
    X = np.ones((12, 4))
    Y = np.arange(12).reshape(-1, 1) % 2 + 1
    if case == "no-Y":
        scipy.io.savemat(path, {"X": X, "labels": Y})
    elif case == "short-Y":
        scipy.io.savemat(path, {"X": X, "Y": Y[:-1]})
    elif case == "not-mat":
        path.write_bytes(b"this is not a MATLAB file" * 10)
    elif case == "nan":
        X[2, 1] = np.nan
        scipy.io.savemat(path, {"X": X, "Y": Y})
    else:
        scipy.io.savemat(path, {"X": np.ones((12, 2, 2)), "Y": Y})
    with pytest.raises(ds.DatasetError) as err:
        ds.load("skf:bad", tmp_path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_skf_missing(isolated, tmp_path):
    with pytest.raises(ds.DatasetNotFoundError, match="nosuchset"):
        ds.load("skf:nosuchset", tmp_path)


# ----------------------------------------------------------------------------------------------
# npz / csv
# ----------------------------------------------------------------------------------------------


def test_npz_with_split(tmp_path):
    rng = np.random.default_rng(0)
    X_tr = rng.normal(3, 2, size=(40, 5))
    X_te = rng.normal(3, 2, size=(15, 5))
    y_tr = np.array([3, 7] * 20)
    y_te = np.array([7] * 15)
    path = tmp_path / "mine.npz"
    np.savez(path, X_train=X_tr, y_train=y_tr, X_test=X_te, y_test=y_te)
    A, a, B, b = ds.load(f"npz:{path}")
    assert A.shape == (40, 5) and B.shape == (15, 5) and A.dtype == np.float32
    assert np.array_equal(a, (y_tr == 7).astype(np.int64)) and np.all(b == 1)
    np.testing.assert_allclose(B, (X_te - X_tr.mean(0)) / X_tr.std(0), atol=1e-5)
    raw = ds.load(f"npz:{path}", normalize=False)
    np.testing.assert_allclose(raw[0], X_tr.astype(np.float32))


def test_npz_xy_split_and_relative_to_data_dir(tmp_path):
    X = np.arange(60 * 3, dtype=np.float64).reshape(60, 3) ** 1.5
    y = np.repeat(["a", "b", "c"], 20)
    np.savez(tmp_path / "xy.npz", X=X, y=y)
    X_tr, y_tr, X_te, y_te = ds.load("npz:xy.npz", data_dir=tmp_path, seed=4)
    assert X_tr.shape == (40, 3) and X_te.shape == (20, 3)
    assert sorted(np.bincount(y_te)) == [6, 7, 7]
    assert np.bincount(y_tr).sum() == 40 and set(np.unique(y_tr)) == {0, 1, 2}


@pytest.mark.parametrize(
    "case, expected",
    [
        ("keys", "expected keys"),
        ("nan", "NaN"),
        ("width", "features"),
        ("rows", "labels"),
        ("garbage", "cannot read"),
    ],
)
def test_npz_errors(tmp_path, case, expected):
    path = tmp_path / "bad.npz"
    X = np.ones((9, 2))
    y = np.arange(9) % 3
    if case == "keys":
        np.savez(path, data=X, target=y)
    elif case == "nan":
        X[0, 0] = np.inf
        np.savez(path, X=X, y=y)
    elif case == "width":
        np.savez(path, X_train=X, y_train=y, X_test=np.ones((3, 4)), y_test=y[:3])
    elif case == "rows":
        np.savez(path, X=X, y=y[:-2])
    else:
        path.write_bytes(b"PK but not really a zip")
    with pytest.raises(ds.DatasetError) as err:
        ds.load(f"npz:{path}")
    assert str(path) in str(err.value) and expected in str(err.value)


def test_npz_missing_file(tmp_path):
    with pytest.raises(ds.DatasetNotFoundError):
        ds.load(f"npz:{tmp_path / 'absent.npz'}")


@pytest.mark.parametrize("header", [True, False])
def test_csv(tmp_path, header):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 4))
    y = np.repeat([1.0, 2.0, 5.0], 10)
    lines = (["f1,f2,f3,f4,label"] if header else []) + [
        ",".join(f"{v:.6f}" for v in row) + f",{lab:g}" for row, lab in zip(X, y)
    ]
    path = tmp_path / "table.csv"
    path.write_text("\n".join(lines) + "\n")
    X_tr, y_tr, X_te, y_te = ds.load(f"csv:{path}", seed=0)
    assert X_tr.shape == (20, 4) and X_te.shape == (10, 4)
    assert sorted(np.bincount(y_te)) == [3, 3, 4]
    assert set(np.unique(y_tr)) == {0, 1, 2}
    assert np.abs(X_tr.mean(axis=0)).max() < 1e-5
    raw = ds.load(f"csv:{path}", seed=0, normalize=False)[0]
    # raw values come back unscaled (only reordered by the split)
    assert np.abs(raw[:, 0][:, None] - X[:, 0][None, :]).min(axis=1).max() < 1e-5


@pytest.mark.parametrize(
    "body, expected",
    [
        ("1,2,0\n3,nan,1\n4,5,0\n6,7,1\n8,9,0\n1,1,1\n", "NaN"),
        ("1,2,0\n3,abc,1\n4,5,0\n", "numeric"),
        ("1\n2\n3\n", "label column"),
        ("a,b,label\n", "no data"),
    ],
)
def test_csv_errors(tmp_path, body, expected):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(ds.DatasetError) as err:
        ds.load(f"csv:{path}")
    assert str(path) in str(err.value) and expected in str(err.value)


def test_stratified_split_impossible_is_clear(tmp_path):
    path = tmp_path / "lonely.csv"
    path.write_text("1,0\n2,0\n3,0\n4,1\n")  # class 1 has a single sample
    with pytest.raises(ds.DatasetError, match="stratified"):
        ds.load(f"csv:{path}")
