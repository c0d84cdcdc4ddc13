"""Built-in model families (entry-point group ``theseus.families``).

Each says where its ``*ForSequenceClassification`` models keep their Transformer
layers; :class:`theseus_cli.plugin.family.LayerListFamily` does the rest (routing,
successor config, export). A third-party family registers the same way.
"""

from __future__ import annotations

from typing import Any

from theseus_builtin.families.stock_forms import albert_from_shared_bert, deberta_factorized
from theseus_cli.plugin.family import AttentionBlock, FeedForward, LayerListFamily

BERT_FFN = FeedForward(inputs=("intermediate.dense",), output="output.dense")
BERT_ATTENTION = AttentionBlock(
    query="attention.self.query", key="attention.self.key", value="attention.self.value",
    output="attention.output.dense", head_dim="attention.self.attention_head_size",
    counts=("attention.self.num_attention_heads",), sizes=("attention.self.all_head_size",))


class Bert(LayerListFamily):
    """BERT (Devlin et al. 2019): ``bert.encoder.layer``."""

    name = "bert"
    help = "BERT encoders"
    model_types = ("bert",)
    outside = "embeddings (word, absolute position, token type), pooler, classifier"
    ffn = BERT_FFN
    attention = BERT_ATTENTION

    def stock_form(self, model: Any) -> tuple[Any, str] | None:
        """Shared layers in contiguous groups: a stock ALBERT
        (:func:`~theseus_builtin.families.stock_forms.albert_from_shared_bert`)."""
        return albert_from_shared_bert(model)


class Roberta(LayerListFamily):
    """RoBERTa, XLM-R and CamemBERT: ``roberta.encoder.layer``."""

    name = "roberta"
    help = "RoBERTa, XLM-RoBERTa and CamemBERT encoders"
    model_types = ("roberta", "xlm-roberta", "camembert")
    outside = "embeddings (word, absolute position after the padding index), classification head"
    ffn = BERT_FFN
    attention = BERT_ATTENTION


class Mpnet(LayerListFamily):
    """MPNet (Song et al. 2020; all-mpnet-base-v2): ``mpnet.encoder.layer``; the relative
    position bias is computed once by the encoder and passed to every layer, so successor
    modules get it as the predecessor's layers do."""

    name = "mpnet"
    help = "MPNet encoders (relative position bias kept)"
    model_types = ("mpnet",)
    outside = ("embeddings (word, absolute position), the encoder's relative-attention "
               "bias, pooler, classification head")
    ffn = BERT_FFN
    attention = AttentionBlock(
        query="attention.attn.q", key="attention.attn.k", value="attention.attn.v",
        output="attention.attn.o", head_dim="attention.attn.attention_head_size",
        counts=("attention.attn.num_attention_heads",), sizes=("attention.attn.all_head_size",),
        head_bias="attention.attn")


class Electra(LayerListFamily):
    """ELECTRA discriminators: ``electra.encoder.layer``."""

    name = "electra"
    help = "ELECTRA discriminators"
    model_types = ("electra",)
    outside = "embeddings and their projection to the hidden size, classification head"
    ffn = BERT_FFN
    attention = BERT_ATTENTION


class DistilBert(LayerListFamily):
    """DistilBERT: ``distilbert.transformer.layer``."""

    name = "distilbert"
    help = "DistilBERT encoders"
    model_types = ("distilbert",)
    layers_path = "base_model.transformer.layer"
    outside = "embeddings, pre-classifier, classifier"
    ffn = FeedForward(inputs=("ffn.lin1",), output="ffn.lin2", size_key="hidden_dim")
    attention = AttentionBlock(query="attention.q_lin", key="attention.k_lin",
                               value="attention.v_lin", output="attention.out_lin",
                               head_dim="attention.attention_head_size",
                               counts=("attention.n_heads",))


class DebertaV2(LayerListFamily):
    """DeBERTa-v2 and v3: ``deberta.encoder.layer``; the relative-position embeddings,
    their LayerNorm and the optional convolution after layer 0 stay the encoder's own."""

    name = "deberta-v2"
    help = "DeBERTa-v2 and DeBERTa-v3 encoders (relative positions kept)"
    model_types = ("deberta-v2",)
    outside = ("embeddings, relative-position embeddings and their LayerNorm, the convolution "
               "after layer 0 (conv_kernel_size > 0), pooler, classifier")
    ffn = BERT_FFN
    attention = AttentionBlock(
        query="attention.self.query_proj", key="attention.self.key_proj",
        value="attention.self.value_proj", output="attention.output.dense",
        head_dim="attention.self.attention_head_size",
        counts=("attention.self.num_attention_heads",), sizes=("attention.self.all_head_size",),
        per_head=("attention.self.pos_query_proj", "attention.self.pos_key_proj"),
        side_inputs=("rel_embeddings",))

    def stock_form(self, model: Any) -> tuple[Any, str] | None:
        """A factorised word embedding: DeBERTa's own ``embedding_size`` and ``embed_proj``
        (:func:`~theseus_builtin.families.stock_forms.deberta_factorized`)."""
        return deberta_factorized(model)


class Albert(LayerListFamily):
    """ALBERT: ``num_hidden_layers`` applications of ``num_hidden_groups`` shared layer
    groups. Module replacing sees one layer per application; successor modules are
    unshared copies, exported as a stock ALBERT with one group per layer."""

    name = "albert"
    help = "ALBERT encoders (shared layers; the successor's modules are unshared copies)"
    model_types = ("albert",)
    layers_path = "base_model.encoder.albert_layer_groups"
    outside = "factorised embeddings and their mapping to the hidden size, pooler, classifier"
    ffn = FeedForward(inputs=("albert_layers.0.ffn",), output="albert_layers.0.ffn_output")
    attention = AttentionBlock(
        query="albert_layers.0.attention.query", key="albert_layers.0.attention.key",
        value="albert_layers.0.attention.value", output="albert_layers.0.attention.dense",
        head_dim="albert_layers.0.attention.attention_head_size",
        counts=("albert_layers.0.attention.num_attention_heads",),
        sizes=("albert_layers.0.attention.all_head_size",))

    def layers(self, model: Any) -> list:
        """Group ``int(i / (L / G))`` for each application i < L (ALBERT's own loop)."""
        groups, cfg = self.layer_list(model), model.config
        num_layers, num_groups = int(cfg.num_hidden_layers), int(cfg.num_hidden_groups)
        return [groups[int(i / (num_layers / num_groups))] for i in range(num_layers)]

    def install(self, model: Any, slots) -> None:
        """One group per application: slot i is group i of L."""
        super().install(model, slots)
        model.config.num_hidden_groups = len(slots)
        model.base_model.encoder.config.num_hidden_groups = len(slots)

    def successor_config(self, config: Any, modules) -> Any:
        """n layers in n unshared groups."""
        out = super().successor_config(config, modules)
        out.num_hidden_groups = len(modules)
        return out


class ModernBert(LayerListFamily):
    """ModernBERT: ``model.layers``; each layer's global or sliding-window attention
    (its ``attention_type``) and rotary embeddings are chosen by the model's loop."""

    name = "modernbert"
    help = "ModernBERT encoders (alternating global / sliding-window attention, rotary)"
    model_types = ("modernbert",)
    layers_path = "base_model.layers"
    outside = "embeddings, rotary embeddings, final norm, prediction head, classifier"
    ffn = FeedForward(inputs=("mlp.Wi",), output="mlp.Wo", packed=2)
    attention = AttentionBlock(query="attn.Wqkv", key="attn.Wqkv", value="attn.Wqkv",
                               output="attn.Wo", head_dim="attn.head_dim", fused=True)

    def conform(self, modules):
        """Module 0 becomes the first layer: no attention norm (the embeddings are normed)."""
        from torch import nn

        if len(modules) and not isinstance(getattr(modules[0], "attn_norm", None), nn.Identity):
            modules[0].attn_norm = nn.Identity()
        return modules


class Llama(LayerListFamily):
    """Decoders of the Llama family with a sequence-classification head: ``model.layers``."""

    name = "llama"
    help = "Llama, Qwen2 and Mistral decoders with a sequence-classification head"
    model_types = ("llama", "qwen2", "mistral")
    layers_path = "base_model.layers"
    layer_types_by_position = True
    outside = "token embeddings, rotary embeddings, final RMSNorm, score head (last token)"
    pooled_token = "last"
    ffn = FeedForward(inputs=("mlp.gate_proj", "mlp.up_proj"), output="mlp.down_proj")
    attention = AttentionBlock(query="self_attn.q_proj", key="self_attn.k_proj",
                               value="self_attn.v_proj", output="self_attn.o_proj",
                               head_dim="self_attn.head_dim")


class Gpt2(LayerListFamily):
    """GPT-2 with a sequence-classification head: ``transformer.h``."""

    name = "gpt2"
    help = "GPT-2 decoders with a sequence-classification head"
    model_types = ("gpt2",)
    layers_path = "base_model.h"
    outside = "token and absolute position embeddings, final LayerNorm, score head (last token)"
    pooled_token = "last"
    ffn = FeedForward(inputs=("mlp.c_fc",), output="mlp.c_proj", size_key="n_inner")
    attention = AttentionBlock(query="attn.c_attn", key="attn.c_attn", value="attn.c_attn",
                               output="attn.c_proj", head_dim="attn.head_dim",
                               counts=("attn.num_heads",), sizes=("attn.split_size",),
                               fused=True)
