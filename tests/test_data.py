"""The loader on the real files: every file checked, caches that are whole and made
from these files, an explicit path that never falls back, and its one clear error
when no source works. Small, deliberately broken IDX files test the checks."""
import gzip
import os
import shutil
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import dropout_lab as dl
from dropout_lab import cache
from dropout_lab import data as data_module
from dropout_lab.cli import data_main, main as dl_main


def test_real_fashion_mnist_shapes_ranges_labels(data):
    assert data.X_train.shape == (60000, 784) and data.X_test.shape == (10000, 784)
    assert data.X_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert 0.0 == data.X_train.min() and data.X_train.max() == 1.0
    assert torch.equal(torch.bincount(data.y_train), torch.full((10,), 6000))
    assert torch.equal(torch.bincount(data.y_test), torch.full((10,), 1000))
    assert data.y_test[:5].tolist() == [9, 2, 1, 1, 6]  # the published test set's order


@pytest.fixture(scope="module")
def source():
    """The real files: Debian's copy, or those in the data folder."""
    folder = data_module.default_data_dir()
    found = data_module.find_files(data_module.DEBIAN_DIR) or (
        folder and data_module.find_files(folder))
    if found is None:
        pytest.skip("no raw IDX files on this machine")
    return found


def linked_folder(tmp_path, source, raw=False):
    """A folder of links to the real files (in FashionMNIST/raw, as torchvision lays
    them out, with raw=True)."""
    folder = tmp_path / "fm"
    target = folder / "FashionMNIST" / "raw" if raw else folder
    target.mkdir(parents=True)
    for path in source.values():
        (target / path.name).symlink_to(path)
    return folder


def assert_same(loaded, data):
    assert all(torch.equal(a, b) for a, b in zip(loaded, data))


def test_reads_the_raw_files_from_an_explicit_folder_and_caches_them(tmp_path, source, data):
    folder = linked_folder(tmp_path, source, raw=True)
    loaded = dl.load_fashion_mnist(root=folder, data_dir=tmp_path / "unused",
                                   allow_download=False)
    assert_same(loaded, data)
    assert (folder / data_module.CACHE_NAME).exists()  # the second load is fast
    assert not (tmp_path / "unused").exists()


def test_a_broken_cache_is_rebuilt_with_a_warning_naming_it(tmp_path, source, data, recwarn):
    folder = linked_folder(tmp_path, source)
    path = folder / data_module.CACHE_NAME
    path.write_bytes(b"PK\x03\x04 half of a zip file")
    with pytest.warns(cache.CacheWarning, match=f"{path} is unreadable"):
        assert_same(dl.load_fashion_mnist(root=folder, allow_download=False), data)
    recwarn.clear()
    loaded = dl.load_fashion_mnist(root=folder, allow_download=False, device="auto")
    assert len(recwarn) == 0  # rebuilt: the second load reads it silently
    assert loaded.X_train.device.type == dl.pick_device("auto").type
    assert_same((t.cpu() for t in loaded), data)


def test_a_cache_made_from_other_files_is_never_used(tmp_path, source, data):
    """Issue 16, finding 4: a cache outlived the files it was made from."""
    folder = tmp_path / "fm"
    folder.mkdir()
    for path in source.values():
        shutil.copy(path, folder / path.name)
    dl.load_fashion_mnist(root=folder, allow_download=False)
    assert (folder / data_module.CACHE_NAME).exists()
    new_labels = (data.y_test + 1) % 10
    labels = folder / source["y_test"].name
    content = idx(new_labels.numpy())
    labels.write_bytes(gzip.compress(content) if labels.suffix == ".gz" else content)
    with pytest.warns(cache.CacheWarning, match="made from other files"):
        loaded = dl.load_fashion_mnist(root=folder, allow_download=False)
    assert torch.equal(loaded.y_test, new_labels)
    assert torch.equal(loaded.X_train, data.X_train)


def idx(array, magic=None):
    """The bytes of an IDX file of unsigned bytes holding `array`."""
    array = np.asarray(array, dtype=np.uint8)
    magic = magic or (2051 if array.ndim == 3 else 2049)
    dims = b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return magic.to_bytes(4, "big") + dims + array.tobytes()


def small_files(folder, n_train=6, n_test=3):
    """Four small, well-formed files, uncompressed (their names without .gz)."""
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for key, name in data_module.FILES.items():
        n = n_train if key.endswith("train") else n_test
        array = rng.integers(0, 256, (n, 28, 28)) if key.startswith("X") else np.arange(n) % 10
        (folder / name).write_bytes(idx(array))
    return folder


def write(folder, key, content, gz=False):
    name = data_module.FILES[key]
    (folder / name).unlink()
    (folder / (name + ".gz" if gz else name)).write_bytes(content)
    return data_module.FILES[key] + (".gz" if gz else "")


def labels_with(values):
    return idx(np.array(values))


NOISE = np.random.default_rng(1).integers(0, 256, (6, 28, 28))  # does not compress
BROKEN = {
    "wrong magic": ("X_train", idx(np.zeros((6, 28, 28)), magic=2049), False,
                    "starts with the magic number 2049, but a file of images starts with 2051"),
    "labels 200 and 255": ("y_train", labels_with([0, 1, 200, 3, 255, 5]), False,
                           r"labels outside 0-9 \(e.g. \[200, 255\]\)"),
    "5 labels next to 6 images": ("y_train", labels_with([0, 1, 2, 3, 4]), False,
                                  "holds 5 labels but .*train-images-idx3-ubyte holds 6 images"),
    "header longer than the file": ("X_test", idx(np.zeros((3, 28, 28)))[:-100], False,
                                    "holds 2252: it is truncated or corrupt"),
    "images of 27 x 28": ("X_test", idx(np.zeros((3, 27, 28))), False,
                          r"images of \(27, 28\) pixels, not 28 x 28"),
    "empty file": ("y_test", b"", False, "0 bytes long, too short"),
    "truncated .gz": ("X_train", gzip.compress(idx(NOISE))[:2000], True,
                      "cannot be read .*truncated or corrupt"),
    "not gzip at all": ("y_test", b"<html>Service unavailable</html>", True,
                        "cannot be read .*BadGzipFile"),
    "well formed but not 60,000 images": (None, None, False,
                                          "holds 6 entries; FashionMNIST's file holds 60000"),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_a_broken_file_is_an_error_naming_it_and_what_to_do(tmp_path, case):
    """Issue 16, finding 4: such files were accepted and cached, or gave a raw EOFError."""
    key, content, gz, message = BROKEN[case]
    folder = small_files(tmp_path / "fm")
    name = write(folder, key, content, gz) if key else data_module.FILES["X_train"]
    with pytest.raises(dl.DataFileError, match=message) as error:
        dl.load_fashion_mnist(root=folder, allow_download=False)
    text = str(error.value)
    assert str(folder / name) in text and "fetch the files again" in text and "\n" not in text
    assert isinstance(error.value, dl.DataError)
    assert not (folder / data_module.CACHE_NAME).exists()  # nothing broken is cached


def test_a_broken_file_of_debians_copy_says_to_reinstall_it():
    advice = data_module.what_to_do(data_module.DEBIAN_DIR / "t10k-labels-idx1-ubyte.gz")
    assert "apt-get install --reinstall dataset-fashion-mnist" in advice


@pytest.mark.parametrize("how", ["argument", "DROPOUT_LAB_DATA"])
@pytest.mark.parametrize("state", ["empty", "missing"])
def test_an_explicit_path_without_data_is_an_error_never_a_fallback(tmp_path, monkeypatch,
                                                                     how, state):
    """Issue 16, finding 5: it silently trained on Debian's copy and made the folder."""
    folder = tmp_path / "mine"
    if state == "empty":
        folder.mkdir()
    monkeypatch.delenv("DROPOUT_LAB_DATA", raising=False)
    if how == "DROPOUT_LAB_DATA":
        monkeypatch.setenv("DROPOUT_LAB_DATA", str(folder))
    with pytest.raises(dl.DataNotFoundError) as error:
        dl.load_fashion_mnist(root=folder if how == "argument" else None,
                              data_dir=tmp_path / "data")
    message = str(error.value)
    assert str(folder) in message and ("does not exist" if state == "missing"
                                       else "does not hold the four files") in message
    assert folder.exists() == (state == "empty")
    assert not folder.exists() or list(folder.iterdir()) == []
    assert not (tmp_path / "data").exists()


def test_an_empty_home_outside_a_checkout_makes_no_folder_at_the_root(monkeypatch, source):
    """Issue 16, finding 5: HOME='' put ~/dropout_lab_data at /dropout_lab_data."""
    monkeypatch.setattr(data_module, "__file__", "/nonexistent/site-packages/dropout_lab/"
                        "data/__init__.py")  # as if installed, not in a checkout
    monkeypatch.setenv("HOME", "")
    monkeypatch.delenv("DROPOUT_LAB_DATA", raising=False)
    assert data_module.default_data_dir() is None
    existed = os.path.exists("/dropout_lab_data")
    if data_module.find_files(data_module.DEBIAN_DIR):
        assert dl.load_fashion_mnist(allow_download=False).X_test.shape == (10000, 784)
    assert os.path.exists("/dropout_lab_data") == existed


def no_source(tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(data_module, "download", lambda folder: "URLError: no network")
    monkeypatch.delenv("DROPOUT_LAB_DATA", raising=False)


def test_no_source_gives_one_message_naming_every_way(tmp_path, monkeypatch):
    no_source(tmp_path, monkeypatch)
    with pytest.raises(dl.DataNotFoundError) as error:
        dl.load_fashion_mnist(data_dir=tmp_path / "data")
    message = str(error.value)
    for expected in (str(tmp_path / "data"), "dataset-fashion-mnist", "no network",
                     "DROPOUT_LAB_DATA"):
        assert expected in message


def test_missing_data_on_the_command_line_exits_1_with_the_message(tmp_path, capsys):
    for command in (lambda: data_main(["--root", str(tmp_path / "none")]),
                    lambda: dl_main(["data", "--root", str(tmp_path / "none")])):
        assert command() == 1
        err = capsys.readouterr().err
        assert f"FashionMNIST was asked for in {tmp_path / 'none'}" in err
        assert "Traceback" not in err
    assert not (tmp_path / "none").exists()


def test_python_m_dropout_lab_data_prints_no_runpy_warning(tmp_path):
    """Issue 16, finding 10: runpy warned that dropout_lab.data was imported twice.
    (The warning comes before any work, so a run that finds no data shows it too.)"""
    result = subprocess.run([sys.executable, "-m", "dropout_lab.data", "--root",
                             str(tmp_path / "none"), "--no-download"],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "Warning" not in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"FashionMNIST was asked for in {tmp_path / 'none'}")


WRITER = """
import io, sys, torch
import dropout_lab as dl
real_save = torch.save
def save_half_then_wait(obj, f):
    buffer = io.BytesIO()
    real_save(obj, buffer)
    raw = buffer.getvalue()
    f.write(raw[:len(raw) // 2])
    f.flush()
    print("halfway", flush=True)
    sys.stdin.readline()  # the test kills this process here
    f.write(raw[len(raw) // 2:])
torch.save = save_half_then_wait
dl.load_fashion_mnist(root=sys.argv[1], allow_download=False)
"""


def test_a_load_killed_during_the_first_cache_write_breaks_nothing(tmp_path, source, data):
    """Issue 16, finding 2: a SIGKILL mid-write left a broken cache for every later load;
    a reader started during the write read the half-written file. The child process
    pauses halfway through writing the cache (its torch.save is wrapped), is read
    from, then killed."""
    folder = linked_folder(tmp_path, source)
    final = folder / data_module.CACHE_NAME
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        assert writer.stdout.readline().strip() == "halfway", writer.stderr.read()
        partial = [p for p in folder.iterdir() if p.name.endswith(".tmp")]
        assert len(partial) == 1 and partial[0].stat().st_size > 0
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a reader now sees no file, not a broken one
            assert cache.load(final) is None
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(30)
    assert writer.returncode == -signal.SIGKILL
    assert not final.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_same(dl.load_fashion_mnist(root=folder, allow_download=False), data)
    assert data_module.is_cache_of(cache.load(final), data_module.sources_key(source))
    assert [p for p in folder.iterdir() if p.name.endswith(".tmp")] == []  # orphan removed


READER = ("import dropout_lab as dl, sys; d = dl.load_fashion_mnist(root=sys.argv[1], "
          "allow_download=False); print(len(d.X_train), d.y_test[:5].tolist())")


def test_a_read_only_data_folder_with_good_files_loads(tmp_path, source):
    """Issue 16, finding 3: torch.save's RuntimeError on a read-only folder escaped.
    The folder is really read-only: these tests run as root, whom chmod does not
    stop, so the child process gets its own mount namespace (unshare --mount) in
    which the folder is bind-mounted read-only; the kernel refuses root's writes
    there, and the mount disappears with the process. As another user, chmod does it."""
    folder = linked_folder(tmp_path, source)
    if os.geteuid() == 0:
        if shutil.which("unshare") is None:
            pytest.skip("running as root without unshare: no honest read-only folder")
        command = ["unshare", "--mount", "sh", "-c",
                   'mount --bind -o ro "$1" "$1" && exec "$2" -c "$3" "$1"',
                   "sh", str(folder), sys.executable, READER]
    else:
        folder.chmod(0o555)
        command = [sys.executable, "-c", READER, str(folder)]
    result = subprocess.run(command, capture_output=True, text=True)
    folder.chmod(0o755)
    if result.returncode != 0 and "mount" in result.stderr and "Traceback" not in result.stderr:
        pytest.skip(f"cannot make a read-only bind mount here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "60000"
    assert f"could not write the cache {folder / data_module.CACHE_NAME}" in result.stderr
    assert not (folder / data_module.CACHE_NAME).exists()


def test_fingerprint_covers_every_byte_shape_dtype_and_field(data):
    """Issue 16, finding 1 (its data half): the sweep's key hashed only X_train[:512]."""
    reference = dl.data_fingerprint(data)
    assert len(reference) == 64 and dl.data_fingerprint(tuple(data)) != reference
    assert dl.data_fingerprint(type(data)(*(t.clone() for t in data))) == reference
    X_test = data.X_test.clone()
    X_test[-1, -1] += 1 / 255
    X_train = data.X_train.clone()
    X_train[512:] = 0
    changed = [data._replace(X_test=X_test), data._replace(X_train=X_train),
               data._replace(y_test=data.y_test.flip(0)),
               data._replace(y_train=data.y_train.to(torch.int32)),
               data._replace(X_test=data.X_test.reshape(10000, 28, 28)),
               dl.TrainValid(*data)]
    fingerprints = {dl.data_fingerprint(d) for d in changed}
    assert reference not in fingerprints and len(fingerprints) == len(changed)


def test_fingerprint_of_tensors_in_any_dtype_and_layout():
    X = torch.arange(12, dtype=torch.bfloat16).reshape(3, 4)
    assert dl.data_fingerprint((X.T,)) == dl.data_fingerprint((X.T.contiguous(),))
    assert dl.data_fingerprint((X.T,)) != dl.data_fingerprint((X,))


def test_validation_split_is_fixed_disjoint_and_leaves_the_test_set_alone(data):
    index = torch.arange(60000)
    torch.manual_seed(1), np.random.seed(1)
    first = dl.validation_split((index, index, data.X_test, data.y_test))
    torch.manual_seed(2), np.random.seed(2)
    second = dl.validation_split((index, index, data.X_test, data.y_test))
    assert type(first)._fields == ("X_train", "y_train", "X_valid", "y_valid")
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    train, valid = first.X_train, first.X_valid
    assert len(valid) == 10000 and len(train) == 50000
    assert torch.equal(torch.sort(torch.cat([train, valid])).values, index)
    assert torch.equal(train, train.sort().values) and torch.equal(valid, valid.sort().values)
    # The contract: these are the validation images for every caller, seed, machine.
    assert valid[:5].tolist() == [0, 16, 17, 30, 39]

    split = dl.validation_split(data)
    assert torch.equal(split.X_valid, data.X_train[valid])
    assert torch.equal(split.y_train, data.y_train[train])
    counts = torch.bincount(split.y_valid, minlength=10)
    assert counts.min() > 900 and counts.max() < 1100  # a random 1/6 of 6,000 per class
    assert dl.validation_split(data, n_valid=5000).X_valid.shape == (5000, 784)


@pytest.mark.parametrize("n_valid", [0, 60000, 1.5, -1])
def test_validation_split_refuses_sizes_it_cannot_make(data, n_valid):
    with pytest.raises(ValueError, match=r"n_valid must be a whole number in \[1, 59999\]"):
        dl.validation_split(data, n_valid=n_valid)
