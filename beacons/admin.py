"""The Django admin for sites, the registry, counts, single events, error groups, dropped hits, API keys, shared links, flags and experiments."""

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Q, Sum
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from beacons.api.keys import api_key_secret_set
from beacons.counting.buckets import bucket_start
from beacons.dimensions import BUILT_IN
from beacons.models import (
    DEFAULT_GRANULARITIES,
    ApiKey,
    BeaconAggregate,
    BeaconDefinition,
    BeaconEvent,
    DrainBatch,
    DroppedHits,
    DroppedValues,
    ErrorGroup,
    Experiment,
    ExperimentVariation,
    Flag,
    FlagRule,
    Granularity,
    ReportSent,
    ReportSubscription,
    SharedLink,
    Site,
    default_dimensions,
    dimensions_split,
    granularities_split,
)
from beacons.queries.event_types import definitions_listed
from beacons.queries.sites import sites_visible
from beacons.registry import RESERVED_PREFIX, auto_types_budget_left, definitions_cache_clear, is_reserved
from beacons.sharing import shared_link_password_set, shared_link_revoke, shared_link_token_set
from beacons.transfer.admin_forms import AggregateTransferAdminMixin, DefinitionTransferAdminMixin


class BoundedChangeList(ChangeList):
    """The admin's list, answering a filter value it cannot turn into dates (``?period_start__year=9999``:
    "the next year" is past datetime's range) with the admin's "invalid filter" redirect instead of a 500."""

    def get_filters(self, request):
        try:
            return super().get_filters(request)
        except (ValueError, OverflowError) as problem:
            raise IncorrectLookupParameters(problem) from problem


TYPE_FILTER_LIMIT = 50


class TypeFilter(admin.SimpleListFilter):
    """The "by beacon type" filter of the counts, single events and error groups lists: at most
    TYPE_FILTER_LIMIT types (those registered in the admin first, by name, as the dashboard lists
    them) and the one chosen, however many a flood registered. Any other type: search its exact
    event type (slug). Same parameter as Django's own filter, so existing links keep working."""

    title = "beacon type"
    parameter_name = "definition__id__exact"

    def lookups(self, request, model_admin):
        listed = definitions_listed(limit=TYPE_FILTER_LIMIT)
        chosen = self.value()
        if chosen and chosen.isdecimal() and all(str(d.pk) != chosen for d in listed):
            listed += list(BeaconDefinition.objects.filter(pk=int(chosen)))
        return [(str(d.pk), str(d)) for d in listed]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        if not self.value().isdecimal():  # the admin's "invalid filter" answer, on the list and its export
            raise IncorrectLookupParameters(f"not a beacon type: {self.value()!r}")
        return queryset.filter(definition_id=int(self.value()))


class ModelAdmin(admin.ModelAdmin):
    """The base of every Beacons admin."""

    def get_changelist(self, request, **kwargs):
        return BoundedChangeList


class GranularitiesField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def prepare_value(self, value):
        if isinstance(value, str):
            return granularities_split(value)
        return value

    def clean(self, value):
        codes = super().clean(value)
        return ",".join(code for code in Granularity.values if code in codes)


class DimensionsField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def prepare_value(self, value):
        if isinstance(value, str):
            return dimensions_split(value)
        return value

    def clean(self, value):
        codes = super().clean(value)
        return ",".join(code for code in BUILT_IN if code in codes)


class BeaconDefinitionForm(forms.ModelForm):
    granularities = GranularitiesField(
        label="Time buckets",
        choices=Granularity.choices,
        initial=DEFAULT_GRANULARITIES,  # a declared field does not take the model default by itself
        help_text=BeaconDefinition._meta.get_field("granularities").help_text,
    )
    dimensions = DimensionsField(
        label="Breakdowns",
        choices=list(BUILT_IN.items()),
        required=False,
        initial=list(BUILT_IN),
        help_text=BeaconDefinition._meta.get_field("dimensions").help_text,
    )

    class Meta:
        model = BeaconDefinition
        fields = "__all__"  # noqa: DJ007 (the ModelAdmin's fieldsets choose and order the fields shown)

    def clean_property_keys(self):
        return ",".join(dimensions_split(self.cleaned_data.get("property_keys") or ""))

    def clean_slug(self):
        slug = self.cleaned_data.get("slug") or ""
        if is_reserved(slug):
            raise forms.ValidationError(f"Event types starting with “{RESERVED_PREFIX}” are Beacons' own (visits).")
        return slug

    def clean(self):
        cleaned = super().clean()
        if self.instance._state.adding and "dimensions" not in self.changed_data:
            # Left as offered: the default of the kind chosen (page views all, others none).
            cleaned["dimensions"] = default_dimensions(cleaned.get("kind") or "")
        return cleaned


@admin.register(BeaconDefinition)
class BeaconDefinitionAdmin(DefinitionTransferAdminMixin, ModelAdmin):
    form = BeaconDefinitionForm
    list_display = ["name", "slug", "kind", "is_active", "hits_today", "hits_last_7_days", "keep_raw", "updated_at"]
    list_filter = ["kind", "is_active", "keep_raw", "identifier_rule", "auto_registered"]
    search_fields = ["slug", "name", "description"]
    readonly_fields = ["created_at", "updated_at"]
    actions = ["activate", "deactivate"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "kind", "description", "is_active"]}),
        ("What is counted", {"fields": ["identifier_rule", "keep_query_string", "granularities"]}),
        ("Breakdowns", {"fields": ["dimensions", "property_keys", "dimensions_by_hour"]}),
        ("Keeping data", {"fields": ["keep_raw", "raw_retention_days", "fine_retention_days", "hour_retention_days"]}),
        (
            "Error alerts (JavaScript errors only)",
            {
                "classes": ["collapse"],
                "fields": [
                    "alert_emails",
                    "alert_on_new",
                    "alert_on_regression",
                    "alert_threshold",
                    "alert_window_minutes",
                    "alert_cooldown_minutes",
                ],
            },
        ),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        # Both counts come from the hourly total rows in the page's single query.
        now = timezone.now()
        today = bucket_start(now, Granularity.DAY)
        week = bucket_start(now - timedelta(days=6), Granularity.DAY)
        total_hours = Q(aggregates__dimension="", aggregates__identifier="", aggregates__granularity=Granularity.HOUR)
        return (
            super()
            .get_queryset(request)
            .exclude(slug__startswith=RESERVED_PREFIX)  # Beacons' own visit types: not edited, deleted or paused
            .annotate(
                _hits_today=Sum("aggregates__count", filter=total_hours & Q(aggregates__period_start__gte=today)),
                _hits_week=Sum("aggregates__count", filter=total_hours & Q(aggregates__period_start__gte=week)),
            )
        )

    @admin.display(description="hits today", ordering="_hits_today")
    def changelist_view(self, request, extra_context=None):
        if request.method == "GET" and not settings.BEACONS_STRICT and auto_types_budget_left() == 0:
            messages.warning(
                request,
                f"The budget of {settings.BEACONS_MAX_AUTO_TYPES} automatically registered event types is used up: "
                "beacons of new, unknown types are now dropped (see “dropped hits”). Delete unwanted types "
                "(filter on “auto registered”), register the ones you need here, or raise BEACONS_MAX_AUTO_TYPES.",
            )
        return super().changelist_view(request, extra_context)

    def hits_today(self, obj):
        return f"{obj._hits_today or 0:,}"

    @admin.display(description="last 7 days", ordering="_hits_week")
    def hits_last_7_days(self, obj):
        return f"{obj._hits_week or 0:,}"

    @admin.action(description="Start counting the selected event types", permissions=["change"])
    def activate(self, request, queryset):
        changed = queryset.update(is_active=True)
        definitions_cache_clear()  # update() sends no save signal
        self.message_user(request, f"{changed} event type(s) now counting.", messages.SUCCESS)

    @admin.action(description="Stop counting the selected event types", permissions=["change"])
    def deactivate(self, request, queryset):
        changed = queryset.update(is_active=False)
        definitions_cache_clear()
        self.message_user(request, f"{changed} event type(s) no longer counting.", messages.SUCCESS)


class SiteForm(forms.ModelForm):
    class Meta:
        model = Site
        fields = [
            "domain",
            "name",
            "is_active",
            "time_zone",
            "extra_origins",
            "members",
            "umami_website_id",
            "sentry_project_id",
            "sentry_public_key",
        ]
        help_texts = {
            "time_zone": "An IANA time zone name, e.g. Europe/Berlin: the site's days, months and years start at "
            "midnight there, and its dashboard periods (Today, This month…) follow it. Changing it does not move "
            "counts already made: days counted before the change keep the old zone's edges.",
        }


MEMBERS_LISTED = 3  # names the site list shows before "and N more"


@admin.register(Site)
class SiteAdmin(ModelAdmin):
    """A site with counts, single events or error groups cannot be deleted (turn it off instead)."""

    form = SiteForm
    list_display = ["domain", "name", "is_active", "time_zone", "members_listed", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["domain", "name"]
    filter_horizontal = ["members"]
    readonly_fields = ["created_at"]
    fieldsets = [
        (None, {"fields": ["domain", "name", "is_active", "time_zone", "extra_origins", "members", "created_at"]}),
        (
            "Moving from another tool",
            {
                "classes": ["collapse"],
                "fields": ["umami_website_id", "sentry_project_id", "sentry_public_key"],
                "description": "The ids other trackers' scripts and the Sentry SDKs send, so their events count here.",
            },
        ),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("members")

    @admin.display(description="members")
    def members_listed(self, site: Site) -> str:
        """Who may see it besides superusers: a few usernames and how many more (escaped by the admin)."""
        names = sorted(user.get_username() for user in site.members.all())
        if not names:
            return "none (superusers only)"
        shown = ", ".join(names[:MEMBERS_LISTED])
        more = len(names) - MEMBERS_LISTED
        return f"{shown} and {more} more" if more > 0 else shown


@admin.register(BeaconAggregate)
class BeaconAggregateAdmin(AggregateTransferAdminMixin, ModelAdmin):
    list_display = ["site", "definition", "dimension", "identifier", "granularity", "period_start", "count"]
    list_filter = ["site", TypeFilter, "dimension", "granularity"]
    search_fields = ["identifier", "=definition__slug"]
    date_hierarchy = "period_start"
    list_select_related = ["site", "definition"]
    show_full_result_count = False


@admin.register(BeaconEvent)
class BeaconEventAdmin(ModelAdmin):
    list_display = ["site", "definition", "identifier", "received_at", "source"]
    list_filter = ["site", TypeFilter, "source"]
    search_fields = ["identifier", "=definition__slug"]
    date_hierarchy = "received_at"
    list_select_related = ["site", "definition"]
    readonly_fields = [f.name for f in BeaconEvent._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False


@admin.register(DroppedHits)
class DroppedHitsAdmin(ModelAdmin):
    list_display = ["day", "reason", "count"]
    list_filter = ["reason"]
    date_hierarchy = "day"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DroppedValues)
class DroppedValuesAdmin(ModelAdmin):
    """Hits whose dimension value counted as “(other)”: the day's cap of distinct values was reached."""

    list_display = ["day", "site", "definition", "dimension", "count"]
    list_filter = ["site", TypeFilter, "dimension"]
    date_hierarchy = "day"
    list_select_related = ["site", "definition"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DrainBatch)
class DrainBatchAdmin(ModelAdmin):
    list_display = ["batch_id", "keys", "hits", "drained_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ErrorGroup)
class ErrorGroupAdmin(ModelAdmin):
    """Counts and times are written by ingest only; status changes go through the actions, which record who."""

    list_display = ["headline", "site", "definition", "status", "count", "first_seen", "last_seen", "last_alerted_at"]
    list_filter = ["status", "site", TypeFilter]
    search_fields = ["message", "title", "culprit", "fingerprint", "=definition__slug"]
    date_hierarchy = "last_seen"
    list_select_related = ["site", "definition"]
    ordering = ["-last_seen"]
    readonly_fields = [f.name for f in ErrorGroup._meta.fields]
    actions = ["mark_resolved", "mark_ignored", "mark_unresolved"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    @admin.display(description="error", ordering="message")
    def headline(self, obj):
        return obj.headline

    def _status_set(self, request, queryset, status):
        from beacons.errors.grouping import error_group_status_set

        for group in queryset:
            error_group_status_set(group=group, status=status, user=request.user)
        self.message_user(request, f"{len(queryset)} error(s) marked {status}.", messages.SUCCESS)

    @admin.action(description="Mark the selected errors resolved", permissions=["change"])
    def mark_resolved(self, request, queryset):
        self._status_set(request, queryset, ErrorGroup.Status.RESOLVED)

    @admin.action(description="Ignore the selected errors (no more alerts)", permissions=["change"])
    def mark_ignored(self, request, queryset):
        self._status_set(request, queryset, ErrorGroup.Status.IGNORED)

    @admin.action(description="Reopen the selected errors", permissions=["change"])
    def mark_unresolved(self, request, queryset):
        self._status_set(request, queryset, ErrorGroup.Status.UNRESOLVED)


@admin.register(ApiKey)
class ApiKeyAdmin(ModelAdmin):
    """Keys of the stats API. The key itself is shown once, on the page after it is created; only its
    prefix and hash are stored. Untick "active" (or use the action) to revoke one."""

    list_display = [
        "name",
        "prefix",
        "is_active",
        "site_list",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["is_active"]
    search_fields = ["name", "prefix"]
    filter_horizontal = ["sites"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by").prefetch_related("sites")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "sites"]
        return ["name", "prefix", "sites", "is_active", "created_by", "created_at", "last_used_at", "revoked_at"]

    @admin.display(description="sites")
    def site_list(self, obj) -> str:
        return ", ".join(site.domain for site in obj.sites.all()) or "none"

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
            request.api_key_shown = api_key_secret_set(obj)
        elif "is_active" in form.changed_data:
            obj.revoked_at = None if obj.is_active else timezone.now()
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        response = render(
            request,
            "admin/beacons/apikey/created.html",
            {**self.admin_site.each_context(request), "api_key": obj, "key": request.api_key_shown, "opts": self.opts},
        )
        response["Cache-Control"] = "private, no-store"
        return response

    @admin.action(description="Revoke the selected API keys", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = queryset.filter(is_active=True).update(is_active=False, revoked_at=timezone.now())
        self.message_user(request, f"{revoked} API key(s) revoked.", messages.SUCCESS)


REPORT_ADDRESSES_MAX = 200  # addresses one form may subscribe


class ReportAddressesForm(forms.ModelForm):
    """Subscribe a list of addresses at once (one subscription each; an address already subscribed to
    the site's report of that frequency is turned back on, not duplicated)."""

    addresses = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="One address per line (or separated by commas). Each gets the site's report, with the titles "
        "of its new error groups, and can unsubscribe with the link in every mail.",
    )

    class Meta:
        model = ReportSubscription
        fields = ["site", "frequency"]

    def clean_addresses(self) -> list[str]:
        raw = self.cleaned_data["addresses"].replace(",", "\n").splitlines()
        addresses = list(dict.fromkeys(address.strip().lower() for address in raw if address.strip()))
        if len(addresses) > REPORT_ADDRESSES_MAX:
            raise forms.ValidationError(f"At most {REPORT_ADDRESSES_MAX} addresses at a time.")
        field = forms.EmailField()
        for address in addresses:
            try:
                field.clean(address)
            except forms.ValidationError:
                raise forms.ValidationError(f"“{address}” is not an email address.") from None
        if not addresses:
            raise forms.ValidationError("Enter at least one address.")
        return addresses

    def _post_clean(self):
        self.instance.email = (self.cleaned_data.get("addresses") or [""])[0]
        super()._post_clean()

    def validate_unique(self):
        pass  # an address already subscribed is turned back on in save_model


class ReportSentInline(admin.TabularInline):
    model = ReportSent
    fields = ["period_start", "claimed_at", "sent_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["-period_start"]


@admin.register(ReportSubscription)
class ReportSubscriptionAdmin(ModelAdmin):
    """Email reports: staff subscribe themselves on the dashboard's Reports page; here an admin adds a
    list of addresses, stops or resumes any subscription, and sees which periods were sent."""

    list_display = ["site", "frequency", "recipient", "is_active", "created_at"]
    list_filter = ["frequency", "is_active", "site"]
    search_fields = ["email", "user__username", "user__email", "site__domain"]
    list_select_related = ["site", "user"]
    inlines = [ReportSentInline]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ReportAddressesForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["site", "frequency", "addresses"]
        return ["site", "frequency", "user", "email", "is_active", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return ["site", "user", "email", "created_at"] if obj else []

    def get_inlines(self, request, obj):
        return self.inlines if obj else []

    @admin.display(description="to", ordering="email")
    def recipient(self, obj) -> str:
        return obj.email or f"{obj.user.get_username()} (staff)"

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        addresses = form.cleaned_data["addresses"]
        for address in addresses:
            subscription, _ = ReportSubscription.objects.update_or_create(
                site=obj.site, email=address, frequency=obj.frequency, defaults={"is_active": True}
            )
            if address == addresses[0]:
                obj.pk = subscription.pk  # the admin's "added" message and redirect name the first one
                obj.created_at = subscription.created_at
        if len(addresses) > 1:
            self.message_user(request, f"{len(addresses)} addresses subscribed.", messages.SUCCESS)


class SharedLinkForm(forms.ModelForm):
    new_password = forms.CharField(
        label="Password",
        required=False,
        max_length=128,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Optional: people opening the link must type it. On a saved link: a new one replaces the old, "
        "empty keeps it.",
    )
    remove_password = forms.BooleanField(required=False, help_text="Open the link without a password from now on.")

    class Meta:
        model = SharedLink
        fields = ["site", "label", "expires_at", "is_active"]


@admin.register(SharedLink)
class SharedLinkAdmin(ModelAdmin):
    """Read-only links to one site's dashboard, for the sites the user is a member of (superusers: all).
    The URL is shown once, on the page after the link is created; only a hash of its token is stored.
    Untick "active" (or use the action) to revoke one."""

    form = SharedLinkForm
    list_display = [
        "__str__",
        "site",
        "has_password",
        "expires_at",
        "is_active",
        "created_by",
        "created_at",
        "last_used_at",
    ]
    list_filter = ["is_active", "site"]
    search_fields = ["label", "site__domain"]
    readonly_fields = ["created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        # A link shows counts: whoever makes one must be allowed to read them.
        return super().has_add_permission(request) and request.user.has_perm("beacons.view_beaconaggregate")

    def get_queryset(self, request):
        links = super().get_queryset(request).select_related("site", "created_by")
        return links if request.user.is_superuser else links.filter(site__members=request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "site":
            kwargs["queryset"] = Site.objects.filter(pk__in=[site.pk for site in sites_visible(user=request.user)])
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["site", "label", "new_password", "expires_at"]
        return ["label", "new_password", "remove_password", "expires_at", "is_active", *self.readonly_fields]

    @admin.display(boolean=True, description="password")
    def has_password(self, obj) -> bool:
        return bool(obj.password)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
            request.shared_link_token = shared_link_token_set(obj)
        elif "is_active" in form.changed_data:
            obj.revoked_at = None if obj.is_active else timezone.now()
        if form.cleaned_data.get("new_password"):
            shared_link_password_set(obj, form.cleaned_data["new_password"])
        elif form.cleaned_data.get("remove_password"):
            shared_link_password_set(obj, "")
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        url = request.build_absolute_uri(reverse("share:index", kwargs={"token": request.shared_link_token}))
        context = {**self.admin_site.each_context(request), "shared_link": obj, "url": url, "opts": self.opts}
        response = render(request, "admin/beacons/sharedlink/created.html", context)
        response["Cache-Control"] = "private, no-store"
        return response

    @admin.action(description="Revoke the selected shared links", permissions=["change"])
    def revoke(self, request, queryset):
        links = list(queryset.filter(is_active=True))
        for link in links:
            shared_link_revoke(link=link)
        self.message_user(request, f"{len(links)} shared link(s) revoked.", messages.SUCCESS)


CHANGES_SHOWN = 20


class SiteScopedAdmin(ModelAdmin):
    """Objects of the sites the user is a member of (superusers: all), and only those sites offered."""

    change_form_template = "admin/beacons/change_form_with_history.html"

    def get_queryset(self, request):
        objects = super().get_queryset(request).select_related("site")
        return objects if request.user.is_superuser else objects.filter(site__members=request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "site":
            kwargs["queryset"] = Site.objects.filter(pk__in=[site.pk for site in sites_visible(user=request.user)])
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        changes = LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(self.model), object_id=str(object_id)
        ).select_related("user")[:CHANGES_SHOWN]
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "changes": changes})


class FlagRuleInline(admin.TabularInline):
    model = FlagRule
    extra = 0
    fields = ["position", "attribute", "operator", "value", "serve", "rollout"]


@admin.register(Flag)
class FlagAdmin(SiteScopedAdmin):
    """Feature flags: rules tried in order, then the split of the variations, then the default value.
    Every change is kept in the admin's log and listed under the form."""

    list_display = ["key", "site", "enabled", "default_value", "rules_count", "updated_at"]
    list_filter = ["enabled", "site"]
    search_fields = ["key", "description"]
    fields = ["site", "key", "description", "enabled", "default_value", "variations", "weights"]
    inlines = [FlagRuleInline]
    actions = ["switch_off", "switch_on"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(rules_total=Count("rules"))

    @admin.display(description="rules", ordering="rules_total")
    def rules_count(self, flag) -> int:
        return flag.rules_total

    @admin.action(description="Switch the selected flags off (serve their default value)", permissions=["change"])
    def switch_off(self, request, queryset):
        self._switch(request, queryset, enabled=False)

    @admin.action(description="Switch the selected flags on", permissions=["change"])
    def switch_on(self, request, queryset):
        self._switch(request, queryset, enabled=True)

    def _switch(self, request, queryset, *, enabled: bool):
        for flag in queryset.exclude(enabled=enabled):
            flag.enabled = enabled
            flag.save(update_fields=["enabled", "updated_at"])  # each save clears its site's kept payload
            self.log_change(request, flag, [{"changed": {"fields": ["on"]}}])
        self.message_user(request, f"Switched {'on' if enabled else 'off'}.", messages.SUCCESS)


ASSIGNMENT_FIELDS = {"position", "key", "weight"}  # what decides a unit's variation and how it is reported


class VariationFormSet(forms.BaseInlineFormSet):
    """Two variations or more, control first, weights adding up to 100; the variations and their
    weights do not change while the experiment runs (units would move to another variation and the
    counts would mean nothing). Names and configs may."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        kept = [form for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")]
        if len(kept) < 2:
            raise forms.ValidationError("An experiment needs two variations or more (control first).")
        if sum(form.cleaned_data["weight"] for form in kept) != 100:
            raise forms.ValidationError("The variations' weights must add up to 100.")
        if self.instance.pk and Experiment.objects.filter(pk=self.instance.pk, status="running").exists():
            changed = len(kept) != len(self.initial_forms) or any(
                ASSIGNMENT_FIELDS & set(form.changed_data) for form in self.forms
            )
            if changed:
                raise forms.ValidationError(
                    "Variations and weights cannot change while the experiment runs: stop it, or start a new "
                    "experiment with a new key."
                )


class ExperimentVariationInline(admin.TabularInline):
    model = ExperimentVariation
    formset = VariationFormSet
    extra = 2
    fields = ["position", "key", "name", "weight", "config"]


EXPERIMENT_FIELDS = [
    "site",
    "key",
    "name",
    "hypothesis",
    "status",
    "winner",
    "coverage",
    "unit",
    "primary_metric",
    "secondary_metrics",
]


class ExperimentForm(forms.ModelForm):
    class Meta:
        model = Experiment
        fields = EXPERIMENT_FIELDS

    def clean(self):
        cleaned = super().clean()
        winner, status = cleaned.get("winner"), cleaned.get("status")
        if winner is not None and winner.experiment_id != self.instance.pk:
            self.add_error("winner", "The winner is one of this experiment's variations.")
        if status == Experiment.Status.CONCLUDED and winner is None:
            self.add_error("winner", "A concluded experiment names its winner (control if nothing won).")
        return cleaned


@admin.register(Experiment)
class ExperimentAdmin(SiteScopedAdmin):
    """A/B experiments: draft → running → stopped, or concluded with a winner that everyone then gets.
    Results are on the dashboard's experiments page."""

    form = ExperimentForm
    list_display = ["name", "key", "site", "status", "unit", "primary_metric", "started_at", "results_link"]
    list_filter = ["status", "site"]
    search_fields = ["key", "name", "hypothesis"]
    fields = [*EXPERIMENT_FIELDS, "started_at", "stopped_at"]
    readonly_fields = ["started_at", "stopped_at"]
    inlines = [ExperimentVariationInline]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "winner":
            object_id = request.resolver_match.kwargs.get("object_id")
            kwargs["queryset"] = ExperimentVariation.objects.filter(experiment_id=object_id or 0)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        now = timezone.now()
        if obj.status == Experiment.Status.RUNNING and obj.started_at is None:
            obj.started_at = now
        if obj.status in (Experiment.Status.STOPPED, Experiment.Status.CONCLUDED) and obj.stopped_at is None:
            obj.stopped_at = now
        super().save_model(request, obj, form, change)

    @admin.display(description="results")
    def results_link(self, experiment) -> str:
        url = reverse("dashboard:experiment", kwargs={"pk": experiment.pk})
        return format_html('<a href="{}?site={}">results</a>', url, experiment.site.domain)
