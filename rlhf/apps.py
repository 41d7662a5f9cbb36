from django.apps import AppConfig


class RlhfConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rlhf"

    def ready(self):
        from labeling.extensions import register_project_setting

        from . import config

        register_project_setting("launcher", config.check_project_launcher)
