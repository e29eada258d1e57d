from django.urls import URLPattern, URLResolver, path

from accounts.views import (
    LogoutAllView,
    LogoutView,
    MeView,
    PasswordChangeView,
    RegisterView,
    TokenObtainView,
    TokenRefreshRotateView,
    UserDetailView,
)

urlpatterns: list[URLPattern | URLResolver] = [
    path("auth/register/", RegisterView.as_view(), name="auth-register"),
    path("auth/token/", TokenObtainView.as_view(), name="auth-token"),
    path("auth/token/refresh/", TokenRefreshRotateView.as_view(), name="auth-token-refresh"),
    path("auth/logout/", LogoutView.as_view(), name="auth-logout"),
    path("auth/logout/all/", LogoutAllView.as_view(), name="auth-logout-all"),
    path("users/me/", MeView.as_view(), name="users-me"),
    path("users/me/password/", PasswordChangeView.as_view(), name="users-me-password"),
    path("users/<int:user_id>/", UserDetailView.as_view(), name="users-detail"),
]
