from django.urls import path

from chat import views

app_name = "chat"
urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.session_create, name="create"),
    path("<int:session_id>/", views.session_detail, name="session"),
    path("<int:session_id>/rename/", views.session_rename, name="rename"),
    path("<int:session_id>/delete/", views.session_delete, name="delete"),
    path("<int:session_id>/messages/", views.message_create, name="send"),
    path("<int:session_id>/messages/<int:message_id>/", views.message_detail, name="message"),
    path("<int:session_id>/messages/<int:message_id>/stop/", views.message_stop, name="stop"),
    path("<int:session_id>/messages/<int:message_id>/retry/", views.message_retry, name="retry"),
    path(
        "<int:session_id>/changes/<int:change_set_id>/apply/",
        views.change_set_apply,
        name="apply",
    ),
    path(
        "<int:session_id>/changes/<int:change_set_id>/discard/",
        views.change_set_discard,
        name="discard",
    ),
]
