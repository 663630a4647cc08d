"""Profiles: every shipped profile validates; bad ones report file, line and key, all at once;
LlamaFactory YAML is translated key by key; `ftctl validate` exits 2 with one message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ftlab.engine.config import Profile, field_docs, load_profile, resolve_paths
from ftlab.errors import ProblemsError

REPO = Path(__file__).resolve().parent.parent
PROFILES = sorted((REPO / "profiles").glob("*.yaml"))


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_shipped_profiles_validate_and_document_their_command(path):
    first = path.read_text().splitlines()[0]
    assert first == f"# ftctl run profiles/{path.name}", "a profile starts with the exact command that runs it"
    loaded = load_profile(path)
    assert loaded.profile.stage in ("pt", "sft", "rm", "dpo", "orpo", "simpo", "kto", "eval", "predict")


def test_all_problems_reported_with_line_and_key(tmp_path):
    path = write(tmp_path, "stage: sft\nmethod:\n  type: lora\n  lora:\n    rank: many\n    colour: red\n"
                           "train:\n  batch_size: 0\n  learning_rate: fast\n")
    with pytest.raises(ProblemsError) as info:
        load_profile(path)
    text = str(info.value)
    assert "4 problems" in text
    assert f"{path}:5: method.lora.rank:" in text and "valid integer" in text
    assert f"{path}:6: method.lora.colour: unknown key; allowed here: alpha, dropout" in text
    assert f"{path}:8: train.batch_size:" in text and "greater than or equal to 1" in text
    assert f"{path}:9: train.learning_rate:" in text


def test_wrong_literal_names_allowed_values(tmp_path):
    path = write(tmp_path, "stage: finetune\n")
    with pytest.raises(ProblemsError) as info:
        load_profile(path)
    assert f"{path}:1: stage:" in str(info.value) and "'sft'" in str(info.value)


def test_malformed_yaml_names_the_line(tmp_path):
    path = write(tmp_path, "stage: sft\nmodel:\n  name_or_path: [unclosed\ntrain: {}\n")
    with pytest.raises(ProblemsError) as info:
        load_profile(path)
    assert "malformed YAML" in str(info.value) and f"{path}:" in str(info.value)


def test_set_overrides_any_key_and_is_validated(tmp_path):
    path = write(tmp_path, "stage: sft\n")
    loaded = load_profile(path, ["train.max_steps=7", "method.lora.target=[q_proj, v_proj]", "data.dataset=a,b"])
    assert loaded.profile.train.max_steps == 7
    assert loaded.profile.method.lora.target == ["q_proj", "v_proj"]
    assert loaded.profile.data.dataset == ["a", "b"]
    with pytest.raises(ProblemsError) as info:
        load_profile(path, ["train.max_steps=-1", "nonsense"])
    text = str(info.value)
    assert "--set: train.max_steps:" in text and "KEY=VALUE" in text


LLAMAFACTORY = """\
### model
model_name_or_path: smollm2-135m-instruct
trust_remote_code: true

### method
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 8
lora_alpha: 16
lora_dropout: 0.05
lora_target: q_proj,v_proj

### dataset
dataset: identity,alpaca_demo
dataset_dir: profiles/data
template: auto
cutoff_len: 2048
max_samples: 1000
overwrite_cache: true
preprocessing_num_workers: 16

### output
output_dir: saves/smollm2/lora/sft
logging_steps: 10
save_steps: 500
plot_loss: true
overwrite_output_dir: true
report_to: none

### train
per_device_train_batch_size: 1
gradient_accumulation_steps: 8
learning_rate: 1.0e-4
num_train_epochs: 3.0
max_steps: 100
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true
seed: 7
ddp_timeout: 180000000
"""


def test_llamafactory_yaml_is_translated(tmp_path):
    loaded = load_profile(write(tmp_path, LLAMAFACTORY))
    p = loaded.profile
    assert loaded.flavour == "llamafactory"
    assert p.stage == "sft" and p.method.type == "lora"
    assert (p.method.lora.rank, p.method.lora.alpha, p.method.lora.dropout) == (8, 16, 0.05)
    assert p.method.lora.target == ["q_proj", "v_proj"]
    assert p.data.dataset == ["identity", "alpaca_demo"] and p.data.cutoff_len == 2048
    assert p.data.max_samples == 1000 and p.data.preprocessing_num_workers == 16 and p.data.overwrite_cache
    assert p.output.dir == "saves/smollm2/lora/sft" and p.output.overwrite and p.output.plot_loss
    assert p.output.report_to == []
    assert (p.train.batch_size, p.train.gradient_accumulation_steps) == (1, 8)
    assert (p.train.learning_rate, p.train.epochs, p.train.max_steps) == (1e-4, 3.0, 100)
    assert (p.train.lr_scheduler, p.train.warmup_ratio, p.train.seed) == ("cosine", 0.1, 7)
    assert p.train.precision == "bf16" and p.train.logging_steps == 10 and p.train.save_steps == 500
    assert p.model.trust_remote_code is True
    assert p.train.ddp_timeout == 180000000  # LlamaFactory's own example configs carry it


def test_llamafactory_untranslatable_key_is_an_error_with_its_line(tmp_path):
    text = LLAMAFACTORY.replace("seed: 7\n", "seed: 7\nmystery_option: 3\n")
    path = write(tmp_path, text)
    with pytest.raises(ProblemsError) as info:
        load_profile(path)
    line = text.splitlines().index("mystery_option: 3") + 1
    assert f"{path}:{line}: mystery_option: LlamaFactory key that ftlab cannot translate" in str(info.value)


def test_llamafactory_flat_set_and_bad_values(tmp_path):
    path = write(tmp_path, LLAMAFACTORY)
    loaded = load_profile(path, ["learning_rate=3e-5", "train.max_steps=5"])
    assert loaded.profile.train.learning_rate == 3e-5 and loaded.profile.train.max_steps == 5
    with pytest.raises(ProblemsError) as info:
        load_profile(write(tmp_path, LLAMAFACTORY.replace("lora_rank: 8", "lora_rank: eight"), "b.yaml"))
    line = LLAMAFACTORY.splitlines().index("lora_rank: 8") + 1
    assert f"b.yaml:{line}: method.lora.rank:" in str(info.value)


def test_resolve_paths_makes_relative_paths_absolute(tmp_path):
    profile = Profile.model_validate({"data": {"dataset_dir": "profiles/data"}, "output": {"dir": "out/x"}})
    resolved = resolve_paths(profile, tmp_path)
    assert resolved.data.dataset_dir == str(tmp_path / "profiles/data")
    assert resolved.output.dir == str(tmp_path / "out/x")
    assert resolved.model.name_or_path == "smollm2-135m-instruct"


def test_every_field_is_documented():
    docs = field_docs()
    assert "train.learning_rate" in docs and "method.lora.rank" in docs
    undocumented = [key for key, text in docs.items() if text.startswith(" (default")]
    assert not undocumented, f"fields without a description: {undocumented}"


def test_ftctl_validate_exit_codes(tmp_path):
    good = subprocess.run([sys.executable, "-m", "ftlab.cli", "validate", str(PROFILES[0])],
                          capture_output=True, text=True, cwd=REPO)
    assert good.returncode == 0, good.stderr
    bad = write(tmp_path, "stage: sft\ntrain:\n  batch_size: zero\n")
    result = subprocess.run([sys.executable, "-m", "ftlab.cli", "validate", str(bad)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}:3: train.batch_size:" in result.stderr
    missing = subprocess.run([sys.executable, "-m", "ftlab.cli", "validate", str(tmp_path / "nope.yaml")],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "no such profile file" in missing.stderr


def test_cross_section_check_streaming_needs_max_steps(tmp_path):
    path = write(tmp_path, "stage: sft\ndata:\n  streaming: true\n")
    with pytest.raises(ProblemsError, match="data.streaming needs train.max_steps"):
        load_profile(path)
    assert load_profile(path, ["train.max_steps=10"]).profile.data.streaming
