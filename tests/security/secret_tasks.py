"""Tasks that declare secret arguments, for the redaction tests."""

from dbqueue import task


@task(secret_args=("pin", 2))
def login(user, pin, otp, note="", **extra):
    return user


@task
def connect(host, password, options=None):
    return host


@task(max_attempts=1)
def charge(card, password, amount=0):
    raise ValueError("declined")
