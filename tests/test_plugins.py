"""Third-party writers: registered under the ``xparse_convert.writers`` entry-point group,
they work in the CLI and the library like the built-ins."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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
