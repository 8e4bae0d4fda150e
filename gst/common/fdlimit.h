// The process's open-file limit, which viewers use up: each costs about
// seven descriptors (measured: 350 for 50 viewers; its ICE socket and our
// duplicate of it, webrtcbin's main contexts and wakeups), so Debian's
// default soft limit of 1024 would stop a node at about 140 viewers.
#pragma once

namespace wb {

// Raises the soft RLIMIT_NOFILE to the hard limit (never lowers it), once
// per process. Returns the soft limit now in force.
unsigned long raise_open_file_limit();

}  // namespace wb
