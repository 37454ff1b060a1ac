# blas_core.sh: sourced by the side-by-side benchmarks after they set $cnnkit. PyTorch links the same OpenBLAS
# (through libblas.so.3) and would run its generic kernels on a CPU newer than the OpenBLAS release, where cnnkit
# restarts itself with better ones (nn/blas_cpu.c): both sides get the kernels `cnnkit bench` reports.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  core=$("$cnnkit" bench mlp --steps 1 --warmup 0 --batch 4 --threads 1 | sed -n 's/.*blas_core=\([A-Za-z0-9_]*\).*/\1/p')
  if [ -n "$core" ]; then export OPENBLAS_CORETYPE=$core; fi
fi
echo "OpenBLAS kernels for both sides: ${OPENBLAS_CORETYPE:-the OpenBLAS default}"
