"""ftlab.engine.eval: the `eval` stage (multiple-choice benchmarks) and the `predict` stage.

    ftctl run profiles/eval_demo.yaml       # MMLU / CMMLU / C-Eval accuracy from local CSV folders
    ftctl run profiles/predict_demo.yaml    # generated_predictions.jsonl + BLEU-4, ROUGE-1/2/L

Modules, one job each: categories (subject → category tables, as data), tasks (reads a benchmark
folder in its own CSV layout), prompts (k-shot prompts through the profile's chat template),
scoring (batched next-token logits of the choice letters), results (accuracy per subject,
category and overall; results.json / results.txt), similarity (BLEU / ROUGE), model (base +
adapter for inference), benchmark and predict (the two stages' orchestrators).
"""
