import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rankloop.settings")
application = get_wsgi_application()

# Load the URLconf, and with it every view module, now rather than at the first request; then
# take everything loaded so far out of the garbage collector's sight. Otherwise each full
# collection walks those ~100k long-lived objects and stalls the worker, with every request it
# is serving, for 30-60 ms: that was most of the annotator API's p99.
get_resolver().url_patterns  # noqa: B018 -- the (cached) property's first read is what imports the URLconf
gc.collect()
gc.freeze()
