"""Running heads from the source's furniture (``writers/running_heads.py``)."""

from __future__ import annotations

from xparse_convert.writers.running_heads import (
    NUMPAGES,
    PAGE,
    PageFurniture,
    decide,
    page_number,
)


def test_page_number_patterns():
    assert page_number("第 3 页", page=3, declared=False).pattern == ("第 ", PAGE, " 页")
    assert page_number("- 7 -", page=7, declared=False).pattern == ("- ", PAGE, " -")
    assert page_number("3 / 12", page=3, declared=True).pattern == (PAGE, " / ", NUMPAGES)
    assert page_number("Page 5", page=1, declared=True).number == 5  # PageNumber: any number
    assert page_number("2018", page=1, declared=False) is None  # a year, not page 1
    assert page_number("Revenue 3", page=3, declared=False) is None  # words around it


def pages(*specs):
    return {n: PageFurniture(headers=list(h), footers=list(f),
                             number=page_number(str(n), page=n, declared=True) if num else None)
            for n, (h, f, num) in enumerate(specs, 1)}


def test_common_lines_and_number_make_the_running_head():
    heads = decide(pages((["Report"], ["cninf", "noise a"], True),
                         (["Report"], ["cninf", "noise b"], True),
                         (["Report"], ["cninf"], True)), [1, 2, 3])
    assert heads.header == (("Report",),)
    assert heads.footer == (("cninf",), (PAGE,))
    assert not heads.title_page and not heads.even_and_odd and heads.start == 1


def test_a_cover_without_heads_is_the_first_page():
    heads = decide(pages(([], [], False), (["Report"], [], True), (["Report"], [], True)),
                   [1, 2, 3])
    assert heads.title_page and heads.first_header == () and heads.first_footer == ()
    assert heads.header == (("Report",),) and heads.start == 1  # page 2 prints 2


def test_odd_and_even_heads():
    specs = [(["Book"] if n % 2 == 0 else ["Chapter"], [], True) for n in range(1, 7)]
    heads = decide(pages(*specs), range(1, 7))
    assert heads.even_and_odd
    assert heads.header == (("Chapter",),) and heads.even_header == (("Book",),)
