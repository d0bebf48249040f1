"""CSV downloads of figures (dashboard panels, the stats API): one writer, formulas neutralised."""

import csv

from django.http import HttpResponse

from beacons.transfer.formats import cell_neutralise


def csv_response(*, rows, filename: str) -> HttpResponse:
    """``rows`` (a header row first) as a CSV attachment; text cells a spreadsheet would run as a
    formula get a leading ``'`` (``cell_neutralise``)."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    writer = csv.writer(response)
    for row in rows:
        writer.writerow([cell_neutralise(value) if isinstance(value, str) else value for value in row])
    return response
