// How long a lease lasts and how the queue retries a run (coordinator/queue.h,
// coordinator/attempt_end.h); `tallrec coordinator`'s options set it.
#pragma once

#include <cstdint>

namespace tallrec {

struct RetryPolicy {
  double lease_seconds = 30;
  double backoff_base = 5;  // seconds before attempt k+1: base * 2^(k-1), capped
  double backoff_max = 300;
  double lease_arrival =
      10;  // seconds a LEASE may take to show in its worker's heartbeats before it is released
  int64_t max_preemptions = 20;  // a run preempted more often than this fails, saying so
};

}  // namespace tallrec
