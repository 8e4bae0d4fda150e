// Giving memory back after a burst of viewers has gone.
//
// glibc's malloc keeps what was freed for reuse and returns little of it to
// the system on its own: after 1,500 pending offers timed out, a node stayed
// about 34 MB above where it started (docs/soak.md), memory that only an
// attacker's next burst would reuse. malloc_trim(0) hands every free page
// back. It walks the whole heap, so it is called once a burst has drained,
// not on every departure.
#pragma once

#include <cstddef>

namespace wb {

// Decides, from the session count seen at each reaper tick, when a burst
// has drained: the count has fallen by at least `drop` from its highest
// since the last trim, and has stopped falling (the same on two ticks in a
// row, so what the last departures freed is free by then).
class MemoryReturnPolicy {
 public:
  static constexpr size_t kDefaultDrop = 256;  // ~6 MB of pending viewers
  explicit MemoryReturnPolicy(size_t drop = kDefaultDrop) : drop_(drop) {}
  // True when memory should be returned now.
  bool on_tick(size_t sessions);

 private:
  size_t drop_;
  size_t highest_ = 0;
  size_t previous_ = 0;
};

// malloc_trim(0) where the C library has it (glibc); nothing elsewhere.
void return_free_memory();

// glibc's malloc_trim() gives back the free pages inside every arena but
// shrinks only the main arena's top chunk. A thread's arena gives back its
// top (where a burst's blocks end up once all are freed, merged there by
// malloc_trim's own consolidation) only on a free of 64 KiB or more in that
// arena. A thread that has just taken over such an arena (a renewed offer
// worker, see Workers::renew()) calls this first: one such free.
void trim_thread_arena();

}  // namespace wb
