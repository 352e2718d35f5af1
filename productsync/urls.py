"""productsync's URLs outside the admin; a project includes them under a prefix of its own:
path("productsync/", include("productsync.urls"))."""

from django.urls import path

from productsync.views import feed_push_view

app_name = "productsync"

urlpatterns = [
    path("feeds/<str:name>/push", feed_push_view, name="feed_push"),
]
