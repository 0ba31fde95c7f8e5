"""A CLIP-style byte-level BPE tokenizer trained on a caption corpus, written as CLIPTokenizer's files.

The files follow openai/clip-vit-*'s tokenizer as transformers saves it: vocab.json holds the 256 byte symbols
(GPT-2's printable byte-to-unicode map), then each byte symbol with the end-of-word suffix `</w>`, then one token
per merge in merge order, then `<|startoftext|>` and `<|endoftext|>`; merges.txt starts with a `#version` line and
lists one merge per line. Text is lower-cased and split into words, numbers and punctuation runs before BPE;
sequences are `<|startoftext|>` + tokens + `<|endoftext|>`, padded with `<|endoftext|>` to the model length (as
Stable Diffusion 1.x pads).
"""
import json
import os
import re

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
SUFFIX = "</w>"
_WORDS = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[a-z]+|[0-9]|[^\sa-z0-9]+")


def byte_table():
    """GPT-2's reversible byte -> printable character map, printable bytes first (CLIP's vocabulary order)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def words(text: str):
    """Lower-cased, whitespace-normalised pre-tokenization; each word as its byte symbols."""
    symbols = _SYMBOLS
    text = " ".join(text.lower().split())
    return ["".join(symbols[b] for b in w.encode("utf-8")) for w in _WORDS.findall(text)]


_TABLE = byte_table()
_SYMBOLS = [_TABLE[b] for b in range(256)]


def _split(word: str):
    return tuple(word[:-1]) + (word[-1] + SUFFIX,)


def train(corpus):
    """Merges learnt from the corpus until every word is one token (ties broken by the pair's text)."""
    counts = {}
    for text in corpus:
        for w in words(text):
            counts[w] = counts.get(w, 0) + 1
    pieces = {w: _split(w) for w in counts}
    merges = []
    while True:
        pairs = {}
        for w, parts in pieces.items():
            for a, b in zip(parts, parts[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + counts[w]
        if not pairs:
            return merges
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        for w, parts in pieces.items():
            out, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                    out.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            pieces[w] = tuple(out)


class Tokenizer:
    """Encodes text with a vocabulary and merge list (the files `save` writes)."""

    def __init__(self, merges, max_length: int):
        symbols = list(_TABLE.values())
        tokens = symbols + [s + SUFFIX for s in symbols] + ["".join(m) for m in merges] + [BOS, EOS]
        self.vocab = {t: i for i, t in enumerate(tokens)}
        self.merges = list(merges)
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.max_length = max_length
        self.bos, self.eos = self.vocab[BOS], self.vocab[EOS]

    def bpe(self, word: str):
        parts = list(_split(word))
        while len(parts) > 1:
            ranked = [(self.ranks.get((a, b), len(self.ranks)), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            rank, i = min(ranked)
            if rank == len(self.ranks):
                break
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        return parts

    def encode(self, text: str):
        """Token ids of length max_length: BOS, the text's tokens (truncated), EOS, then EOS padding."""
        ids = [self.vocab[p] for w in words(text) for p in self.bpe(w)]
        ids = [self.bos] + ids[:self.max_length - 2] + [self.eos]
        return ids + [self.eos] * (self.max_length - len(ids))

    def save(self, directory: str):
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as f:
            json.dump(self.vocab, f, ensure_ascii=False)
        with open(os.path.join(directory, "merges.txt"), "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n")
            for a, b in self.merges:
                f.write(f"{a} {b}\n")
        special = {"bos_token": BOS, "eos_token": EOS, "pad_token": EOS, "unk_token": EOS}
        with open(os.path.join(directory, "special_tokens_map.json"), "w") as f:
            json.dump(special, f, indent=2)
            f.write("\n")
        config = {
            "tokenizer_class": "CLIPTokenizer",
            "model_max_length": self.max_length,
            "do_lower_case": True,
            "errors": "replace",
            "add_prefix_space": False,
            **special,
        }
        with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
            json.dump(config, f, indent=2)
            f.write("\n")
