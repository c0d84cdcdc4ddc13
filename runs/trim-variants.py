"""What trimming the vocabulary costs on MRPC dev, and why: one successor (default
ws/mrpc-baselines/artifacts/MRPC/finetune-successor/v1, seed 42) scored with its full
vocabulary and with the vocabulary of trim-vocab/v1 (the training set's tokens, specials,
characters), where the dev tokens outside it are (a) split again by the trimmed WordPiece
(what trim-vocab publishes), (b) mapped to the kept token nearest by cosine similarity of
the successor's embedding rows, (c) mapped to [UNK]. (b) and (c) keep the full
vocabulary's splitting.

    python runs/trim-variants.py [ARTIFACTS]   (log: runs/results/trim-variants.log)
"""

import copy
import csv
import sys

import torch
from transformers import AutoTokenizer

from theseus_cli.model.loading import load_saved
from theseus_cli.model.vocabulary import trim_embedding

base = sys.argv[1] if len(sys.argv) > 1 else "ws/mrpc-baselines/artifacts/MRPC/"
model, tok = load_saved(base + "finetune-successor/v1/model")
trimmed_tok = AutoTokenizer.from_pretrained(base + "trim-vocab/v1/model")
vocab = tok.get_vocab()
kept = sorted(vocab[t] for t in trimmed_tok.get_vocab())
new_id = {old: new for new, old in enumerate(kept)}
rows = list(csv.reader(open("../shared/glue/MRPC/dev.tsv", encoding="utf-8-sig"),
                       delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
labels = torch.tensor([int(r[0]) for r in rows])
emb = torch.nn.functional.normalize(model.get_input_embeddings().weight.detach(), dim=-1)
dropped = [i for i in range(emb.shape[0]) if i not in new_id]
nearest = torch.tensor(kept)[(emb[dropped] @ emb[kept].T).argmax(-1)]  # (D,) kept ids
to_nearest = {**new_id, **{d: new_id[n] for d, n in zip(dropped, nearest.tolist(), strict=True)}}
unk = new_id[tok.unk_token_id]
small = copy.deepcopy(model)
trim_embedding(small, kept)
variants = {
    "full vocabulary (30,522)": (model, tok, None),
    f"trimmed ({len(kept):,}), unseen words split again (trim-vocab)": (small, trimmed_tok, None),
    f"trimmed ({len(kept):,}), unseen tokens -> nearest kept": (small, tok, to_nearest),
    f"trimmed ({len(kept):,}), unseen tokens -> [UNK]": (small, tok, new_id),
}
print("| variant | accuracy | F1 | score |\n|---|---|---|---|")
for name, (m, t, remap) in variants.items():
    m.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(rows), 64):
            part = rows[i:i + 64]
            x = t([r[3] for r in part], [r[4] for r in part], padding=True, truncation=True,
                  max_length=128, return_tensors="pt")
            if remap is not None:
                x["input_ids"] = torch.tensor([[remap.get(j, unk) for j in row]
                                               for row in x["input_ids"].tolist()])
            preds.append(m(**x).logits.argmax(-1))
    p = torch.cat(preds)
    acc = (p == labels).float().mean().item()
    tp, fp = ((p == 1) & (labels == 1)).sum().item(), ((p == 1) & (labels == 0)).sum().item()
    fn = ((p == 0) & (labels == 1)).sum().item()
    f1 = 2 * tp / (2 * tp + fp + fn)
    print(f"| {name} | {100 * acc:.2f} | {100 * f1:.2f} | {50 * (acc + f1):.2f} |")
