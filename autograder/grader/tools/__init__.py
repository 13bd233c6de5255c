"""Course tools for instructors: publish, export for otter, check a set of drawings."""
