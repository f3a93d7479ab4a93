-- MLflow's basic-auth user store (users, permissions) gets a database of its own: it keeps
-- its own schema migrations, apart from the tracking store's. Run by the postgres image on
-- the first start, as POSTGRES_USER, who then owns it.
CREATE DATABASE mlflow_auth;
