"""replay's publish (host.publish): each stage that can fail says what
happened to the output.  A failed directory sync comes after the rename, so
the new file is already in place and the old one gone: the error must say
so (it used to say the rename had failed), and the caller must not try to
remove the partial file, which no longer exists under that name."""
import errno
import os

import pytest

from insitu.replay import host


def _files(tmp_path):
    partial = tmp_path / ".out.h5.partial"
    final = tmp_path / "out.h5"
    partial.write_bytes(b"new")
    final.write_bytes(b"old")
    return str(partial), str(final)


def _failing_sync(stage):
    real = host._sync

    def sync(path, directory=False):
        if directory == (stage == "directory"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(path, directory=directory)
    return sync


def test_publish_renames_and_syncs(tmp_path):
    partial, final = _files(tmp_path)
    host.publish(partial, final)
    assert not os.path.exists(partial)
    assert open(final, "rb").read() == b"new"


def test_a_failed_file_sync_leaves_the_old_output(tmp_path, monkeypatch):
    partial, final = _files(tmp_path)
    monkeypatch.setattr(host, "_sync", _failing_sync("file"))
    with pytest.raises(host.PublishError) as info:
        host.publish(partial, final)
    assert not info.value.renamed
    assert f"cannot sync {partial}" in str(info.value)
    assert open(final, "rb").read() == b"old"


def test_a_failed_rename_says_so(tmp_path, monkeypatch):
    partial, final = _files(tmp_path)

    def replace(a, b):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))
    monkeypatch.setattr(host.os, "replace", replace)
    with pytest.raises(host.PublishError) as info:
        host.publish(partial, final)
    assert not info.value.renamed
    assert f"cannot rename {partial} to {final}" in str(info.value)
    assert open(final, "rb").read() == b"old"


def test_a_failed_directory_sync_says_the_new_file_is_in_place(tmp_path, monkeypatch):
    partial, final = _files(tmp_path)
    monkeypatch.setattr(host, "_sync", _failing_sync("directory"))
    with pytest.raises(host.PublishError) as info:
        host.publish(partial, final)
    assert info.value.renamed
    message = str(info.value)
    assert f"{final} is in place" in message and "rename" not in message
    assert open(final, "rb").read() == b"new"
