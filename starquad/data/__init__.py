"""Datasets by name and the transforms that fit them to a model."""

from starquad.data.batched import ArrayBatches, BatchAugment, batch_as_is
from starquad.data.datasets import (
    ArrayImageDataset,
    DatasetSpec,
    PointDataset,
    build_dataset,
    dataset_spec,
    list_datasets,
    stratified_subset,
)
from starquad.data.idx import read_idx, write_idx
from starquad.data.info import dataset_info, format_dataset_info
from starquad.data.transforms import ToChannels, build_transform
from starquad.errors import DatasetError

__all__ = [
    "ArrayBatches",
    "ArrayImageDataset",
    "BatchAugment",
    "DatasetError",
    "DatasetSpec",
    "PointDataset",
    "ToChannels",
    "batch_as_is",
    "build_dataset",
    "build_transform",
    "dataset_info",
    "dataset_spec",
    "format_dataset_info",
    "list_datasets",
    "read_idx",
    "stratified_subset",
    "write_idx",
]
