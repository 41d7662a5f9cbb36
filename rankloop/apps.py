from django.apps import AppConfig


class RankloopConfig(AppConfig):
    """The project package as an app, for what belongs to no app: the account signals."""

    name = "rankloop"
    verbose_name = "rankloop"

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save, pre_save

        from . import account_views

        User = get_user_model()
        pre_save.connect(account_views.note_credential_change, sender=User, dispatch_uid="rankloop-credentials")
        post_save.connect(account_views.revoke_tokens_after_credential_change, sender=User,
                          dispatch_uid="rankloop-credentials")
