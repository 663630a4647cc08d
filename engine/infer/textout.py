"""Turn a growing list of generated token ids into text deltas, honouring stop strings.

Decoding is incremental (the method vLLM and TGI use): only the last few tokens are decoded each
step, because byte-level BPE pieces need their neighbours to form characters; a delta ending in
an incomplete UTF-8 character (U+FFFD) waits for the next token. The answer is then cut at the
first stop string; text that could still become a stop string is held back until it is decided.
"""

from __future__ import annotations


class TextOutput:
    def __init__(self, tokenizer, stop: list[str] | None = None, prefix: str = ""):
        self.tokenizer = tokenizer
        self.stop = [s for s in (stop or []) if s]
        self.max_stop = max((len(s) for s in self.stop), default=0)
        self.ids: list[int] = []
        self.prefix_offset = 0  # ids before this are settled text
        self.read_offset = 0  # ids before this have been turned into text
        self.text = prefix  # all the text decided so far
        self.sent = 0  # characters of `text` already handed out
        self.stopped = False

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

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
        if self.stopped:
            return ""
        if token_id is not None:
            self.ids.append(token_id)
            before = self._decode(self.ids[self.prefix_offset:self.read_offset])
            after = self._decode(self.ids[self.prefix_offset:])
            if after.endswith("\ufffd") or len(after) <= len(before):
                return self._safe()  # wait for the rest of the character
            self.text += after[len(before):]
            self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
        return self._safe()

    def _safe(self) -> str:
        text = self.text
        if self.stop:
            start = max(0, self.sent - self.max_stop)
            cut = min((i for i in (text.find(s, start) for s in self.stop) if i >= 0), default=-1)
            if cut >= 0:
                self.stopped = True
                self.text = text[:cut]
                return self._take(len(self.text))
        return self._take(len(text) - self._held_back(text))

    def finish(self) -> str:
        """The rest of the text at the end of the answer (nothing held back any more)."""
        if not self.stopped and self.read_offset < len(self.ids):
            rest = self._decode(self.ids[self.prefix_offset:])
            before = self._decode(self.ids[self.prefix_offset:self.read_offset])
            self.text += rest[len(before):]
            self.read_offset = len(self.ids)
            if self.stop:
                tail = self._safe()
                if self.stopped:
                    return tail
                return tail + self._take(len(self.text))
        return self._take(len(self.text))

    def _take(self, upto: int) -> str:
        if upto <= self.sent:
            return ""
        delta = self.text[self.sent:upto]
        self.sent = upto
        return delta
