"""Views that enqueue, as a project's own would."""

from django.http import HttpRequest, JsonResponse

from dbqueue import aasync_task
from tests.testapp import semantics


async def async_signup(request: HttpRequest) -> JsonResponse:
    task_id = await aasync_task(semantics.async_add, 20, 22, group="signup")
    return JsonResponse({"task_id": task_id})
