import json
import os

import pytest
import torch
from lavis.common.registry import registry

from lavis_vila.datasets import AnnotationError, MCVideoQADataset
from lavis_vila.prompts import mc_prompt, vlep_prompt
from lavis_vila.datasets.synthetic import QUESTION_TYPES, generate
from lavis_vila.datasets.how2qa_layout import How2QADataset
from lavis_vila.datasets.mc_video_qa import NO_ANSWER
from lavis_vila.datasets.vlep_layout import VLEPDataset
from lavis_vila.processors import VideoDecodeError, VideoEvalProcessor

RECORD = {"video": "v1", "qid": "TC_v1_0", "question": "what happens?", "a0": "x", "a1": "y", "a2": "z",
          "answer": 2, "num_option": 3}


def write(tmp_path, records, name="ann.json"):
    path = tmp_path / name
    path.write_text(json.dumps(records))
    return str(path)


def test_mc_prompt_matches_the_papers_template():
    assert mc_prompt("what is it?", ["a cat", "a dog"]) == (
        "Question: what is it? Option A: a cat Option B: a dog Considering the information presented in the "
        "frame, select the correct answer from the options."
    )


def test_vlep_prompt_has_no_question():
    assert vlep_prompt("", ["He sits.", "He runs."]) == (
        "Upon observing the provided frames, what is the most probable subsequent event? "
        "Option A: He sits. Option B: He runs."
    )


WITHOUT_QUESTION = {k: v for k, v in RECORD.items() if k != "question"}


@pytest.mark.parametrize("record, message", [
    ({**RECORD, "answer": 3}, r"record 0 \(qid TC_v1_0\): answer must be an option index in 0..2, got 3"),
    ({**RECORD, "num_option": 4}, r"record 0 \(qid TC_v1_0\): num_option is 4 but option\(s\) \['a3'\] are missing"),
    (WITHOUT_QUESTION, r"record 0 \(qid TC_v1_0\): missing key\(s\) \['question'\]"),
    ({**RECORD, "start": "soon"}, r"start must be a number of seconds, got 'soon'"),
    ({**RECORD, "start": -1.0, "end": 3.0}, r"record 0 \(qid TC_v1_0\): start must not be negative, got -1.0"),
    ({**RECORD, "start": 5.0, "end": 2.0},
     r"record 0 \(qid TC_v1_0\): the window ends before it starts \(start 5.0, end 2.0\)"),
])
def test_malformed_annotation_names_the_file_and_the_record(tmp_path, record, message):
    path = write(tmp_path, [record])
    with pytest.raises(AnnotationError, match=message) as error:
        MCVideoQADataset(None, None, str(tmp_path), [path])
    assert str(error.value).startswith(path)


@pytest.mark.parametrize("start, end, frames", [(1.7, 1.7, [51] * 4), ("NaN", "NaN", [38, 116, 193, 271]),
                                                (float("nan"), float("nan"), [38, 116, 193, 271])])
def test_zero_length_and_nan_windows_load_and_decode(tmp_path, test_videos, start, end, frames):
    path = write(tmp_path, [{**RECORD, "video": "flipping_a_pancake.mkv", "start": start, "end": end}])
    processor = VideoEvalProcessor(image_size=32, num_frames=4)
    dataset = MCVideoQADataset(processor, None, str(test_videos), [path])
    assert processor(str(test_videos / "flipping_a_pancake.mkv"), start, end)[1] == frames
    assert dataset[0]["video"].shape == (4, 3, 32, 32)


def test_sample_carries_the_model_contract_keys(tmp_path, test_videos):
    path = write(tmp_path, [{**RECORD, "video": "flipping_a_pancake.mkv"}])
    dataset = MCVideoQADataset(VideoEvalProcessor(image_size=32, num_frames=4), None, str(test_videos), [path])
    sample = dataset[0]
    assert sample["video"].shape == (4, 3, 32, 32)
    assert sample["qa_output"] == "Option C" and sample["answer"] == 2 and sample["num_option"] == 3
    assert sample["question_type"] == "TC" and sample["qa_input"].startswith("Question: what happens? Option A: x")


def test_bad_video_fails_naming_file_and_qid_by_default(tmp_path, test_videos):
    path = write(tmp_path, [{**RECORD, "video": "corrupted.mp4"}])
    dataset = MCVideoQADataset(VideoEvalProcessor(image_size=32, num_frames=4), None, str(test_videos), [path])
    with pytest.raises(VideoDecodeError, match=r"corrupted\.mp4.*\[qid TC_v1_0\]"):
        dataset[0]


def test_bad_video_is_skipped_and_reported_by_the_collater_never_replaced(tmp_path, test_videos):
    records = [{**RECORD, "video": "corrupted.mp4"}, {**RECORD, "qid": "TC_v1_1", "video": "flipping_a_pancake.mkv"}]
    dataset = MCVideoQADataset(VideoEvalProcessor(image_size=32, num_frames=4), None, str(test_videos),
                               [write(tmp_path, records)], on_bad_video="skip")
    batch = dataset.collater([dataset[0], dataset[1]])
    assert batch["qid"] == ["TC_v1_1"] and batch["video"].shape == (1, 4, 3, 32, 32)
    assert len(batch["skipped"]) == 1 and "corrupted.mp4" in batch["skipped"][0]
    assert dataset.collater([dataset[0]])["qid"] == []


VLEP_RECORD = {"video": "friends_s03e09_seg02_clip_07_ep", "qid": "VLEP_20142", "a0": "He sits.", "a1": "He leaves.",
               "answer": 1, "num_option": 2}


@pytest.mark.parametrize("name, expected", [("friends_s03e09_seg02_clip_07_ep", "tvqa/friends_s03e09_seg02_clip_07.mp4"),
                                            ("-0Pg_8rD0Yw_1:36_1:47_ep", "vlep/-0Pg_8rD0Yw_1:36_1:47_ep.mp4")])
def test_a_missing_vlep_video_names_the_file_looked_for_and_the_layout_expected(name, expected, tmp_path):
    path = write(tmp_path, [{**VLEP_RECORD, "video": name}])
    dataset = VLEPDataset(VideoEvalProcessor(image_size=32, num_frames=4), None, str(tmp_path / "vlep"), [path],
                          prompt="vlep", tvqa_root=str(tmp_path / "tvqa"))
    with pytest.raises(VideoDecodeError, match="TVQA videos" if "tvqa" in expected else "VLEP's own folder") as error:
        dataset[0]
    assert str(tmp_path / expected) in str(error.value) and "[qid VLEP_20142]" in str(error.value)


def test_builders_are_registered_for_every_benchmark():
    for name in ["nextqa", "star", "how2qa", "tvqa", "vlep", "keyframe_qa"]:
        assert registry.get_builder_class(name) is not None, name


def test_synthetic_benchmark_is_deterministic_balanced_and_typed(tmp_path):
    first = generate(str(tmp_path / "a"), seed=3, num_train=24, num_val=12, frames=8, size=32)
    second = generate(str(tmp_path / "b"), seed=3, num_train=24, num_val=12, frames=8, size=32)
    train = json.loads((tmp_path / "a" / "train.json").read_text())
    assert train == json.loads((tmp_path / "b" / "train.json").read_text())
    assert (tmp_path / "a" / "videos" / "train_00005.mp4").read_bytes() == (tmp_path / "b" / "videos" / "train_00005.mp4").read_bytes()
    for qtype in QUESTION_TYPES:
        answers = [r["answer"] for r in train if r["qid"].startswith(qtype + "_")]
        assert sorted(answers) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert first != second


def test_synthetic_answer_is_visible_only_in_its_key_frames(tmp_path):
    import decord

    generate(str(tmp_path / "kq"), seed=0, num_train=3, num_val=3, frames=8, size=32)
    record = json.loads((tmp_path / "kq" / "val.json").read_text())[0]  # a Colour question
    frames = decord.VideoReader(str(tmp_path / "kq" / "videos" / f"{record['video']}.mp4")).get_batch(list(range(8)))
    frames = torch.as_tensor(frames.asnumpy() if hasattr(frames, "asnumpy") else frames).float()
    saturation = frames.max(-1).values - frames.min(-1).values  # grey noise has none
    vivid = (saturation > 100).float().mean((1, 2))
    assert [i for i in range(8) if vivid[i] > 0.1] == record["key_frames"]


def test_two_event_variant_puts_two_events_of_different_types_in_one_segment_and_balances_which_is_asked(tmp_path):
    generate(str(tmp_path / "kq"), seed=2, num_train=24, num_val=12, frames=8, event_frames=1, events=2, segments=2)
    train = json.loads((tmp_path / "kq" / "train.json").read_text())
    for record in train:
        asked, other = record["key_frames"], record["other_frames"]
        assert len({frame // 4 for frame in asked + other}) == 1  # one segment of the 8 -> 2 split
        assert not set(asked) & set(other)
        assert record["other_type"] != record["qid"].split("_")[0]
        assert (asked[0] < other[0]) == (record["asked"] == "first")
    combinations = {(r["qid"].split("_")[0], r["other_type"], r["asked"]) for r in train}
    assert len(combinations) == 3 * 2 * 2  # every asked type x other type x first/second
    assert sorted(r["asked"] for r in train) == ["first"] * 12 + ["second"] * 12
    assert json.loads((tmp_path / "kq" / "meta.json").read_text())["events"] == 2


def test_two_event_clips_show_events_in_exactly_the_asked_and_other_frames(tmp_path):
    import decord

    generate(str(tmp_path / "kq"), seed=0, num_train=3, num_val=6, frames=8, event_frames=1, events=2)
    for record in json.loads((tmp_path / "kq" / "val.json").read_text()):
        video = decord.VideoReader(str(tmp_path / "kq" / "videos" / f"{record['video']}.mp4"))
        frames = torch.as_tensor(video.get_batch(list(range(8)))).float().mean(-1)  # (8, H, W)
        roughness = (frames[:, :, 1:] - frames[:, :, :-1]).abs().mean((1, 2))  # noise frames are rough
        assert [i for i in range(8) if roughness[i] < 20] == sorted(record["key_frames"] + record["other_frames"])


def test_two_events_that_do_not_fit_in_one_segment_are_refused(tmp_path):
    with pytest.raises(ValueError, match="two events of 3 frame"):
        generate(str(tmp_path / "kq"), frames=8, event_frames=3, events=2, segments=2)


def _build_keyframe_qa(data_dir):
    from omegaconf import OmegaConf

    from lavis_vila.datasets import KeyframeQABuilder

    cfg = OmegaConf.load(KeyframeQABuilder.default_config_path()).datasets.keyframe_qa
    cfg.data_dir = data_dir
    cfg.generate.update(num_train=6, num_val=3, frames=8)
    return KeyframeQABuilder(cfg).build_datasets()


def test_keyframe_qa_builder_generates_the_benchmark_on_first_use(tmp_path):
    datasets = _build_keyframe_qa(str(tmp_path / "kq"))
    assert (len(datasets["train"]), len(datasets["val"])) == (6, 3)
    assert (tmp_path / "kq" / "meta.json").is_file()


def test_concurrent_ranks_generate_the_benchmark_once(tmp_path, monkeypatch):
    import multiprocessing

    from lavis_vila.datasets import synthetic

    calls = tmp_path / "generate_calls.txt"
    original = synthetic.generate

    def counted_generate(*args, **kwargs):  # forked ranks inherit the patch and append a line each
        with open(calls, "a") as f:
            f.write("generate\n")
        return original(*args, **kwargs)

    monkeypatch.setattr(synthetic, "generate", counted_generate)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        sizes = pool.map(_build_keyframe_qa_sizes, [str(tmp_path / "kq")] * 2)
    assert sizes == [(6, 3), (6, 3)]
    assert calls.read_text().splitlines() == ["generate"]
    assert not list(tmp_path.glob("kq.partial*"))  # the temporary build folder is gone


def _build_keyframe_qa_sizes(data_dir):
    datasets = _build_keyframe_qa(data_dir)
    return len(datasets["train"]), len(datasets["val"])


def test_console_scripts_are_installed():
    import shutil
    import sys
    from pathlib import Path

    bin_dir = Path(sys.executable).parent
    for script in ["vila-train", "vila-evaluate"]:
        assert shutil.which(script, path=str(bin_dir)), script


def test_an_empty_annotation_file_is_an_error_naming_it(tmp_path):
    path = write(tmp_path, [])
    with pytest.raises(AnnotationError, match=rf"^{path}: the annotation file holds no records"):
        MCVideoQADataset(None, None, str(tmp_path), [path])


UNLABELLED = {k: v for k, v in RECORD.items() if k != "answer"}


def test_an_unlabelled_record_loads_where_answers_are_not_needed_and_carries_no_answer(tmp_path, test_videos):
    path = write(tmp_path, [{**UNLABELLED, "video": "flipping_a_pancake.mkv"}])
    dataset = MCVideoQADataset(VideoEvalProcessor(image_size=32, num_frames=4), None, str(test_videos), [path],
                               needs_answer=False)
    sample = dataset[0]
    assert (sample["answer"], sample["qa_output"]) == (NO_ANSWER, "")
    with pytest.raises(AnnotationError, match=r"record 0 \(qid TC_v1_0\): missing key\(s\) \['answer'\]"):
        MCVideoQADataset(None, None, str(test_videos), [path])  # a training split needs its answers


def test_a_file_mixing_labelled_and_unlabelled_records_names_one_of_each(tmp_path):
    path = write(tmp_path, [RECORD, {**UNLABELLED, "qid": "TC_v1_1"}])
    with pytest.raises(AnnotationError, match="record 1 has no answer but record 0 has one"):
        MCVideoQADataset(None, None, str(tmp_path), [path], needs_answer=False)


@pytest.mark.parametrize("start, end", [("NaN", 4.0), (2.0, float("nan"))])
def test_a_window_with_one_nan_bound_is_an_error_not_the_whole_clip(tmp_path, start, end):
    path = write(tmp_path, [{**RECORD, "start": start, "end": end}])
    with pytest.raises(AnnotationError, match="is NaN but the other bound is not"):
        MCVideoQADataset(None, None, str(tmp_path), [path])


def test_a_missing_how2qa_video_names_the_file_looked_for_and_the_layout_expected(tmp_path):
    path = write(tmp_path, [{**RECORD, "qid": "HOW2QA_30351", "video": "25848"}])
    dataset = How2QADataset(VideoEvalProcessor(image_size=32, num_frames=4), None, str(tmp_path / "videos"), [path])
    with pytest.raises(VideoDecodeError, match="how2_vid_mapping.json") as error:
        dataset[0]
    assert f"looked for {tmp_path / 'videos' / '25848.mp4'}" in str(error.value) and "[qid HOW2QA_30351]" in str(error.value)


def test_a_present_how2qa_video_is_looked_up_no_more_often_than_any_other_video(tmp_path, test_videos, monkeypatch):
    path = write(tmp_path, [{**RECORD, "qid": "HOW2QA_30351", "video": "flipping_a_pancake.mkv"}])
    processor = VideoEvalProcessor(image_size=32, num_frames=4)
    lookups = []
    isfile = os.path.isfile
    monkeypatch.setattr(os.path, "isfile", lambda name: lookups.append(name) or isfile(name))
    MCVideoQADataset(processor, None, str(test_videos), [path])[0]
    plain = len(lookups)
    How2QADataset(processor, None, str(test_videos), [path])[0]
    how2qa = len(lookups) - plain
    assert how2qa == plain >= 1  # the processor's own look-up, no second one for the hint
