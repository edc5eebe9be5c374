from django.urls import path

from sheets import views

app_name = "sheets"
urlpatterns = [
    path("", views.index, name="index"),
    path("<int:sheet_id>/", views.sheet_grid, name="grid"),
    path("<int:sheet_id>/cells/<int:row_id>/<int:column_id>/", views.sheet_cell, name="cell"),
    path("<int:sheet_id>/history/", views.sheet_history, name="history"),
    path("<int:sheet_id>/undo/", views.sheet_undo, name="undo-last"),
    path("<int:sheet_id>/history/<int:edit_id>/undo/", views.sheet_edit_undo, name="undo"),
    path("<int:sheet_id>/rows/add/", views.sheet_row_add, name="row-add"),
    path("<int:sheet_id>/rows/delete/", views.sheet_rows_delete, name="rows-delete"),
    path("<int:sheet_id>/paste/", views.sheet_paste, name="paste"),
]
