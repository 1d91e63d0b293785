"""Third-party writers: registered under the ``xparse_convert.writers`` entry-point group,
they work in the CLI and the library like the built-ins."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from conftest import SAMPLE

PLUGIN = '''
from xparse_convert import Writer


class TitleLister(Writer):
    """Writes one line per heading: the smallest useful plug-in."""

    name = "titles"
    extension = "txt"
    description = "the headings, one a line"

    def title(self, el):
        self.out.write("  " * (el.heading_level - 1) + el.text + "\\n")
'''


def make_plugin(folder):
    (folder / "titles_plugin.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    dist = folder / "titles_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: titles-plugin\nVersion: 1.0\n",
                                   encoding="utf-8")
    (dist / "entry_points.txt").write_text(
        "[xparse_convert.writers]\ntitles = titles_plugin:TitleLister\n", encoding="utf-8")


def run_with_plugin(folder, code):
    env_code = f"import sys; sys.path.insert(0, {str(folder)!r}); " + code
    return subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True,
                          timeout=60)


def test_plugin_is_listed_and_converts(tmp_path, sample_data):
    make_plugin(tmp_path)
    out = tmp_path / "out"
    proc = run_with_plugin(tmp_path, "from xparse_convert.cli import main; "
                                     "sys.exit(main(['--list-formats']))")
    assert proc.returncode == 0, proc.stderr
    assert any(line.split()[0] == "titles" for line in proc.stdout.splitlines())
    proc = run_with_plugin(tmp_path, "from xparse_convert.cli import main; "
                           f"sys.exit(main([{str(SAMPLE)!r}, '--to', 'titles,md', '-o', "
                           f"{str(out)!r}]))")
    assert proc.returncode == 0, proc.stderr
    lines = (out / "report.txt").read_text(encoding="utf-8").splitlines()
    titles = [e for e in sample_data["data"]["elements"] if e["type"] == "Title"]
    assert [line.strip() for line in lines] == [t["text"] for t in titles]
    assert (out / "report.md").is_file()


def test_plugin_through_the_library(tmp_path):
    make_plugin(tmp_path)
    proc = run_with_plugin(tmp_path, "from xparse_convert import convert; "
                           f"r = convert({str(SAMPLE)!r}, 'titles', {str(tmp_path)!r}); "
                           "print(r.outputs['titles'])")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("report.txt")


def test_without_the_plugin_the_format_is_unknown(tmp_path):
    proc = run_with_plugin(tmp_path, "from xparse_convert.cli import main; "
                           f"sys.exit(main([{str(SAMPLE)!r}, '--to', 'titles']))")
    assert proc.returncode == 2 and "unknown format 'titles'" in proc.stderr


@pytest.mark.parametrize("kind", ["Begin", "Write", "End", "Abort", "Clean", "__init__",
                                  "_emit", "default", "title", "Title "])
def test_element_types_are_data(write_json, tmp_path, kind):
    from conftest import element, envelope

    from xparse_convert import convert

    doc = envelope([element("a", text="before"), element("b", kind, "hostile type text"),
                    element("c", text="after")])
    convert(write_json(doc), ["docx", "html", "md", "xlsx", "jsonl"], tmp_path / "o")
    import docx

    texts = [p.text for p in docx.Document(tmp_path / "o" / "input.docx").paragraphs]
    assert texts[:3] == ["before", "hostile type text", "after"]
    md = (tmp_path / "o" / "input.md").read_text(encoding="utf-8")
    assert md == "before\n\nhostile type text\n\nafter\n"


def test_gui_image_renders_its_picture(write_json, tmp_path):
    import base64
    import io

    from conftest import envelope
    from PIL import Image

    from xparse_convert import convert

    png = io.BytesIO()
    Image.new("RGB", (3, 3), "red").save(png, format="PNG")
    doc = envelope([{"element_id": "g", "type": "image", "text": "", "page_number": 1,
                     "image_data": {"base64": base64.b64encode(png.getvalue()).decode()}},
                    {"element_id": "b", "type": "button", "text": "OK", "page_number": 1}])
    convert(write_json(doc), ["html"], tmp_path / "o")
    page = (tmp_path / "o" / "input.html").read_text(encoding="utf-8")
    assert 'src="data:image/png;base64,' in page and ">OK</p>" in page


def test_undeclared_plugin_methods_are_named():
    from xparse_convert import Writer

    class Widgets(Writer):
        name = "widgets"
        types = {"button": "button"}

        def button(self, el):
            pass

        def checkbox(self, el):  # never called: "checkbox" is not declared
            pass

        def helper(self, a, b):  # not an element method
            pass

    assert Widgets.undeclared_methods() == ["checkbox"]
