"""The training stages as standalone scripts: TRL's config dataclasses + ModelConfig + the script's
own arguments, parsed by TrlParser from a YAML file (--config) and flags; data from JSON Lines
files; progress to a JSON Lines file; no Django and nothing else of the platform. Rerun any stage
by hand with the files a run recorded and get the same model:

    accelerate launch --quiet --num_processes 1 rlhf/training/reward.py --config run-17/config.yaml

(from the repository root, or anywhere with rankloop installed; --quiet keeps the script's own
error as the last lines of stderr). Every key of the YAML is a field of one of the dataclasses
(an unknown key is an error); a flag overrides the file, e.g. --learning_rate 1e-5.

| script | trainer | data (train_file, ...) | output |
|---|---|---|---|
| reward.py | trl.RewardTrainer | preference rows; eval_file: held-out pairs | reward model (sequence classifier, 1 score) |
| sft.py | trl.SFTTrainer | {"messages": [...]} demonstrations | policy |
| dpo.py | trl.DPOTrainer | preference rows | policy |
| ppo.py | trl.experimental.ppo.PPOTrainer | {"prompt": [messages]}; reward_model_path | policy (cannot resume) |
| grpo.py | trl.GRPOTrainer | {"prompt": [messages]}; reward_model_path | policy |
| rloo.py | trl.RLOOTrainer | {"prompt": [messages]}; reward_model_path | policy |
| evaluate.py | none (PyTorch) | prompts_file, pairs_file; old/new policy, reward model, judge | evaluation JSON |

Preference rows: {"id", "prompt": [messages], "chosen": [assistant message], "rejected": [...],
"margin"} (TRL's conversational format) or with strings (standard format). The model starts from
model_name_or_path (a directory); the reward model shares the policy's tokenizer.

Each training script writes into output_dir: checkpoint-N folders, metrics.json (what the trainer
reported: train_loss, final_loss, global_step, world_size, and for the reward model the exact
held-out accuracy: eval_accuracy, eval_pairs, eval_correct; null when there were no held-out
pairs), and at the very end final/ (full weights, LoRA merged, in the dtype the starting model was
stored in, with the tokenizer; written as final.tmp and renamed, so final/ is always complete).
A rerun resumes from the last complete checkpoint in output_dir (resume: true, the default; a
checkpoint without trainer_state.json is skipped); resume: false starts over and removes the old
checkpoints. progress_file gets {"time", "event": begin|step|log|end|error, "step", "total",
"metrics"?, "log"?} lines (see progress.py).

Settings a CPU needs in every config: bf16: false, activation_checkpointing: false,
dataloader_pin_memory: false, report_to: none; ModelConfig's dtype (float32, the default) is what
the weights train in. LoRA: use_peft: true with lora_r, lora_alpha, lora_dropout,
lora_target_modules (e.g. all-linear).

Several processes, data parallel (each trains on its own shard of every global batch):

    accelerate launch --quiet --multi_gpu --num_processes 2 rlhf/training/dpo.py --config c.yaml --use_cpu true

On GPUs --multi_gpu alone. On a CPU, accelerate's --cpu flag launches ONE process whatever
--num_processes says, so use --multi_gpu (torchrun starts the processes) with use_cpu: true in the
config (or ACCELERATE_USE_CPU=true), which makes them join one gloo group; a script refuses to run
when processes were launched but did not join. Give each concurrent run its own
--main_process_port.
"""  # noqa: E501 -- a row of the Markdown table above cannot wrap
