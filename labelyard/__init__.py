"""labelyard: a self-hostable data-annotation platform server."""

__version__ = "0.1.0"
