import pytest

from dbqueue import exceptions, registry
from tests.testapp import tasks


def test_decorated_task_resolves_by_function_and_by_path():
    assert registry.resolve(tasks.add) is tasks.add
    assert registry.resolve("tests.testapp.tasks.add") is tasks.add
    assert tasks.add(2, 3) == 5


def test_decorator_keeps_defaults():
    assert tasks.send_email.defaults == {
        "queue": "emails",
        "priority": 5,
        "max_attempts": 2,
    }
    assert tasks.send_email.__name__ == "send_email"


def test_unknown_path_suggests_the_closest_task():
    with pytest.raises(exceptions.TaskNotFound) as info:
        registry.resolve("tests.testapp.tasks.sned_email")
    message = str(info.value)
    assert "No task is registered as 'tests.testapp.tasks.sned_email'." in message
    assert "Did you mean 'tests.testapp.tasks.send_email'?" in message


def test_undecorated_function_is_refused_with_the_fix():
    with pytest.raises(
        exceptions.TaskNotFound, match="is a function but not a registered task"
    ):
        registry.resolve("tests.testapp.tasks.plain_function")
    with pytest.raises(exceptions.TaskNotFound, match=r"@dbqueue\.task"):
        registry.resolve(tasks.plain_function)


@pytest.mark.parametrize(
    "path",
    [
        "os.system",
        "subprocess.run",
        "builtins.exec",
        "django.core.management.call_command",
    ],
)
def test_dangerous_callables_are_not_tasks(path):
    with pytest.raises(exceptions.TaskNotFound):
        registry.resolve(path)


def test_non_callable_path_is_refused():
    with pytest.raises(exceptions.TaskNotFound, match="is a int, not a function"):
        registry.resolve("tests.testapp.tasks.NOT_A_FUNCTION")


def test_lambda_cannot_be_a_task():
    with pytest.raises(TypeError, match="define the function at module level"):
        registry.resolve(lambda: None)


def test_plain_callable_listed_in_settings_is_allowed(settings):
    settings.DBQUEUE_TASKS = ["django.core.mail.send_mail"]
    found = registry.resolve("django.core.mail.send_mail")
    assert found.path == "django.core.mail.send_mail"
    assert "django.core.mail.send_mail" in registry.registered_paths()


def test_a_listed_callable_is_one_task_until_a_setting_changes(settings):
    settings.DBQUEUE_TASKS = ["django.core.mail.send_mail"]
    first = registry.resolve("django.core.mail.send_mail")
    assert registry.resolve("django.core.mail.send_mail") is first
    settings.DBQUEUE_TASKS = ["django.core.mail.send_mail", "os.getcwd"]
    assert registry.resolve("django.core.mail.send_mail") is not first


def test_listed_path_that_does_not_import_is_reported(settings):
    settings.DBQUEUE_TASKS = ["nowhere.at_all"]
    with pytest.raises(
        exceptions.TaskNotFound, match="listed in DBQUEUE_TASKS but cannot be imported"
    ):
        registry.resolve("nowhere.at_all")
