# syntax=docker/dockerfile:1
# The MLflow tracking server of infra/compose/compose.yaml: MLflow with the basic-auth app,
# the PostgreSQL driver (postgresql+psycopg2://) and boto3 for S3 artifacts. Built by
# `docker compose up --build`; also runs the bucket-creating init container.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install "mlflow[auth]==3.17.2" "psycopg2-binary==2.9.13" "boto3>=1.35,<2"

RUN useradd --create-home --uid 1000 mlflow
USER mlflow
WORKDIR /home/mlflow

CMD ["mlflow", "server", "--help"]
