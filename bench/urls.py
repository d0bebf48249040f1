from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def bare(request):
    """The ceiling: what any Django view costs that reads the body and answers 204."""
    request.read(65537)
    return HttpResponse(status=204)


urlpatterns = [path("bench/bare", bare), path("", include("beacon_site.urls"))]
