"""Length-grouped batches and the content-keyed tokenisation cache (theseus_cli.data)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from conftest import WORDS

from theseus_cli.data import (
    LengthGroupedSampler,
    cache_key,
    example_lengths,
    make_dataloader,
    tokenize_split,
)
from theseus_cli.data.glue import get_task

N = 120  # rows; lengths vary from 5 to ~30 tokens


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


@pytest.fixture(scope="module")
def varied(tokenizer, tmp_path_factory):
    """A tokenised MRPC-like split of N pairs of 1 to 12 words per sentence."""
    import datasets

    rng = random.Random(0)
    words = [w for w in WORDS if w.isalpha()]

    def text():
        return " ".join(rng.choice(words) for _ in range(rng.randint(1, 12)))

    rows = {"idx": list(range(N)), "sentence1": [text() for _ in range(N)],
            "sentence2": [text() for _ in range(N)], "label": [i % 2 for i in range(N)]}
    return tokenize_split(datasets.Dataset.from_dict(rows), tokenizer, "MRPC", 64,
                          cache_dir=tmp_path_factory.mktemp("tok-cache"))


def _examples(loader) -> list[tuple]:
    """Each example of each batch as (unpadded input_ids, label), in batch order."""
    out = []
    for b in loader:
        for ids, mask, y in zip(b["input_ids"], b["attention_mask"], b["labels"], strict=False):
            out.append((tuple(ids[mask.bool()].tolist()), int(y)))
    return out


def _padding_fraction(loader) -> float:
    """Padded tokens / all tokens over every batch of one pass."""
    pad = total = 0
    for b in loader:
        pad += int((b["attention_mask"] == 0).sum())
        total += b["attention_mask"].numel()
    return pad / total


def test_example_lengths_reads_input_ids(varied):
    lengths = example_lengths(varied)
    assert lengths == [len(x) for x in varied["input_ids"]]
    assert min(lengths) < max(lengths)  # the fixture's lengths vary
    assert example_lengths(varied.select([5, 2])) == [lengths[5], lengths[2]]


def test_grouped_pass_holds_every_example_once(varied, tokenizer):
    grouped = make_dataloader(varied, tokenizer, 8, True, seed=1, group_by_length=True)
    assert isinstance(grouped.sampler, LengthGroupedSampler)
    assert grouped.sampler.generator is grouped.generator  # the one train() reseeds
    order = list(grouped.sampler)
    assert sorted(order) == list(range(N))
    plain = make_dataloader(varied, tokenizer, 8, True, seed=1)
    assert Counter(_examples(grouped)) == Counter(_examples(plain))
    assert len(_examples(grouped)) == N


def test_grouped_order_is_deterministic_per_seed(varied, tokenizer):
    def order(seed):
        return _examples(make_dataloader(varied, tokenizer, 8, True, seed, group_by_length=True))

    assert order(3) == order(3)
    assert order(3) != order(4)
    # reseeding the loader's generator replays a pass (train() does so every epoch) ...
    loader = make_dataloader(varied, tokenizer, 8, True, seed=0, group_by_length=True)
    loader.generator.manual_seed(7)
    first = _examples(loader)
    assert _examples(loader) != first  # the generator moved on: next epoch, new order
    loader.generator.manual_seed(7)
    assert _examples(loader) == first
    # ... also when a resume skips the first batches
    from accelerate.data_loader import skip_first_batches

    loader.generator.manual_seed(7)
    assert _examples(skip_first_batches(loader, 3)) == first[3 * 8:]


def test_grouped_loader_through_accelerate(varied, tokenizer):
    """prepare() keeps the order; sharding over 2 processes splits whole grouped batches."""
    from accelerate.data_loader import BatchSamplerShard

    from theseus_cli.train.runtime import Runtime

    runtime = Runtime(device="cpu", seed=0)
    loader = make_dataloader(varied, tokenizer, 8, True, seed=0, group_by_length=True)
    order = loader.generator
    prepared = runtime.prepare(loader)
    order.manual_seed(5)
    first = _examples(prepared)
    order.manual_seed(5)
    assert _examples(loader) == first
    order.manual_seed(5)
    assert _examples(runtime.skip_first_batches(prepared, 2)) == first[2 * 8:]
    order.manual_seed(5)
    batches = list(loader.batch_sampler)
    shards = []
    for rank in (0, 1):
        order.manual_seed(5)
        shards.append(list(BatchSamplerShard(loader.batch_sampler, num_processes=2,
                                             process_index=rank)))
    assert shards[0][:len(batches[0::2])] == batches[0::2]
    assert shards[1][:len(batches[1::2])] == batches[1::2]


def test_grouping_pads_less(varied, tokenizer):
    plain = _padding_fraction(make_dataloader(varied, tokenizer, 8, True, seed=0))
    grouped = _padding_fraction(make_dataloader(varied, tokenizer, 8, True, seed=0,
                                                group_by_length=True))
    assert grouped < plain
    assert grouped < 0.5 * plain


def test_sampler_mega_batches_are_sorted_longest_first():
    import torch

    lengths = [random.Random(i).randint(1, 100) for i in range(103)]
    sampler = LengthGroupedSampler(lengths, 4, torch.Generator().manual_seed(0),
                                   mega_batch_factor=5)
    order = list(sampler)
    assert sorted(order) == list(range(103))
    for start in range(0, 103, 20):  # mega-batches of 4 * 5 indices
        chunk = [lengths[i] for i in order[start:start + 20]]
        assert chunk == sorted(chunk, reverse=True)
    sampler.longest_first = True
    assert lengths[next(iter(sampler))] == max(lengths)


def test_group_by_length_needs_shuffle(varied, tokenizer):
    from theseus_cli.errors import ConfigError

    with pytest.raises(ConfigError, match="shuffle"):
        make_dataloader(varied, tokenizer, 8, False, group_by_length=True)


def test_cache_key_follows_tokenizer_content_not_path(tmp_path, tokenizer, varied,
                                                      tiny_model_dir):
    from transformers import AutoTokenizer, BertTokenizerFast

    task = get_task("MRPC")
    ds = varied  # any dataset: the key is compared for the same one
    copies = []
    for name in ("v1", "v2"):
        tokenizer.save_pretrained(tmp_path / name)
        copies.append(AutoTokenizer.from_pretrained(str(tmp_path / name)))
    copies[1]("the cat", "a dog", truncation=True, max_length=5)  # transient backend state
    a, b = (cache_key(ds, t, task, 64) for t in copies)
    assert a == b == cache_key(ds, tokenizer, task, 64)

    vocab_file = tiny_model_dir.parent / "vocab" / "vocab.txt"  # the fixture's vocabulary
    vocab = vocab_file.read_text(encoding="utf-8")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "vocab.txt").write_text(vocab + "zebra\n", encoding="utf-8")
    other_vocab = BertTokenizerFast(vocab_file=str(tmp_path / "other" / "vocab.txt"))
    assert cache_key(ds, other_vocab, task, 64) != a
    same_vocab = BertTokenizerFast(vocab_file=str(vocab_file))
    cased = BertTokenizerFast(vocab_file=str(vocab_file), do_lower_case=False)
    if cased.backend_tokenizer.to_str() != same_vocab.backend_tokenizer.to_str():
        # (transformers 5.0 serialises both alike, and tokenises them alike too)
        assert cache_key(ds, cased, task, 64) != cache_key(ds, same_vocab, task, 64)
    assert cache_key(ds, tokenizer, task, 32) != a


def test_same_tokenizer_in_two_folders_tokenises_once(tmp_path, tokenizer, varied, glue_dir):
    from transformers import AutoTokenizer

    from theseus_cli.data import load_split

    cache = tmp_path / "cache"
    for name in ("v1", "v2"):  # e.g. two artifact versions of one model
        tokenizer.save_pretrained(tmp_path / name)
        tok = AutoTokenizer.from_pretrained(str(tmp_path / name))
        tokenize_split(load_split("MRPC", "train", glue_dir), tok, "MRPC", 64, cache_dir=cache)
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 1
