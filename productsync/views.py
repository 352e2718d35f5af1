"""Views outside the admin: a feed file pushed by an ERP or PIM (POST with a bearer token)."""

from django.http import JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from productsync.conf import app_settings
from productsync.exceptions import ProductSyncError, QueueError
from productsync.feed_models import Feed
from productsync.services import PushTooLargeError, feed_push, feed_token_valid


def _error(status: int, message: str, **headers) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _bearer(request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _run_url(request, run_id: int) -> str:
    path = reverse("admin:productsync_syncrun_change", args=[run_id])
    base = app_settings.BASE_URL
    return base.rstrip("/") + path if base else request.build_absolute_uri(path)


@csrf_exempt  # a machine's POST with its own credentials, never a browser's session
@require_POST
def feed_push_view(request, name: str):
    """Store the body as the feed's file and queue a run of it: 202 {"run_id", "url"}; 401
    without the feed's token, 404 for an unknown or disabled feed, 413 past
    UPLOAD_MAX_BYTES, 503 when no django-q2 cluster runs."""
    feed = Feed.objects.filter(name=name, enabled=True).first()
    if feed is None:
        return _error(404, "no such feed, or it is disabled")
    if not feed_token_valid(feed, _bearer(request)):
        return _error(401, "a valid bearer token is needed", WWW_Authenticate="Bearer")
    limit = app_settings.UPLOAD_MAX_BYTES
    length = request.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit:
        return _error(413, f"the file is larger than the limit of {limit} bytes")
    try:
        run = feed_push(feed, request, request.GET.get("filename", ""))
    except PushTooLargeError as exc:
        return _error(413, str(exc))
    except QueueError as exc:
        return _error(503, str(exc))
    except ProductSyncError as exc:
        return _error(400, str(exc))
    return JsonResponse({"run_id": run.pk, "url": _run_url(request, run.pk)}, status=202)
