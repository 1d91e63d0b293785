"""The one error of the formula converters, apart so that they can share it without importing
each other."""


class FormulaError(ValueError):
    """A formula that cannot be converted (the writer then keeps its LaTeX as text)."""
