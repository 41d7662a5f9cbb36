"""The launch form: algorithm, hyper-parameters (JSON, the training knobs on each stage's
allow-list in rlhf/config.py), data filters and the automatic deploy rule. Validation of the
values themselves is the service's job."""
import json

from django import forms

from .models import Round

HYPERPARAMETER_HELP = (
    'JSON by stage, e.g. {"reward": {"lora": true, "max_steps": 50}, "policy": {"learning_rate": 1e-6}, '
    '"sft": {"enabled": true}, "eval": {"prompts": 32}}. Training knobs only (learning rate, epochs, steps, '
    'batch sizes, warmup, scheduler, lengths, beta/KL, generations, LoRA, seed, save/logging steps…); paths, '
    'credentials, remote code and the Hub are the platform\'s.'
)


class LaunchRoundForm(forms.Form):
    algorithm = forms.ChoiceField(choices=Round.Algorithm.choices, initial=Round.Algorithm.PPO)
    hyperparameters = forms.CharField(widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
                                      required=False, help_text=HYPERPARAMETER_HELP)
    launcher = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}), required=False,
        label="Launcher settings",
        help_text='JSON over the project\'s accelerate settings, e.g. {"num_processes": 2, "mixed_precision": '
                  '"bf16"}: num_processes, num_machines, machine_rank, main_process_ip, main_process_port, '
                  'mixed_precision, config_file (DeepSpeed/FSDP, by name), use_vllm. Empty: the project\'s.')
    min_agreement = forms.FloatField(required=False, min_value=0, max_value=1,
                                     help_text="Only pairs where at least this share of annotators agreed.")
    include_ties = forms.BooleanField(required=False, help_text="Keep tied pairs (off: ties are left out).")
    min_win_rate = forms.FloatField(required=False, min_value=0, max_value=1,
                                    help_text="Deploy automatically when the new policy wins this often.")
    max_kl = forms.FloatField(required=False, min_value=0, label="Max KL",
                              help_text="…and stays this close to the old one.")

    def clean_hyperparameters(self):
        return self._json_object("hyperparameters", "An object by stage, e.g. {\"policy\": {\"max_steps\": 10}}.")

    def clean_launcher(self):
        return self._json_object("launcher", "An object of settings, e.g. {\"num_processes\": 2}.")

    def _json_object(self, name, example):
        text = self.cleaned_data[name].strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError(example)
        return value

    def data_filters(self):
        filters = {"include_ties": self.cleaned_data["include_ties"]}
        if self.cleaned_data.get("min_agreement") is not None:
            filters["min_agreement"] = self.cleaned_data["min_agreement"]
        return filters

    def deploy_rule(self):
        names = ("min_win_rate", "max_kl")
        return {n: self.cleaned_data[n] for n in names if self.cleaned_data.get(n) is not None}


class GenerateForm(forms.Form):
    prompts = forms.IntegerField(min_value=1, max_value=10000, initial=20,
                                 help_text="How many prompts (not answered by the deployed policy yet).")
