"""Where VLEP's videos are, as SeViLA and the official ViLA lay them out.

Every VLEP ``vid_name`` ends in ``_ep``. A TV-show clip (``friends_s03e09_seg02_clip_07_ep``) is
read from the TVQA 3 fps videos under its TVQA name, without the suffix
(``<tvqa_videos>/friends_s03e09_seg02_clip_07.mp4``); a YouTube clip from VLEP's own folder
(``<videos>/<vid_name>.mp4``, with or without the suffix).
"""
import os
import re

from lavis_vila.datasets.mc_video_qa import VIDEO_EXTENSIONS, MCVideoQADataset
from lavis_vila.processors.video import VideoDecodeError

TV_CLIP = re.compile(r"(?:^|_)s\d{2}e\d{2}_seg\d{2}_clip_\d{2}$")
SUFFIX = "_ep"


def is_tv_clip(name: str) -> bool:
    """A TVQA clip name (``s01e02_seg02_clip_11``, ``friends_s03e09_seg02_clip_07``), suffix or not."""
    return bool(TV_CLIP.search(name.removesuffix(SUFFIX)))


class VLEPDataset(MCVideoQADataset):
    """``tvqa_root``: the TVQA 3 fps video folder the TV-show clips are read from."""

    def __init__(self, *args, tvqa_root: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.tvqa_root = tvqa_root

    def video_path(self, record) -> str:
        name = str(record["video"])
        if is_tv_clip(name):
            root, layout = self.tvqa_root, ("a TV-show clip is read from the TVQA videos (datasets.vlep.tvqa_videos) "
                                            "under its name without the '_ep' suffix")
            names = [name.removesuffix(SUFFIX)]
        else:
            root, layout = self.vis_root, ("a YouTube clip is read from VLEP's own folder "
                                           "(datasets.vlep.build_info.videos.storage), with or without '_ep'")
            names = list(dict.fromkeys([name, name.removesuffix(SUFFIX)]))
        paths = [os.path.join(root, n if n.lower().endswith(VIDEO_EXTENSIONS) else n + self.video_ext) for n in names]
        for path in paths:
            if os.path.isfile(path):
                return path
        raise VideoDecodeError(f"VLEP video '{name}' not found: looked for {' and '.join(paths)}; {layout} "
                               f"(docs/recipe.md, VLEP videos)")
