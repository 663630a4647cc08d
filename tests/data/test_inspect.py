"""`ftctl data inspect`: decoded samples with the loss mask and statistics; bad data exits 2."""

from __future__ import annotations

import json

from ftlab.cli.main import main


def _profile(tmp_path, repo, dataset="identity", extra=""):
    path = tmp_path / "p.yaml"
    path.write_text(f"stage: sft\ndata:\n  dataset: [{dataset}]\n  dataset_dir: {repo / 'profiles/data'}\n"
                    f"  cutoff_len: 96\n{extra}")
    return path


def test_inspect_json(tmp_path, repo, data_cache, capsys):
    assert main(["data", "inspect", str(_profile(tmp_path, repo)), "-n", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stats"]["kept"] == out["stats"]["samples"] > 0
    segments = out["samples"][0]["sample"]["segments"]
    trained = "".join(s["text"] for s in segments if s["trained"])
    assert "ftlab assistant" in trained and trained.endswith("<|im_end|>")
    assert "<|im_start|>user" in "".join(s["text"] for s in segments if not s["trained"])


def test_inspect_rich(tmp_path, repo, data_cache, capsys):
    assert main(["data", "inspect", str(_profile(tmp_path, repo)), "-n", "1"]) == 0
    out = capsys.readouterr().out
    assert "sample 1" in out and "samples kept" in out and "token lengths" in out


def test_inspect_bad_data_exits_2(tmp_path, repo, data_cache, capsys):
    assert main(["data", "inspect", str(_profile(tmp_path, repo, dataset="nope"))]) == 2
    assert "nope: no such dataset" in capsys.readouterr().err
