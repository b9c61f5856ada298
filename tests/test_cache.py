"""dropout_lab.cache: a file is whole or absent, a broken one is reported and skipped,
an unwritable folder costs only the cache, and loading never runs code."""
import io
import threading

import pytest
import torch

from dropout_lab import cache


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_round_trip_of_tensors_and_plain_values(tmp_path):
    obj = {"X": torch.arange(6).reshape(2, 3), "name": "sweep", "rows": [1, 2.5, None],
           "nested": {"seed": (0, 1)}}
    path = tmp_path / "c.pt"
    assert cache.atomic_save(obj, path) is True
    loaded = cache.load(path)
    assert torch.equal(loaded["X"], obj["X"])
    assert {k: v for k, v in loaded.items() if k != "X"} == {k: v for k, v in obj.items()
                                                             if k != "X"}
    assert path.stat().st_mode & 0o777 == 0o644  # readable by others, like a plain save
    assert leftovers(tmp_path) == []


def test_a_missing_file_is_none_without_a_warning(tmp_path, recwarn):
    assert cache.load(tmp_path / "absent.pt") is None
    assert len(recwarn) == 0


def truncated(path):
    torch.save({"X": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])


@pytest.mark.parametrize("spoil", [
    truncated,
    lambda path: path.write_bytes(b"\x00garbage" * 100),
    lambda path: path.write_bytes(b""),
], ids=["truncated", "garbage", "empty"])
def test_a_broken_file_is_none_with_one_warning_naming_it(tmp_path, spoil):
    path = tmp_path / "broken.pt"
    spoil(path)
    with pytest.warns(cache.CacheWarning, match="broken.pt is unreadable") as warned:
        assert cache.load(path) is None
    assert len(warned) == 1 and "\n" not in str(warned[0].message)


class RunsCode:
    def __reduce__(self):
        return (print, ("this line means loading ran code",))


def test_loading_refuses_pickled_objects(tmp_path, capsys):
    path = tmp_path / "pickle.pt"
    torch.save({"payload": RunsCode()}, path)
    with pytest.warns(cache.CacheWarning, match="unreadable"):
        assert cache.load(path) is None
    assert "ran code" not in capsys.readouterr().out


def refuse_to_create(*args, **kwargs):
    raise PermissionError(13, "Permission denied", kwargs.get("dir"))


def torch_cannot_write(obj, f):
    raise RuntimeError("File cannot be opened.")  # torch.save's error for an unwritable path


@pytest.mark.parametrize("where, fail", [("tempfile.mkstemp", refuse_to_create),
                                         ("torch.save", torch_cannot_write)])
def test_an_unwritable_folder_warns_and_returns_false(tmp_path, monkeypatch, where, fail):
    """A read-only folder, simulated: this runs as root, whom chmod does not stop.
    mkstemp raising PermissionError is what a read-only folder gives our code;
    torch.save's RuntimeError is what made the old loader crash (issue 16, finding 3).
    The real read-only folder is tested in test_data (a read-only bind mount)."""
    monkeypatch.setattr(f"dropout_lab.cache.{where}", fail)
    with pytest.warns(cache.CacheWarning, match="could not write the cache .*c.pt"):
        assert cache.atomic_save({"X": torch.ones(3)}, tmp_path / "c.pt") is False
    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_is_made(tmp_path):
    path = tmp_path / "sweeps" / "c.pt"
    assert cache.atomic_save({"X": torch.ones(3)}, path) is True
    assert torch.equal(cache.load(path)["X"], torch.ones(3))


def test_a_folder_that_cannot_be_made_warns_and_returns_false(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.warns(cache.CacheWarning, match="a-file/c.pt"):
        assert cache.atomic_save({"X": torch.ones(3)}, tmp_path / "a-file" / "c.pt") is False


def test_the_sweep_cache_has_no_default_folder_when_home_is_empty(monkeypatch):
    from dropout_lab import data
    monkeypatch.setattr(data, "default_data_dir", lambda: None)
    with pytest.raises(ValueError, match="pass cache=FOLDER"):
        cache.default_folder()


def half_then(action):
    def write(f):
        f.write(b"the first half of a file")
        f.flush()
        action()
    return write


def test_ctrl_c_mid_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "c.pt"
    cache.atomic_save({"version": 1}, path)

    def interrupt():
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        cache.write_atomically(path, half_then(interrupt))
    assert cache.load(path) == {"version": 1}
    assert leftovers(tmp_path) == []


def test_a_reader_during_a_write_sees_the_whole_old_file_then_the_whole_new_one(tmp_path):
    path = tmp_path / "c.pt"
    cache.atomic_save({"version": 1, "X": torch.zeros(10)}, path)
    halfway, resume = threading.Event(), threading.Event()

    def write(f):
        data = {"version": 2, "X": torch.ones(10)}
        buffer = io.BytesIO()
        torch.save(data, buffer)
        raw = buffer.getvalue()
        f.write(raw[:len(raw) // 2])
        f.flush()
        halfway.set()
        resume.wait(30)
        f.write(raw[len(raw) // 2:])
    writer = threading.Thread(target=cache.write_atomically, args=(path, write))
    writer.start()
    assert halfway.wait(30)
    during = cache.load(path)
    resume.set()
    writer.join(30)
    assert during["version"] == 1 and torch.equal(during["X"], torch.zeros(10))
    after = cache.load(path)
    assert after["version"] == 2 and torch.equal(after["X"], torch.ones(10))


def test_orphans_of_killed_writers_are_removed_by_the_next_save(tmp_path):
    path = tmp_path / "c.pt"
    dead = tmp_path / f".c.pt.{2**22 + 12345}.abcd.tmp"  # above Linux's pid_max: no such process
    dead.write_bytes(b"half")
    assert cache.atomic_save({"X": torch.ones(1)}, path)
    assert leftovers(tmp_path) == []
