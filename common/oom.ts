// Recognising a process that ran out of host memory from its exit report: under the local
// backend's prlimit a Python trainer dies with MemoryError, C++ with std::bad_alloc.

/** Lines that say a process ran out of memory (Python, C++, glibc, the kernel's words). */
const OOM_PATTERN = /\bMemoryError\b|std::bad_alloc|Cannot allocate memory|\bout of memory\b|OOMKilled/i;
/** CUDA OOM is the model's problem, not the node's memory limit. */
const CUDA_OOM = /CUDA out of memory|OutOfMemoryError/;

/** True when a failed process's stderr tail says it ran out of (host) memory. */
export function looksOutOfMemory(stderrTail: string | undefined): boolean {
  if (!stderrTail) return false;
  return OOM_PATTERN.test(stderrTail) && !CUDA_OOM.test(stderrTail);
}
