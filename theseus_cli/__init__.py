"""theseus: compress Transformer models by progressive module replacing (BERT-of-Theseus)."""

__version__ = "0.1.0"
