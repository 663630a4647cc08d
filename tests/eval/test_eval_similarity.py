"""BLEU-4 / ROUGE against the libraries' own values and hand-counted n-grams, English and Chinese."""

from __future__ import annotations

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from ftlab.engine.eval.similarity import CharRougeTokenizer, similarity

EN = ("the cat sat on a mat.", "The cat sat on the mat.")


def test_english_matches_the_libraries_defaults():
    pred, ref = EN
    scores = similarity([pred], [ref])
    assert scores["bleu-4"] == pytest.approx(sacrebleu.sentence_bleu(pred, [ref]).score, abs=1e-4)
    default = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"]).score(ref, pred)
    assert scores["rouge-1"] == pytest.approx(100 * default["rouge1"].fmeasure, abs=1e-4)
    assert scores["rouge-2"] == pytest.approx(100 * default["rouge2"].fmeasure, abs=1e-4)
    assert scores["rouge-l"] == pytest.approx(100 * default["rougeL"].fmeasure, abs=1e-4)
    assert scores["rouge-1"] == pytest.approx(100 * 5 / 6, abs=1e-4)  # 5 of 6 words shared (lower-cased)


def test_chinese_pair_by_characters():
    # 我喜欢狗 / 我喜欢猫: 3/4 characters, 2/3 bigrams, 1/2 trigrams, 0/1 4-grams in common
    scores = similarity(["我喜欢狗"], ["我喜欢猫"])
    assert scores["rouge-1"] == pytest.approx(75.0)
    assert scores["rouge-2"] == pytest.approx(100 * 2 / 3, abs=1e-4)
    assert scores["rouge-l"] == pytest.approx(75.0)
    # BLEU: exponential smoothing puts 1/2 for the empty 4-gram precision; brevity penalty 1
    assert scores["bleu-4"] == pytest.approx(100 * (0.75 * 2 / 3 * 0.5 * 0.5) ** 0.25, abs=1e-3)
    assert scores["bleu-4"] == pytest.approx(sacrebleu.sentence_bleu("我喜欢狗", ["我喜欢猫"], tokenize="zh").score,
                                             abs=1e-4)
    # rouge-score's own tokenizer drops every Chinese character: the reason for CharRougeTokenizer
    assert rouge_scorer.RougeScorer(["rouge1"]).score("我喜欢猫", "我喜欢狗")["rouge1"].fmeasure == 0.0


def test_mixed_text_tokens_and_mean_over_pairs():
    assert CharRougeTokenizer().tokenize("我用 PyTorch 2.1，很好！") == ["我", "用", "pytorch", "2", "1", "很", "好"]
    both = similarity(["我喜欢狗", EN[0]], ["我喜欢猫", EN[1]])
    one, two = similarity(["我喜欢狗"], ["我喜欢猫"]), similarity([EN[0]], [EN[1]])
    for key in both:
        assert both[key] == pytest.approx((one[key] + two[key]) / 2, abs=1e-3)
    assert similarity(["same words here"], ["same words here"]) == {
        "bleu-4": 100.0, "rouge-1": 100.0, "rouge-2": 100.0, "rouge-l": 100.0}
    assert similarity([""], ["a reference"])["rouge-1"] == 0.0
