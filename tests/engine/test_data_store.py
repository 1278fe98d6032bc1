"""The converted store (one .npy per array, a manifest with a content hash, memory-mapped reads)
and the checked CSV reader, which must read files as ``engine.data.load_csv`` does."""

from __future__ import annotations

import gzip

import numpy
import pytest

from engine import data
from engine.data.convert import read_csv_checked
from engine.data.limits import Limits
from engine.data.store import is_mapped, open_store, read_manifest, write_store
from engine.errors import DataError


def test_a_store_reads_back_memory_mapped_with_its_schema(tmp_path):
    digits = data.load_builtin("digits")
    manifest = write_store(digits, tmp_path / "store")
    again = open_store(tmp_path / "store")
    assert is_mapped(again.arrays["x"]) and not again.arrays["x"].flags.writeable
    assert numpy.array_equal(again.arrays["x"], digits.arrays["x"])
    assert again.schema() == digits.schema()
    assert read_manifest(tmp_path / "store")["content_hash"] == manifest["content_hash"]
    # the same data hash the same; other data do not
    assert write_store(digits, tmp_path / "copy")["content_hash"] == manifest["content_hash"]
    changed = data.from_arrays(digits.arrays["x"] + 1, digits.arrays["y"], task="classification")
    assert write_store(changed, tmp_path / "changed")["content_hash"] != manifest["content_hash"]


def test_batches_from_a_memory_mapped_store_equal_those_of_the_arrays(tmp_path):
    digits = data.load_builtin("digits")
    write_store(digits, tmp_path)
    mapped = open_store(tmp_path)
    order = numpy.random.default_rng(0).permutation(len(digits))
    for ours, theirs in zip(data.iter_batches(mapped.arrays, 100, order=order),
                            data.iter_batches(digits.arrays, 100, order=order), strict=True):
        assert all(numpy.array_equal(ours[key], theirs[key]) for key in ours)
        assert type(ours["x"]) is numpy.ndarray and not is_mapped(ours["x"])  # a batch: an in-memory copy of its rows


def test_a_folder_without_a_store_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no converted dataset here"):
        open_store(tmp_path)


@pytest.mark.parametrize(("text", "options"), [
    ("a,b,label\n1,2,x\n3,4,y\n5,6,x\n", {}),
    ("a,b,label\n1,2,0\n3.5,4,1\n\n5,6,2\n", {}),  # a blank line, integer labels
    ("a,b,value\n1,2,0.5\n3,4,1.5\n", {"task": "regression"}),
    ("a\tb\tlabel\n1\t2\tcat\n3\t4\tdog\n", {"delimiter": "\t"}),
    (" a , b ,label\n1, 2,x\n3,4 ,y\n", {}),  # spaces around values: the precise reader's rules
])
def test_the_checked_csv_reader_agrees_with_load_csv(tmp_path, text, options):
    path = tmp_path / "table.csv"
    path.write_text(text)
    target = text.split("\n")[0].replace("\t", ",").split(",")[-1].strip()
    expected = data.load_csv(path, target=target, **options)
    checked = read_csv_checked(path, target=target, delimiter=options.get("delimiter", ","), task=options.get("task"),
                               limits=Limits(), work_folder=tmp_path)
    assert numpy.array_equal(checked.arrays["x"], expected.arrays["x"])
    assert numpy.array_equal(checked.arrays["y"], expected.arrays["y"])
    assert checked.task == expected.task and checked.label_names == expected.label_names
    assert checked.feature_names == expected.feature_names


def test_the_checked_csv_reader_reads_gzip_and_names_bad_cells(tmp_path):
    path = tmp_path / "table.csv.gz"
    path.write_bytes(gzip.compress(b"a,label\n1,0\n2,1\n"))
    assert len(read_csv_checked(path, target="label", delimiter=",", task=None, limits=Limits(),
                                work_folder=tmp_path)) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,0\n3,,1\n")
    with pytest.raises(DataError, match="bad.csv line 3, column 'b': the value is empty"):
        read_csv_checked(bad, target="label", delimiter=",", task=None, limits=Limits(), work_folder=tmp_path)
