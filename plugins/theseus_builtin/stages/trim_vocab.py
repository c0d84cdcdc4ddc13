"""``trim-vocab``: a successor whose word embedding keeps only the rows its task uses.

Reads the latest (or pinned) successor of ``--successor STAGE`` (the Theseus successor,
a baseline, any successor type), keeps the embedding rows and tokenizer entries of the
special tokens, the training set's tokens, every single character (by default) and the
most frequent tokens of a reference text, and publishes the result as a new successor
with its trimmed tokenizer. No training: a text whose tokens are all kept gets exactly
the logits it got before (checked on the training set before publishing). The method:
:mod:`theseus_cli.model.vocabulary`.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass

from theseus_cli.errors import ConfigError, DataError, ModelSourceError
from theseus_cli.model import vocabulary as vocab
from theseus_cli.model.loading import load_tokenizer, resolve_model_source
from theseus_cli.plugin import CheckContext, Stage, StageContext, StageResult, param
from theseus_cli.plugin.registry import successor_stages


class TrimVocab(Stage):
    """Vocabulary trimming of a successor (no training)."""

    name = "trim-vocab"
    help = ("shrink a successor's word embedding to the tokens its task uses (WordPiece "
            "tokenizers); no training, same logits on kept tokens")
    inputs = ("finetune-successor",)
    summary_metrics = ("score", "vocab_size")
    produces_successor = True

    @dataclass
    class Params:
        successor: str = param("finetune-successor", "the stage whose successor is trimmed: "
                               "finetune-successor (Theseus), a baseline (truncate, distill, "
                               "pkd, layerdrop) or a plugin's")
        keep_characters: bool = param(True, "also keep every single-character token and its ## "
                                            "continuation, so an unseen word is spelled out "
                                            "instead of becoming [UNK] (about 2,000 tokens for "
                                            "BERT's uncased vocabulary)")
        reference: str | None = param(None, "a UTF-8 text file (relative to the workspace) whose "
                                            "most frequent tokens are kept too; null: none")
        reference_tokens: int | None = param(None, "how many of the reference's most frequent "
                                                   "tokens to keep; null: all of them", min=1)
        max_unknown: float = param(0.05, "largest share of dev tokens that may become [UNK]; "
                                         "more is an error before anything is published",
                                   min=0.0, max=1.0)

    def inputs_for(self, params, store=None, task=None) -> tuple[str, ...]:  # noqa: D102 - see Stage.inputs_for
        return (params.successor,)

    def check(self, ctx: CheckContext) -> None:
        """The input is a successor stage, its model's tokenizer family is WordPiece, and a
        named reference file exists; before any work."""
        p = ctx.params
        accepted = [s for s in successor_stages() if s != self.name]
        if p.successor not in accepted:
            raise ConfigError(f"{ctx.setting('successor')}: not a stage that produces a "
                              f"successor; accepted: {', '.join(accepted)}")
        try:  # the tokenizer is read here (small files) so that BPE is refused before any work
            tokenizer = load_tokenizer(resolve_model_source(ctx.model.source, ctx.config.root),
                                       token_level=False)
        except ModelSourceError:
            tokenizer = None  # reported where the stage (or its input) loads the model
        if tokenizer is not None:
            vocab.check_trimmable(tokenizer, f"trim-vocab: the tokenizer of {ctx.model.source}")
        if p.reference is not None and not (ctx.config.root / p.reference).is_file():
            raise ConfigError(f"{ctx.setting('reference')}: no such file "
                              f"({ctx.config.root / p.reference})")

    def run(self, ctx: StageContext) -> StageResult:
        p = ctx.params
        source = ctx.inputs[p.successor]
        model, tokenizer = ctx.load_model(source)
        vocab.check_trimmable(tokenizer, f"{source.label}'s tokenizer")
        train = ctx.dataset("train", tokenizer)
        extra, reference = set(), None
        if p.reference is not None:
            path = ctx.config.root / p.reference
            extra = vocab.reference_ids(tokenizer, path, p.reference_tokens)
            reference = {"file": p.reference, "tokens": len(extra),
                         "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        kept = vocab.kept_ids(tokenizer, train["input_ids"], p.keep_characters, extra)
        before = len(tokenizer)
        staging = ctx.out_dir / ".trimmed-tokenizer"
        try:
            trimmed = vocab.trim_tokenizer(tokenizer, kept, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        _check_same_tokens(ctx, tokenizer, trimmed, kept, train)
        shares = _unknown_shares(ctx, tokenizer, trimmed, kept)
        dev = ctx.task_definition.dev_splits[0]
        if shares[dev]["unknown"] > p.max_unknown:
            raise ConfigError(
                f"trim-vocab: {100 * shares[dev]['unknown']:.1f}% of the {dev} tokens would become "
                f"[UNK] (--max-unknown {p.max_unknown:g}); keep characters (--keep-characters) "
                "or name a reference text (--reference FILE). Nothing was published")
        vocab.trim_embedding(model, kept)
        metrics = ctx.evaluate(model, trimmed, ctx.dataset("selection", trimmed))
        ctx.save_model(model, trimmed)
        info_src = source.manifest.get("info", {})
        method = f"{info_src.get('method', p.successor)}, vocab {len(kept) / 1000:.1f}k"
        recipe = (f"{info_src.get('recipe', method)}; vocabulary trimmed from {before:,} to "
                  f"{len(kept):,} tokens (train tokens, specials"
                  f"{', characters' if p.keep_characters else ''}"
                  f"{', reference ' + p.reference if p.reference else ''})")
        for split, s in shares.items():
            ctx.log.info(f"{split}: {100 * s['outside']:.2f}% of the tokens are outside the kept "
                         f"vocabulary; {100 * s['unknown']:.2f}% become [UNK] "
                         f"(before: {100 * s['unknown_before']:.2f}%)")
        ctx.log.info(f"vocabulary {before:,} → {len(kept):,} tokens; dev score "
                     f"{100 * metrics['score']:.2f}")
        return StageResult(
            metrics={**metrics, "vocab_size": len(kept),
                     "unknown_share": shares[dev]["unknown"]},
            info={**ctx.model_size(model), "method": method, "recipe": recipe,
                  "vocab_before": before, "vocab_after": len(kept), "reference": reference,
                  "keep_characters": p.keep_characters, "token_shares": shares,
                  "source": source.label},
        )


def _check_same_tokens(ctx: StageContext, tokenizer, trimmed, kept, train) -> None:
    """Every training row is tokenised exactly as before, renumbered (WordPiece's promise).

    Raises:
        ModelSourceError: a row tokenised otherwise (names it): nothing is published.
    """
    new_id = {old: new for new, old in enumerate(kept)}
    again = ctx.dataset("train", trimmed)["input_ids"]
    for row, (old, new) in enumerate(zip(train["input_ids"], again, strict=True)):
        if [new_id[i] for i in old] != list(new):
            raise ModelSourceError(f"trim-vocab: training row {row} is tokenised differently by the "
                                   "trimmed tokenizer; nothing was published")


def _unknown_shares(ctx: StageContext, tokenizer, trimmed, kept) -> dict[str, dict[str, float]]:
    """Per dev/test split: the share of tokens outside the kept vocabulary, and of [UNK]
    before and after trimming."""
    task, keep = ctx.task_definition, set(kept)
    out = {}
    for split in (*task.dev_splits, *task.test_splits):
        try:
            rows = ctx.dataset(split, tokenizer)["input_ids"]
        except (DataError, FileNotFoundError):
            continue  # a task without that file
        special = set(tokenizer.all_special_ids)
        tokens = [i for r in rows for i in r if i not in special]
        outside = sum(i not in keep for i in tokens) / len(tokens) if tokens else 0.0
        out[split] = {"outside": outside,
                      "unknown_before": vocab.unknown_share(tokenizer, rows),
                      "unknown": vocab.unknown_share(trimmed,
                                                     ctx.dataset(split, trimmed)["input_ids"])}
    return out
