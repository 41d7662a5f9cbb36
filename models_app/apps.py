from django.apps import AppConfig


class ModelsAppConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "models_app"

    def ready(self):
        from labeling.extensions import register_project_field

        from . import api, services

        # the project API's "judge": kept in models_app.ProjectJudge, shown and set with the project's settings
        register_project_field("judge", field=api.judge_field, read=services.judge_id_of,
                               write=services.set_judge, related="judge_choice")
