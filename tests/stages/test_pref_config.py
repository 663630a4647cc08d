"""The preference settings: the pref: section, LlamaFactory's preference keys, and one clear
message (exit 2) for a bad value or a stage this version cannot train."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ftlab.engine.config import load_profile

from ftlab.errors import ProblemsError, UserError

REPO = Path(__file__).resolve().parents[2]
BASE = "model_name_or_path: smollm2-135m-instruct\ndo_train: true\ndataset: polite_pref\noutput_dir: out/x\n"


def lf(tmp_path, text: str):
    path = tmp_path / "lf.yaml"
    path.write_text(BASE + text)
    return load_profile(path).profile


def test_llamafactory_preference_keys_translate(tmp_path):
    p = lf(tmp_path, "stage: dpo\npref_beta: 0.25\npref_ftx: 0.5\npref_loss: hinge\nsimpo_gamma: 1.5\nkto_chosen_weight: 2.0\n"
           "kto_rejected_weight: 0.5\nref_model: smollm2-135m-instruct\n")
    assert p.stage == "dpo"
    pref = p.pref
    assert (pref.beta, pref.ftx, pref.loss_type, pref.simpo_gamma) == (0.25, 0.5, "hinge", 1.5)
    assert (pref.kto_desirable_weight, pref.kto_undesirable_weight) == (2.0, 0.5)
    assert pref.ref_model == "smollm2-135m-instruct"
    p = lf(tmp_path, "stage: dpo\npref_loss: ipo\n")
    assert p.pref.loss_type == "ipo" and p.pref.beta == 0.1  # LlamaFactory's default β too


@pytest.mark.parametrize("loss", ["orpo", "simpo"])
def test_llamafactory_pref_loss_orpo_and_simpo_are_stages(tmp_path, loss):
    # LlamaFactory runs them under stage: dpo; the key order in the file does not matter
    assert lf(tmp_path, f"pref_loss: {loss}\nstage: dpo\n").stage == loss
    assert lf(tmp_path, f"stage: dpo\npref_loss: {loss}\n").stage == loss


def test_bad_preference_values_name_file_line_and_key(tmp_path):
    path = tmp_path / "lf.yaml"
    path.write_text(BASE + "stage: dpo\npref_loss: kto_pair\ndpo_label_smoothing: 0.1\n")
    with pytest.raises(ProblemsError) as info:
        load_profile(path)
    text = str(info.value)
    assert f"{path}:6: pref_loss: kto_pair is not in trl 1.16" in text
    assert f"{path}:7: pref.label_smoothing:" in text and "needs loss_type robust or exo_pair" in text
    path.write_text("stage: dpo\npref:\n  beta: -1\n  loss_type: sigmoidal\n")
    with pytest.raises(ProblemsError) as info:
        load_profile(path)
    text = str(info.value)
    assert f"{path}:3: pref.beta:" in text and f"{path}:4: pref.loss_type:" in text


def test_kto_needs_two_rows_per_batch(tmp_path):
    from ftlab.engine.train.stages import stage_for

    path = tmp_path / "kto.yaml"
    path.write_text("stage: kto\ntrain:\n  batch_size: 1\n")
    with pytest.raises(UserError, match="train.batch_size: kto needs at least 2 rows"):
        stage_for("kto").arguments(load_profile(path).profile)


def test_ftctl_run_refuses_ppo_and_a_bad_value_with_one_message(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for text, expected in (
        ("stage: ppo\n", "stage: 'ppo' is not available in this version yet (trl 1.16 ships no PPO trainer"),
        ("stage: dpo\npref:\n  ftx: -0.5\n", "pref.ftx:"),
    ):
        path = tmp_path / "p.yaml"
        path.write_text(text + f"output:\n  dir: {tmp_path / 'out'}\n")
        result = subprocess.run([sys.executable, "-m", "ftlab.cli", "run", str(path), "--progress", "none"],
                                capture_output=True, text=True, cwd=REPO, timeout=120, env=env, check=False)
        assert result.returncode == 2, result.stderr[-2000:]
        assert expected in result.stderr and "Traceback" not in result.stderr
