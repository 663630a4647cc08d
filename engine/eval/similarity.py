"""BLEU-4 and ROUGE-1/2/L of predictions against references, for English and Chinese alike.

    scores = similarity(predictions, references)
    # {"bleu-4": 41.2, "rouge-1": 55.0, "rouge-2": 30.1, "rouge-l": 50.3}   (percent, mean over samples)

Each pair is scored on its own and the scores are averaged over pairs (×100), as LlamaFactory's
`predict_bleu-4` / `predict_rouge-*` are, so the numbers read on the same scale. The libraries:
sacrebleu's `sentence_bleu` (4-gram BLEU, exponential smoothing — Chen & Cherry's method 3, which
LlamaFactory takes from NLTK) and Google's `rouge-score` (F-measures).

Chinese is segmented into characters, not words (jieba): character n-grams are what sacrebleu's
`zh` tokenizer and the WMT Chinese evaluations use; they need no dictionary (jieba's results
change with its dictionary version and its load costs a second per process); and they score a
prediction by what it says rather than by how a segmenter happened to split it. LlamaFactory
uses jieba words for ROUGE (and characters for BLEU), so its Chinese ROUGE figures are not
comparable with these. Text without CJK characters is tokenized exactly as each library does by
default (sacrebleu 13a; rouge-score lower-cased alphanumeric words): sacrebleu's `zh` tokenizer
separates CJK characters and applies 13a to the rest, and `CharRougeTokenizer` separates CJK
characters and applies rouge-score's own tokenizer to the rest. Without that, rouge-score drops
every Chinese character and scores any Chinese pair 0.
"""

from __future__ import annotations

import re

# CJK ideographs, extension A, compatibility ideographs, CJK punctuation, full-width forms, kana, hangul
_CJK = re.compile(r"([\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
                  r"\uff00-\uffef])")


class CharRougeTokenizer:
    """rouge-score tokenizer: each CJK character a token; other text as rouge-score's default."""

    def __init__(self):
        from rouge_score import tokenize

        self._default = tokenize.tokenize

    def tokenize(self, text: str) -> list[str]:
        tokens: list[str] = []
        for piece in _CJK.split(text):
            if not piece:
                continue
            if _CJK.fullmatch(piece):
                if piece.isalnum():  # ideographs, kana, hangul; CJK punctuation is dropped like ASCII's
                    tokens.append(piece)
            else:
                tokens.extend(self._default(piece, None))
        return tokens


def similarity(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Mean sentence BLEU-4 and ROUGE-1/2/L F1 over the pairs, in percent."""
    import sacrebleu
    from rouge_score import rouge_scorer

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=CharRougeTokenizer())
    totals = {"bleu-4": 0.0, "rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    for prediction, reference in zip(predictions, references):
        totals["bleu-4"] += sacrebleu.sentence_bleu(prediction, [reference], tokenize="zh").score
        rouge = scorer.score(reference, prediction)
        totals["rouge-1"] += 100 * rouge["rouge1"].fmeasure
        totals["rouge-2"] += 100 * rouge["rouge2"].fmeasure
        totals["rouge-l"] += 100 * rouge["rougeL"].fmeasure
    n = max(len(predictions), 1)
    return {key: round(value / n, 4) for key, value in totals.items()}
