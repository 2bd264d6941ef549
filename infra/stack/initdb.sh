#!/bin/sh
# Postgres container init (infra/compose.yaml): the roles and databases `make stack` creates.
# Runs once, on an empty data volume, as the postgres superuser.
set -eu
psql -v ON_ERROR_STOP=1 --username postgres <<SQL
CREATE ROLE mlflow LOGIN PASSWORD '${MLFLOW_DB_PASSWORD}';
CREATE DATABASE mlflow OWNER mlflow;
CREATE DATABASE mlflow_auth OWNER mlflow;
CREATE ROLE prefect LOGIN PASSWORD '${PREFECT_DB_PASSWORD}';
CREATE DATABASE prefect OWNER prefect;
SQL
