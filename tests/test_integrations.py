"""The LangChain loader and the LlamaIndex reader, on saved results, offline."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import oracle
import pytest
from conftest import ROOT, SAMPLE

from xparse_convert import XParseError, iter_chunks


def scalar_or_list(value) -> bool:
    scalar = (str, int, float, bool)
    return isinstance(value, scalar) or (
        isinstance(value, list) and value and all(isinstance(v, scalar) for v in value))


@pytest.fixture
def results(tmp_path):
    """A folder of two results (the sample twice, under two names)."""
    folder = tmp_path / "results"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.json").write_bytes(SAMPLE.read_bytes())
    (folder / "sub" / "b.json").write_bytes(SAMPLE.read_bytes())
    return folder


def text_element_ids(path) -> set[str]:
    return {s.id for s in oracle.sources(path)
            if s.type not in oracle.FURNITURE and s.text.strip() and s.type != "PageBreak"}


def test_langchain_loader_gives_chunk_documents_lazily(results, tmp_path):
    pytest.importorskip("langchain_core")
    from langchain_core.document_loaders import BaseLoader
    from langchain_core.documents import Document

    from xparse_convert.integrations.langchain import XParseResultLoader

    loader = XParseResultLoader(results, options={"chunk_size": 500})
    assert isinstance(loader, BaseLoader)
    assert inspect.isgenerator(loader.lazy_load())
    docs = loader.load()
    records = list(iter_chunks(SAMPLE, options={"chunk_size": 500}))
    assert len(docs) == 2 * len(records)
    assert [d.metadata["source"] for d in docs] == \
        [str(results / "a.json")] * len(records) + [str(results / "sub" / "b.json")] * len(records)
    for doc, record in zip(docs, records * 2):
        assert isinstance(doc, Document)
        assert doc.page_content == record["text"]
        assert doc.id == record["chunk_id"]
        assert all(scalar_or_list(v) for v in doc.metadata.values()), doc.metadata
        assert json.loads(doc.metadata["boxes"]) == record["boxes"]
        assert doc.metadata["pages"] == record["pages"]
        assert doc.metadata["element_ids"] == record["element_ids"]
    # a glob; and streaming: the first file's documents come before the second is read
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "1.json").write_bytes(SAMPLE.read_bytes())
    (tmp_path / "broken" / "2.json").write_text('{"code": 200, "data": {"elements": [')
    stream = XParseResultLoader(str(tmp_path / "broken" / "*.json")).lazy_load()
    first = next(stream)
    assert first.metadata["source"].endswith("1.json")
    with pytest.raises(XParseError) as error:
        list(stream)
    assert error.value.source.endswith("2.json")


def test_result_paths_leave_hidden_folders_out_and_a_glob_of_folders_is_an_error(results):
    from xparse_convert.pipelines import result_paths

    (results / ".cache").mkdir()
    (results / ".cache" / "c.json").write_text("{}")
    (results / ".d.json").write_text("{}")
    assert list(result_paths(results)) == [results / "a.json", results / "sub" / "b.json"]
    with pytest.raises(XParseError, match="folders only"):
        list(result_paths(str(results / "su*")))
    with pytest.raises(XParseError, match="no such file"):
        list(result_paths(str(results / "nothing*")))


def test_langchain_elements_mode_one_document_per_element(tmp_path):
    pytest.importorskip("langchain_core")
    from xparse_convert.integrations.langchain import XParseResultLoader

    docs = XParseResultLoader(SAMPLE, mode="elements").load()
    held = [i for d in docs for i in d.metadata["element_ids"]]
    assert len(held) == len(set(held))
    assert set(held) >= text_element_ids(SAMPLE)
    tables = [d for d in docs if "Table" in d.metadata["types"]]
    assert all(not d.metadata["oversize"] for d in docs)
    assert len(tables) == len(oracle.expected(SAMPLE).tables)
    with pytest.raises(Exception, match="mode"):
        XParseResultLoader(SAMPLE, mode="pages").load()


PROTOCOL = """
import sys, types
# the part of llama-index-core's interface the reader uses: BaseReader (lazy_load_data,
# load_data) and Document(text=, metadata=, id_=, excluded_*_metadata_keys=)
core = types.ModuleType("llama_index.core")
readers = types.ModuleType("llama_index.core.readers")
base = types.ModuleType("llama_index.core.readers.base")
schema = types.ModuleType("llama_index.core.schema")
class BaseReader:
    def lazy_load_data(self, *args, **kwargs):
        raise NotImplementedError
    def load_data(self, *args, **kwargs):
        return list(self.lazy_load_data(*args, **kwargs))
class Document:
    def __init__(self, *, text, metadata, id_, excluded_embed_metadata_keys,
                 excluded_llm_metadata_keys):
        self.text, self.metadata, self.id_ = text, metadata, id_
        self.excluded = excluded_embed_metadata_keys
base.BaseReader = BaseReader
schema.Document = Document
sys.modules.update({"llama_index": types.ModuleType("llama_index"), "llama_index.core": core,
                    "llama_index.core.readers": readers,
                    "llama_index.core.readers.base": base, "llama_index.core.schema": schema})
"""


def check_llama_documents(docs, sample) -> None:
    records = list(iter_chunks(sample))
    assert [d.text for d in docs] == [r["text"] for r in records]
    assert [d.id_ for d in docs] == [r["chunk_id"] for r in records]
    for doc in docs:
        assert all(scalar_or_list(v) for v in doc.metadata.values())
        assert "boxes" in doc.excluded_embed_metadata_keys if hasattr(
            doc, "excluded_embed_metadata_keys") else "boxes" in doc.excluded


def test_llama_index_reader_with_the_real_library():
    from llama_index.core.readers.base import BaseReader  # in the test extra

    from xparse_convert.integrations.llama_index import XParseResultReader

    reader = XParseResultReader()
    assert isinstance(reader, BaseReader)
    assert inspect.isgenerator(reader.lazy_load_data(SAMPLE))
    check_llama_documents(reader.load_data(SAMPLE), SAMPLE)


def test_llama_index_reader_against_the_protocol_it_uses():
    """The part of llama-index-core's interface the reader uses is all it needs: the reader
    works against that alone (an old or trimmed install)."""
    code = PROTOCOL + f"""
import inspect
sys.path.insert(0, {str(ROOT / "tests")!r})
from test_integrations import check_llama_documents
from xparse_convert.integrations.llama_index import XParseResultReader
reader = XParseResultReader()
assert inspect.isgenerator(reader.lazy_load_data({str(SAMPLE)!r}))
check_llama_documents(reader.load_data({str(SAMPLE)!r}), {str(SAMPLE)!r})
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.strip() == "ok", result.stderr


def test_the_loaders_say_which_extra_they_need():
    code = ("import sys; sys.modules['llama_index'] = None; sys.modules['langchain_core'] = None\n"
            "for name in ('langchain', 'llama_index'):\n"
            "    try:\n"
            "        __import__('xparse_convert.integrations.' + name)\n"
            "    except ImportError as exc:\n"
            "        print(exc)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert "xparse-convert[langchain]" in result.stdout
    assert "xparse-convert[llama-index]" in result.stdout
