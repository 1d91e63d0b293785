"""Formulas as real math: one normalisation pass for the LaTeX OCR engines write
(``latex.py``), safe MathML for HTML (``mathml.py``), Word's OMML for DOCX (``omml.py``) and an
mhchem subset for chemistry (``chem.py``).  Every public converter returns None for a formula
it cannot convert; the writer then keeps the LaTeX as text and warns."""

from .chem import ChemError, ce_to_latex, chemical_latex
from .latex import FormulaError, Normalised, normalise
from .mathml import latex_to_mathml, mathml_inline, mathml_tree
from .omml import omml_display, omml_inline, omml_math

__all__ = [
    "ChemError", "FormulaError", "Normalised", "ce_to_latex", "chemical_latex",
    "latex_to_mathml", "mathml_inline", "mathml_tree", "normalise", "omml_display",
    "omml_inline", "omml_math",
]
