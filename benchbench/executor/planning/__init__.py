"""The plan, before anything runs: the plan file and its YAML, device specs, batch sizes and their
split over ranks, nodes of a hostfile and the pre-flight checks."""
