"""gpu_training_task: one entry point, four backends (local, celery, kubernetes, sagemaker)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import aws_connection
import pandas as pd
import pytest

from reviewflow import contract
from reviewflow.config import MODELS_DIR, get_settings
from reviewflow.ingest import curate
from reviewflow.orchestration.gpu_training import (
    GPU_QUEUE,
    TrainingFailed,
    cli_args,
    gpu_training_task,
    run_entry_point,
)
from reviewflow.training.dataset import assemble
from tools import sample_data

PARAMS = {"max_train_samples": 30, "epochs": 1, "max_length": 32, "batch_size": 8, "max_minutes": 1}
aws_conn = aws_connection.aws_conn  # the fixture: AWS only through AIRFLOW_CONN_AWS_DEFAULT


def settings_for(backend: str, lake: str = "/tmp/lake"):
    return replace(get_settings(), gpu_backend=backend, lake=lake)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> str:
    raw = sample_data.generate_reviews(400, seed=5)
    raw.columns = [contract.snake_case(c) for c in raw.columns]
    frame = assemble(curate.to_curated(raw, "tiny.csv", "run").assign(dt="2024-03-01"), None)
    tiny = pd.concat(
        [
            frame[frame["split"] == s].groupby("label").head(k)
            for s, k in [("train", 12), ("validation", 4), ("test", 4)]
        ]
    )
    path = tmp_path_factory.mktemp("gpu") / "dataset.parquet"
    tiny.to_parquet(path, index=False)
    return str(path)


def test_cli_args():
    assert cli_args({"max_train_samples": 3000, "lr": 5e-5, "skip": None}) == [
        "--max-train-samples", "3000", "--lr", "5e-05",
    ]  # fmt: skip


@pytest.mark.slow  # a real BERT fine-tune in a subprocess (~40 s)
def test_local_backend_really_fine_tunes_bert_on_cpu(tiny_dataset, tmp_path):
    op = gpu_training_task("train_bert", "bert", tiny_dataset, str(tmp_path / "bert"), settings_for("local"), **PARAMS)
    assert op.queue != GPU_QUEUE
    summary = op.python_callable(**op.op_kwargs)  # what the worker runs: a subprocess with sys.executable
    metrics = json.loads((tmp_path / "bert" / "metrics.json").read_text())
    assert summary["returncode"] == 0 and summary["test_macro_f1"] == metrics["test"]["macro_f1"]
    assert metrics["device"] in ("cpu", "cuda")
    if metrics["device"] == "cpu":
        assert metrics["budget"]["applied"] and metrics["train_rows"] == 30
    assert (tmp_path / "bert" / "model.safetensors").exists()


def test_local_failure_raises_with_the_output_tail(tmp_path):
    with pytest.raises(TrainingFailed, match=r"tfidf training exited with code \d+; last lines:\n(.|\n)*no-such"):
        run_entry_point("tfidf", str(tmp_path / "no-such.parquet"), str(tmp_path / "out"))


def test_celery_backend_runs_the_same_callable_on_the_gpu_queue():
    op = gpu_training_task("train_bert", "bert", "/d.parquet", "/out", settings_for("celery"), **PARAMS)
    assert op.queue == GPU_QUEUE == "gpu"
    assert op.python_callable is run_entry_point
    assert op.op_kwargs["params"] == PARAMS


def test_kubernetes_backend_pod_asks_for_a_gpu():
    op = gpu_training_task(
        "train_bert", "bert", "s3://lake/models/datasets/dt=2024-03-01/dataset.parquet", "s3://lake/models/bert/v1",
        settings_for("kubernetes", "s3://lake"), model_name_or_path=str(MODELS_DIR), **PARAMS,
    )  # fmt: skip
    pod = op.build_pod_request_obj(dry_run=True)
    container = pod.spec.containers[0]
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    assert container.command == ["python", "-u", "include/models/bert.py"]
    args = container.args
    assert args[args.index("--dataset") + 1].endswith("dataset.parquet") and "--max-train-samples" in args
    assert args[args.index("--model-name-or-path") + 1] == "bert-base-uncased"  # a local path means nothing in a pod
    assert pod.spec.node_selector == {"nvidia.com/gpu.present": "true"}
    assert any(t.key == "nvidia.com/gpu" and t.effect == "NoSchedule" for t in pod.spec.tolerations)
    # the pod is watched by the triggerer: no worker slot held for hours of training
    assert op.deferrable is True and op.poll_interval == 30 and op.logging_interval == 300


def test_kubernetes_backend_defers_the_pod_watch_to_the_triggerer():
    from airflow.providers.cncf.kubernetes.triggers.pod import KubernetesPodTrigger
    from airflow.sdk.exceptions import TaskDeferred

    settings = replace(settings_for("kubernetes", "s3://lake"), k8s_namespace="training")
    op = gpu_training_task("train_bert", "bert", "s3://lake/d.parquet", "s3://lake/out", settings, **PARAMS)
    op.pod = op.build_pod_request_obj(dry_run=True)  # what execute_async has created in the cluster
    with pytest.raises(TaskDeferred) as deferred:
        op.invoke_defer_method()
    trigger = deferred.value.trigger
    assert isinstance(trigger, KubernetesPodTrigger) and deferred.value.method_name == "trigger_reentry"
    _, kwargs = trigger.serialize()  # what the triggerer receives
    assert (kwargs["pod_name"], kwargs["pod_namespace"]) == (op.pod.metadata.name, "training")
    assert kwargs["get_logs"] is True and kwargs["on_finish_action"] == "delete_succeeded_pod"
    assert kwargs["poll_interval"] == 30 and kwargs["logging_interval"] == 300


def test_kubernetes_operator_kwargs_override_the_defaults():
    op = gpu_training_task(
        "train_bert", "bert", "s3://lake/d.parquet", "s3://lake/out", settings_for("kubernetes", "s3://lake"),
        operator_kwargs={"deferrable": False, "poll_interval": 5},
    )  # fmt: skip
    assert op.deferrable is False and op.poll_interval == 5


def test_sagemaker_backend_training_job_config():
    settings = settings_for("sagemaker", "s3://reviewflow-lake/prod")
    dataset = "s3://reviewflow-lake/prod/models/datasets/dt=2024-03-01/dataset.parquet"
    op = gpu_training_task(
        "train_bert", "bert", dataset, "s3://reviewflow-lake/prod/models/bert/v1", settings,
        model_name_or_path="s3://reviewflow-lake/base-models/minilm/", **PARAMS,
    )  # fmt: skip
    config = op.config
    assert config["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    assert config["InputDataConfig"][0]["ChannelName"] == "dataset"
    assert config["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == dataset
    assert config["OutputDataConfig"]["S3OutputPath"] == "s3://reviewflow-lake/prod/models/sagemaker/"
    hyper = config["HyperParameters"]
    assert json.loads(hyper["sagemaker_program"]) == "bert.py"
    assert hyper["output"] == "s3://reviewflow-lake/prod/models/bert/v1" and hyper["max-train-samples"] == "30"
    assert hyper["model-name-or-path"] == "s3://reviewflow-lake/base-models/minilm/"  # synced by the entry point
    assert config["S3Operations"]["S3Upload"][0]["Path"] == str(MODELS_DIR)
    # the run's model version (an asset-triggered run has no ds_nodash) and the try: unique names
    assert "key='version'" in config["TrainingJobName"] and "ti.try_number" in config["TrainingJobName"]
    assert "ds_nodash" not in json.dumps(config)
    # the job is polled by the triggerer when its trigger can run (aiobotocore), with the connection
    # the lake, Glue and Athena use; else by the worker
    try:
        import aiobotocore  # noqa: F401

        triggerer_can_poll = True
    except ImportError:
        triggerer_can_poll = False
    assert op.deferrable is triggerer_can_poll and op.wait_for_completion is True
    assert op.aws_conn_id == settings.aws_conn_id == "aws_default"
    other = gpu_training_task(
        "t", "bert", dataset, "s3://reviewflow-lake/prod/o", replace(settings, aws_conn_id="aws_ml")
    )
    assert other.aws_conn_id == "aws_ml"


@pytest.mark.aws
def test_sagemaker_training_job_is_created_on_moto(aws_env):
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="reviewflow-lake")
    key = "prod/models/datasets/dt=2024-03-01/dataset.parquet"
    s3.put_object(Bucket="reviewflow-lake", Key=key, Body=b"PAR1")
    settings = replace(
        settings_for("sagemaker", "s3://reviewflow-lake/prod"),
        sagemaker_role="arn:aws:iam::123456789012:role/reviewflow-sagemaker",
    )
    op = gpu_training_task(
        "train_bert", "bert", f"s3://reviewflow-lake/{key}", "s3://reviewflow-lake/prod/models/bert/v1", settings,
        operator_kwargs={"aws_conn_id": None, "region_name": "us-east-1", "wait_for_completion": False, "print_log": False},
        **PARAMS,
    )  # fmt: skip
    op.config["TrainingJobName"] = "reviewflow-bert-20240301"  # what Jinja renders at run time
    result = op.execute({})
    job = boto3.client("sagemaker", region_name="us-east-1").describe_training_job(
        TrainingJobName="reviewflow-bert-20240301"
    )
    assert job["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    assert job["HyperParameters"]["dataset"] == f"s3://reviewflow-lake/{key}"
    assert result["Training"]["TrainingJobName"] == "reviewflow-bert-20240301"
    # the hook tarred include/models and uploaded it as the script-mode source dir
    source = s3.get_object(Bucket="reviewflow-lake", Key="prod/code/models/sourcedir.tar.gz")["Body"].read()
    import io
    import tarfile

    names = tarfile.open(fileobj=io.BytesIO(source)).getnames()
    assert {"bert.py", "tfidf.py", "model_io.py"} <= set(names)  # the entry points import model_io


@pytest.mark.aws
def test_sagemaker_job_through_the_connection_and_the_triggers_completion(aws_conn, tmp_path):
    """The job is created with ``aws_default`` (AIRFLOW_CONN_AWS_DEFAULT, moto); the trigger the operator
    defers to polls it through the same connection (aiobotocore, as in the triggerer) and completes it."""
    import asyncio

    pytest.importorskip("aiobotocore", reason="the deferrable SageMaker trigger needs aiobotocore")
    from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger

    from reviewflow.storage import aws

    s3 = aws.session().client("s3")
    s3.create_bucket(Bucket="reviewflow-conn-lake")
    key = "prod/models/datasets/dt=2024-03-02/dataset.parquet"
    s3.put_object(Bucket="reviewflow-conn-lake", Key=key, Body=b"PAR1")
    settings = replace(
        settings_for("sagemaker", "s3://reviewflow-conn-lake/prod"),
        sagemaker_role="arn:aws:iam::123456789012:role/reviewflow-sagemaker",
    )
    op = gpu_training_task(
        "train_bert", "bert", f"s3://reviewflow-conn-lake/{key}", "s3://reviewflow-conn-lake/prod/models/bert/v2",
        settings, operator_kwargs={"print_log": False, "check_interval": 1}, **PARAMS,
    )  # fmt: skip
    assert op.deferrable and op.wait_for_completion and op.aws_conn_id == "aws_default"
    op.config["TrainingJobName"] = "reviewflow-bert-20240302"
    result = op.execute({})  # moto completes jobs at once, so the operator returns without deferring
    assert result["Training"]["TrainingJobName"] == "reviewflow-bert-20240302"

    trigger = SageMakerTrigger(job_name="reviewflow-bert-20240302", job_type="Training",
                               waiter_delay=op.check_interval, waiter_max_attempts=3, aws_conn_id=op.aws_conn_id)  # fmt: skip

    async def first_event():
        async for event in trigger.run():
            return event.payload

    event = asyncio.run(first_event())
    assert event["status"] == "success" and event["job_name"] == "reviewflow-bert-20240302"
    assert op.execute_complete({}, event)["Training"]["TrainingJobStatus"] == "Completed"


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="unknown model"):
        gpu_training_task("t", "gpt", "/d", "/o", settings_for("local"))


def test_entry_points_exist():
    assert Path(MODELS_DIR, "bert.py").exists() and Path(MODELS_DIR, "tfidf.py").exists()
