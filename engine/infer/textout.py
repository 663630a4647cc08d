"""Turn a growing list of generated token ids into text deltas, honouring stop strings.

Text is decoded from all ids generated so far (byte-level BPE pieces only make sense together),
then cut at the first stop string. Text that could still turn into a stop string, and a trailing
incomplete UTF-8 character, are held back until the next token decides.
"""

from __future__ import annotations


class TextOutput:
    def __init__(self, tokenizer, stop: list[str] | None = None, prefix: str = ""):
        self.tokenizer = tokenizer
        self.stop = [s for s in (stop or []) if s]
        self.prefix = prefix
        self.ids: list[int] = []
        self.sent = 0  # characters of `text` already handed out
        self.text = prefix
        self.stopped = False

    def _decode(self) -> str:
        return self.prefix + self.tokenizer.decode(self.ids, skip_special_tokens=True)

    def _held_back(self, text: str) -> int:
        """How many trailing characters might be the start of a stop string."""
        longest = 0
        for stop in self.stop:
            for k in range(min(len(stop) - 1, len(text)), longest, -1):
                if text.endswith(stop[:k]):
                    longest = k
                    break
        return longest

    def add(self, token_id: int | None) -> str:
        """Append a token (None: just flush); returns the new text that is safe to show."""
        if token_id is not None:
            self.ids.append(token_id)
        text = self._decode()
        if self.stop:
            start = max(0, self.sent - max(len(s) for s in self.stop))
            cut = min((i for i in (text.find(s, start) for s in self.stop) if i >= 0), default=-1)
            if cut >= 0:
                self.stopped = True
                self.text = text[:cut]
                return self._take(self.text)
        self.text = text
        safe = len(text) - self._held_back(text)
        if text[:safe].endswith("\ufffd"):
            safe -= 1
        return self._take(text[:safe])

    def finish(self) -> str:
        """The rest of the text at the end of the answer (nothing held back any more)."""
        if not self.stopped:
            self.text = self._decode()
        return self._take(self.text)

    def _take(self, upto: str) -> str:
        if len(upto) <= self.sent:
            return ""
        delta = upto[self.sent:]
        self.sent = len(upto)
        return delta
