"""Data: records, readers and images.

Readers turn files (caption tables such as QuIC-360, COCO captions, VQA v2 / OK-VQA, image
folders, human ratings) into plain records; images stay lazy `Image` values keyed by content hash.
"""

from vlmlab.data.images import Image, image_under_root, resolve_under_root
from vlmlab.data.records import CaptionRecord, RatingRecord, Record, VQARecord, record_from_dict, record_to_dict
from vlmlab.data.readers import (
    FORMATS,
    Dataset,
    read_caption_table,
    read_coco_captions,
    read_dataset,
    read_image_folder,
    read_ratings,
    read_records,
    read_vqa,
)
from vlmlab.data.resize import RESIZE_POLICIES, prepare_image

__all__ = [
    "FORMATS",
    "RESIZE_POLICIES",
    "CaptionRecord",
    "Dataset",
    "Image",
    "RatingRecord",
    "Record",
    "VQARecord",
    "image_under_root",
    "prepare_image",
    "read_caption_table",
    "read_coco_captions",
    "read_dataset",
    "read_image_folder",
    "read_ratings",
    "read_records",
    "read_vqa",
    "record_from_dict",
    "record_to_dict",
    "resolve_under_root",
]
