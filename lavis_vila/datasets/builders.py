"""Dataset builders: ``nextqa``, ``star``, ``how2qa``, ``tvqa``, ``vlep``, ``custom`` (your own data,
``prepare custom``) and ``keyframe_qa``.

Paths come from the dataset config: ``build_info.annotations.<split>.storage`` and
``build_info.videos.storage``, each absolute or relative to ``data_root`` (itself relative to
the current directory). Unlike LAVIS's builders, nothing is downloaded or copied and LAVIS's
``cache_root`` (``/export/...``) is never used.

Dataset config keys beyond LAVIS's: ``data_root``, ``prompt`` (``mc`` or ``vlep``),
``on_bad_video_train`` (``skip``), ``on_bad_video_eval`` (``fail``), ``video_ext`` (``.mp4``);
VLEP's ``tvqa_videos``, the TVQA 3 fps folder its TV-show clips are read from (``vlep_layout``);
How2QA's video names: ``how2qa_layout``.
"""
import logging
import os

from lavis.datasets.builders.base_dataset_builder import BaseDatasetBuilder

from lavis_vila.datasets.how2qa_layout import How2QADataset
from lavis_vila.datasets.mc_video_qa import MCVideoQADataset, resolve_path
from lavis_vila.datasets.synthetic import ensure_generated
from lavis_vila.datasets.vlep_layout import VLEPDataset
from lavis_vila.registry import register_builder

DATASET_CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs", "datasets")
TRAIN_SPLITS = ("train",)


def dataset_config_paths(name: str) -> dict:
    return {"default": os.path.join(DATASET_CONFIG_DIR, name, "defaults.yaml")}


class MCVideoQABuilder(BaseDatasetBuilder):
    train_dataset_cls = MCVideoQADataset
    eval_dataset_cls = MCVideoQADataset
    splits = None  # the splits to build (the task sets what the run uses); None: every split in build_info
    labelled_splits = ()  # beyond train, the splits that must have answers (the task: validation while training)

    def build_datasets(self):
        return self.build()

    def data_root(self) -> str:
        return self.config.get("data_root", ".")

    def dataset_name(self) -> str:
        """The registered name: the folder of the builder's default config."""
        return os.path.basename(os.path.dirname(self.DATASET_CONFIG_DICT["default"]))

    def dataset_kwargs(self, root: str) -> dict:
        """Keyword arguments of this dataset's class beyond the common ones."""
        return {}

    def build(self):
        self.build_processors()
        build_info = self.config.build_info
        root = self.data_root()
        vis_root = resolve_path(build_info.videos.storage, root)
        name = self.dataset_name()
        if not os.path.isdir(vis_root):
            raise FileNotFoundError(f"video directory not found: {vis_root} (datasets.{name}.build_info.videos.storage)")
        datasets = {}
        missing = sorted(set(self.splits or ()) - set(build_info.annotations))
        if missing:
            raise KeyError(f"datasets.{name}: the run uses split(s) {missing} but build_info.annotations has only "
                           f"{sorted(build_info.annotations)}")
        for split, info in build_info.annotations.items():
            if self.splits is not None and split not in self.splits:
                continue
            is_train = split in TRAIN_SPLITS
            storage = [info.storage] if isinstance(info.storage, str) else list(info.storage)
            ann_paths = [resolve_path(path, root) for path in storage]
            for path in ann_paths:
                if not os.path.isfile(path):
                    raise FileNotFoundError(f"annotation file not found: {path} (split '{split}'; set "
                                            f"datasets.{name}.build_info.annotations.{split}.storage, or data_root)")
            dataset_cls = self.train_dataset_cls if is_train else self.eval_dataset_cls
            datasets[split] = dataset_cls(
                vis_processor=self.vis_processors["train" if is_train else "eval"],
                text_processor=self.text_processors["train" if is_train else "eval"],
                vis_root=vis_root,
                ann_paths=ann_paths,
                prompt=self.config.get("prompt", "mc"),
                on_bad_video=self.config.get("on_bad_video_train" if is_train else "on_bad_video_eval",
                                             "skip" if is_train else "fail"),
                video_ext=self.config.get("video_ext", ".mp4"),
                needs_answer=is_train or split in self.labelled_splits,  # a test split may be unlabelled
                **self.dataset_kwargs(root),
            )
            logging.info("%s %s: %d records from %s", name,
                         split, len(datasets[split]), storage)
        return datasets


@register_builder("nextqa")
class NExTQABuilder(MCVideoQABuilder):
    DATASET_CONFIG_DICT = dataset_config_paths("nextqa")


@register_builder("star")
class STARBuilder(MCVideoQABuilder):
    DATASET_CONFIG_DICT = dataset_config_paths("star")


@register_builder("how2qa")
class How2QABuilder(MCVideoQABuilder):
    DATASET_CONFIG_DICT = dataset_config_paths("how2qa")
    train_dataset_cls = How2QADataset
    eval_dataset_cls = How2QADataset


@register_builder("tvqa")
class TVQABuilder(MCVideoQABuilder):
    DATASET_CONFIG_DICT = dataset_config_paths("tvqa")


@register_builder("vlep")
class VLEPBuilder(MCVideoQABuilder):
    DATASET_CONFIG_DICT = dataset_config_paths("vlep")
    train_dataset_cls = VLEPDataset
    eval_dataset_cls = VLEPDataset

    def dataset_kwargs(self, root: str) -> dict:
        return {"tvqa_root": resolve_path(self.config.get("tvqa_videos", "../tvqa/videos"), root)}


@register_builder("custom")
class CustomBuilder(MCVideoQABuilder):
    """Your own questions, converted by ``python -m lavis_vila.tools.prepare custom`` (docs/own_data.md)."""

    DATASET_CONFIG_DICT = dataset_config_paths("custom")


@register_builder("keyframe_qa")
class KeyframeQABuilder(MCVideoQABuilder):
    """The synthetic benchmark: generated into ``data_dir`` on first use (see ``synthetic.py``)."""

    DATASET_CONFIG_DICT = dataset_config_paths("keyframe_qa")

    def data_root(self) -> str:
        generator_args = dict(self.config.get("generate", {}))
        return ensure_generated(resolve_path(self.config.data_dir, "."), **generator_args)
