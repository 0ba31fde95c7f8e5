"""Writes two tiny random-weight diffusion LLMs in the export shape of LLaDA / Dream / MDLM, for the text-model tests.

Each is a folder as a Hugging Face export ships it: model.onnx (input_ids -> logits, no time input), config.json,
generation_config.json and tokenizer.json (a byte-level BPE in the `tokenizers` library's JSON format, built here from
a small corpus: the 256 byte symbols, learned merges, and the added tokens <|endoftext|> and <|mdm_mask|>).

- tiny-llada: LLaDA's shape: input_ids and attention_mask (int64), a dynamic sequence axis, mask_token_id in
  config.json, the sequence length as generation_config.json's max_length and an answer of max_new_tokens.
- tiny-dream: Dream's shape: input_ids only, a fixed sequence axis, mask_token_id in generation_config.json, and
  model_type "Dream", whose logits at position i predict token i + 1 (the sampler shifts them back).

The weights are random (seeded), so the text is noise, but every run of a search is deterministic. The script also
writes token-ids.json: the ids this BPE gives a few texts, for the C# tokenizer tests to agree with.

Run with Debian's interpreter: /usr/bin/python3 models/training/make_tiny_text_models.py
Writes tests/SearchOrchestrator.Onnx.Tests/Fixtures/text/.
"""
import collections
import json
import os
import re

import torch

from export import export_onnx_axes, write_json

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "tests", "SearchOrchestrator.Onnx.Tests", "Fixtures", "text")
SEED = 20261201
MERGES = 48
EOS, MASK = "<|endoftext|>", "<|mdm_mask|>"
CORPUS = ("the cat sat on the mat. the dog sat on the log. a cat and a dog met on the mat; "
          "they sat there and the sun set. what is two plus two? two plus two is four. ") * 3
# GPT-2's pre-tokenizer pattern (the `tokenizers` ByteLevel pre-tokenizer with use_regex), with Python's classes for
# \p{L} (letters: [^\W\d_]) and \p{N} (\d).
PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"""
TEXTS = ["the cat sat on the mat", "What is two plus two? 42", "héllo, world_x", "a dog" + MASK + " sat"]


def bytes_to_unicode():
    """GPT-2's reversible map from bytes to printable characters (the ByteLevel alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE = bytes_to_unicode()


def pieces(text):
    return ["".join(BYTE[b] for b in p.encode("utf-8")) for p in re.findall(PATTERN, text)]


def learn_bpe():
    """The 256 byte symbols, then MERGES merges of the most frequent adjacent pair (ties: the first in sorted order)."""
    vocab = {BYTE[b]: i for i, b in enumerate(sorted(BYTE))}
    words = collections.Counter(tuple(p) for p in pieces(CORPUS))
    merges = []
    for _ in range(MERGES):
        pairs = collections.Counter()
        for word, count in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += count
        if not pairs:
            break
        best = max(sorted(pairs), key=lambda p: pairs[p])
        merges.append(best)
        vocab[best[0] + best[1]] = len(vocab)
        merged = collections.Counter()
        for word, count in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += count
        words = merged
    return vocab, merges


def encode(text, vocab, merges, added):
    """The reference encoding: added tokens split out first, then BPE by merge rank within each piece."""
    rank = {m: i for i, m in enumerate(merges)}
    ids = []
    for part in re.split("(" + "|".join(map(re.escape, added)) + ")", text):
        if part in added:
            ids.append(added[part])
            continue
        for piece in pieces(part):
            word = list(piece)
            while len(word) > 1:
                pair = min(zip(word, word[1:]), key=lambda p: rank.get(p, 1 << 30))
                if pair not in rank:
                    break
                i = next(k for k in range(len(word) - 1) if (word[k], word[k + 1]) == pair)
                word[i:i + 2] = [pair[0] + pair[1]]
            ids.extend(vocab[w] for w in word)
    return ids


def tokenizer_json(vocab, merges, added):
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for t, i in added.items()],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }


class TinyMaskPredictor(torch.nn.Module):
    """Embeddings + learned positions -> one bidirectional self-attention block -> logits over the vocabulary."""

    def __init__(self, vocab_size, length, attention_mask):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, 32)
        self.position = torch.nn.Parameter(torch.randn(1, length, 32) * 0.1)
        self.qkv = torch.nn.Linear(32, 96)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.Linear(64, 32))
        self.head = torch.nn.Linear(32, vocab_size)
        self.uses_mask = attention_mask

    def forward(self, input_ids, attention_mask=None):
        h = self.embed(input_ids) + self.position[:, : input_ids.shape[1]]
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        scores = q @ k.transpose(1, 2) / 32 ** 0.5
        if self.uses_mask:
            # Keys outside the mask get no attention (LLaDA's attention_mask semantics).
            scores = scores + (1 - attention_mask.unsqueeze(1).to(scores.dtype)) * -1e9
        h = h + torch.softmax(scores, dim=-1) @ v
        h = h + self.mlp(h)
        return self.head(h)


def write_model(name, vocab_size, length, attention_mask, config, generation_config, tokenizer):
    folder = os.path.join(OUT, name)
    torch.manual_seed(SEED)
    net = TinyMaskPredictor(vocab_size, length, attention_mask)
    ids = torch.zeros(2, length, dtype=torch.int64)
    if attention_mask:
        args = (ids, torch.ones(2, length, dtype=torch.int64))
        names = ["input_ids", "attention_mask"]
        axes = {"input_ids": {0: "batch_size", 1: "sequence_length"}, "attention_mask": {0: "batch_size", 1: "sequence_length"},
                "logits": {0: "batch_size", 1: "sequence_length"}}
    else:
        args = (ids,)
        names = ["input_ids"]
        axes = {"input_ids": {0: "batch_size"}, "logits": {0: "batch_size"}}
    with torch.no_grad():
        export_onnx_axes(net, args, os.path.join(folder, "model.onnx"), names, ["logits"], axes)
    write_json(os.path.join(folder, "config.json"), config)
    write_json(os.path.join(folder, "generation_config.json"), generation_config)
    write_json(os.path.join(folder, "tokenizer.json"), tokenizer)


def main():
    vocab, merges = learn_bpe()
    added = {EOS: len(vocab), MASK: len(vocab) + 1}
    vocab_size = len(vocab) + len(added)
    tokenizer = tokenizer_json(vocab, merges, added)
    write_model("tiny-llada", vocab_size, 24, True,
                {"architectures": ["LLaDAModelLM"], "model_type": "llada", "vocab_size": vocab_size,
                 "mask_token_id": added[MASK], "eos_token_id": added[EOS], "pad_token_id": added[EOS]},
                {"max_length": 24, "max_new_tokens": 8}, tokenizer)
    write_model("tiny-dream", vocab_size, 20, False,
                {"architectures": ["DreamModel"], "model_type": "Dream", "vocab_size": vocab_size,
                 "eos_token_id": added[EOS], "pad_token_id": added[EOS]},
                {"mask_token_id": added[MASK], "eos_token_id": added[EOS], "pad_token_id": added[EOS]}, tokenizer)
    write_json(os.path.join(OUT, "token-ids.json"), {
        "source": "models/training/make_tiny_text_models.py (its reference BPE over the fixtures' tokenizer.json)",
        "texts": [{"text": t, "ids": encode(t, vocab, merges, added)} for t in TEXTS],
    })
    print(f"vocabulary {vocab_size} ({len(merges)} merges), wrote {OUT}")


if __name__ == "__main__":
    main()
