"""Reads of sites for the staff pages: the sites a user may see."""

from beacons.models import Site


def sites_visible(*, user) -> list[Site]:
    """The sites ``user`` may see, by name: the ones they are a member of; every site for a
    superuser. One query."""
    sites = Site.objects.all() if user.is_superuser else Site.objects.filter(members=user)
    return list(sites.order_by("name", "domain"))
