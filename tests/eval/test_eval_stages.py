"""`ftctl run` of the eval and predict stages end to end on a tiny random model: the run contract's
files, results that agree with the predictions written, and one message + exit 2 for bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ftlab.cli.main import main
from ftlab.engine.eval.similarity import similarity

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "profiles" / "data" / "mmlu_demo"


def ftctl_run(profile: Path, *sets: str) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "ftlab.cli", "run", str(profile), "--progress", "plain"]
    for item in sets:
        args += ["--set", item]
    return subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=300)


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def check_contract(run_dir: Path, batches: int) -> None:
    assert json.loads((run_dir / "exit.json").read_text())["status"] == "succeeded"
    assert (run_dir / "config.yaml").is_file() and (run_dir / "log.txt").is_file()
    metrics = records(run_dir)
    assert metrics[0] == {**metrics[0], "event": "start", "total_steps": batches}
    assert metrics[-1]["event"] == "end" and metrics[-1]["status"] == "succeeded"
    assert [r["step"] for r in metrics if "step" in r] == list(range(1, batches + 1))
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")], "no temp files left"


def test_eval_end_to_end(tmp_path, tiny_llama):
    out = tmp_path / "eval"
    profile = tmp_path / "eval.yaml"
    profile.write_text(f"stage: eval\nmodel: {{name_or_path: {tiny_llama}}}\n"
                       f"eval: {{task_dir: {DEMO.parent}, task: mmlu_demo_test, n_shot: 1, batch_size: 5}}\n"
                       f"output: {{dir: {out}}}\n")
    result = ftctl_run(profile)
    assert result.returncode == 0, result.stderr[-3000:]
    check_contract(out, batches=3)  # 12 questions, 5 a batch
    report = json.loads((out / "results.json").read_text())
    assert list(report["categories"]) == ["STEM", "Social Sciences", "Humanities"]
    assert {s: v["total"] for s, v in report["subjects"].items()} == {
        "elementary_mathematics": 4, "high_school_geography": 4, "world_religions": 4}
    answers = {p.stem[:-5]: [line.rsplit(",", 1)[1].strip() for line in p.read_text().splitlines()]
               for p in (DEMO / "test").glob("*.csv")}
    correct = sum(p == a for s, preds in report["predictions"].items() for p, a in zip(preds, answers[s]))
    assert report["average"]["correct"] == correct and report["average"]["total"] == 12
    assert records(out)[-1]["accuracy"] == pytest.approx(correct / 12)
    assert "Average:" in (out / "results.txt").read_text() and "Average:" in result.stdout


def test_predict_end_to_end(tmp_path, tiny_llama):
    out = tmp_path / "predict"
    profile = tmp_path / "predict.yaml"
    profile.write_text(f"stage: predict\nmodel: {{name_or_path: {tiny_llama}}}\n"
                       f"data: {{dataset: [identity], dataset_dir: {REPO / 'profiles/data'}, max_samples: 5}}\n"
                       f"generate: {{max_new_tokens: 6, batch_size: 2}}\noutput: {{dir: {out}}}\n")
    result = ftctl_run(profile)
    assert result.returncode == 0, result.stderr[-3000:]
    check_contract(out, batches=3)
    rows = [json.loads(line) for line in (out / "generated_predictions.jsonl").read_text().splitlines()]
    source = json.loads((REPO / "profiles/data/identity.json").read_text())[:5]
    assert [r["label"] for r in rows] == [s["output"] for s in source]  # dataset order, reference decoded
    for row, sample in zip(rows, source):
        assert row["prompt"].endswith(f"{sample['instruction']}<|im_end|>\n<|im_start|>assistant\n")
    results = json.loads((out / "results.json").read_text())
    expected = similarity([r["predict"] for r in rows], [r["label"] for r in rows])
    assert {k: results[f"predict_{k}"] for k in expected} == expected
    assert results["predict_samples"] == 5 and 0 < results["generated_tokens"] <= 30


def test_bad_benchmark_input_is_one_message_and_exit_2(tmp_path, tiny_llama, capfd):
    bench = tmp_path / "bench"
    shutil.copytree(DEMO, bench / "mini")
    profile = tmp_path / "eval.yaml"
    profile.write_text(f"stage: eval\nmodel: {{name_or_path: {tiny_llama}}}\n"
                       f"eval: {{task_dir: {bench}, task: mini_test}}\noutput: {{dir: {tmp_path / 'out'}}}\n")

    def run(*sets: str) -> str:
        argv = ["run", str(profile), "--progress", "none"]
        for item in sets:
            argv += ["--set", item]
        assert main(argv) == 2
        err = capfd.readouterr().err
        assert "Traceback" not in err
        assert json.loads((tmp_path / "out" / "exit.json").read_text())["status"] == "failed"
        return err

    assert f"eval.task: no folder {bench / 'nothing'}" in run("eval.task=nothing_test")
    assert "eval.subjects: unknown subject astrology" in run("eval.subjects=[astrology]")
    bad = bench / "mini" / "test" / "world_religions_test.csv"
    bad.write_text(bad.read_text() + "An unfinished question,A,B\n")
    assert f"{bad} row 5 (line 5): expected 6 fields" in run()
    assert not (tmp_path / "out" / "results.json").exists()
    # earlier results are not overwritten silently
    (tmp_path / "out" / "results.json").write_text("{}")
    assert "already holds results (results.json); set output.overwrite: true" in run("eval.task=mmlu_demo_test",
                                                                                     f"eval.task_dir={DEMO.parent}")


def test_generation_settings_greedy_or_sampling():
    from ftlab.engine.config.schema import GenerateConfig
    from ftlab.engine.eval.predict import generation_kwargs

    greedy = generation_kwargs(GenerateConfig(max_new_tokens=7), pad_id=2, eos_ids=[2])
    assert greedy["do_sample"] is False and greedy["temperature"] is None and greedy["max_new_tokens"] == 7
    sampled = generation_kwargs(GenerateConfig(do_sample=True, temperature=0.3, top_p=0.8, top_k=5, num_beams=2),
                                pad_id=2, eos_ids=[2, 7])
    assert (sampled["temperature"], sampled["top_p"], sampled["top_k"]) == (0.3, 0.8, 5)
    assert sampled["length_penalty"] == 1.0 and sampled["eos_token_id"] == [2, 7]
