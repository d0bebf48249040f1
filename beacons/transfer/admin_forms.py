"""The admin's import / export: upload and confirm forms (size-bounded, signed) and the
mixins that stream exports and offer example files, for counts and beacon types; and the
upload of another analytics tool's export (``beacons.transfer.peers``) beside the counts' import."""

import io
import os
from collections.abc import Iterator

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from import_export.admin import ImportExportMixin
from import_export.formats.base_formats import CSV, JSON, XLSX
from import_export.forms import ConfirmImportForm, ExportForm, ImportForm
from import_export.signals import post_export

from beacons.models import Site
from beacons.queries.sites import sites_visible
from beacons.transfer import formats, peers
from beacons.transfer.resources import (
    DEFINITION_COLUMNS,
    BeaconAggregateResource,
    BeaconDefinitionResource,
    aggregates_example,
    definitions_example,
    definitions_export,
)

MODE_CHOICES = [
    ("merge", "Merge: add the file's counts to the counts already stored"),
    ("replace", "Replace: set each bucket in the file to the file's count"),
]


IMPORT_FILE_MAX_AGE = 24 * 3600  # seconds an uploaded file may wait for its confirm step


class BoundedXLSX(XLSX):
    """XLSX whose zip directory is checked before the workbook is opened (``formats.xlsx_size_check``)."""

    def create_dataset(self, in_stream):
        formats.xlsx_size_check(stream=io.BytesIO(in_stream))
        return super().create_dataset(in_stream)


class BoundedImportForm(ImportForm):
    """The upload step: a file larger than ``BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES`` is refused
    before it is read (django-import-export holds the whole file, then every row, in memory)."""

    def clean_import_file(self):
        upload = self.cleaned_data["import_file"]
        _upload_size_check(upload, command="beacons_import")
        return upload


class SignedConfirmImportForm(ConfirmImportForm):
    """The confirm step: ``import_file_name`` is the temp file's name signed for this user and
    session (``TransferAdminMixin.create_confirm_form`` sets ``salt``), so a forged or edited
    name (``../../tmp/other``) is refused and no other file is read or deleted."""

    salt = ""

    def clean_import_file_name(self):
        try:
            name = signing.loads(self.cleaned_data["import_file_name"], salt=self.salt, max_age=IMPORT_FILE_MAX_AGE)
        except signing.BadSignature:
            raise ValidationError("This upload is not yours or has expired: upload the file again.") from None
        return os.path.basename(name)


class AggregateImportForm(BoundedImportForm):
    mode = forms.ChoiceField(
        choices=MODE_CHOICES,
        initial="merge",
        widget=forms.RadioSelect,
        label="Mode",
        help_text="Example: 120 page views are stored for /pricing on 1 Nov 2026 at 09:00 and the file has 30 "
        "for that hour. Merge makes it 150 (use it to add counts another system kept); replace makes it 30 "
        "(use it to correct counts). Either way, buckets that are not in the file stay as they are.",
    )


class AggregateConfirmImportForm(SignedConfirmImportForm):
    mode = forms.ChoiceField(choices=MODE_CHOICES, widget=forms.HiddenInput)


def _upload_size_check(upload, *, command: str) -> None:
    """Refuse an upload larger than ``BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES`` before it is read."""
    limit = settings.BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES
    if upload is not None and upload.size > limit:
        raise ValidationError(
            f"The file is {upload.size:,} bytes, more than the {limit:,} allowed "
            f"(BEACONS_IMPORT_MAX_UNCOMPRESSED_BYTES): split it, or use the {command} command."
        )


class PeerImportForm(forms.Form):
    """Another analytics tool's export, into one of the sites the user may see."""

    peer = forms.ChoiceField(choices=list(peers.PEERS.items()), label="Exported by")
    site = forms.ModelChoiceField(queryset=Site.objects.none(), label="Into the site")
    file = forms.FileField(
        label="Export file",
        help_text="Plausible: the zip from Site settings → Imports & Exports → Export (or one imported_*.csv "
        "of it). GoatCounter: the CSV export (.csv.gz). Umami: the data export (.csv). Each day is imported "
        "once: an export that overlaps an earlier one adds only its new days.",
    )
    dry_run = forms.BooleanField(
        required=False, label="Check only", help_text="Check every row and report; write nothing."
    )

    def __init__(self, *args, sites: list[Site], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = Site.objects.filter(pk__in=[site.pk for site in sites])

    def clean_file(self):
        upload = self.cleaned_data["file"]
        _upload_size_check(upload, command="beacons_import_peer")
        return upload


def _import_file_salt(request) -> str:
    return f"beacons.import-file:{request.user.pk}:{request.session.session_key}"


class TransferAdminMixin(ImportExportMixin):
    """Import / export in CSV, XLSX and JSON; exports stream and honour the list's filters."""

    formats = [CSV, BoundedXLSX, JSON]
    export_form_class = ExportForm  # the columns are the file contract: no picking of fields
    import_form_class = BoundedImportForm
    confirm_form_class = SignedConfirmImportForm
    import_template_name = "admin/beacons/import.html"
    example_rows = None  # callable returning the example file's rows
    columns: tuple[str, ...] = ()

    def export_chunks(self, *, queryset, file_format: str) -> Iterator[bytes]:
        raise NotImplementedError

    def has_import_permission(self, request):
        # Importing writes rows: it needs the model's add and change permissions, not just admin access.
        return self.has_add_permission(request) and self.has_change_permission(request)

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    def get_urls(self):
        info = self.get_model_info()
        example = path(
            "import/example.<str:file_format>",
            self.admin_site.admin_view(self.import_example),
            name="{}_{}_import_example".format(*info),
        )
        return [example] + super().get_urls()

    def import_example(self, request, file_format):
        if not self.has_import_permission(request) or not self.has_view_permission(request):
            raise PermissionDenied
        if file_format not in formats.FORMATS:
            raise PermissionDenied
        chunks = formats.rows_write(headers=self.columns, rows=self.example_rows(), file_format=file_format)
        return self._file_response(chunks, file_format, f"{self.model._meta.model_name}-example.{file_format}")

    def _file_response(self, chunks, file_format, filename):
        response = StreamingHttpResponse(chunks, content_type=formats.CONTENT_TYPES[file_format])
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    def _do_file_export(self, file_format, request, queryset, export_form=None):
        # Replaces django-import-export's in-memory export with a stream of the same file
        # the beacons_export command writes.
        if not self.has_export_permission(request):
            raise PermissionDenied
        extension = file_format.get_extension()
        chunks = self.export_chunks(queryset=queryset, file_format=extension)
        response = self._file_response(chunks, extension, self.get_export_filename(request, queryset, file_format))
        post_export.send(sender=None, model=self.model)
        return response

    def get_import_data_kwargs(self, **kwargs):
        form = kwargs.get("form")
        data = super().get_import_data_kwargs(**kwargs)
        if form is not None and hasattr(form, "cleaned_data"):
            chosen = self.get_import_formats()[int(form.cleaned_data["format"])]
            data["file_format"] = chosen().get_extension()
            if "mode" in form.cleaned_data:
                data["mode"] = form.cleaned_data["mode"]
        return data

    def export_action(self, request):
        try:
            return super().export_action(request)
        except IncorrectLookupParameters:  # a filter value the list cannot apply: the changelist's answer
            info = self.get_model_info()
            changelist = reverse("admin:{}_{}_changelist".format(*info), current_app=self.admin_site.name)
            return HttpResponseRedirect(f"{changelist}?{ERROR_FLAG}=1")

    def add_data_read_fail_error_to_form(self, form, e):
        if isinstance(e, formats.FileProblem):
            form.add_error("import_file", f"The file cannot be imported: {e}.")
        else:
            super().add_data_read_fail_error_to_form(form, e)

    def create_confirm_form(self, request, import_form=None):
        form = super().create_confirm_form(request, import_form)
        form.salt = _import_file_salt(request)
        return form

    def get_confirm_form_initial(self, request, import_form):
        initial = super().get_confirm_form_initial(request, import_form)
        if "import_file_name" in initial:
            initial["import_file_name"] = signing.dumps(initial["import_file_name"], salt=_import_file_salt(request))
        if import_form is not None and "mode" in import_form.cleaned_data:
            initial["mode"] = import_form.cleaned_data["mode"]
        return initial

    def get_import_context_data(self, **kwargs):
        context = super().get_import_context_data(**kwargs)
        context["example_formats"] = formats.FORMATS
        return context

    def process_result(self, result, request):
        if result.has_errors() or result.has_validation_errors():
            # The file changed or the data moved between preview and confirm: nothing was written.
            messages.error(request, "Nothing was imported: the file no longer passes its checks. Upload it again.")
            info = self.get_model_info()
            return HttpResponseRedirect(reverse("admin:{}_{}_import".format(*info), current_app=self.admin_site.name))
        return super().process_result(result, request)


class AggregateTransferAdminMixin(TransferAdminMixin):
    resource_classes = [BeaconAggregateResource]
    import_form_class = AggregateImportForm
    confirm_form_class = AggregateConfirmImportForm
    skip_admin_log = True  # a log entry per counter row would dwarf the log
    columns = formats.AGGREGATE_COLUMNS

    @staticmethod
    def example_rows():
        return aggregates_example()

    def export_chunks(self, *, queryset, file_format):
        return formats.aggregates_export(queryset=queryset, file_format=file_format)

    def get_urls(self):
        info = self.get_model_info()
        peer = path(
            "import/peer/",
            self.admin_site.admin_view(self.peer_import_view),
            name="{}_{}_import_peer".format(*info),
        )
        return [peer] + super().get_urls()

    def import_action(self, request, **kwargs):
        response = super().import_action(request, **kwargs)
        if isinstance(response, TemplateResponse) and not response.is_rendered:
            response.context_data["peer_form"] = PeerImportForm(sites=sites_visible(user=request.user))
        return response

    def peer_import_view(self, request):
        """Upload another tool's export (``peers.peer_import``), into a site the user may see."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        sites = sites_visible(user=request.user)
        form = PeerImportForm(request.POST or None, request.FILES or None, sites=sites)
        summary = None
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                summary = peers.peer_import(
                    peer=form.cleaned_data["peer"],
                    stream=upload,
                    filename=upload.name,
                    site=form.cleaned_data["site"],
                    dry_run=form.cleaned_data["dry_run"],
                )
            except formats.FileProblem as problem:
                form.add_error("file", f"The file cannot be imported: {problem}.")
        days, visitors = peers.peer_imports_listed(sites=sites)
        context = {
            **self.admin_site.each_context(request),
            "title": "Import the history of another analytics tool",
            "opts": self.model._meta,
            "form": form,
            "summary": summary,
            "imported_days": days,
            "imported_visitors": visitors,
        }
        return TemplateResponse(request, "admin/beacons/peer_import.html", context)


class DefinitionTransferAdminMixin(TransferAdminMixin):
    resource_classes = [BeaconDefinitionResource]
    columns = DEFINITION_COLUMNS

    @staticmethod
    def example_rows():
        return definitions_example()

    def export_chunks(self, *, queryset, file_format):
        return definitions_export(queryset=queryset, file_format=file_format)
