"""Low-level kernel-file reading helpers."""

from __future__ import annotations

import os

from tflite_adaspring.context._files import PseudoFile, is_real_root, parse_int, parse_word, read_once


def test_pseudo_file_reads_and_missing_file_is_none(tmp_path):
    path = tmp_path / "value"
    path.write_text("42\n")
    for keep_open in (False, True):
        assert PseudoFile(str(path), keep_open).read() == b"42\n"
        assert PseudoFile(str(tmp_path / "missing"), keep_open).read() is None


def test_kept_open_file_sees_in_place_rewrites(tmp_path):
    path = tmp_path / "value"
    path.write_text("1\n")
    pseudo = PseudoFile(str(path), keep_open=True)
    assert pseudo.read() == b"1\n"
    path.write_text("23\n")  # truncate + write: same inode, like a kernel attribute changing
    assert pseudo.read() == b"23\n"
    pseudo.close()
    assert pseudo.read() == b"23\n"  # reopens after close
    pseudo.close()


def test_kept_open_file_that_disappears_reads_none_after_reopen(tmp_path):
    path = tmp_path / "value"
    path.write_text("7")
    pseudo = PseudoFile(str(path), keep_open=True)
    assert pseudo.read() == b"7"
    os.unlink(path)
    pseudo.close()
    assert pseudo.read() is None


def test_read_size_limits_bytes(tmp_path):
    path = tmp_path / "big"
    path.write_text("x" * 1000)
    assert len(PseudoFile(str(path), keep_open=False, size=10).read()) == 10


def test_parsers_turn_garbage_into_none():
    assert parse_int(b" 17\n") == 17
    assert parse_int("-3") == -3
    assert parse_int(b"") is None
    assert parse_int(b"12abc") is None
    assert parse_int(None) is None
    assert parse_word(b"Charging\n") == "Charging"
    assert parse_word(b"\n") is None
    assert parse_word(b"\xff\xfe") is None
    assert parse_word(None) is None


def test_read_once(tmp_path):
    (tmp_path / "t").write_text("  Battery \n")
    (tmp_path / "bin").write_bytes(b"\xff\xfe")
    assert read_once(str(tmp_path / "t")) == "Battery"
    assert read_once(str(tmp_path / "bin")) is None
    assert read_once(str(tmp_path / "missing")) is None
    assert read_once(str(tmp_path)) is None  # a folder


def test_is_real_root(tmp_path):
    assert is_real_root("/")
    assert is_real_root("/proc/..")
    assert not is_real_root(tmp_path)
