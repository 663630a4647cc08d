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


def test_inspect_views_per_stage(tmp_path, data_cache, make_dataset, capsys):
    folder = make_dataset({"p": ({"ranking": True, "columns": {"prompt": "q", "chosen": "c", "rejected": "r"}},
                                 [{"q": "Say hi", "c": "Hi!", "r": "No.", "output": "Hi!"}])})
    profile = tmp_path / "dpo.yaml"
    profile.write_text(f"stage: dpo\ndata:\n  dataset: [p]\n  dataset_dir: {folder}\n")
    assert main(["data", "inspect", str(profile), "--json"]) == 0
    sample = json.loads(capsys.readouterr().out)["samples"][0]
    assert set(sample) == {"chosen", "rejected"}
    assert main(["data", "inspect", str(profile), "--stage", "predict", "--json"]) == 0
    sample = json.loads(capsys.readouterr().out)["samples"][0]
    assert "".join(s["text"] for s in sample["prompt"]["segments"]).endswith("<|im_start|>assistant\n")
