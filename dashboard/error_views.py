from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpResponse


@staff_member_required
def error_list(request):
    return HttpResponse("errors")


@staff_member_required
def error_detail(request, pk: int):
    return HttpResponse("error")
