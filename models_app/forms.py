"""Forms for the models pages: validation itself lives in decoding / moderation / services."""
from django import forms

from labeling.models import Project
from labeling.moderation import ModerationConfigError, clean_rules

from .decoding import DEFAULTS, STRATEGIES, DecodingConfigError, validate_decoding
from .models import ModelVersion


def _lines(text):
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class DecodingFields(forms.Form):
    """The decoding settings as form fields; blank means the default."""

    strategy = forms.ChoiceField(choices=[(s, s) for s in STRATEGIES], initial=DEFAULTS["strategy"])
    max_new_tokens = forms.IntegerField(required=False, help_text=f"default {DEFAULTS['max_new_tokens']}")
    temperature = forms.FloatField(required=False, help_text=f"sampling; default {DEFAULTS['temperature']}")
    top_k = forms.IntegerField(required=False, help_text=f"sampling; 0 is off; default {DEFAULTS['top_k']}")
    top_p = forms.FloatField(required=False, help_text=f"sampling; in (0, 1]; default {DEFAULTS['top_p']}")
    num_beams = forms.IntegerField(required=False, help_text=f"beam search; default {DEFAULTS['num_beams']}")
    repetition_penalty = forms.FloatField(required=False,
                                          help_text=f"1.0 is off; default {DEFAULTS['repetition_penalty']}")
    seed = forms.IntegerField(required=False, help_text="blank: a fresh seed each run (recorded on candidates)")

    decoding_keys = tuple(DEFAULTS)

    def decoding(self):
        return {k: self.cleaned_data.get(k) for k in self.decoding_keys if self.cleaned_data.get(k) is not None}

    def clean(self):
        cleaned = super().clean()
        if not self.errors:
            try:
                validate_decoding(self.decoding())
            except DecodingConfigError as error:
                field = next((k for k in self.decoding_keys if str(error).startswith(k)), None)
                self.add_error(field, str(error))
        return cleaned


class GenerationSettingsForm(DecodingFields):
    blocklist = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                help_text="Words or phrases, one per line; matched as whole words, any case.")
    patterns = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                               help_text="Regular expressions, one per line; matched case-insensitively.")
    flagged_candidates = forms.ChoiceField(choices=Project.FlaggedCandidates.choices)
    long_prompts = forms.ChoiceField(choices=Project.LongPrompts.choices)

    @classmethod
    def for_project(cls, project, data=None):
        initial = {
            **(project.decoding_config or {}),
            "blocklist": "\n".join(project.moderation_blocklist or []),
            "patterns": "\n".join(project.moderation_patterns or []),
            "flagged_candidates": project.flagged_candidates,
            "long_prompts": project.long_prompts,
        }
        initial.setdefault("strategy", DEFAULTS["strategy"])
        return cls(data, initial=initial)

    def clean(self):
        cleaned = super().clean()
        try:
            clean_rules(_lines(cleaned.get("blocklist")), _lines(cleaned.get("patterns")))
        except ModerationConfigError as error:
            self.add_error("patterns", str(error))
        return cleaned

    def settings_kwargs(self):
        return {
            "decoding": self.decoding(),
            "blocklist": _lines(self.cleaned_data["blocklist"]),
            "patterns": _lines(self.cleaned_data["patterns"]),
            "flagged_candidates": self.cleaned_data["flagged_candidates"],
            "long_prompts": self.cleaned_data["long_prompts"],
        }


class PlaygroundForm(DecodingFields):
    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}))
    versions = forms.ModelMultipleChoiceField(
        queryset=ModelVersion.objects.filter(kind="policy", status="ready"), widget=forms.CheckboxSelectMultiple,
    )
    answers = forms.IntegerField(min_value=1, max_value=4, initial=1, help_text="answers per version")
    field_order = ["prompt", "versions", "answers"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["max_new_tokens"].initial = 64


class DeployForm(forms.Form):
    version = forms.ModelChoiceField(queryset=ModelVersion.objects.filter(kind="policy", status="ready"))
    note = forms.CharField(required=False, max_length=500)
