"""Tiny random ``*ForSequenceClassification`` models, one per built-in model family
(and one per model type the family names where they differ in code paths)."""

from __future__ import annotations

VOCAB = 64
HID = dict(hidden_size=32, num_attention_heads=4, intermediate_size=37)


def tiny_configs(vocab: int = VOCAB) -> dict:
    from transformers import (
        AlbertConfig,
        BertConfig,
        DebertaV2Config,
        DistilBertConfig,
        ElectraConfig,
        GPT2Config,
        LlamaConfig,
        MistralConfig,
        ModernBertConfig,
        MPNetConfig,
        Qwen2Config,
        RobertaConfig,
        XLMRobertaConfig,
    )

    decoder = dict(vocab_size=vocab, num_hidden_layers=4, num_key_value_heads=2,
                   max_position_embeddings=128, pad_token_id=0, **HID)
    return {
        "bert": BertConfig(vocab_size=vocab, num_hidden_layers=4, max_position_embeddings=128,
                           **HID),
        "roberta": RobertaConfig(vocab_size=vocab, num_hidden_layers=4,
                                 max_position_embeddings=130, **HID),
        "xlm-roberta": XLMRobertaConfig(vocab_size=vocab, num_hidden_layers=4,
                                        max_position_embeddings=130, **HID),
        "mpnet": MPNetConfig(vocab_size=vocab, num_hidden_layers=4, max_position_embeddings=130,
                             relative_attention_num_buckets=32, **HID),
        "electra": ElectraConfig(vocab_size=vocab, embedding_size=16, num_hidden_layers=4,
                                 max_position_embeddings=128, **HID),
        "distilbert": DistilBertConfig(vocab_size=vocab, dim=32, n_layers=4, n_heads=4,
                                       hidden_dim=37, max_position_embeddings=128),
        "deberta-v2": DebertaV2Config(
            vocab_size=vocab, num_hidden_layers=4, max_position_embeddings=128,
            relative_attention=True, position_buckets=16, pos_att_type=["p2c", "c2p"],
            norm_rel_ebd="layer_norm", conv_kernel_size=3, share_att_key=True,
            position_biased_input=False, **HID),
        "albert": AlbertConfig(vocab_size=vocab, embedding_size=16, num_hidden_layers=4,
                               num_hidden_groups=1, max_position_embeddings=128, **HID),
        "modernbert": ModernBertConfig(
            vocab_size=vocab, num_hidden_layers=6, global_attn_every_n_layers=3,
            local_attention=8, max_position_embeddings=128, pad_token_id=0, bos_token_id=2,
            eos_token_id=3, cls_token_id=2, sep_token_id=3, **HID),
        "llama": LlamaConfig(**decoder),
        "qwen2": Qwen2Config(**decoder),
        "mistral": MistralConfig(**decoder),
        "gpt2": GPT2Config(vocab_size=vocab, n_embd=32, n_layer=4, n_head=4, n_positions=128,
                           pad_token_id=0),
    }


MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "mpnet", "electra", "distilbert", "deberta-v2",
               "albert", "modernbert", "llama", "qwen2", "mistral", "gpt2")


def tiny_model(model_type: str, num_labels: int = 2, seed: int = 0, vocab_size: int = VOCAB,
               pad_token_id: int = 0, auto_class: str = "AutoModelForSequenceClassification"):
    """A random tiny classifier (``auto_class``: a tagger with
    ``AutoModelForTokenClassification``) of ``model_type`` (eager attention, eval mode)."""
    import torch
    import transformers

    config = tiny_configs(vocab_size)[model_type]
    config.num_labels = num_labels
    config.pad_token_id = pad_token_id
    if model_type == "gpt2":
        config.bos_token_id = config.eos_token_id = pad_token_id
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    return getattr(transformers, auto_class).from_config(config).eval()


def batch(seed: int = 0, size: int = 3, length: int = 12) -> dict:
    """Token ids in [5, VOCAB) with right padding (id 0) on all but the first row."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (size, length), generator=gen)
    mask = torch.ones(size, length, dtype=torch.long)
    for row in range(1, size):
        mask[row, length - 2 * row:] = 0
    ids = ids.masked_fill(mask == 0, 0)
    return {"input_ids": ids, "attention_mask": mask}
