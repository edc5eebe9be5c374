from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"

    def ready(self) -> None:
        from jobs.selectors import sheet_job_activity
        from sheets.grid import activity_register

        # Running jobs show in the grid like collaborators, their target cells marked.
        activity_register(sheet_job_activity)
