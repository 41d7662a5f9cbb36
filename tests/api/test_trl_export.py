"""An exported file, unchanged, loads with `datasets` and trains one step of TRL's
RewardTrainer (standard format) and DPOTrainer (conversational format) on the tiny model."""
import pytest


from .test_export import rank_all

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

CPU_ARGS = dict(max_steps=1, per_device_train_batch_size=2, bf16=False, activation_checkpointing=False,
                dataloader_pin_memory=False, report_to="none", save_strategy="no", logging_steps=1,
                disable_tqdm=True, use_cpu=True)


@pytest.fixture
def exported(admin_api, make_project, make_tasks, annotator, tmp_path):
    project = make_project("TRL", annotators=[annotator], mode="ranking", candidates_per_prompt=3)
    make_tasks(project, 3)
    rank_all(project, annotator)

    def export(fmt):
        response = admin_api.get(f"/api/v1/projects/{project.slug}/export/?format={fmt}")
        assert response.status_code == 200
        path = tmp_path / response["Content-Disposition"].split('filename="')[1].rstrip('"')
        path.write_bytes(b"".join(response.streaming_content))
        return str(path)

    return export


def test_standard_export_trains_reward_trainer(exported, tiny_model_dir, tmp_path):
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    torch.set_num_threads(1)
    dataset = load_dataset("json", data_files=exported("standard"), split="train")
    assert {"id", "prompt", "chosen", "rejected", "margin"} <= set(dataset.column_names) and len(dataset) == 9
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    trainer = RewardTrainer(model=model, args=RewardConfig(output_dir=str(tmp_path / "rm"), max_length=128,
                                                           **CPU_ARGS),
                            train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    assert trainer.state.global_step == 1


def test_conversational_export_trains_dpo_trainer(exported, tiny_model_dir, tmp_path):
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    torch.set_num_threads(1)
    dataset = load_dataset("json", data_files=exported("conversational"), split="train")
    assert dataset[0]["chosen"][0]["role"] == "assistant"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_model_dir), ref_model=None,
                         args=DPOConfig(output_dir=str(tmp_path / "dpo"), max_length=128, **CPU_ARGS),
                         train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    assert trainer.state.global_step == 1
