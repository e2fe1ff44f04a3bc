"""What every benchmark settings module shares: the database the runner names."""

import os

import dj_database_url

URL_VARIABLE = "DBQUEUE_BENCH_DATABASE_URL"


def database(conn_max_age: int | None) -> dict:
    """Return the DATABASES entry for the runner's throwaway database."""
    config = dj_database_url.parse(os.environ[URL_VARIABLE], conn_max_age=conn_max_age)
    if config["ENGINE"].endswith("sqlite3"):
        # dbqueue's checks ask for IMMEDIATE transactions on SQLite (W001).
        config["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
    elif config["ENGINE"].endswith("mysql"):
        config["OPTIONS"] = {"charset": "utf8mb4"}
    return config
