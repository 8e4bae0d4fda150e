#include "common/memoryreturn.h"

#include <algorithm>

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace wb {

bool MemoryReturnPolicy::on_tick(size_t sessions) {
  highest_ = std::max(highest_, sessions);
  const bool settled = sessions == previous_;
  previous_ = sessions;
  if (!settled || highest_ < sessions + drop_) return false;
  highest_ = sessions;
  return true;
}

void return_free_memory() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

void trim_thread_arena() {
#ifdef __GLIBC__
  // 64 KiB is glibc's FASTBIN_CONSOLIDATION_THRESHOLD; below its smallest
  // mmap threshold (128 KiB), so the block comes from the arena. Volatile:
  // a compiler may otherwise drop a malloc that is only freed.
  void *volatile block = malloc(64 * 1024 + 4096);
  free(block);
#endif
}

}  // namespace wb
