"""The workflow engine: projects' stages, work items moving through them by signals, the
pull queue with its leases, deadlines, and the annotations each item writes. No HTTP here:
the work face (``api/platform_v1``) and anything else call these use cases."""
