"""Scripts the inference cluster's pods run, shipped in the package and mounted from a ConfigMap."""
