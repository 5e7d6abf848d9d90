"""Run a model entry point (include/models/<model>.py) where ``settings.gpu_backend`` says.

One factory, one contract: whatever the backend, the same script runs with
``--dataset DATASET_URI --output OUTPUT_DIR [--param value ...]`` and leaves a model dir with
``metrics.json`` at ``OUTPUT_DIR``.

=============  ==============================================================================
``local``      a subprocess on this worker (``sys.executable``), its output streamed to the
               task log; CUDA when this machine has it, else CPU within the budget params.
``celery``     the same callable, on the Celery queue ``gpu`` (a worker on a GPU host runs
               ``airflow celery worker --queues gpu``).
``kubernetes`` a ``KubernetesPodOperator`` pod from the training image, limited to
               ``nvidia.com/gpu: 1``, scheduled on GPU nodes (node selector + toleration);
               deferrable: the triggerer watches the pod.
``sagemaker``  a ``SageMakerTrainingOperator`` training job on a GPU instance (ml.g5.xlarge by
               default) in script mode: include/models is uploaded as the source dir, the
               dataset URI is the ``dataset`` input channel, the model goes to OUTPUT_DIR;
               deferrable (the triggerer polls the job), AWS through ``settings.aws_conn_id``.
=============  ==============================================================================

``dataset_uri``, ``output_dir`` and the params may be Jinja strings (rendered at run time by
every backend's templated fields). The backends' own settings (image, role, namespace...) are
``Settings`` fields like the rest (REVIEWFLOW_TRAINING_IMAGE, REVIEWFLOW_SAGEMAKER_ROLE, ...).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
from collections import deque
from typing import TYPE_CHECKING

from reviewflow.config import MODELS_DIR, PROJECT_ROOT, Settings
from reviewflow.orchestration.dag_defaults import GPU_QUEUE

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator

log = logging.getLogger(__name__)

MODELS = ("tfidf", "bert", "ensemble")  # include/models/<model>.py entry points
TAIL_LINES = 40


class TrainingFailed(RuntimeError):
    """The entry point exited non-zero; the message carries the tail of its output."""


def cli_args(params: dict) -> list[str]:
    """``{"max_train_samples": 3000}`` -> ``["--max-train-samples", "3000"]`` (None values left out)."""
    args = []
    for key, value in params.items():
        if value is None or value == "":
            continue
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def entry_point(model: str) -> str:
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}: expected one of {MODELS}")
    return str(MODELS_DIR / f"{model}.py")


def command(model: str, dataset_uri: str, output_dir: str, params: dict, python: str = "python") -> list[str]:
    return [python, "-u", entry_point(model), "--dataset", dataset_uri, "--output", output_dir, *cli_args(params)]


def run_entry_point(
    model: str, dataset_uri: str, output_dir: str, params: dict | None = None, timeout_s: float | None = None
) -> dict:
    """Run include/models/<model>.py in a subprocess; stream its lines to the log; raise with the tail on failure."""
    cmd = command(model, dataset_uri, output_dir, params or {}, python=sys.executable)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    log.info("running %s", " ".join(cmd))
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    proc = subprocess.Popen(
        cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        start_new_session=True,  # its own process group: ended with it, never by name
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            log.info("%s", line)
        returncode = proc.wait(timeout=timeout_s)
    except BaseException:
        # the task is being stopped (or timed out): stop the training with it
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        raise
    if returncode != 0:
        raise TrainingFailed(f"{model} training exited with code {returncode}; last lines:\n" + "\n".join(tail))
    summary = {"model": model, "output_dir": output_dir, "dataset_uri": dataset_uri, "returncode": returncode}
    metrics_path = os.path.join(output_dir, "metrics.json")
    if not output_dir.startswith("s3://") and os.path.exists(metrics_path):
        with open(metrics_path) as fh:
            metrics = json.load(fh)
        summary["test_macro_f1"] = metrics.get("test", {}).get("macro_f1")
        summary["train_seconds"] = metrics.get("train_seconds")
    return summary


def remote_model_source(model: str, settings: Settings) -> str:
    """The base model for remote backends: a path on this machine means nothing in a pod or a job."""
    if model.startswith("s3://") or not (model.startswith("/") or os.path.exists(model)):
        return model  # an S3 folder or a hub id
    return settings.remote_bert_model


def remote_params(model: str, params: dict, settings: Settings) -> dict:
    if model != "bert":
        return params
    source = params.get("model_name_or_path") or settings.bert_model
    return {**params, "model_name_or_path": remote_model_source(source, settings)}


def _kubernetes_operator(
    task_id: str, model: str, dataset_uri: str, output_dir: str, settings: Settings, params: dict, **kwargs
):
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import models as k8s

    selector_key, _, selector_value = settings.k8s_gpu_node_selector.partition("=")
    resources = k8s.V1ResourceRequirements(
        requests={"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"},
        limits={"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
    )
    env = {"AWS_DEFAULT_REGION": settings.aws_region, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    params = remote_params(model, params, settings)
    return KubernetesPodOperator(
        task_id=task_id,
        name=f"reviewflow-train-{model}",
        namespace=settings.k8s_namespace,
        image=settings.training_image,
        cmds=["python", "-u", f"include/models/{model}.py"],
        arguments=["--dataset", dataset_uri, "--output", output_dir, *cli_args(params)],
        env_vars=env,
        container_resources=resources,
        node_selector={selector_key: selector_value} if selector_value else None,
        tolerations=[k8s.V1Toleration(key=settings.k8s_gpu_toleration, operator="Exists", effect="NoSchedule")],
        service_account_name=settings.k8s_service_account or None,
        get_logs=True,
        on_finish_action="delete_succeeded_pod",
        startup_timeout_seconds=900,  # GPU nodes may need to scale up
        # hours of training wait in the triggerer, not in a worker slot; logs come back every logging_interval
        **{"deferrable": True, "poll_interval": 30, "logging_interval": 300, **kwargs},
    )


def sagemaker_config(model: str, dataset_uri: str, output_dir: str, settings: Settings, params: dict) -> dict:
    """The ``create_training_job`` request: script mode on a GPU instance, dataset as input channel."""
    lake = settings.lake.rstrip("/")
    if not lake.startswith("s3://"):
        raise ValueError("the sagemaker backend needs an s3:// lake (REVIEWFLOW_LAKE)")
    bucket, _, prefix = lake[len("s3://") :].partition("/")
    source_key = f"{prefix + '/' if prefix else ''}code/models/sourcedir.tar.gz"
    params = remote_params(model, params, settings)
    hyper = {
        "sagemaker_program": json.dumps(f"{model}.py"),
        "sagemaker_submit_directory": json.dumps(f"s3://{bucket}/{source_key}"),
        "dataset": dataset_uri,
        "output": output_dir,
        **{k.replace("_", "-"): str(v) for k, v in params.items() if v is not None and v != ""},
    }
    return {
        # unique per run and try (SageMaker refuses a reused name); an asset-triggered run has no ds_nodash
        "TrainingJobName": f"reviewflow-{model}-{{{{ ti.xcom_pull(task_ids='build_dataset', key='version') }}}}"
        "-{{ ti.try_number }}",
        "AlgorithmSpecification": {
            "TrainingImage": settings.sagemaker_image,
            "TrainingInputMode": "File",
        },
        "RoleArn": settings.sagemaker_role,
        "HyperParameters": hyper,
        "InputDataConfig": [
            {
                "ChannelName": "dataset",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": dataset_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "application/x-parquet",
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"{lake}/models/sagemaker/"},
        "ResourceConfig": {
            "InstanceType": settings.sagemaker_instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": 50,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": settings.sagemaker_max_runtime_s},
        "Environment": {"TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"},
        # the airflow SageMaker hook tars include/models and uploads it before creating the job
        "S3Operations": {"S3Upload": [{"Path": str(MODELS_DIR), "Bucket": bucket, "Key": source_key, "Tar": True}]},
    }


def gpu_training_task(
    task_id: str,
    model: str,
    dataset_uri: str,
    output_dir: str,
    settings: Settings,
    operator_kwargs: dict | None = None,
    **params,
) -> BaseOperator:
    """An operator that trains ``model`` with ``include/models/<model>.py`` on the configured backend.

    ``params`` become the entry point's CLI options (``max_train_samples=3000`` ->
    ``--max-train-samples 3000``); ``operator_kwargs`` go to the operator (``aws_conn_id``,
    ``execution_timeout``, ``trigger_rule`` ...).
    """
    entry_point(model)  # validates the name
    kwargs = dict(operator_kwargs or {})
    backend = settings.gpu_backend
    if backend in ("local", "celery"):
        from airflow.providers.standard.operators.python import PythonOperator

        if backend == "celery":
            kwargs["queue"] = GPU_QUEUE
        return PythonOperator(
            task_id=task_id,
            python_callable=run_entry_point,
            op_kwargs={"model": model, "dataset_uri": dataset_uri, "output_dir": output_dir, "params": params},
            **kwargs,
        )
    if backend == "kubernetes":
        return _kubernetes_operator(task_id, model, dataset_uri, output_dir, settings, params, **kwargs)
    if backend == "sagemaker":
        from airflow.providers.amazon.aws.operators.sagemaker import SageMakerTrainingOperator

        kwargs.setdefault("print_log", True)
        kwargs.setdefault("check_interval", 60)
        kwargs.setdefault("aws_conn_id", settings.aws_conn_id)  # the connection the lake, Glue and Athena use
        # the job is polled by the triggerer, not by a worker slot; its trigger needs aiobotocore, which no
        # release pairs with the locked botocore yet: without it the worker polls (deferring would fail)
        kwargs.setdefault("deferrable", importlib.util.find_spec("aiobotocore") is not None)
        return SageMakerTrainingOperator(
            task_id=task_id, config=sagemaker_config(model, dataset_uri, output_dir, settings, params), **kwargs
        )
    raise ValueError(f"unknown gpu backend {backend!r}")
