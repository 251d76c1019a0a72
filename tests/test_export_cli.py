"""``adaspring profile``, ``export`` and ``inspect`` end to end on the tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import export_factory as ef
import pytest

from tflite_adaspring import metadata as md
from tflite_adaspring.cli import export_cmd
from tflite_adaspring.cli.main import main


@pytest.fixture(scope="module")
def tiny() -> ef.TinyExport:
    return ef.build()


def test_profile_then_export_then_inspect(
    tiny: ef.TinyExport, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lut = tmp_path / "lut.json"
    assert main(["adaspring", "profile", "--run", str(tiny.run_dir), "--out", str(lut), "--precision", "fp32",
                 "--fit_configs", "3"]) == 0  # fmt: skip
    table = json.loads(lut.read_text())
    assert table["kind"] == "adaspring-latency-lut" and set(table["overhead"]) == {"1"}
    model = tmp_path / "model.tflite"
    cache = tmp_path / "samples.json"
    argv = ["adaspring", "export", "--run", str(tiny.run_dir), "--out", str(model), "--signatures", "3",
            "--precision", "fp32", "--lut", str(lut), "--predictor_samples", "12",
            "--samples_cache", str(cache)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    meta = md.read_metadata(model)
    assert meta.keys == ("cfg00", "cfg01", "cfg02") and meta.storage_mode == "packed"
    ids = {s.config_id for s in meta.signatures}
    space = tiny.supernet.space
    assert {space.largest().id, space.smallest().id} <= ids  # the extremes are always exported
    assert all(s.latency_model is not None and s.latency_model.terms["n_ops"] > 0 for s in meta.signatures)
    assert "cfg02" in out and "wrote" in out
    assert len(json.loads(cache.read_text())["samples"]) >= 12

    assert main(["adaspring", "inspect", str(model)]) == 0
    shown = capsys.readouterr().out
    assert all(s.config_id in shown for s in meta.signatures)
    png = tmp_path / "front.png"
    assert main(["adaspring", "inspect", str(model), "--json", "--plot", str(png)]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert [s["key"] for s in obj["signatures"]] == list(meta.keys) and obj["front"][0] == "cfg00"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_inspect_and_export_fail_clearly(
    tiny: ef.TinyExport, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["adaspring", "inspect", str(tmp_path / "missing.tflite")]) == 1
    assert "does not exist" in capsys.readouterr().err
    stripped = md.unpack_model(tiny.export.model_bytes)
    stripped.metadata = []
    plain = md.save_model(tmp_path / "plain.tflite", md.pack_model(stripped))
    assert main(["adaspring", "inspect", str(plain)]) == 1
    assert "no 'adaspring' metadata" in capsys.readouterr().err
    assert main(["adaspring", "inspect"]) == 2
    out = str(tmp_path / "m.tflite")
    assert main(["adaspring", "export", "--run", str(tiny.run_dir), "--out", out, "--precision", "fp8"]) == 2
    assert "choose from fp32,fp16,int8" in capsys.readouterr().err
    for bad in ("-1", "0", "big"):
        assert main(["adaspring", "export", "--run", str(tiny.run_dir), "--out", out, "--max_size_ratio", bad]) == 2
        assert "--max_size_ratio" in capsys.readouterr().err
    assert export_cmd.parse_size_ratio("none") is None and export_cmd.parse_size_ratio("Auto") == "auto"
    assert export_cmd.parse_size_ratio("2.5") == 2.5
    monkeypatch.setattr(export_cmd, "evolve_available", lambda: False)
    assert main(["adaspring", "export", "--run", str(tiny.run_dir), "--out", out, "--mode", "evolve"]) == 1
    assert "--mode evolve is not available" in capsys.readouterr().err
