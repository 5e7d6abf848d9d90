"""Benchmark: train TF-IDF and BERT on the dev CSV, evaluate, run the gate; print the figures.

    .venv/bin/python bench/bench_training.py --csv /work/shared/data/womens_clothing_reviews_dev.csv

The CSV (Kaggle schema) becomes a training dataset as the pipeline builds one (sentiment from the
rating, title + ". " + text, 80/10/10 split by a hash of the review id) in a throwaway lake; both
entry points run as subprocesses exactly as the `local` GPU backend runs them; the models are
evaluated and registered, and the champion/challenger gate picks the first champion. BERT runs
on CUDA when present, else on CPU within the budget given here (defaults sized for ~10 minutes
on 2 cores).

Measured on 2 shared CPU cores (dev CSV: 13,564 usable reviews; test split 1,332), all-MiniLM-L6-v2,
max_length 128, lr 8e-5, ~12 training samples/s:

    model  budget                       test macro-F1  test acc  val macro-F1  train s  wall s
    tfidf  6 candidates                        0.6657    0.8423       0.6670       33      37
    bert   3000 rows x 1 epoch                 0.6616    0.8386       0.6288      262     301
    bert   2500 rows x 2 epochs                0.6504    0.8476       0.6029      430     469
    bert   5000 rows x 1 epoch (default)       0.6736    0.8476       0.6408      422     462

The nightly CPU hour (issue 14; BERT: all rows x 2 epochs, max_minutes 40, length-grouped batches;
2026-12-04, 8 TF-IDF candidates with NB-LR; BERT at 25 samples/s on that session's cores):

    model     test macro-F1  test acc  val macro-F1 train min
    tfidf            0.6793    0.8491        0.6877       0.8   (word+char NB-LR C=2; plain logreg 0.6657 / 0.6670)
    bert             0.6562    0.8408        0.6953      14.4
    ensemble         0.6810    0.8514        0.6994      15.3   (weights 0.60 tfidf / 0.40 bert; 0.6869 / 0.7110 with plain logreg)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]  # reviewflow, tools

from reviewflow.config import get_settings  # noqa: E402
from reviewflow.layout import dataset_key, model_prefix  # noqa: E402
from reviewflow.orchestration.gpu_training import run_entry_point  # noqa: E402
from reviewflow.storage.lake import LocalLake, read_json  # noqa: E402
from reviewflow.training.dataset import build_dataset, from_source_csv, load_dataset  # noqa: E402
from reviewflow.training.registry import promote  # noqa: E402
from reviewflow.training.tasks import evaluate_and_register, run_candidates, run_gate  # noqa: E402

DT = "2024-01-01"
RUN_ID = "bench_training"
VERSION = "bench"


def scoring_speed(lake: LocalLake, model: str, dataset) -> float:
    """Reviews/s of the registered model's predictor on the test texts (after a warm-up batch: model
    load and, for BERT on CPU, the one-off ONNX export are not scoring)."""
    from reviewflow.training.predictor import load_predictor
    from reviewflow.training.registry import get_version

    predict = load_predictor(get_version(lake, model, VERSION))
    texts = dataset.loc[dataset["split"] == "test", "text"].tolist()
    predict(texts[:64])
    t0 = time.perf_counter()
    predict(texts)
    return len(texts) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--csv", default="/work/shared/data/womens_clothing_reviews_dev.csv")
    parser.add_argument("--lake", default=None, help="keep the bench lake here (default: a temp dir)")
    parser.add_argument("--bert-max-train-samples", type=int, default=5000)
    parser.add_argument("--bert-max-minutes", type=float, default=8.0)
    parser.add_argument("--bert-epochs", type=int, default=1)
    parser.add_argument("--bert-max-length", type=int, default=get_settings().bert_max_length)
    parser.add_argument("--bert-max-eval-samples", type=int, default=600)
    parser.add_argument("--bert-lr", type=float, default=8e-5)
    parser.add_argument("--skip-bert", action="store_true")
    parser.add_argument("--bert-from", default=None,
                        help="a BERT model dir trained by include/models/bert.py on this CSV's dataset: used instead of training")  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="do not echo the training logs")
    args = parser.parse_args()

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    lake_root = args.lake or tempfile.mkdtemp(prefix="reviewflow-bench-")
    os.environ["REVIEWFLOW_LAKE"] = lake_root
    lake = LocalLake(lake_root)
    settings = get_settings()

    started = time.monotonic()
    summary = build_dataset(lake, DT, None, curated=from_source_csv(args.csv, DT))
    snap = summary["snapshot"]
    print(f"dataset: {snap['rows']} reviews, splits {snap['splits']}, test classes {snap['classes']['test']} "
          f"({time.monotonic() - started:.1f}s)", flush=True)  # fmt: skip
    dataset_uri = lake.uri(dataset_key(DT))

    runs = [("tfidf", {})]
    if not args.skip_bert:
        runs.append((
            "bert",
            {"max_train_samples": args.bert_max_train_samples, "max_minutes": args.bert_max_minutes,
             "epochs": args.bert_epochs, "max_length": args.bert_max_length, "max_eval_samples": args.bert_max_eval_samples,
             "lr": args.bert_lr, "log_every": 25},
        ))  # fmt: skip
    if not args.skip_bert:  # the third candidate: both members' probabilities, weighted on validation
        members = ",".join(f"{m}={lake.uri(model_prefix(m, VERSION))}" for m in ("tfidf", "bert"))
        runs.append(("ensemble", {"members": members}))
    walls = {}
    for model, params in runs:
        t0 = time.monotonic()
        if model == "bert" and args.bert_from:
            shutil.copytree(args.bert_from, lake.uri(model_prefix(model, VERSION)))
        else:
            run_entry_point(model, dataset_uri, lake.uri(model_prefix(model, VERSION)), params)
        walls[model] = time.monotonic() - t0
        evaluate_and_register(lake, model, VERSION, DT, RUN_ID, settings)
    dataset = load_dataset(lake, DT)
    speed = {model: scoring_speed(lake, model, dataset) for model, _ in runs}

    decision = run_gate(lake, run_candidates(lake, VERSION), dataset, RUN_ID, settings)
    if decision["promote"]:
        from reviewflow.training.registry import get_version

        promote(lake, get_version(lake, decision["challenger"]["model_name"], VERSION), decision, RUN_ID)

    print(f"\n=== bench_training (test split: {snap['splits']['test']} reviews) ===")
    print(f"{'model':<9}{'test macro-F1':>14}{'test acc':>10}{'val macro-F1':>14}{'train min':>10}{'wall min':>9}"
          f"{'scores/s':>10}  budget / notes")  # fmt: skip
    for model, _ in runs:
        m = read_json(lake, model_prefix(model, VERSION) + "metrics.json")
        ev = read_json(lake, model_prefix(model, VERSION) + "evaluation.json")
        if model == "bert":
            note = (f"{m['device']}; {m['train_rows']} of {m['train_rows_available']} train rows, "
                    f"max_length {args.bert_max_length}, {m['epochs_run']} epochs, lr {args.bert_lr}, {m['stop_reason']}")  # fmt: skip
            note += " (trained earlier: --bert-from)" if args.bert_from else ""
        elif model == "ensemble":
            note = f"weights {m['weights']} (chosen on validation); train min = both members + {m['ensemble_seconds']:.0f} s"
        else:
            board = read_json(lake, model_prefix(model, VERSION) + "leaderboard.json")
            note = f"best {m['best']['features']} {m['best']['clf']} C={m['best']['C']} of {len(board)} candidates"
        print(f"{model:<9}{ev['macro_f1']:>14.4f}{ev['accuracy']:>10.4f}{m['validation']['macro_f1']:>14.4f}"
              f"{m['train_seconds'] / 60:>10.1f}{walls[model] / 60:>9.1f}{speed[model]:>10.1f}  {note}")  # fmt: skip
        per_class = ", ".join(f"{k} F1 {v['f1']:.3f}" for k, v in ev["per_class"].items())
        print(f"{'':<9}{per_class}")
    print(f"\ngate: {'PROMOTE' if decision['promote'] else 'REFUSE'} {decision['challenger']['model_name']}")
    for reason in decision["reasons"]:
        print(f"  - {reason}")
    champ = json.loads((Path(lake_root) / "models/champion.json").read_text()) if decision["promote"] else None
    print(f"champion: {champ['model_name']} {champ['version']}" if champ else "champion: none")
    print(f"reports: {lake.uri('reports/models/')}  (lake {lake_root})")


if __name__ == "__main__":
    main()
