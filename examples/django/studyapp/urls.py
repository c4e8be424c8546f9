from django.urls import path

from . import views

urlpatterns = [
    path("hello/", views.hello),
    path("write/", views.write),
    path("write_after_read/", views.write_after_read),
    path("read/", views.read),
    path("counter/<slug:slug>/", views.counter),
    path("config/", views.config),
]
