"""ftui's strings in English, Chinese and Russian, switchable while the app runs.

Every visible string is looked up by key with `t("mode.jobs")`; the catalogues are the JSON
files next to this module (`en.json`, `zh.json`, `ru.json`), one flat key → text map each, with
`str.format` fields (`t("jobs.resumed", id=3)`). English is the reference: a key missing in
another language falls back to English at run time, and tests/tui/test_i18n.py fails when any
key used by the code is missing in any language.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

LANGUAGES = ("en", "zh", "ru")
LANGUAGE_NAMES = {"en": "English", "zh": "中文", "ru": "Русский"}
_HERE = Path(__file__).resolve().parent
_current = "en"


@cache
def catalogue(lang: str) -> dict[str, str]:
    return json.loads((_HERE / f"{lang}.json").read_text(encoding="utf-8"))


def set_language(lang: str) -> None:
    global _current
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    _current = lang


def language() -> str:
    return _current


def next_language() -> str:
    return LANGUAGES[(LANGUAGES.index(_current) + 1) % len(LANGUAGES)]


def t(key: str, **fields) -> str:
    """The current language's text for `key` (English if missing there; the key if missing everywhere)."""
    text = catalogue(_current).get(key)
    if text is None:
        text = catalogue("en").get(key, key)
    return text.format(**fields) if fields else text
