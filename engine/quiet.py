"""Silence third-party chatter that a job's log.txt and a chat answer should not carry.

Only messages nobody can act on here: the libraries' own progress bars (ftlab reports progress
in metrics.jsonl and its own display), bitsandbytes asking for the `kernels` hub package (no hub
here), and a transformers deprecation that peft triggers. Real warnings stay.
"""

from __future__ import annotations

import logging
import warnings


def quiet_libraries() -> None:
    import datasets
    import transformers

    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
