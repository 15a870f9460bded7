"""A second preload module for tests (a change of spec.entrypoint.preload): records its import in
$SLOW_IMPORT_LOG like slow_import, without the wait."""
from slow_import import record

record(__name__)
