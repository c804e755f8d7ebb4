"""`casem import`: load a JSON export into casem with every id preserved (see docs/import-format.md)."""

from casem.app.importer.service import ImportFileError, ImportReport, import_file

__all__ = ["ImportFileError", "ImportReport", "import_file"]
