"""Write a reference text for ``trim-vocab --reference``: every sentence of the GLUE
training sets other than the task's own (SST-2, CoLA, RTE, STS-B, WNLI; QNLI's training
set is not in ../shared/glue), one per line. They name a public corpus the user can get
too; none of their text is the task's dev or test data.

    python runs/reference-text.py ../shared/glue OUT.txt [--exclude MRPC]
"""

import argparse
import csv
from pathlib import Path

# (folder, the columns holding text, whether the file has a header row)
SOURCES = {"SST-2": ([0], True), "CoLA": ([3], False), "RTE": ([1, 2], True),
           "STS-B": ([7, 8], True), "WNLI": ([1, 2], True), "MRPC": ([3, 4], True)}

parser = argparse.ArgumentParser()
parser.add_argument("glue_dir")
parser.add_argument("out")
parser.add_argument("--exclude", action="append", default=["MRPC"])
args = parser.parse_args()
lines = []
for task, (columns, header) in SOURCES.items():
    path = Path(args.glue_dir, task, "train.tsv")
    if task in args.exclude or not path.is_file():
        continue
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1 if header else 0:]
    lines += [row[c] for row in rows for c in columns if c < len(row) and row[c].strip()]
Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
print(f"{args.out}: {len(lines):,} lines")
