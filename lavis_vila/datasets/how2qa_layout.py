"""Where How2QA's videos are, as SeViLA and the official ViLA name them.

VALUE's release (``how2qa_val_release.jsonl``, what SeViLA and ViLA read) names each question's
video by VALUE's own id (``vid_name``, mostly a number: ``25848``); VALUE's ``how2_vid_mapping.json``
maps it to ``<YouTube id>_<start>_<end>``, the 60-second segment of the HowTo100M video it was cut
from, and ``ts`` is in seconds of that segment. SeViLA reads ``<clips>/<vid_name>.mp4``, the segment
cut out and named by that id; so do we: ``<videos>/<vid_name>.mp4``. The HERO-era CSV names the
YouTube video itself, with the window in seconds of the whole video: ``<videos>/<YouTube id>.mp4``.
"""
import os

from lavis_vila.datasets.mc_video_qa import MCVideoQADataset
from lavis_vila.processors.video import VideoDecodeError

LAYOUT = ("How2QA videos are the 60-second segments named by the release's vid_name (VALUE's id; "
          "how2_vid_mapping.json gives each one's <YouTube id>_<start>_<end> to cut it from the HowTo100M video), "
          "or, for the HERO-era CSV, the whole HowTo100M video named by its YouTube id "
          "(docs/recipe.md, How2QA videos)")


class How2QADataset(MCVideoQADataset):
    def read_video(self, record):
        """As the base reads it; a video that is not there names the layout expected (a stat only on error)."""
        try:
            return super().read_video(record)
        except VideoDecodeError as error:
            path = self.video_path(record)
            if os.path.isfile(path):
                raise
            raise VideoDecodeError(f"How2QA video '{record['video']}' not found: looked for {path}; {LAYOUT}") from error
