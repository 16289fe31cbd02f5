# Burn-in checks of one training node, run by the eks-ml burn-in DaemonSet. POSIX sh: it runs in the
# DCGM image (Ubuntu, dash) and the AWS Deep Learning Containers (Ubuntu).
#
#   checks.sh nvidia | neuron | efa
#
# A failed check writes its reason to $RESULTS/failed and exits 0, so the pod's last step (verdict.py
# report) still runs and labels the node; a later check is skipped once one has failed. Nothing here
# touches the Kubernetes API.
#
# Expected values come from the eks-ml catalog, per node group, as environment variables:
#   EXPECTED_ACCELERATORS      GPUs or Neuron devices
#   EXPECTED_MIN_MEMORY_MIB    memory each GPU or Neuron device must report at least
#   EXPECTED_NEURON_CORES      physical NeuronCores (Neuron only)
#   EXPECTED_LOGICAL_NEURON_CORES  the same under the node's default Logical NeuronCore config (Neuron only)
#   EXPECTED_EFA_DEVICES       EFA devices (one per EFA interface the launch template attaches)
#   DCGM_DIAG_LEVEL            dcgmi diag run level (NVIDIA only)
# DEV, SYS and RESULTS are /dev, the host's /sys and the pod's shared directory; the tests point them
# at a fake device tree.
set -u
# The EFA installer's libfabric tools and the Neuron tools, where the AWS Deep Learning Containers put them.
PATH="$PATH:/opt/amazon/efa/bin:/opt/aws/neuron/bin"
DEV=${DEV:-/dev}
SYS=${SYS:-/host/sys}
RESULTS=${RESULTS:-/results}

fail() {
  echo "$1" > "$RESULTS/failed"
  echo "burn-in check failed: $1" >&2
  exit 0
}

count() {
  n=0
  for path in "$@"; do
    [ -e "$path" ] && n=$((n + 1))
  done
  echo "$n"
}

if [ -f "$RESULTS/skip" ]; then
  echo "this node passed burn-in before: nothing to check"
  exit 0
fi
if [ -f "$RESULTS/failed" ]; then
  echo "an earlier check failed: $(cat "$RESULTS/failed")"
  exit 0
fi

nvidia() {
  found=$(count "$DEV"/nvidia[0-9]*)
  [ "$found" -eq "$EXPECTED_ACCELERATORS" ] ||
    fail "gpu-count: $found of $EXPECTED_ACCELERATORS GPU device files in /dev"
  memory=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits) ||
    fail "nvidia-smi: it exited with an error (driver not loaded, or a GPU fell off the bus)"
  listed=0
  for mib in $memory; do
    [ "$mib" -ge "$EXPECTED_MIN_MEMORY_MIB" ] ||
      fail "gpu-memory: GPU $listed reports $mib MiB, at least $EXPECTED_MIN_MEMORY_MIB expected"
    listed=$((listed + 1))
  done
  [ "$listed" -eq "$EXPECTED_ACCELERATORS" ] ||
    fail "gpu-count: nvidia-smi lists $listed of $EXPECTED_ACCELERATORS GPUs"
  # dcgmi talks to a host engine; start one in this container for the diagnostics only.
  nv-hostengine > "$RESULTS/nv-hostengine.log" 2>&1 ||
    fail "dcgm: nv-hostengine did not start"
  status=0
  dcgmi diag -r "$DCGM_DIAG_LEVEL" > "$RESULTS/dcgm-diag.txt" 2>&1 || status=$?
  nv-hostengine --term > /dev/null 2>&1
  cat "$RESULTS/dcgm-diag.txt"
  if [ "$status" -ne 0 ] || grep -q "Fail" "$RESULTS/dcgm-diag.txt"; then
    first=$(grep -m 1 "Fail" "$RESULTS/dcgm-diag.txt" | tr -s ' |' ' ')
    fail "dcgm-diag: dcgmi diag -r $DCGM_DIAG_LEVEL exited $status${first:+:$first}"
  fi
}

neuron() {
  found=$(count "$DEV"/neuron[0-9]*)
  [ "$found" -eq "$EXPECTED_ACCELERATORS" ] ||
    fail "neuron-device-count: $found of $EXPECTED_ACCELERATORS Neuron device files in /dev"
  neuron-ls --json-output > "$RESULTS/neuron-ls.json" 2> "$RESULTS/neuron-ls.err" ||
    fail "neuron-ls: it exited with an error ($(head -c 200 "$RESULTS/neuron-ls.err"))"
  # neuron-ls lists one object per device: nc_count cores, memory_size bytes.
  summary=$(python3 -c '
import json, sys
devices = json.load(open(sys.argv[1]))
print(len(devices), sum(d["nc_count"] for d in devices), min((d["memory_size"] for d in devices), default=0) // 2**20)
' "$RESULTS/neuron-ls.json") || fail "neuron-ls: its JSON output could not be read"
  set -- $summary
  [ "$1" -eq "$EXPECTED_ACCELERATORS" ] ||
    fail "neuron-device-count: neuron-ls lists $1 of $EXPECTED_ACCELERATORS Neuron devices"
  [ "$2" -eq "$EXPECTED_NEURON_CORES" ] || [ "$2" -eq "$EXPECTED_LOGICAL_NEURON_CORES" ] ||
    fail "neuroncore-count: neuron-ls lists $2 NeuronCores, $EXPECTED_NEURON_CORES expected ($EXPECTED_LOGICAL_NEURON_CORES logical)"
  [ "$3" -ge "$EXPECTED_MIN_MEMORY_MIB" ] ||
    fail "neuron-memory: a Neuron device reports $3 MiB, at least $EXPECTED_MIN_MEMORY_MIB expected"
}

efa() {
  found=$(count "$SYS"/class/infiniband/*)
  [ "$found" -eq "$EXPECTED_EFA_DEVICES" ] ||
    fail "efa-count: $found of $EXPECTED_EFA_DEVICES EFA devices in /sys/class/infiniband"
  [ "$EXPECTED_EFA_DEVICES" -eq 0 ] && return
  fi_info -p efa -t FI_EP_RDM > "$RESULTS/fi_info.txt" 2>&1 ||
    fail "efa-libfabric: fi_info -p efa found no usable EFA device ($(head -c 200 "$RESULTS/fi_info.txt"))"
  # One RDM domain per EFA device (rdmap<bus>s<slot>-rdm).
  domains=$(awk '$1 == "domain:" {print $2}' "$RESULTS/fi_info.txt" | sort -u | wc -l)
  [ "$domains" -eq "$EXPECTED_EFA_DEVICES" ] ||
    fail "efa-libfabric: fi_info -p efa lists $domains of $EXPECTED_EFA_DEVICES EFA devices"
}

case "${1:-}" in
  nvidia) nvidia ;;
  neuron) neuron ;;
  efa) efa ;;
  *) echo "usage: checks.sh nvidia|neuron|efa" >&2; exit 2 ;;
esac
echo "burn-in check ${1} passed"
