#include "fdlimit.h"

#include <sys/resource.h>

#include <mutex>

#include "common/debug.h"
#define GST_CAT_DEFAULT wb_viewer_debug

namespace wb {

unsigned long raise_open_file_limit() {
  static std::once_flag once;
  std::call_once(once, [] {
    rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
    rlim_t before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) == 0)
      GST_INFO("open-file limit raised from %lu to %lu", static_cast<unsigned long>(before),
               static_cast<unsigned long>(limit.rlim_cur));
  });
  rlimit now;
  getrlimit(RLIMIT_NOFILE, &now);
  return static_cast<unsigned long>(now.rlim_cur);
}

}  // namespace wb
