"""Loaders for saved results in other libraries' shapes; each module imports its library
only when it is imported itself (optional extras: ``[langchain]``, ``[llama-index]``)."""
