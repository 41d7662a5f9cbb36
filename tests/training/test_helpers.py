"""The scripts' helpers in-process: data file checks, finding the checkpoint to resume from, the
progress callback."""
import json
from types import SimpleNamespace

import pytest

from rlhf.training import common
from rlhf.training.progress import ProgressCallback, ProgressWriter


def _file(tmp_path, *lines):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


PAIR = json.dumps({"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "a"}],
                   "rejected": [{"role": "assistant", "content": "b"}]})


def _read(path):
    return common.check_and_read(path, required=("chosen", "rejected"), texts=("prompt", "chosen", "rejected"),
                                 what="preference")


def test_it_reads_rows_and_skips_blank_lines(tmp_path):
    assert len(_read(_file(tmp_path, PAIR, "", PAIR))) == 2


@pytest.mark.parametrize("bad, message", [
    ("{\"prompt\": [oops", "line 2: not valid JSON"),
    ("[1, 2]", "line 2: expected a JSON object, got list"),
    (json.dumps({"prompt": "q", "chosen": "a"}), "line 2: missing rejected"),
    (json.dumps({"prompt": [{"role": "user", "content": "q"}], "chosen": 3, "rejected": "b"}),
     "line 2: chosen must be a string or"),
    (json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}), "line 2: prompt is standard but earlier rows"),
])
def test_a_bad_row_is_named_by_file_line_and_cause(tmp_path, bad, message):
    path = _file(tmp_path, PAIR, bad)
    with pytest.raises(common.DataError, match=f"{path} {message}"):
        _read(path)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(common.DataError, match="does not exist"):
        _read(str(tmp_path / "nope.jsonl"))


def test_an_empty_file_is_refused(tmp_path):
    with pytest.raises(common.DataError, match="has no rows"):
        _read(_file(tmp_path, ""))


def test_the_last_complete_checkpoint_skips_one_without_trainer_state(tmp_path):
    for step, complete in ((5, True), (10, True), (15, False)):
        (tmp_path / f"checkpoint-{step}").mkdir()
        if complete:
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-last").mkdir()
    assert common.last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    assert common.last_complete_checkpoint(tmp_path / "absent") is None


def _state(step, total=10, main=True):
    return SimpleNamespace(global_step=step, max_steps=total, is_world_process_zero=main)


def test_the_progress_callback_writes_begin_steps_logs_and_end(tmp_path):
    path = tmp_path / "progress.jsonl"
    callback = ProgressCallback(str(path), every_s=0)
    callback.on_train_begin(None, _state(0), None)
    for step in (1, 2):
        callback.on_step_end(None, _state(step), None)
    callback.on_log(None, _state(2), None, logs={"loss": 0.5, "nan": float("nan")})
    callback.on_train_end(None, _state(10), None)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["begin", "step", "step", "log", "end"]
    assert lines[3]["metrics"] == {"loss": 0.5, "nan": None}
    assert lines[-1]["step"] == lines[-1]["total"] == 10 and isinstance(lines[0]["time"], float)


def test_the_progress_callback_throttles_steps_but_always_writes_the_last(tmp_path):
    path = tmp_path / "progress.jsonl"
    callback = ProgressCallback(str(path), every_s=3600)
    for step in range(1, 11):
        callback.on_step_end(None, _state(step), None)
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 10]


def test_only_the_main_process_writes_progress(tmp_path):
    path = tmp_path / "progress.jsonl"
    callback = ProgressCallback(str(path), every_s=0)
    callback.on_train_begin(None, _state(0, main=False), None)
    callback.on_step_end(None, _state(1, main=False), None)
    assert not path.exists()


def test_a_writer_without_a_path_writes_nothing(tmp_path):
    ProgressWriter(None).write("begin", 0, 1)
    assert not list(tmp_path.iterdir())


def test_a_disabled_writer_writes_nothing(tmp_path):
    ProgressWriter(str(tmp_path / "p.jsonl"), enabled=False).message("hello")
    assert not (tmp_path / "p.jsonl").exists()
