"""Every state change of the labeling app, one named function each, grouped by what it changes:
memberships, projects, prompts, candidates, tasks, assignments, annotations, pairs. Views, API
views, Celery tasks, management commands and the other apps call these; the hand-written SQL they
run is in labeling.sql."""
