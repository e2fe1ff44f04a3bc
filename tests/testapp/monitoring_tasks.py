"""Tasks for the metrics and logging tests: they log, take secrets, or are discarded."""

import logging

from dbqueue import task, task_logger

logger = task_logger(__name__)
plain_logger = logging.getLogger("tests.testapp.plain")


@task
def chatty(label):
    # WARNING, so that qcluster shows it without a LOGGING setting for this logger.
    logger.warning("Working on %s", label)
    plain_logger.info("Plain line for %s", label)
    return label


@task
def login(username, password, *, api_token=None):
    return username


@task(discard_on=(LookupError,), max_attempts=3)
def lookup(key):
    raise KeyError(key)


@task(queue="reports")
def report(n):
    return n
