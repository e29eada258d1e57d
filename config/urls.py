from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.views import admin_login
from config.health import healthz

urlpatterns = [
    # Before the admin's own: its login, throttled as the API's is (API.md, Limits).
    path("admin/login/", admin_login, name="admin-login-throttled"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("accounts.urls")),
    path("api/v1/", include("rooms.urls")),
    path("api/v1/", include("messaging.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("healthz", healthz, name="healthz"),
]

# JSON, never an HTML page or a traceback, for errors Django answers itself.
handler400 = "config.exceptions.bad_request"
handler404 = "config.exceptions.not_found"
handler500 = "config.exceptions.server_error"
