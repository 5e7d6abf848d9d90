"""Benchmark: BERT CPU scoring throughput by inference mode, against fp32 measured in the same run.

    .venv/bin/python bench/bench_bert_scoring.py                         # the shared dev file, else generated
    .venv/bin/python bench/bench_bert_scoring.py --model-dir MODEL_DIR   # reuse a trained model dir

The dataset is built as training builds it (title + ". " + text, the review-id hash split). Without
``--model-dir`` a MiniLM (the offline all-MiniLM-L6-v2) is fine-tuned briefly through
``include/models/bert.py`` and cached under ``--cache`` for reruns. Then the held-out test split is
scored through ``bert.predict_proba`` (the scoring path) in each mode:

- fp32 unsorted: torch fp32 in input order, fixed batches of 64 (the padding reference);
- fp32 (the floor): torch fp32, length-sorted dynamic batches;
- int8: torch dynamic quantisation of the Linear layers; onnx: ONNX Runtime with BERT fusions;
  onnx-int8: ONNX Runtime with int8 weights (the export/quantisation is timed apart, once).

Printed: reviews/s and the ratio to fp32, test macro-F1 and its delta, label agreement with fp32,
padding share before/after length sorting, and the mode ``auto`` should pick (the fastest within
``F1_TOLERANCE`` macro-F1 of fp32). ``--cores 2`` pins the process to 2 cores (as measured); the
load average is printed: other work on the cores lowers every figure, the ratios less so.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT), str(ROOT / "include" / "models")]  # reviewflow, tools, bert

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DEV_CSV = Path("/work/shared/data/womens_clothing_reviews_dev.csv")
F1_TOLERANCE = 0.005
MODES = ("fp32", "int8", "onnx", "onnx-int8")


def dataset(csv: str | None, rows: int) -> pd.DataFrame:
    from reviewflow import contract
    from reviewflow.ingest import curate
    from reviewflow.training.dataset import assemble, from_source_csv
    from tools import sample_data

    if csv:
        return assemble(from_source_csv(csv), None)
    raw = sample_data.generate_reviews(rows, seed=5)
    raw.columns = [contract.snake_case(c) for c in raw.columns]
    return assemble(curate.to_curated(raw, "bench.csv", "bench").assign(dt="2024-01-01"), None)


def trained_model(frame: pd.DataFrame, source: str, cache: Path, args) -> str:
    """A briefly fine-tuned MiniLM for this data, cached (keyed by the data and budget) for reruns."""
    import bert

    key = hashlib.sha1(f"{source}|{len(frame)}|{args.train_samples}|{args.train_minutes}".encode()).hexdigest()[:10]
    model_dir = cache / f"model-{key}"
    if (model_dir / "model_meta.json").exists():
        print(f"model: cached {model_dir}")
        return str(model_dir)
    cache.mkdir(parents=True, exist_ok=True)
    data = cache / f"dataset-{key}.parquet"
    frame.to_parquet(data, index=False)
    started = time.monotonic()
    bert.main(["--dataset", str(data), "--output", str(model_dir), "--epochs", "1", "--lr", "8e-5",
               "--max-train-samples", str(args.train_samples), "--max-minutes", str(args.train_minutes),
               "--max-eval-samples", "400", "--device", "cpu"])  # fmt: skip
    print(f"model: trained {model_dir} in {time.monotonic() - started:.0f}s")
    return str(model_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--csv", default=None, help=f"a Kaggle-schema CSV (default: {DEV_CSV} when present)")
    parser.add_argument("--rows", type=int, default=4000, help="generated reviews when there is no CSV")
    parser.add_argument("--model-dir", default=None, help="a trained bert model dir (default: train one)")
    parser.add_argument("--cache", default="/tmp/reviewflow-bench-bert", help="trained-model cache for reruns")
    parser.add_argument("--train-samples", type=int, default=3000)
    parser.add_argument("--train-minutes", type=float, default=6.0)
    parser.add_argument("--n-texts", type=int, default=0, help="score the first N test texts (0: all)")
    parser.add_argument("--cores", type=int, default=2, help="pin to this many cores (0: as given)")
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if "fp32" not in modes:
        raise SystemExit("--modes must include fp32: it is the floor the ratios are against")

    if args.cores and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[: args.cores]
        os.sched_setaffinity(0, cpus)
    import torch

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    import bert
    from model_io import scores, splits, to_index

    csv = args.csv or (str(DEV_CSV) if DEV_CSV.exists() else None)
    frame = dataset(csv, args.rows)
    parts = splits(frame)
    print(f"data: {csv or f'generated {args.rows} reviews (no dev file)'}: "
          + ", ".join(f"{k} {len(v)}" for k, v in parts.items()))  # fmt: skip
    model_dir = args.model_dir or trained_model(frame, csv or f"generated-{args.rows}", Path(args.cache), args)
    test = parts["test"] if not args.n_texts else parts["test"].head(args.n_texts)
    texts, y = test["text"].tolist(), to_index(test["label"])
    print(f"cpus {len(os.sched_getaffinity(0))}, torch threads {torch.get_num_threads()}, "
          f"load average at start {os.getloadavg()[0]:.2f}; scoring {len(texts)} test texts", flush=True)  # fmt: skip

    tokenizer, _, device, max_length = bert.load_model(model_dir, "cpu")
    lengths = [len(ids) for ids in bert.tokenize(tokenizer, texts, max_length)["input_ids"]]
    unsorted = bert.padding_share(lengths, bert.plan_batches(lengths, 0, 64, sort=False))
    limits = bert.batch_limits(device)
    dynamic = bert.padding_share(lengths, bert.plan_batches(lengths, **limits))
    print(f"tokens per review: mean {np.mean(lengths):.1f}, max {max(lengths)} (max_length {max_length}); "
          f"padding share: input order, batches of 64 {unsorted:.1%}; length-sorted dynamic "
          f"({limits['max_tokens']} tokens, <= {limits['max_rows']} rows) {dynamic:.1%}", flush=True)  # fmt: skip

    rows = [("fp32 unsorted", "fp32", False)] + [(m, m, True) for m in modes]
    results = {}
    for label, mode, sort in rows:
        started = time.perf_counter()
        bert.predict_proba(model_dir, texts[:8], inference=mode, device="cpu", sort=sort)  # load (and export) once
        setup = time.perf_counter() - started
        started = time.perf_counter()
        probs = bert.predict_proba(model_dir, texts, inference=mode, device="cpu", sort=sort)
        took = time.perf_counter() - started
        results[label] = {"rate": len(texts) / took, "setup": setup, "pred": probs.argmax(axis=1),
                          "f1": scores(y, probs.argmax(axis=1))["macro_f1"]}  # fmt: skip
        print(f"  measured {label}: {results[label]['rate']:.1f}/s (setup {setup:.1f}s)", flush=True)

    floor = results["fp32"]
    print(f"\n=== bench_bert_scoring ({len(texts)} test texts, {len(os.sched_getaffinity(0))} cores; "
          f"load average now {os.getloadavg()[0]:.2f}) ===")  # fmt: skip
    print(f"{'mode':<15}{'reviews/s':>10}{'x fp32':>8}{'test F1':>9}{'dF1':>9}{'agree':>8}{'setup s':>9}")
    for label, r in results.items():
        agree = float(np.mean(r["pred"] == floor["pred"]))
        print(f"{label:<15}{r['rate']:>10.1f}{r['rate'] / floor['rate']:>8.2f}{r['f1']:>9.4f}"
              f"{r['f1'] - floor['f1']:>+9.4f}{agree:>8.3f}{r['setup']:>9.1f}")  # fmt: skip
    within = [m for m in modes if abs(results[m]["f1"] - floor["f1"]) <= F1_TOLERANCE]
    best = max(within, key=lambda m: results[m]["rate"])
    print(f"fastest within {F1_TOLERANCE} macro-F1 of fp32: {best} (x{results[best]['rate'] / floor['rate']:.2f}); "
          f"bert.CPU_DEFAULT_MODE (auto) is {bert.CPU_DEFAULT_MODE}; goal x5.00")  # fmt: skip


if __name__ == "__main__":
    main()
