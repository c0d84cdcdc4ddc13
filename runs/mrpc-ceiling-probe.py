"""Issue 31 probe: can anything outside today's recipe lift the MRPC main job's 3-layer
successor towards 98% of its 85.43 teacher (83.72)?

A research probe, not a stage: plain PyTorch and transformers on the main job's
artifacts (``ws/main-job-2`` by default, made by ``runs/main-job.sh`` and
``runs/mrpc-replace-epochs.sh``), so that recipes the product does not offer can be
tried in a few minutes each. The student is either a published successor (``replace/v2``,
81.64) or the teacher's bottom 3 layers (``first-n``, as the first-n builder starts).
Loss per batch (student logits s, teacher logits t, labels y):

    (1 - alpha) * CE(s, y) + alpha * T^2 * KL(softmax(t/T) || softmax(s/T))     (vanilla KD)
    + beta * sum_k MSE(h_S[k], h_T[k*r])                 (hidden states, r = L_T / L_S)

where h[k] is the output of layer k, (batch, seq_len, hidden), averaged over the real
tokens only (TinyBERT's intermediate-layer loss without its projections: the hidden sizes
match). ``--swap`` adds every training pair with its two sentences swapped (a paraphrase
stays one). ``--augment N`` adds N copies of every training pair with words replaced, as
TinyBERT's data augmentation (Jiao et al., 2020, section 3.2.2, p_t = 0.4, K = 15) but with
the candidates from the teacher's own input word embeddings (the K nearest by cosine; no
masked-LM head or GloVe is available offline): each word that is one word piece of letters
is replaced with probability 0.4 by one of its candidates; copies carry no label and learn
from the teacher's soft labels only (the KD term at weight 1, as TinyBERT). Dev score: the
mean of F1 and accuracy on the 408 dev pairs, as ``evaluate``.

Usage: python runs/mrpc-ceiling-probe.py [--student replace/v2|first-n] [--beta 1] ...
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, f1_score
from transformers import AutoModelForSequenceClassification, AutoTokenizer

TEACHER_SCORE = 85.43  # the main job's teacher, finetune-teacher/v1 (runs/results/main-job-2.log)


def read_pairs(path: Path) -> list[tuple[str, str, int]]:
    """MRPC's TSV rows as (sentence 1, sentence 2, label)."""
    with path.open(encoding="utf-8-sig") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [(r[3], r[4], int(r[0])) for r in rows]


def augmenter(tok, embeddings: torch.Tensor, k: int = 15, p_t: float = 0.4):
    """A function (sentence, rng) -> sentence with TinyBERT-style word replacements.

    ``embeddings``: (vocab, hidden) input word embeddings of the teacher. Candidates of a
    whole-word piece: its k nearest whole-word pieces of letters by cosine similarity.
    """
    vocab = tok.convert_ids_to_tokens(list(range(embeddings.shape[0])))
    ok = torch.tensor([w.isalpha() for w in vocab])  # (vocab,) whole words of letters
    unit = F.normalize(embeddings, dim=-1)  # (vocab, hidden)
    cache: dict[int, list[str]] = {}

    def candidates(i: int) -> list[str]:
        if i not in cache:
            sim = unit @ unit[i]  # (vocab,)
            sim[~ok] = -2.0
            sim[i] = -2.0
            cache[i] = [vocab[j] for j in sim.topk(k).indices.tolist()]
        return cache[i]

    def augment(sentence: str, rng: random.Random) -> str:
        out = []
        for word in sentence.split():
            ids = tok(word, add_special_tokens=False)["input_ids"]
            if len(ids) == 1 and word.isalpha() and rng.random() < p_t:
                word = rng.choice(candidates(ids[0]))
            out.append(word)
        return " ".join(out)

    return augment


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workspace", default="ws/main-job-2")
    p.add_argument("--glue-dir", default="../shared/glue")
    p.add_argument("--student", default="replace/v2", help="stage/version, or first-n")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--alpha", type=float, default=0.5, help="KD weight")
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--beta", type=float, default=0.0, help="hidden-state MSE weight")
    p.add_argument("--swap", action="store_true", help="add sentence-swapped pairs")
    p.add_argument("--augment", type=int, default=0, help="word-replaced copies per pair")
    p.add_argument("--evals-per-epoch", type=int, default=1)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    random.seed(a.seed)
    art = Path(a.workspace) / "artifacts" / "MRPC"
    teacher_dir = art / "finetune-teacher" / "v1" / "model"
    tok = AutoTokenizer.from_pretrained(teacher_dir)
    teacher = AutoModelForSequenceClassification.from_pretrained(
        teacher_dir, attn_implementation="eager").eval()
    if a.student == "first-n":
        student = AutoModelForSequenceClassification.from_pretrained(
            teacher_dir, attn_implementation="eager")
        student.bert.encoder.layer = student.bert.encoder.layer[:3]
        student.config.num_hidden_layers = 3
    else:
        student = AutoModelForSequenceClassification.from_pretrained(
            art / a.student / "model", attn_implementation="eager")
    glue = Path(a.glue_dir) / "MRPC"
    train, dev = read_pairs(glue / "train.tsv"), read_pairs(glue / "dev.tsv")
    if a.swap:
        train = train + [(s2, s1, y) for s1, s2, y in train]
    if a.augment:
        rng = random.Random(a.seed)
        aug = augmenter(tok, teacher.get_input_embeddings().weight.detach())
        copies = [(aug(s1, rng), aug(s2, rng), -1) for _ in range(a.augment)
                  for s1, s2, _y in train]
        print(f"augmented: {len(copies)} pairs, e.g. {train[0][0]!r} -> {copies[0][0]!r}",
              flush=True)
        train = train + copies

    def encode(batch):
        enc = tok([b[0] for b in batch], [b[1] for b in batch], truncation=True,
                  max_length=128, padding=True, return_tensors="pt")
        return enc, torch.tensor([b[2] for b in batch])

    def dev_score() -> tuple[float, float, float]:
        student.eval()
        preds: list[int] = []
        with torch.no_grad():
            for i in range(0, len(dev), 64):
                enc, _ = encode(dev[i:i + 64])
                preds += student(**enc).logits.argmax(-1).tolist()
        gold = [b[2] for b in dev]
        f1, acc = f1_score(gold, preds) * 100, accuracy_score(gold, preds) * 100
        return f1, acc, (f1 + acc) / 2

    f1, acc, score = dev_score()
    print(f"{a}\nstart: dev f1 {f1:.2f} accuracy {acc:.2f} score {score:.2f}", flush=True)
    per_epoch = (len(train) + 31) // 32
    total = a.epochs * per_epoch
    opt = torch.optim.AdamW(student.parameters(), lr=a.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / total))
    ratio = teacher.config.num_hidden_layers // student.config.num_hidden_layers
    best, step, t0, T = score, 0, time.time(), a.temperature
    for epoch in range(a.epochs):
        order = list(range(len(train)))
        random.shuffle(order)
        for start in range(0, len(order), 32):
            student.train()
            enc, y = encode([train[i] for i in order[start:start + 32]])
            with torch.no_grad():
                t_out = teacher(**enc, output_hidden_states=True)
            s_out = student(**enc, output_hidden_states=True)
            labelled = y >= 0  # (batch,) augmented copies carry -1
            alpha = torch.where(labelled, a.alpha, 1.0)  # (batch,) KD weight per pair
            ce = F.cross_entropy(s_out.logits, y.clamp(min=0), reduction="none")  # (batch,)
            kl = F.kl_div(F.log_softmax(s_out.logits / T, -1), F.softmax(t_out.logits / T, -1),
                          reduction="none").sum(-1)  # (batch,)
            loss = ((1 - alpha) * ce + alpha * T ** 2 * kl).mean()
            if a.beta:
                mask = enc["attention_mask"].unsqueeze(-1).float()  # (batch, seq_len, 1)
                for k in range(1, student.config.num_hidden_layers + 1):
                    # (batch, seq_len, hidden), padding zeroed
                    sq = (s_out.hidden_states[k] - t_out.hidden_states[k * ratio]) ** 2 * mask
                    loss = loss + a.beta * sq.sum() / (mask.sum() * sq.shape[-1])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            if step % max(1, per_epoch // a.evals_per_epoch) == 0 or step == total:
                f1, acc, score = dev_score()
                best = max(best, score)
                print(f"step {step}/{total} epoch {epoch + 1}: loss {loss.item():.3f}, dev f1 "
                      f"{f1:.2f} accuracy {acc:.2f} score {score:.2f}; best {best:.2f} = "
                      f"{100 * best / TEACHER_SCORE:.1f}% of {TEACHER_SCORE} "
                      f"({time.time() - t0:.0f} s)", flush=True)
    print(f"best dev score {best:.2f} = {100 * best / TEACHER_SCORE:.1f}% of the teacher")


if __name__ == "__main__":
    main()
