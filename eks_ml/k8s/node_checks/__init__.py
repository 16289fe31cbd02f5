"""The scripts the burn-in DaemonSet runs on a new training node (shipped in a ConfigMap): ``checks.sh`` compares
the node's devices with the catalog and runs the vendor diagnostics, ``verdict.py`` reads and patches the node."""
