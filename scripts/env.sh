# Sourced by the entry scripts: the data directory and single-threaded maths on this 2-core machine.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${ABR_DATA_DIR:-}" ] && [ -d "$root/../shared/data" ]; then
  ABR_DATA_DIR="$(cd "$root/../shared/data" && pwd)"
  export ABR_DATA_DIR
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
export PYTHONHASHSEED=0
