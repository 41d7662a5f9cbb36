"""An exported file, unchanged, loads with `datasets` and trains one step of TRL's
RewardTrainer (standard format) and DPOTrainer (conversational format) on the tiny model."""
import pytest

from tests.support.api import rank_all

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
    trainer = RewardTrainer(model=model, args=RewardConfig(output_dir=str(tmp_path / "rm"), max_length=384,
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


def test_an_imported_hh_file_exports_and_trains_reward_trainer(shared_data, admin_api, make_project, tiny_model_dir,
                                                                tmp_path):
    """The shared HH-RLHF sample, imported as it is, keeps each line's winner and exports rows
    RewardTrainer trains on unchanged."""
    import orjson
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    torch.set_num_threads(1)
    data = (shared_data / "hh_rlhf_pairs_sample200.jsonl").read_bytes()
    project = make_project("HH seed")
    response = admin_api.post(f"/api/v1/projects/{project.slug}/preferences/import/?source=hh-rlhf", data=data,
                              content_type="application/x-ndjson")
    assert response.status_code == 201, response.content
    assert response.json()["pairs_created"] == 200
    lines = [orjson.loads(line) for line in data.splitlines() if line.strip()]
    exported = admin_api.get(f"/api/v1/projects/{project.slug}/export/?format=conversational")
    rows = [orjson.loads(line) for line in b"".join(exported.streaming_content).splitlines()]
    assert sorted((orjson.dumps(r["prompt"]), r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows) \
        == sorted((orjson.dumps(line["prompt"]), line["chosen"], line["rejected"]) for line in lines)
    assert {r["source"] for r in rows} == {"import:hh-rlhf"}

    path = tmp_path / "hh.jsonl"
    standard = admin_api.get(f"/api/v1/projects/{project.slug}/export/?format=standard&source=import:hh-rlhf")
    path.write_bytes(b"".join(standard.streaming_content))
    dataset = load_dataset("json", data_files=str(path), split="train")
    # The four shortest pairs: RewardTrainer leaves out pairs longer than max_length (bytes, here).
    shortest = sorted(range(len(dataset)), key=lambda i: len(dataset[i]["prompt"]) + max(
        len(dataset[i]["chosen"]), len(dataset[i]["rejected"])))[:4]
    dataset = dataset.select(shortest)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    trainer = RewardTrainer(model=model, args=RewardConfig(output_dir=str(tmp_path / "rm"), max_length=384,
                                                           **CPU_ARGS),
                            train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    assert trainer.state.global_step == 1
