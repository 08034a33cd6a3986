"""Paper work: sheet codes (``codes``), printable worksheets (``worksheet``), scans read back
(``scans``), ink on a marked page (``ink``) and voice comments (``voice``).

A pure library: no HTTP, no event store. Each module imports its own image, PDF or audio
library, so importing this package costs nothing.
"""
