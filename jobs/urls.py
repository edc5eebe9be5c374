from django.urls import path

from jobs import views

app_name = "jobs"
urlpatterns = [
    path("", views.index, name="index"),
    path("new", views.job_new, name="new"),
    path("<int:job_id>/", views.job_detail, name="detail"),
    path("<int:job_id>/<slug:action>/", views.job_action, name="action"),
]
