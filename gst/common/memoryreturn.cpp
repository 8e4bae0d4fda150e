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

}  // namespace wb
