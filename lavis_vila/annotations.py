"""Moved to ``lavis_vila.datasets.annotations``; this re-export is only for ``datasets/__init__`` until
it imports from there (then delete this file)."""
from lavis_vila.datasets.annotations import AnnotationError, load_annotations, read_json_list, validate_record  # noqa: F401
