from django.urls import path

from sheets import views

app_name = "sheets"
urlpatterns = [
    path("", views.index, name="index"),
    path("<int:sheet_id>/", views.sheet_grid, name="grid"),
    path("<int:sheet_id>/cells/<int:row_id>/<int:column_id>/", views.sheet_cell, name="cell"),
    path("<int:sheet_id>/history/", views.sheet_history, name="history"),
]
